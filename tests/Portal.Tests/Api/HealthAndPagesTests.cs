using System.Net;
using Portal.Tests.Support;

namespace Portal.Tests.Api;

public class HealthAndPagesTests
{
    [Fact]
    public async Task Health_is_200_once_database_job_server_and_torch_are_up()
    {
        using var tmp = new TempDir();
        await using var app = new PortalFactory(tmp.Path);
        var client = app.CreateClient();
        var health = await Wait.UntilAsync(async () =>
        {
            using var r = await client.GetAsync("/api/health");
            return (r.StatusCode, Body: await r.Content.ReadAsStringAsync());
        }, h => h.StatusCode == HttpStatusCode.OK, TimeSpan.FromSeconds(60), "health 200");
        Assert.Contains("\"database\":{\"ok\":true", health.Body);
        Assert.Contains("\"jobServer\":{\"ok\":true", health.Body);
        Assert.Contains("\"torch\":{\"ok\":true", health.Body);
        // The store is a SQLite file under the data directory (on PostgreSQL, none is made there).
        Assert.Equal(!PortalFactory.Postgres, File.Exists(Path.Combine(tmp.Path, "portal.db")));
    }

#if !STORE_POSTGRES // breaks the store by replacing the portal.db file: the PostgreSQL form is PostgresRestartTests' outage.
    [Fact]
    public async Task Health_is_503_when_the_database_is_unusable()
    {
        using var tmp = new TempDir();
        // No job servers: their worker heartbeat would write (and so re-create) the file while it is being replaced.
        await using var app = new PortalFactory(tmp.Path, settings: new Dictionary<string, string> { ["Portal:Jobs:RunWorkers"] = "false" });
        var client = app.CreateClient();
        await Wait.UntilAsync(async () => (await client.GetAsync("/api/health")).StatusCode, s => s == HttpStatusCode.OK, what: "health 200");
        // A database file replaced by garbage: the health check must say so rather than claim all is well.
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        foreach (var f in Directory.GetFiles(tmp.Path, "portal.db*")) File.Delete(f);
        Directory.CreateDirectory(Path.Combine(tmp.Path, "portal.db"));
        using var r = await client.GetAsync("/api/health");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, r.StatusCode);
        Assert.Contains("\"database\":{\"ok\":false", await r.Content.ReadAsStringAsync());
    }
#endif

    [Theory]
    [InlineData("/", "Forensics Portal")]
    [InlineData("/datasets", "Datasets")]
    [InlineData("/runs", "Runs")]
    [InlineData("/system", "System")]
    [InlineData("/portal.css", ".run-progress")]
    [InlineData("/openapi/v1.json", "/api/datasets")]
    public async Task Pages_assets_and_the_API_description_are_served(string url, string expected)
    {
        using var tmp = new TempDir();
        await using var app = new PortalFactory(tmp.Path);
        using var r = await app.CreateClient().GetAsync(url);
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        Assert.Contains(expected, await r.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task MudBlazor_assets_are_served()
    {
        using var tmp = new TempDir();
        await using var app = new PortalFactory(tmp.Path);
        using var r = await app.CreateClient().GetAsync("/_content/MudBlazor/MudBlazor.min.css");
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
    }

    [Fact]
    public async Task The_Hangfire_dashboard_answers_local_requests()
    {
        using var tmp = new TempDir();
        await using var app = new PortalFactory(tmp.Path);
        using var r = await app.CreateClient().GetAsync("/hangfire");
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
    }
}
