using Forensics.ML.Runtime;
using Hangfire;
using Hangfire.InMemory;
using Hangfire.PostgreSql;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using MudBlazor.Services;
using Portal.Experiments;
using Portal.Datasets;
using Portal.Zoo;
using Portal.Runs;
using Portal.Store;

namespace Portal.Infrastructure;

/// <summary>Service registration, grouped by concern.</summary>
public static class ServiceSetup
{
    /// <summary>
    /// The services every portal process shares, the web app, the `worker` and `demo-report` alike: the store (SQLite or
    /// PostgreSQL, migrated on start), the runs and their jobs (queues, workers, recovery), torch, the leaderboard's indexer
    /// and query, and the demo benchmark's definitions. The web app adds its UI and accounts (<see cref="AddPortalUi"/>,
    /// <see cref="Portal.Auth.AuthSetup.AddPortalAuth"/>); a worker has no users, and runs it queues act as the portal.
    /// </summary>
    public static IServiceCollection AddPortalCore(this IServiceCollection services, IConfiguration config)
    {
        services.AddPortalStore(config);
        services.AddPortalJobs(config);
        services.AddPortalTorch();
        services.AddPortalLeaderboard();
        services.AddDemoBenchmark();
        return services;
    }

    /// <summary>
    /// Options, data directory and the store: SQLite under the data directory (default) or PostgreSQL
    /// (Portal:Store:Provider = postgres). Code always asks for <c>IDbContextFactory&lt;PortalDb&gt;</c>; on PostgreSQL it
    /// gets a <see cref="PostgresPortalDb"/>, whose type selects the migrations in migrations/Postgres.
    /// </summary>
    public static IServiceCollection AddPortalStore(this IServiceCollection services, IConfiguration config)
    {
        services.Configure<PortalOptions>(config.GetSection(PortalOptions.Section));
        services.AddSingleton<PortalPaths>();
        var migrations = typeof(PortalDb).Assembly.GetName().Name;
        if (StoreOf(config).IsPostgres)
        {
            var connection = PostgresConnectionString(config);
            services.AddDbContextFactory<PostgresPortalDb>(o => o.UseNpgsql(connection, npgsql => npgsql
                .MigrationsAssembly(migrations)
                // A short outage (a restart, a failover) is retried instead of failing the request or the run's write.
                .EnableRetryOnFailure(maxRetryCount: 6, maxRetryDelay: TimeSpan.FromSeconds(5), errorCodesToAdd: null)));
            services.AddSingleton<IDbContextFactory<PortalDb>>(sp => new UpcastDbContextFactory<PostgresPortalDb, PortalDb>(
                sp.GetRequiredService<IDbContextFactory<PostgresPortalDb>>()));
        }
        else
        {
            services.AddDbContextFactory<PortalDb>((sp, o) =>
            {
                var paths = sp.GetRequiredService<PortalPaths>();
                o.UseSqlite(SqliteConnectionString(config.GetConnectionString("Portal"), paths.DataDir),
                    sqlite => sqlite.MigrationsAssembly(migrations));
            });
        }
        services.AddHostedService<StoreMigration>();
        return services;
    }

    /// <summary>Portal:Store as configured (provider "sqlite" when absent).</summary>
    public static StoreOptions StoreOf(IConfiguration config) =>
        config.GetSection(PortalOptions.Section).GetSection("Store").Get<StoreOptions>() ?? new StoreOptions();

    /// <summary>ConnectionStrings:Portal for PostgreSQL; there is no default database to fall back on, so it is required.</summary>
    public static string PostgresConnectionString(IConfiguration config)
    {
        var configured = config.GetConnectionString("Portal");
        if (string.IsNullOrWhiteSpace(configured) || configured.Contains("Data Source=", StringComparison.OrdinalIgnoreCase))
            throw new InvalidOperationException(
                "Portal:Store:Provider is 'postgres' but ConnectionStrings:Portal is " +
                (string.IsNullOrWhiteSpace(configured) ? "missing" : $"the SQLite '{configured}'") +
                "; set it to an Npgsql connection string, e.g. ConnectionStrings__Portal=\"Host=db;Database=portal;Username=portal;Password=...\"");
        try { return new Npgsql.NpgsqlConnectionStringBuilder(configured).ConnectionString; }
        catch (ArgumentException e) { throw new InvalidOperationException($"ConnectionStrings:Portal is not an Npgsql connection string: {e.Message}", e); }
    }

