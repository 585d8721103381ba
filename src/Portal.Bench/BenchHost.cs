using System.Diagnostics;
using System.Net.Http.Headers;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Portal.Auth;
using Portal.Store;

namespace Portal.Bench;

/// <summary>
/// The real portal in process on a temporary data directory (deleted on dispose), reached through the test server:
/// a request's time is the server's time (routing, query, serialisation, rendering) without a network.
/// </summary>
public sealed class BenchHost : WebApplicationFactory<Program>
{
    public string DataDir { get; } = Directory.CreateTempSubdirectory("portal-bench-").FullName;

    // Outside a test host the factory guesses a solution-relative content root that does not exist; the app needs
    // none of its own (static assets come from the build output's manifest), so the bench's folder serves.
    static BenchHost() => Environment.SetEnvironmentVariable("ASPNETCORE_TEST_CONTENTROOT_PORTAL", AppContext.BaseDirectory);

    public IDbContextFactory<PortalDb> Db => Services.GetRequiredService<IDbContextFactory<PortalDb>>();

    /// <summary>Settings applied after the defaults, e.g. Portal:Jobs:RunWorkers=false for a web node that only queues.</summary>
    public IReadOnlyDictionary<string, string> Settings { get; init; } = new Dictionary<string, string>();

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseSetting("Portal:DataDir", DataDir);
        builder.UseEnvironment("Production");
        foreach (var (key, value) in Settings) builder.UseSetting(key, value);
    }

    string? token;

    /// <summary>Every client acts as the admin "bench-admin" with an API token (made through the real services on first use).</summary>
    protected override void ConfigureClient(HttpClient client)
    {
        base.ConfigureClient(client);
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token ??= AdminToken());
    }

    string AdminToken()
    {
        using var scope = Services.CreateScope();
        var users = scope.ServiceProvider.GetRequiredService<UserManager<PortalUser>>();
        var user = new PortalUser { UserName = "bench-admin", CreatedAt = DateTime.UtcNow };
        if (!users.CreateAsync(user).GetAwaiter().GetResult().Succeeded || !users.AddToRoleAsync(user, Roles.Admin).GetAwaiter().GetResult().Succeeded)
            throw new InvalidOperationException("could not create the bench's admin user");
        return scope.ServiceProvider.GetRequiredService<ApiTokens>().CreateAsync(user.Id, "bench").GetAwaiter().GetResult().Text;
    }

    /// <summary>GETs the path <paramref name="repeat"/> times after one warm-up; the median and the slowest time, and the body length.</summary>
    public async Task<Timing> TimeAsync(HttpClient client, string label, string path, int repeat, CancellationToken ct)
    {
        using (var first = await client.GetAsync(path, ct))
        {
            first.EnsureSuccessStatusCode();
            // A page answered by a redirect to the login form would time the wrong page.
            if (first.RequestMessage?.RequestUri?.PathAndQuery != new Uri(client.BaseAddress!, path).PathAndQuery)
                throw new InvalidOperationException($"{path} was answered by {first.RequestMessage?.RequestUri} (not signed in?)");
        }
        var times = new List<double>();
        long bytes = 0;
        for (var i = 0; i < repeat; i++)
        {
            var watch = Stopwatch.StartNew();
            using var response = await client.GetAsync(path, ct);
            var body = await response.Content.ReadAsByteArrayAsync(ct);
            watch.Stop();
            response.EnsureSuccessStatusCode();
            times.Add(watch.Elapsed.TotalMilliseconds);
            bytes = body.Length;
        }
        times.Sort();
        return new Timing(label, path, times[times.Count / 2], times[^1], bytes);
    }

    /// <summary>Leave the data directory (and its portal.db) in place for inspection.</summary>
    public bool Keep { get; init; }

    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        if (Keep) return;
        try { Directory.Delete(DataDir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

/// <summary>One timed request: median and slowest of the repeats, in milliseconds, and the answer's size.</summary>
public sealed record Timing(string Label, string Path, double MedianMs, double MaxMs, long Bytes);
