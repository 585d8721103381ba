using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.TestHost;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Portal.Jobs;
using Portal.Store;

namespace Portal.Tests.Support;

/// <summary>
/// The real portal (store, queue, jobs, API, UI) on a temporary data directory that is also the only allowed root.
/// Two factories over the same directory, one after the other, are a restart. The demo is off unless
/// <c>settings</c> turn it on; <c>settings</c> are applied last. Built with STORE_POSTGRES (tests/Portal.Tests.Postgres),
/// the store and queue are a PostgreSQL database named after the data directory on <see cref="PostgresServer.Shared"/>,
/// so a restart over the same directory finds the same database, as with SQLite's portal.db.
/// </summary>
public sealed class PortalFactory(string dataDir, Action<IServiceCollection>? services = null, IReadOnlyDictionary<string, string>? settings = null)
    : WebApplicationFactory<Program>
{
    public string DataDir { get; } = dataDir;

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
