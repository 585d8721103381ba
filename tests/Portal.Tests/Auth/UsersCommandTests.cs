using System.Net;
using System.Text.RegularExpressions;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Portal.Store;
using Portal.Tests.Support;

namespace Portal.Tests.Auth;

/// <summary>`Portal users add NAME --role R --token T` as a real process on the store a portal then serves: the headless first admin and token.</summary>
public sealed partial class UsersCommandTests
{
    static async Task<(int Exit, string Output)> RunAsync(string dataDir, params string[] args)
    {
        using var process = WorkerProcess.Start(["users", .. args], dataDir);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        await process.Process.WaitForExitAsync(timeout.Token);
        process.Process.WaitForExit(); // the output is read to its end
        return (process.Process.ExitCode, process.Output);
    }

    [GeneratedRegex(@"^fp_[A-Za-z0-9_-]{43}$", RegexOptions.Multiline)]
    private static partial Regex TokenLine();

    [Fact]
    public async Task Users_add_creates_an_admin_prints_a_working_token_once_is_audited_and_refuses_an_existing_user()
    {
        using var tmp = new TempDir();
        var (exit, output) = await RunAsync(tmp.Path, "add", "ci-admin", "--role", "admin", "--token", "deploy script");
        Assert.True(exit == 0, output);
        var tokens = TokenLine().Matches(output);
        Assert.Single(tokens);
        var token = tokens[0].Value;

        // The same user again: refused, nothing printed that looks like a token.
        var (again, refusal) = await RunAsync(tmp.Path, "add", "ci-admin", "--role", "viewer");
        Assert.Equal(1, again);
        Assert.Contains("already exists", refusal);
        Assert.Empty(TokenLine().Matches(refusal));
        // Bad usage: exit 2, naming what is wrong.
        var (usage, usageText) = await RunAsync(tmp.Path, "add", "someone", "--role", "boss");
        Assert.Equal(2, usage);
        Assert.Contains("--role must be one of admin, researcher, viewer", usageText);
        var (longName, longText) = await RunAsync(tmp.Path, "add", "someone", "--role", "viewer", "--token", new string('t', 101));
        Assert.Equal(2, longName);
        Assert.Contains("--token must be a name of 1 to 100 characters", longText);

        // The portal on the same store: the token acts as an admin, and there is no setup link to open any more.
        await using var app = new PortalFactory(tmp.Path);
        var client = app.CreateAnonymousClient();
        client.DefaultRequestHeaders.Authorization = new("Bearer", token);
        await (await client.GetAsync("/api/runs")).ExpectAsync(HttpStatusCode.OK);
        await client.QueueSleepAsync();
        await (await client.GetAsync("/api/audit")).ExpectAsync(HttpStatusCode.OK);
        var mine = AuthTestSupport.Json(await (await client.GetAsync("/api/tokens")).ExpectAsync(HttpStatusCode.OK));
        Assert.Equal("deploy script", Assert.Single(mine.EnumerateArray()).GetProperty("name").GetString());

        await using var db = await app.Services.GetRequiredService<IDbContextFactory<PortalDb>>().CreateDbContextAsync();
        var events = await db.AuditEvents.AsNoTracking().OrderBy(e => e.Id).ToListAsync();
        var created = Assert.Single(events, e => e.Action == "user.create");
        Assert.Equal("user:ci-admin", created.Target);
        Assert.Contains("role admin, from the command line (users add)", created.Detail);
        Assert.EndsWith("(command line)", created.UserName);
        Assert.Contains(events, e => e.Action == "token.create" && e.Detail == "deploy script" && e.UserName.EndsWith("(command line)"));
        Assert.Equal(1, await db.Users.CountAsync(u => u.UserName == "ci-admin"));
        Assert.False(await db.Users.AnyAsync(u => u.UserName == "someone"), "a refused command stored a user");
    }
}
