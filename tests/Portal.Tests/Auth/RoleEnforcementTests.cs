using System.Net;
using System.Net.Http.Json;
using Microsoft.Extensions.DependencyInjection;
using Portal.Auth;
using Portal.Store;
using Portal.Tests.Support;

namespace Portal.Tests.Auth;

/// <summary>One portal shared by the role tests (they each use their own users and runs).</summary>
public sealed class AuthPortal : IAsyncLifetime
{
    readonly TempDir dir = new();
    public PortalFactory App { get; private set; } = null!;
    public Task InitializeAsync()
    {
        App = new PortalFactory(dir.Path);
        App.CreateClient().Dispose();
        return Task.CompletedTask;
    }
    public async Task DisposeAsync()
    {
        await App.DisposeAsync();
        dir.Dispose();
    }
}

/// <summary>Viewers change nothing; researchers change only their own runs; admins change any; every refusal is a 403 that changes nothing.</summary>
public sealed class RoleEnforcementTests(AuthPortal portal) : IClassFixture<AuthPortal>
{
    PortalFactory App => portal.App;

    [Fact]
    public async Task Viewer_GetsForbidden_OnEveryUnsafeApiEndpoint_AndNothingChanges()
    {
        var admin = App.CreateClient();
        var finished = await admin.QueueSleepAsync();
        await Wait.RunFinishedAsync(admin, finished);
        var queued = await admin.QueueSleepAsync(steps: 200, stepMs: 50);
        var viewer = App.CreateClientFor("vera", Roles.Viewer);
        var before = await App.RunCountAsync();
        var sleep = new { kind = "test-sleep", config = new TestJobs.SleepConfig(1, 1) };
        var calls = new (string Method, string Url, object? Body)[]
        {
            ("POST", "/api/runs", sleep),
            ("POST", $"/api/runs/{queued}/cancel", null),
            ("POST", $"/api/runs/{finished}/rerun", null),
            ("PUT", $"/api/runs/{finished}/tags", new { tags = new[] { "x" } }),
            ("DELETE", $"/api/runs/{finished}", null),
            ("POST", "/api/datasets", new { name = "v", path = "." }),
            ("POST", "/api/datasets/1/rescan", null),
            ("POST", "/api/models", new { name = "v", path = "." }),
            ("POST", "/api/experiments", new { kind = "test-sleep", config = new { steps = 1, stepMs = 1 }, axes = new { steps = new[] { 1, 2 } } }),
        };
        foreach (var (method, url, body) in calls)
        {
            var request = new HttpRequestMessage(new HttpMethod(method), url) { Content = body is null ? null : JsonContent.Create(body) };
            var text = await (await viewer.SendAsync(request)).ExpectAsync(HttpStatusCode.Forbidden);
            Assert.Contains("vera", text);
        }
        Assert.Equal(before, await App.RunCountAsync());
        var run = await App.RunAsync(queued);
        Assert.False(run.CancelRequested);
        Assert.Equal("", (await App.RunAsync(finished)).Tags);
        // Reading is allowed.
        await (await viewer.GetAsync($"/api/runs/{finished}")).ExpectAsync(HttpStatusCode.OK);
        await (await admin.PostAsync($"/api/runs/{queued}/cancel", null)).ExpectAsync(HttpStatusCode.Accepted);
    }

    [Fact]
    public async Task Viewer_IsRefused_ThePagesThatQueue_ButReadsTheOthers()
    {
        var viewer = App.CreateClientFor("vic", Roles.Viewer);
        foreach (var page in new[] { "/train", "/align", "/evaluate", "/crossgen", "/sweep", "/admin/users", "/admin/audit" })
            await (await viewer.GetAsync(page)).ExpectAsync(HttpStatusCode.Forbidden);
        foreach (var page in new[] { "/runs", "/datasets", "/leaderboard" })
            await (await viewer.GetAsync(page)).ExpectAsync(HttpStatusCode.OK);
        var researcher = App.CreateClientFor("rita", Roles.Researcher);
        await (await researcher.GetAsync("/train")).ExpectAsync(HttpStatusCode.OK);
        await (await researcher.GetAsync("/admin/users")).ExpectAsync(HttpStatusCode.Forbidden);
        await (await researcher.GetAsync("/hangfire")).ExpectAsync(HttpStatusCode.Forbidden);
        await (await App.CreateClient().GetAsync("/hangfire")).ExpectAsync(HttpStatusCode.OK);
        await (await App.CreateAnonymousClient().GetAsync("/api/health")).ExpectAsync(HttpStatusCode.OK);
    }

