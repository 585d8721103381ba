using System.Net;
using System.Net.Http.Json;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Portal.Auth;
using Portal.Tests.Demo;
using Portal.Tests.Support;

namespace Portal.Tests.Auth;

/// <summary>First start (one setup link, usable once), login without any default password, the public-leaderboard switch.</summary>
public sealed class SetupAndLoginTests
{
    static PortalFactory Portal(string dataDir, CapturedLog? log = null, IReadOnlyDictionary<string, string>? settings = null) =>
        new(dataDir, s => { if (log is not null) s.AddSingleton<ILoggerProvider>(log); }, settings);

    static List<string> SetupLinks(CapturedLog log) =>
        log.Lines.SelectMany(l => Regex.Matches(l.Message, @"/setup\?code=[A-Za-z0-9_-]+").Select(m => m.Value)).ToList();

    [Fact]
    public async Task SetupLink_IsPrintedOnce_CreatesTheAdmin_AndWorksOnce()
    {
        using var tmp = new TempDir();
        var log = new CapturedLog();
        await using (var app = Portal(tmp.Path, log))
        {
            var browser = app.CreateAnonymousClient();
            var links = SetupLinks(log);
            Assert.Single(links);
            var link = links[0];
            Assert.Contains("invalid or was already used", await (await browser.GetAsync("/setup?code=guess")).ExpectAsync(HttpStatusCode.OK));
            var (_, rejected) = await browser.PostFormAsync(link, new Dictionary<string, string>
                { ["Input.UserName"] = "boss", ["Input.Password"] = "short", ["Input.Confirm"] = "short" });
            Assert.Contains("at least 10", rejected);
            var (response, body) = await browser.PostFormAsync(link, new Dictionary<string, string>
                { ["Input.UserName"] = "boss", ["Input.Password"] = "Boss-Pass-2026", ["Input.Confirm"] = "Boss-Pass-2026" });
            Assert.True(response.IsSuccessStatusCode, body);
            // Signed in by the setup: the cookie reads the API.
            await (await browser.GetAsync("/api/runs")).ExpectAsync(HttpStatusCode.OK);
            using (var scope = app.Services.CreateScope())
            {
                var users = scope.ServiceProvider.GetRequiredService<UserManager<PortalUser>>();
                Assert.Equal(["boss"], (await users.GetUsersInRoleAsync(Roles.Admin)).Select(u => u.UserName!).ToList());
            }
            // The link is spent.
            var again = app.CreateAnonymousClient();
            Assert.Contains("invalid or was already used", await (await again.GetAsync(link)).ExpectAsync(HttpStatusCode.OK));
            Assert.Null(app.Services.GetRequiredService<AdminSetup>().Link);
            var errors = await app.Services.GetRequiredService<AdminSetup>().CreateAdminAsync(link.Split('=')[1], "boss2", "Boss-Pass-2026");
            Assert.Contains(errors, e => e.Contains("invalid"));
            Assert.Single(SetupLinks(log));
        }
        // A restart with an admin prints no link.
        var later = new CapturedLog();
        await using (var app = Portal(tmp.Path, later))
        {
            app.CreateAnonymousClient().Dispose();
            Assert.Empty(SetupLinks(later));
        }
    }

    [Fact]
    public async Task EachStartWithoutAdmin_PrintsANewLink_AndTheOldOneIsVoid()
    {
        using var tmp = new TempDir();
        string first;
        var log1 = new CapturedLog();
        await using (var app = Portal(tmp.Path, log1))
        {
            app.CreateAnonymousClient().Dispose();
            first = Assert.Single(SetupLinks(log1));
        }
        var log2 = new CapturedLog();
        await using (var app = Portal(tmp.Path, log2))
        {
            var browser = app.CreateAnonymousClient();
            var second = Assert.Single(SetupLinks(log2));
            Assert.NotEqual(first, second);
            Assert.Contains("invalid or was already used", await (await browser.GetAsync(first)).ExpectAsync(HttpStatusCode.OK));
        }
    }

