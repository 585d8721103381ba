using System.Net.Http.Headers;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.TestHost;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Portal.Auth;
using Portal.Experiments;
using Portal.Datasets;
using Portal.Zoo;
using Portal.Runs;
using Portal.Store;

namespace Portal.Tests.Support;

/// <summary>
/// The real portal (store, queue, jobs, API, UI) on a temporary data directory that is also the only allowed root.
/// Two factories over the same directory, one after the other, are a restart. The demo is off unless
/// <c>settings</c> turn it on; <c>settings</c> are applied last. Clients are signed in as the admin "test-admin" with an
/// API token (both made through the real services on first use); <see cref="CreateClientFor"/> gives other users' clients,
/// <see cref="CreateAnonymousClient"/> one without credentials. Built with STORE_POSTGRES (tests/Portal.Tests.Postgres),
/// the store and queue are a PostgreSQL database named after the data directory on <see cref="PostgresServer.Shared"/>,
/// so a restart over the same directory finds the same database, as with SQLite's portal.db.
/// </summary>
public sealed class PortalFactory(string dataDir, Action<IServiceCollection>? services = null, IReadOnlyDictionary<string, string>? settings = null)
    : WebApplicationFactory<Program>
{
    public string DataDir { get; } = dataDir;
    /// <summary>The default clients' user.</summary>
    public const string AdminName = "test-admin";

    readonly Dictionary<string, string> tokens = [];
    bool anonymous;

    /// <summary>Every client carries the admin's bearer token, unless made by <see cref="CreateAnonymousClient"/>.</summary>
    protected override void ConfigureClient(HttpClient client)
    {
        base.ConfigureClient(client);
        if (!anonymous) client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", TokenFor(AdminName, Roles.Admin));
    }

    /// <summary>A client acting as <paramref name="userName"/> with <paramref name="role"/> (the user and a token made on first use).</summary>
    public HttpClient CreateClientFor(string userName, string role)
    {
        var client = CreateAnonymousClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", TokenFor(userName, role));
        return client;
    }

    /// <summary>A client with no credentials (cookies are kept, so a login through the form signs it in).</summary>
    public HttpClient CreateAnonymousClient()
    {
        lock (tokens) anonymous = true;
        try { return CreateClient(); }
        finally { lock (tokens) anonymous = false; }
    }

    /// <summary>An API token of <paramref name="userName"/> (created with <paramref name="role"/> if it does not exist yet; a restart reuses the stored user).</summary>
    public string TokenFor(string userName, string role) => UserFor(userName, role).Token;

    /// <summary>The user id and a token of <paramref name="userName"/>, made through the real UserManager and <see cref="ApiTokens"/>.</summary>
    public (string UserId, string Token) UserFor(string userName, string role)
    {
        lock (tokens)
        {
            using var scope = Services.CreateScope();
            var users = scope.ServiceProvider.GetRequiredService<UserManager<PortalUser>>();
            var user = users.FindByNameAsync(userName).GetAwaiter().GetResult();
            if (user is null)
            {
                user = new PortalUser { UserName = userName, CreatedAt = DateTime.UtcNow };
                Check(users.CreateAsync(user).GetAwaiter().GetResult());
                Check(users.AddToRoleAsync(user, role).GetAwaiter().GetResult());
            }
            if (!tokens.TryGetValue(userName, out var token))
                tokens[userName] = token = scope.ServiceProvider.GetRequiredService<ApiTokens>().CreateAsync(user.Id, "tests").GetAwaiter().GetResult().Text;
            return (user.Id, token);
        }
    }

    static void Check(IdentityResult result)
    {
        if (!result.Succeeded) throw new InvalidOperationException(string.Join("; ", result.Errors.Select(e => e.Description)));
    }

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseSetting("Portal:DataDir", DataDir);
        foreach (var (key, value) in StoreSettings(DataDir)) builder.UseSetting(key, value);
        builder.UseSetting("Portal:Jobs:HeartbeatSeconds", "0.2");
        // No MiniGenImage build or demo zoo entries unless a test asks for them (the demo tests).
        builder.UseSetting("Portal:Demo:Enabled", "false");
        foreach (var (key, value) in settings ?? new Dictionary<string, string>()) builder.UseSetting(key, value);
        builder.ConfigureTestServices(s =>
        {
            s.AddTransient<IRunJob, TestJobs.Sleep>();
            s.AddTransient<IRunJob, TestJobs.DeviceProbe>();
            services?.Invoke(s);
        });
    }

    /// <summary>True in the build that runs the suite against PostgreSQL.</summary>
    public static readonly bool Postgres =
#if STORE_POSTGRES
        true;
#else
        false;
#endif

    /// <summary>
    /// The store's settings for a portal over <paramref name="dataDir"/>: none for SQLite (portal.db under it); for
    /// PostgreSQL the provider and the connection string of its database, created here when missing (as an operator would).
    /// </summary>
    public static IReadOnlyDictionary<string, string> StoreSettings(string dataDir) => Postgres
        ? new Dictionary<string, string>
        {
            ["Portal:Store:Provider"] = "postgres",
            ["ConnectionStrings:Portal"] = PostgresServer.Shared.EnsureDatabase(PostgresServer.DatabaseFor(dataDir)),
        }
        : new Dictionary<string, string>();

    /// <summary>The store of a portal over <paramref name="dataDir"/>, opened directly (as another tool would), for seeding.</summary>
    public static PortalDb OpenStore(string dataDir) => Postgres
        ? new PostgresPortalDb(new DbContextOptionsBuilder<PostgresPortalDb>().UseNpgsql(StoreSettings(dataDir)["ConnectionStrings:Portal"]).Options)
        : new PortalDb(new DbContextOptionsBuilder<PortalDb>().UseSqlite(Portal.Infrastructure.ServiceSetup.SqliteConnectionString(null, dataDir)).Options);

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        // Every test has its own database and so its own connection pool: let go of this one's idle connections now.
        if (Postgres) Npgsql.NpgsqlConnection.ClearAllPools();
    }
}

/// <summary>A fresh temporary folder, deleted on dispose.</summary>
public sealed class TempDir : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("portal-test-").FullName;
    public string Sub(params string[] parts) => System.IO.Path.Combine([Path, .. parts]);
    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