    [Fact]
    public async Task Researcher_ChangesOwnRunsOnly_AdminChangesAny()
    {
        var alice = App.CreateClientFor("alice", Roles.Researcher);
        var bob = App.CreateClientFor("bob", Roles.Researcher);
        var admin = App.CreateClient();
        var alicesShort = await alice.QueueSleepAsync();
        var alicesLong = await alice.QueueSleepAsync(steps: 400, stepMs: 50);
        var bobsLong = await bob.QueueSleepAsync(steps: 400, stepMs: 50);
        Assert.Equal("alice", (await alice.GetJsonAsync($"/api/runs/{alicesLong}")).GetProperty("owner").GetString());
        Assert.Equal(App.UserFor("alice", Roles.Researcher).UserId, (await App.RunAsync(alicesLong)).OwnerId);

        var text = await (await bob.PostAsync($"/api/runs/{alicesLong}/cancel", null)).ExpectAsync(HttpStatusCode.Forbidden);
        Assert.Contains("only its owner or an admin", text);
        await (await bob.PutAsJsonAsync($"/api/runs/{alicesLong}/tags", new { tags = new[] { "mine" } })).ExpectAsync(HttpStatusCode.Forbidden);
        var unchanged = await App.RunAsync(alicesLong);
        Assert.False(unchanged.CancelRequested);
        Assert.Contains(unchanged.Status, new[] { RunStatus.Queued, RunStatus.Running });
        Assert.Equal("", unchanged.Tags);

        await Wait.RunFinishedAsync(alice, alicesShort);
        await (await bob.DeleteAsync($"/api/runs/{alicesShort}")).ExpectAsync(HttpStatusCode.Forbidden);
        Assert.Equal(RunStatus.Succeeded, (await App.RunAsync(alicesShort)).Status);

        await (await alice.PutAsJsonAsync($"/api/runs/{alicesLong}/tags", new { tags = new[] { "mine" } })).ExpectAsync(HttpStatusCode.OK);
        await (await alice.PostAsync($"/api/runs/{alicesLong}/cancel", null)).ExpectAsync(HttpStatusCode.Accepted);
        await (await alice.DeleteAsync($"/api/runs/{alicesShort}")).ExpectAsync(HttpStatusCode.NoContent);
        await (await alice.GetAsync($"/api/runs/{alicesShort}")).ExpectAsync(HttpStatusCode.NotFound);
        // The admin cancels bob's run; a run the portal queued itself (no owner) only an admin may cancel.
        await (await admin.PostAsync($"/api/runs/{bobsLong}/cancel", null)).ExpectAsync(HttpStatusCode.Accepted);
        var system = await App.Services.GetRequiredService<Portal.Runs.RunService>().CreateAsync("test-sleep", new TestJobs.SleepConfig(400, 50));
        Assert.Null(system.OwnerId);
        await (await bob.PostAsync($"/api/runs/{system.Id}/cancel", null)).ExpectAsync(HttpStatusCode.Forbidden);
        await (await admin.PostAsync($"/api/runs/{system.Id}/cancel", null)).ExpectAsync(HttpStatusCode.Accepted);
        // A running run cannot be deleted.
        var running = await alice.QueueSleepAsync(steps: 400, stepMs: 50);
        await (await alice.DeleteAsync($"/api/runs/{running}")).ExpectAsync(HttpStatusCode.Conflict);
        await (await alice.PostAsync($"/api/runs/{running}/cancel", null)).ExpectAsync(HttpStatusCode.Accepted);

        var audit = await admin.GetJsonAsync("/api/audit?take=1000");
        var events = audit.EnumerateArray().Select(e => (User: e.GetProperty("userName").GetString(), Action: e.GetProperty("action").GetString(), Target: e.GetProperty("target").GetString())).ToList();
        Assert.Contains(("alice", "run.queue", $"run:{alicesLong}"), events);
        Assert.Contains(("alice", "run.cancel", $"run:{alicesLong}"), events);
        Assert.Contains(("alice", "run.delete", $"run:{alicesShort}"), events);
        Assert.Contains((PortalFactory.AdminName, "run.cancel", $"run:{bobsLong}"), events);
        Assert.DoesNotContain(events, e => e.User == "bob" && e.Action != "run.queue" && e.Action != "token.create");
        await (await bob.GetAsync("/api/audit")).ExpectAsync(HttpStatusCode.Forbidden);
    }