    [Fact]
    public async Task NoDefaultPassword_LetsAnyoneIn()
    {
        using var tmp = new TempDir();
        // 35 guesses from one address: the per-source throttle (AccountAbuseTests) would refuse most of them unchecked.
        await using var app = Portal(tmp.Path, settings: new Dictionary<string, string> { ["Portal:Auth:LoginFreeFailures"] = "1000" });
        var browser = app.CreateAnonymousClient();
        using (var scope = app.Services.CreateScope())
            Assert.Empty(scope.ServiceProvider.GetRequiredService<UserManager<PortalUser>>().Users.ToList());
        // A user made by an admin has no password until they choose one through their link.
        string link;
        using (var scope = app.Services.CreateScope())
        {
            var (user, setPassword) = await scope.ServiceProvider.GetRequiredService<UserAdmin>().CreateAsync("newbie", Roles.Researcher);
            Assert.Null(user.PasswordHash);
            link = "/" + setPassword;
        }
        foreach (var name in new[] { "admin", "administrator", "root", "newbie", PortalFactory.AdminName })
            foreach (var password in new[] { "", "admin", "password", "changeme", "Admin123!", "Passw0rd!", "newbie" })
            {
                var (_, body) = await browser.PostFormAsync("/account/login", new Dictionary<string, string> { ["Input.UserName"] = name, ["Input.Password"] = password });
                Assert.Contains("Wrong user name or password", body);
                await (await browser.GetAsync("/api/runs")).ExpectAsync(HttpStatusCode.Unauthorized);
            }
        // The one-time link sets the password once; then the user logs in.
        var (set, setBody) = await browser.PostFormAsync(link, new Dictionary<string, string> { ["Input.Password"] = "Newbie-Pass-1", ["Input.Confirm"] = "Newbie-Pass-1" });
        Assert.Contains("Password set", setBody);
        var (_, reused) = await browser.PostFormAsync(link, new Dictionary<string, string> { ["Input.Password"] = "Other-Pass-22", ["Input.Confirm"] = "Other-Pass-22" });
        Assert.Contains("already used", reused);
        var (_, ok) = await browser.PostFormAsync("/account/login", new Dictionary<string, string> { ["Input.UserName"] = "newbie", ["Input.Password"] = "Newbie-Pass-1" });
        Assert.DoesNotContain("Wrong user name or password", ok);
        await (await browser.GetAsync("/api/runs")).ExpectAsync(HttpStatusCode.OK);
    }

    [Fact]
    public async Task PublicLeaderboard_AnswersAnonymousReads_Only()
    {
        using var tmp = new TempDir();
        await using (var app = Portal(tmp.Path, settings: new Dictionary<string, string> { ["Portal:Auth:PublicLeaderboard"] = "true" }))
        {
            var anonymous = app.CreateAnonymousClient();
            await (await anonymous.GetAsync("/api/leaderboard")).ExpectAsync(HttpStatusCode.OK);
            await (await anonymous.GetAsync("/api/leaderboard.csv")).ExpectAsync(HttpStatusCode.OK);
            await (await anonymous.GetAsync("/api/leaderboard.tex")).ExpectAsync(HttpStatusCode.OK);
            await (await anonymous.GetAsync("/leaderboard")).ExpectAsync(HttpStatusCode.OK);
            await (await anonymous.GetAsync("/api/runs")).ExpectAsync(HttpStatusCode.Unauthorized);
            var before = await app.RunCountAsync();
            await (await anonymous.PostAsJsonAsync("/api/runs", new { kind = "test-sleep", config = new { steps = 1, stepMs = 1 } })).ExpectAsync(HttpStatusCode.Unauthorized);
            Assert.Equal(before, await app.RunCountAsync());
            // Other pages still send the visitor to the login page.
            var runs = await anonymous.GetAsync("/runs");
            Assert.Contains("/account/login", runs.RequestMessage!.RequestUri!.AbsolutePath);
        }
        using var tmp2 = new TempDir();
        await using var closed = Portal(tmp2.Path);
        await (await closed.CreateAnonymousClient().GetAsync("/api/leaderboard")).ExpectAsync(HttpStatusCode.Unauthorized);
        await (await closed.CreateAnonymousClient().GetAsync("/api/leaderboard.csv")).ExpectAsync(HttpStatusCode.Unauthorized);
    }
}