    /// <summary>"Data Source=portal.db" with the file made absolute under the data directory; busy timeout for concurrent workers.</summary>
    public static string SqliteConnectionString(string? configured, string dataDir)
    {
        var builder = new Microsoft.Data.Sqlite.SqliteConnectionStringBuilder(string.IsNullOrWhiteSpace(configured) ? "Data Source=portal.db" : configured);
        if (builder.DataSource != ":memory:" && !builder.DataSource.StartsWith("file:", StringComparison.Ordinal))
            builder.DataSource = Path.GetFullPath(builder.DataSource, dataDir);
        builder.DefaultTimeout = Math.Max(builder.DefaultTimeout, 30);
        return builder.ToString();
    }

    /// <summary>
    /// Registers a job kind the run engine resolves (as <see cref="IRunJob"/>) and also as itself, so a job that composes it
    /// (the pipeline's stages) takes it by type instead of constructing it.
    /// </summary>
    public static IServiceCollection AddRunJob<TJob>(this IServiceCollection services) where TJob : class, IRunJob
    {
        services.AddTransient<TJob>();
        services.AddTransient<IRunJob>(sp => sp.GetRequiredService<TJob>());
        return services;
    }

    /// <summary>
    /// The job layer: runs, jobs and the Hangfire queue. The storage is named here and nowhere else: with SQLite in this
    /// process's memory (the run rows in the store are the truth, and <see cref="RunRecovery"/> re-queues them on start);
    /// with PostgreSQL, Hangfire.PostgreSql in the store's database (schema "hangfire"), shared by every portal process.
    /// A job-running process advertises itself (<see cref="WorkerHeartbeat"/>), takes over orphaned runs
    /// (<see cref="OrphanSweeper"/>) and serves its own device kind's queue plus Jobs:Queues.
    /// </summary>
    public static IServiceCollection AddPortalJobs(this IServiceCollection services, IConfiguration config)
    {
        services.AddSingleton<RunCancellations>();
        services.AddSingleton<IRunQueue, HangfireRunQueue>();
        services.AddTransient<RunExecutor>();
        services.AddTransient<RunService>();
        services.AddTransient<ExperimentService>();
        services.AddTransient<RunRecovery>();
        services.AddTransient<WorkerDirectory>();
        services.AddTransient<DatasetService>();
        services.AddTransient<IRunJob, DatasetRegistrationJob>();
        services.AddTransient<IRunJob, EvaluationJob>();
        services.AddRunJob<TrainingJob>();
        services.AddTransient<IRunJob, LareExtractionJob>();
        services.AddTransient<IRunJob, RobustnessSweepJob>();
        services.AddTransient<IRunJob, CrossGeneratorJob>();
        services.AddRunJob<AlignmentJob>();
        services.AddTransient<IRunJob, PipelineJob>();
        services.AddTransient<IRunJob, SubmissionJob>();
        services.AddTransient<ModelZooService>();

        var store = StoreOf(config);
        services.AddHangfire(c =>
        {
            c.SetDataCompatibilityLevel(CompatibilityLevel.Version_180)
                .UseSimpleAssemblyNameTypeSerializer()
                .UseRecommendedSerializerSettings();
            if (store.IsPostgres)
                c.UsePostgreSqlStorage(o => o.UseNpgsqlConnection(PostgresConnectionString(config)),
                    new PostgreSqlStorageOptions { SchemaName = "hangfire", PrepareSchemaIfNecessary = true });
            else
                c.UseInMemoryStorage(new InMemoryStorageOptions { MaxExpirationTime = TimeSpan.FromHours(6) });
        });
        NoAutomaticRetries.Value.ToString();

        var portal = config.GetSection(PortalOptions.Section).Get<PortalOptions>() ?? new PortalOptions();
        var jobs = portal.Jobs;
        var served = JobQueues.Served(portal); // also checks Torch:Device and Jobs:Queues at start, naming the setting
        services.AddHostedService<HangfireLogReset>();
        if (jobs.RunWorkers)
        {
            // Before the job servers: the row exists and orphans are queued again before the first job is taken; stopped after them.
            services.AddHostedService<WorkerHeartbeat>();
            services.AddHostedService<OrphanSweeper>();
        }
        // After the recovery: the demo sees the build runs a previous process left queued. A worker leaves the demo to the web node.
        services.AddTransient<IRunJob, Portal.Experiments.MiniGenImageBuildJob>();
        services.AddSingleton<Portal.Experiments.DemoBootstrap>();
        if (portal.Mode != PortalModes.Worker) services.AddHostedService(sp => sp.GetRequiredService<Portal.Experiments.DemoBootstrap>());
        if (jobs.RunWorkers)
        {
            // One worker on this machine's device queue: two heavy jobs never share the CPU/GPU.
            services.AddHangfireServer(o =>
            {
                o.ServerName = $"{RunExecutor.WorkerName}:device";
                o.Queues = [served[0]];
                o.WorkerCount = 1;
            });
            if (served.Contains(JobQueues.Light))
                services.AddHangfireServer(o =>
                {
                    o.ServerName = $"{RunExecutor.WorkerName}:light";
                    o.Queues = [JobQueues.Light];
                    o.WorkerCount = Math.Max(1, jobs.LightWorkers);
                });
            if (served.Contains(JobQueues.Orchestration))
                services.AddHangfireServer(o =>
                {
                    o.ServerName = $"{RunExecutor.WorkerName}:orchestration";
                    o.Queues = [JobQueues.Orchestration];
                    o.WorkerCount = Math.Max(1, jobs.OrchestrationWorkers);
                });
        }
        return services;
    }

