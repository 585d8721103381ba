using System.Collections.Concurrent;
using Bunit;
using Hangfire;
using Hangfire.InMemory;
using Microsoft.AspNetCore.Components;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using MudBlazor.Services;
using Portal.Experiments;
using Portal.Datasets;
using Portal.Zoo;
using Portal.Infrastructure;
using Portal.Runs;
using Portal.Store;
using Portal.Tests.Support;

namespace Portal.Tests.Components;

/// <summary>
/// A bUnit context with the portal's real services over a migrated in-memory SQLite store (shared cache, kept alive by
/// one open connection, so every context the pages create sees the same data), a temporary data directory, and a queue
/// that records what was enqueued instead of running it. Built with STORE_POSTGRES: a fresh PostgreSQL database instead.
/// </summary>
public abstract class PortalComponentTest : BunitContext, IAsyncLifetime
{
#if STORE_POSTGRES
    readonly StoreActivity storeActivity = new();

    /// <summary>Renders, then waits until the page's store reads are done (they complete later on PostgreSQL than on SQLite).</summary>
    protected new IRenderedComponent<T> Render<T>(Action<ComponentParameterCollectionBuilder<T>>? parameters = null) where T : IComponent
    {
        var cut = base.Render(parameters);
        WaitForStore();
        return cut;
    }

    /// <inheritdoc cref="Render{T}(Action{ComponentParameterCollectionBuilder{T}}?)"/>
    protected new IRenderedComponent<T> Render<T>(RenderFragment fragment) where T : IComponent
    {
        var cut = base.Render<T>(fragment);
        WaitForStore();
        return cut;
    }

    /// <summary>
    /// Waits until no store context is in use, then for the renderer to finish what it queued behind the last read (a
    /// page renders after its last query, on the renderer's dispatcher); again if that render started new reads.
    /// </summary>
    void WaitForStore()
    {
        for (var round = 0; round < 5; round++)
        {
            storeActivity.WaitIdle(TimeSpan.FromMilliseconds(50), TimeSpan.FromSeconds(5));
            Renderer.Dispatcher.InvokeAsync(() => { }).Wait(TimeSpan.FromSeconds(10));
            if (storeActivity.Idle) return;
        }
    }
#else
    readonly SqliteConnection keepAlive;
#endif

    protected string DataDir { get; }
    protected RecordingRunQueue Queue { get; } = new();
    protected IDbContextFactory<PortalDb> DbFactory => Services.GetRequiredService<IDbContextFactory<PortalDb>>();

    protected PortalComponentTest()
    {
        DataDir = Directory.CreateTempSubdirectory("portal-ui-").FullName;
#if STORE_POSTGRES
        var connectionString = PostgresServer.Shared.CreateDatabase();
        // Store writes after a click are network round trips here: give WaitFor* more than bUnit's one second.
        DefaultWaitTimeout = TimeSpan.FromSeconds(5);
        Services.AddDbContextFactory<PostgresPortalDb>(o => o.UseNpgsql(connectionString).AddInterceptors(storeActivity));
        Services.AddSingleton<IDbContextFactory<PortalDb>>(sp => new UpcastDbContextFactory<PostgresPortalDb, PortalDb>(sp.GetRequiredService<IDbContextFactory<PostgresPortalDb>>()));
#else
        var connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = $"portal-ui-{Guid.NewGuid():N}", Mode = SqliteOpenMode.Memory, Cache = SqliteCacheMode.Shared,
        }.ToString();
        keepAlive = new SqliteConnection(connectionString);
        keepAlive.Open();
        Services.AddDbContextFactory<PortalDb>(o => o.UseSqlite(connectionString));
#endif

