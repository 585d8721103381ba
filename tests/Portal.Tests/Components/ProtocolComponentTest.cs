using Bunit;
using Hangfire;
using Hangfire.InMemory;
using Microsoft.AspNetCore.Components;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using MudBlazor.Services;
using Portal.Infrastructure;
using Portal.Jobs;
using Portal.Store;

namespace Portal.Tests.Components;

/// <summary>
/// <see cref="PortalComponentTest"/>'s context (real services, a migrated in-memory SQLite store, a temporary data
/// directory, a recording queue) with the cross-generator and sweep jobs registered too. A separate base because bunit
/// refuses registrations once <see cref="PortalComponentTest"/>'s constructor has built the service provider.
/// </summary>
public abstract class ProtocolComponentTest : BunitContext, IAsyncLifetime
{
    readonly SqliteConnection keepAlive;

    protected string DataDir { get; }
    protected RecordingRunQueue Queue { get; } = new();
    protected IDbContextFactory<PortalDb> DbFactory => Services.GetRequiredService<IDbContextFactory<PortalDb>>();

    protected ProtocolComponentTest()
    {
        DataDir = Directory.CreateTempSubdirectory("portal-protocol-ui-").FullName;
        var connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = $"portal-protocol-ui-{Guid.NewGuid():N}", Mode = SqliteOpenMode.Memory, Cache = SqliteCacheMode.Shared,
        }.ToString();
        keepAlive = new SqliteConnection(connectionString);
        keepAlive.Open();

        JSInterop.Mode = JSRuntimeMode.Loose;
        Services.AddLogging();
        Services.AddMudServices();
        Services.AddDbContextFactory<PortalDb>(o => o.UseSqlite(connectionString));
        Services.AddSingleton(new PortalPaths(Options.Create(new PortalOptions { DataDir = DataDir })));
        Services.AddSingleton<IOptions<PortalOptions>>(Options.Create(new PortalOptions { DataDir = DataDir }));
        Services.AddSingleton<IRunQueue>(Queue);
        Services.AddSingleton<RunCancellations>();
        Services.AddSingleton<IRunJob, RecordingRegisterJob>();
        Services.AddTransient<IRunJob, EvaluationJob>();
        Services.AddTransient<IRunJob, CrossGeneratorJob>();
        Services.AddTransient<IRunJob, RobustnessSweepJob>();
        Services.AddTransient<ModelZooService>();
        Services.AddTransient<RunService>();
        Services.AddTransient<DatasetService>();
        Services.AddSingleton<JobStorage>(new InMemoryStorage());
        // The pages poll only in an interactive renderer, as in the app (set after the services: it builds the provider).
        SetRendererInfo(new RendererInfo("Server", isInteractive: true));

        using var db = new PortalDb(new DbContextOptionsBuilder<PortalDb>().UseSqlite(keepAlive).Options);
        db.Database.Migrate();
    }

    protected PortalDb Db() => DbFactory.CreateDbContext();

    protected long Add<T>(T entity) where T : class
    {
        using var db = Db();
        db.Add(entity);
        db.SaveChanges();
        return (long)db.Entry(entity).Property("Id").CurrentValue!;
    }

    Task IAsyncLifetime.InitializeAsync() => Task.CompletedTask;

    // MudBlazor's services are async-disposable only: xunit 2 disposes the context asynchronously through IAsyncLifetime.
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
        keepAlive.Dispose();
        try { Directory.Delete(DataDir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