    /// <summary>
    /// Explicit retry policy: none. A failed run is recorded and re-run on request (see RunExecutor), never silently
    /// repeated. Hangfire's global filters are process-wide, so this is applied once per process.
    /// </summary>
    static readonly Lazy<bool> NoAutomaticRetries = new(() =>
    {
        GlobalJobFilters.Filters.Remove(typeof(AutomaticRetryAttribute));
        GlobalJobFilters.Filters.Add(new AutomaticRetryAttribute { Attempts = 0 });
        return true;
    });

    /// <summary>
    /// The leaderboard: its indexer (rows written when a scored run succeeds, and at start for runs not indexed yet) and
    /// its query (the detectors x generators pivot, read only).
    /// </summary>
    public static IServiceCollection AddPortalLeaderboard(this IServiceCollection services)
    {
        services.AddTransient<Portal.Leaderboard.LeaderboardQuery>();
        services.AddTransient<Portal.Leaderboard.LeaderboardIndexer>();
        services.AddTransient<IRunSucceededHook>(sp => sp.GetRequiredService<Portal.Leaderboard.LeaderboardIndexer>());
        services.AddHostedService<LeaderboardStartupIndex>();
        return services;
    }

    /// <summary>Torch, loaded in the background at start with the configured device and threads.</summary>
    public static IServiceCollection AddPortalTorch(this IServiceCollection services)
    {
        services.AddHostedService<TorchStartup>();
        return services;
    }

    /// <summary>
    /// The query services the pages (and the API) read through, one per area, so no page touches the store: runs, datasets,
    /// the zoo, each experiment's reads, the leaderboard's robustness summary, the audit log and the store's status.
    /// </summary>
    public static IServiceCollection AddPortalQueries(this IServiceCollection services)
    {
        services.AddTransient<RunQuery>();
        services.AddTransient<DatasetQuery>();
        services.AddTransient<ZooQuery>();
        services.AddTransient<LareQuery>();
        services.AddTransient<EvaluationQuery>();
        services.AddTransient<MatrixQuery>();
        services.AddTransient<PipelineQuery>();
        services.AddTransient<DemoQuery>();
        services.AddTransient<Portal.Leaderboard.RobustnessSummaryQuery>();
        services.AddTransient<Portal.Auth.AuditQuery>();
        services.AddTransient<StoreStatusQuery>();
        return services;
    }

