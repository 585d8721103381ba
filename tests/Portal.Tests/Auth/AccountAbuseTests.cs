using System.Net;
using System.Net.Http.Json;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.DependencyInjection;
using Portal.Auth;
using Portal.Tests.Support;

namespace Portal.Tests.Auth;

/// <summary>
/// Anonymous callers cannot switch a user's API tokens off by guessing passwords (only an admin's lock does), and guessing
/// is slowed per source address instead.
/// </summary>
public sealed class AccountAbuseTests
{
    static Dictionary<string, string> Login(string user, string password) => new() { ["Input.UserName"] = user, ["Input.Password"] = password };

    [Fact]
    public async Task Ten_wrong_passwords_leave_the_tokens_working_and_throttle_the_guesser_but_an_admin_lock_stops_the_tokens()
    {
        using var tmp = new TempDir();
        // A clock that stands still: the guesser's waits never run out during the test, however slow the machine.
        var clock = new Clock(DateTimeOffset.UtcNow);
        await using var app = new PortalFactory(tmp.Path, s => s.AddSingleton(new LoginThrottle(new AuthOptions(), clock)));
        var (userId, token) = app.UserFor("lena", Roles.Researcher);
        using (var scope = app.Services.CreateScope())
        {
            var users = scope.ServiceProvider.GetRequiredService<UserManager<PortalUser>>();
            var user = (await users.FindByIdAsync(userId))!;
            await users.SetLockoutEnabledAsync(user, true); // as accounts made on /admin/users are
            Assert.True((await users.AddPasswordAsync(user, "Lena-Pass-123")).Succeeded);
        }
        var lena = app.CreateClientFor("lena", Roles.Researcher);
        var guesser = app.CreateAnonymousClient();

        var answers = new List<(HttpStatusCode Status, string Body)>();
        for (var i = 0; i < 10; i++)
        {
            var (response, body) = await guesser.PostFormAsync("/account/login", Login("lena", $"guess-{i}"));
            answers.Add((response.StatusCode, body));
        }
        // Five free failures, the sixth names the wait, the rest are refused unchecked while the source waits.
        Assert.All(answers.Take(5), a => Assert.DoesNotContain("Too many failed sign-ins", a.Body));
        Assert.All(answers.Take(6), a => Assert.Contains("Wrong user name or password", a.Body));
        Assert.Contains("Too many failed sign-ins from your address", answers[5].Body);
        Assert.All(answers.Skip(6), a =>
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, a.Status);
            Assert.Contains("Too many failed sign-ins from your address", a.Body);
            Assert.DoesNotContain("Wrong user name or password", a.Body);
        });
        // Even the right password is not tried from that source now: guessing is throttled.
        var (_, right) = await guesser.PostFormAsync("/account/login", Login("lena", "Lena-Pass-123"));
        Assert.Contains("Too many failed sign-ins", right);
        await (await guesser.GetAsync("/api/runs")).ExpectAsync(HttpStatusCode.Unauthorized);

        // The account is not locked, and its token reads and queues.
        using (var scope = app.Services.CreateScope())
        {
            var users = scope.ServiceProvider.GetRequiredService<UserManager<PortalUser>>();
            Assert.False(await users.IsLockedOutAsync((await users.FindByIdAsync(userId))!));
        }
        await (await lena.GetAsync("/api/runs")).ExpectAsync(HttpStatusCode.OK);
        await lena.QueueSleepAsync();

        // An admin's lock does stop the token.
        using (var scope = app.Services.CreateScope())
        {
            var users = scope.ServiceProvider.GetRequiredService<UserManager<PortalUser>>();
            await scope.ServiceProvider.GetRequiredService<UserAdmin>().SetLockedAsync((await users.FindByIdAsync(userId))!, true);
        }
        var refused = await (await lena.GetAsync("/api/runs")).ExpectAsync(HttpStatusCode.Unauthorized);
        Assert.Contains("locked by an admin", refused);
        Assert.Equal(HttpStatusCode.Unauthorized, (await lena.PostAsync($"/api/runs", JsonContent.Create(new { kind = "test-sleep", config = new { steps = 1, stepMs = 1 } }))).StatusCode);
    }

    sealed class Clock(DateTimeOffset start) : TimeProvider
    {
        public DateTimeOffset Now { get; set; } = start;
        public override DateTimeOffset GetUtcNow() => Now;
    }

    [Fact]
    public void The_wait_doubles_after_the_free_failures_and_a_source_is_forgotten_after_a_quiet_spell()
    {
        var clock = new Clock(new DateTimeOffset(2026, 12, 7, 8, 0, 0, TimeSpan.Zero));
        var throttle = new LoginThrottle(new AuthOptions { LoginFreeFailures = 5, LoginMaxDelaySeconds = 300 }, clock);
        var waits = Enumerable.Range(0, 15).Select(_ =>
        {
            var wait = throttle.Failed("10.0.0.7");
            clock.Now += wait; // the guesser waits exactly as long as told
            return wait.TotalSeconds;
        }).ToList();
        Assert.Equal([0, 0, 0, 0, 0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 300], waits);
        // Another source is not affected; the throttled one must wait before its next try.
        Assert.Equal(TimeSpan.Zero, throttle.Wait("10.0.0.8"));
        throttle.Failed("10.0.0.7");
        Assert.Equal(TimeSpan.FromSeconds(300), throttle.Wait("10.0.0.7"));
        // After 15 minutes without failures it starts afresh; a success clears it at once.
        clock.Now += TimeSpan.FromMinutes(16);
        Assert.Equal(TimeSpan.Zero, throttle.Wait("10.0.0.7"));
        Assert.Equal(TimeSpan.Zero, throttle.Failed("10.0.0.7"));
        for (var i = 0; i < 6; i++) throttle.Failed("10.0.0.9");
        Assert.True(throttle.Wait("10.0.0.9") > TimeSpan.Zero);
        throttle.Succeeded("10.0.0.9");
        Assert.Equal(TimeSpan.Zero, throttle.Wait("10.0.0.9"));
    }
}