        JSInterop.Mode = JSRuntimeMode.Loose;
        Services.AddLogging();
        Services.AddMudServices();
        Services.AddSingleton(new PortalPaths(Options.Create(new PortalOptions { DataDir = DataDir })));
        Services.AddSingleton<IOptions<PortalOptions>>(Options.Create(new PortalOptions { DataDir = DataDir }));
        Services.AddSingleton<IRunQueue>(Queue);
        Services.AddSingleton<RunCancellations>();
        Services.AddSingleton<IRunJob, RecordingRegisterJob>();
        // Every job the pages queue (bunit builds the provider once, below: subclasses cannot add any later).
        Services.AddTransient<IRunJob, EvaluationJob>();
        Services.AddRunJob<TrainingJob>();
        Services.AddRunJob<AlignmentJob>();
        Services.AddTransient<IRunJob, CrossGeneratorJob>();
        Services.AddTransient<IRunJob, RobustnessSweepJob>();
        Services.AddTransient<IRunJob, PipelineJob>();
        Services.AddTransient<IRunJob, LareExtractionJob>();
        Services.AddTransient<ModelZooService>();
        Services.AddTransient<RunService>();
        Services.AddTransient<ExperimentService>();
        Services.AddTransient<DatasetService>();
        Services.AddTransient<WorkerDirectory>();
        Services.AddSingleton<JobStorage>(new InMemoryStorage());
        Services.AddDemoBenchmark();
        // The query services the pages read through (the app registers them in AddPortalUi), and the leaderboard's query.
        Portal.Infrastructure.ServiceSetup.AddPortalQueries(Services);
        Services.AddTransient<Portal.Leaderboard.LeaderboardQuery>();
        Services.AddTransient<Portal.Auth.CurrentUser>();
        Services.AddTransient<Portal.Auth.AuditLog>();
        // Signed in as an admin, so every page and button renders; SignInAs changes the user.
        Authorization = this.AddAuthorization();
        SignInAs("test-admin", Portal.Auth.Roles.Admin);
        // The pages poll only in an interactive renderer, as in the app (set after the services: it builds the provider).
        SetRendererInfo(new RendererInfo("Server", isInteractive: true));

#if STORE_POSTGRES
        using var db = new PostgresPortalDb(new DbContextOptionsBuilder<PostgresPortalDb>().UseNpgsql(connectionString).Options);
#else
        using var db = new PortalDb(new DbContextOptionsBuilder<PortalDb>().UseSqlite(keepAlive).Options);
#endif
        db.Database.Migrate();
    }

    /// <summary>bunit's authorization double: the signed-in user, roles and granted policies.</summary>
    protected Bunit.TestDoubles.BunitAuthorizationContext Authorization { get; }

    /// <summary>Signs in <paramref name="userName"/> with <paramref name="role"/> and the policies that role meets.</summary>
    protected void SignInAs(string userName, string role, string? userId = null)
    {
        Authorization.SetAuthorized(userName);
        Authorization.SetRoles(role);
        Authorization.SetClaims(new System.Security.Claims.Claim(System.Security.Claims.ClaimTypes.NameIdentifier, userId ?? "id-" + userName));
        Authorization.SetPolicies(role switch
        {
            Portal.Auth.Roles.Admin => [Portal.Auth.Policies.Admin, Portal.Auth.Policies.Researcher, Portal.Auth.Policies.Viewer, Portal.Auth.Policies.Leaderboard],
            Portal.Auth.Roles.Researcher => [Portal.Auth.Policies.Researcher, Portal.Auth.Policies.Viewer, Portal.Auth.Policies.Leaderboard],
            _ => [Portal.Auth.Policies.Viewer, Portal.Auth.Policies.Leaderboard],
        });
    }

    protected PortalDb Db() => DbFactory.CreateDbContext();

    protected long Add<T>(T entity) where T : class
    {
        using var db = Db();
        db.Add(entity);
        db.SaveChanges();
        return (long)db.Entry(entity).Property("Id").CurrentValue!;
    }

    protected static Run NewRun(RunStatus status = RunStatus.Queued, double progress = 0, string? phase = null) => new()
    {
        Kind = "register-dataset", Queue = JobQueues.Light, ConfigJson = "{\"datasetId\":1}", ConfigHash = "abc123",
        Status = status, Progress = progress, Phase = phase, CreatedAt = DateTime.UtcNow,
        StartedAt = status == RunStatus.Queued ? null : DateTime.UtcNow.AddSeconds(-5), CodeVersion = "test",
    };

    Task IAsyncLifetime.InitializeAsync() => Task.CompletedTask;

    // MudBlazor's services are async-disposable only, so the context must be disposed asynchronously; xunit 2 does that
    // through IAsyncLifetime (its later Dispose() call then finds the context disposed).
    async Task IAsyncLifetime.DisposeAsync()
    {
        await DisposeAsync();
        CleanUp();
    }

    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        if (disposing) CleanUp();
    }

    void CleanUp()
    {
#if !STORE_POSTGRES
        keepAlive.Dispose();
#endif
        try { Directory.Delete(DataDir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

/// <summary>Records the run ids handed to the queue; nothing executes them.</summary>
public sealed class RecordingRunQueue : IRunQueue
{
    public ConcurrentQueue<(long RunId, string Queue)> Enqueued { get; } = new();
    public void Enqueue(long runId, string queue) => Enqueued.Enqueue((runId, queue));
}

/// <summary>Stands for the registration job so that <see cref="RunService.CreateAsync"/> accepts the kind; the tests never execute it.</summary>
public sealed class RecordingRegisterJob : IRunJob
{
    public string Kind => "register-dataset";
    public string Queue => JobQueues.Light;
    public Task ExecuteAsync(RunContext context)
    {
        context.ReportProgress(1, "done");
        return Task.CompletedTask;
    }
}