    /// <summary>Blazor Server with MudBlazor, the API's OpenAPI description, and the query services the pages read through.</summary>
    public static IServiceCollection AddPortalUi(this IServiceCollection services)
    {
        services.AddPortalQueries();
        services.AddRazorComponents().AddInteractiveServerComponents();
        services.AddMudServices();
        services.AddOpenApi();
        services.AddProblemDetails();
        return services;
    }
}

/// <summary>Applies the store's migrations before anything else starts.</summary>
sealed class StoreMigration(IDbContextFactory<PortalDb> dbFactory, ILogger<StoreMigration> logger) : IHostedService
{
    public async Task StartAsync(CancellationToken ct)
    {
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        var pending = (await db.Database.GetPendingMigrationsAsync(ct)).ToList();
        await db.Database.MigrateAsync(ct);
        // WAL lets the UI read while a job writes (SQLite only: PostgreSQL's readers never wait on writers).
        if (db.Database.IsSqlite()) await db.Database.ExecuteSqlRawAsync("PRAGMA journal_mode=WAL;", ct);
        if (pending.Count > 0) logger.LogInformation("Applied migrations: {Migrations}", string.Join(", ", pending));
    }

    public Task StopAsync(CancellationToken ct) => Task.CompletedTask;
}

/// <summary>
/// Indexes, after the migration, the succeeded runs the leaderboard has no rows for (runs stored before the indexer
/// existed, or whose indexing failed), so existing results still show.
/// </summary>
sealed class LeaderboardStartupIndex(Portal.Leaderboard.LeaderboardIndexer indexer, ILogger<LeaderboardStartupIndex> logger) : IHostedService
{
    public async Task StartAsync(CancellationToken ct)
    {
        try
        {
            var rows = await indexer.RebuildAsync(ct: ct);
            if (rows > 0) logger.LogInformation("Leaderboard: indexed {Rows} row(s) of runs not indexed yet", rows);
        }
        catch (Exception e) when (e is not OperationCanceledException) { logger.LogWarning(e, "Leaderboard: indexing the runs not indexed yet failed"); }
    }

    public Task StopAsync(CancellationToken ct) => Task.CompletedTask;
}

/// <summary>
/// Hangfire keeps its log provider in a static, pointing at this host's logger factory. When the host stops (after the
/// job servers, since hosted services stop in reverse order), the provider is reset, so a later host in the same
/// process (a restart in the tests) never logs through a disposed factory.
/// </summary>
sealed class HangfireLogReset : IHostedService
{
    public Task StartAsync(CancellationToken ct) => Task.CompletedTask;

    public Task StopAsync(CancellationToken ct)
    {
        Hangfire.Logging.LogProvider.SetCurrentLogProvider(null);
        return Task.CompletedTask;
    }
}

/// <summary>Loads torch off the start-up path; /api/health and the System page report its status.</summary>
sealed class TorchStartup(IOptions<PortalOptions> options, ILogger<TorchStartup> logger) : IHostedService
{
    public Task StartAsync(CancellationToken ct)
    {
        _ = Task.Run(() => TorchRuntime.EnsureLoaded(options.Value.Torch, logger), CancellationToken.None);
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken ct) => Task.CompletedTask;
}

/// <summary>Serves a provider's subclass of the store as the base type every caller asks for.</summary>
sealed class UpcastDbContextFactory<TDerived, TBase>(IDbContextFactory<TDerived> inner) : IDbContextFactory<TBase>
    where TDerived : TBase where TBase : DbContext
{
    public TBase CreateDbContext() => inner.CreateDbContext();
    public async Task<TBase> CreateDbContextAsync(CancellationToken ct = default) => await inner.CreateDbContextAsync(ct);
}