    [Fact]
    public async Task RevokedToken_Is401_AndOnlyTheOwnerRevokes()
    {
        var admin = App.CreateClient();
        var created = await admin.PostJsonAsync("/api/tokens", new { name = "script" }, 201);
        var token = created.GetProperty("token").GetString()!;
        var id = created.GetProperty("id").GetInt64();
        var script = App.CreateAnonymousClient();
        script.DefaultRequestHeaders.Authorization = new("Bearer", token);
        await (await script.GetAsync("/api/runs")).ExpectAsync(HttpStatusCode.OK);
        // Another user cannot revoke it.
        await (await App.CreateClientFor("tess", Roles.Researcher).DeleteAsync($"/api/tokens/{id}")).ExpectAsync(HttpStatusCode.NotFound);
        await (await script.GetAsync("/api/runs")).ExpectAsync(HttpStatusCode.OK);
        var listed = (await admin.GetJsonAsync("/api/tokens")).EnumerateArray().Single(t => t.GetProperty("id").GetInt64() == id);
        Assert.NotEqual(System.Text.Json.JsonValueKind.Null, listed.GetProperty("lastUsedAt").ValueKind);
        Assert.False(listed.TryGetProperty("token", out _));
        await (await admin.DeleteAsync($"/api/tokens/{id}")).ExpectAsync(HttpStatusCode.NoContent);
        var text = await (await script.GetAsync("/api/runs")).ExpectAsync(HttpStatusCode.Unauthorized);
        Assert.Contains("revoked", text);
        await (await script.PostAsJsonAsync("/api/runs", new { kind = "test-sleep", config = new { steps = 1, stepMs = 1 } })).ExpectAsync(HttpStatusCode.Unauthorized);
        var wrong = App.CreateAnonymousClient();
        wrong.DefaultRequestHeaders.Authorization = new("Bearer", ApiTokens.Prefix + "not-a-token");
        await (await wrong.GetAsync("/api/runs")).ExpectAsync(HttpStatusCode.Unauthorized);
    }

    [Fact]
    public async Task AnAccountWithoutARole_ReadsNothing_ThroughTheApiOrThePages()
    {
        var admin = App.CreateClient();
        await admin.QueueSleepAsync();
        string token;
        using (var scope = App.Services.CreateScope())
        {
            var users = scope.ServiceProvider.GetRequiredService<Microsoft.AspNetCore.Identity.UserManager<PortalUser>>();
            var user = new PortalUser { UserName = "norole", CreatedAt = DateTime.UtcNow };
            Assert.True((await users.CreateAsync(user, "NoRole-Pass-123")).Succeeded);
            token = (await scope.ServiceProvider.GetRequiredService<ApiTokens>().CreateAsync(user.Id, "tests")).Text;
        }
        var api = App.CreateAnonymousClient();
        api.DefaultRequestHeaders.Authorization = new("Bearer", token);
        foreach (var url in new[] { "/api/runs", "/api/runs/1", "/api/runs/1/log", "/api/datasets", "/api/models", "/api/workers", "/api/leaderboard",
                                    "/api/leaderboard.csv", "/api/matrix", "/api/tokens", "/api/audit" })
            await (await api.GetAsync(url)).ExpectAsync(HttpStatusCode.Forbidden);
        await (await api.PostAsJsonAsync("/api/tokens", new { name = "more" })).ExpectAsync(HttpStatusCode.Forbidden);
        await (await api.GetAsync("/api/health")).ExpectAsync(HttpStatusCode.OK);

        // Signed in with a password: every page sends it to the access-denied page; it may still sign out.
        var browser = App.CreateAnonymousClient();
        var (login, body) = await browser.PostFormAsync("/account/login", new Dictionary<string, string> { ["Input.UserName"] = "norole", ["Input.Password"] = "NoRole-Pass-123" });
        Assert.True(login.IsSuccessStatusCode, body);
        foreach (var page in new[] { "/", "/runs", "/runs/1", "/datasets", "/models", "/leaderboard", "/account/tokens", "/system" })
        {
            var response = await browser.GetAsync(page);
            Assert.True(response.RequestMessage!.RequestUri!.AbsolutePath == "/account/denied", $"{page} answered {(int)response.StatusCode} at {response.RequestMessage.RequestUri}");
        }
        await (await browser.GetAsync("/api/runs")).ExpectAsync(HttpStatusCode.Forbidden);
    }

    [Fact]
    public async Task CookieOnly_UnsafeApiCalls_AreRefused_ButCookieGetsWork()
    {
        using (var scope = App.Services.CreateScope())
        {
            var users = scope.ServiceProvider.GetRequiredService<Microsoft.AspNetCore.Identity.UserManager<PortalUser>>();
            var user = new PortalUser { UserName = "cookie-admin", CreatedAt = DateTime.UtcNow };
            Assert.True((await users.CreateAsync(user, "Cookie-Pass-123")).Succeeded);
            await users.AddToRoleAsync(user, Roles.Admin);
        }
        var browser = App.CreateAnonymousClient();
        await (await browser.GetAsync("/api/runs")).ExpectAsync(HttpStatusCode.Unauthorized);
        var (login, body) = await browser.PostFormAsync("/account/login", new Dictionary<string, string> { ["Input.UserName"] = "cookie-admin", ["Input.Password"] = "Cookie-Pass-123" });
        Assert.True(login.IsSuccessStatusCode, body);
        await (await browser.GetAsync("/api/runs")).ExpectAsync(HttpStatusCode.OK);
        var before = await App.RunCountAsync();
        var text = await (await browser.PostAsJsonAsync("/api/runs", new { kind = "test-sleep", config = new { steps = 1, stepMs = 1 } })).ExpectAsync(HttpStatusCode.Unauthorized);
        Assert.Contains("Bearer", text);
        Assert.Equal(before, await App.RunCountAsync());
    }
}
