#if STORE_POSTGRES
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Portal.Experiments;
using Portal.Datasets;
using Portal.Zoo;
using Portal.Runs;
using Portal.Store;
using Portal.Tests.Support;
using static Portal.Tests.Support.TestJobs;

namespace Portal.Tests.Jobs;

/// <summary>
/// PostgreSQL restarted while a run is under way (the STORE_POSTGRES build only: SQLite has no server to restart). The
/// run must finish as succeeded, its heartbeat and progress must go on after the outage, and it must stay one run row
/// claimed once; Hangfire.PostgreSql must take new work afterwards.
/// </summary>
public class PostgresRestartTests
{
    [Fact]
    public async Task A_run_survives_a_database_restart_midway_and_finishes_once()
    {
        using var tmp = new TempDir();
        var server = PostgresServer.Shared;
        await using var app = new PortalFactory(tmp.Path);
        var runs = app.Services.GetRequiredService<RunService>();
        var dbFactory = app.Services.GetRequiredService<IDbContextFactory<PortalDb>>();
        async Task<Run> GetAsync(long id)
        {
            await using var db = await dbFactory.CreateDbContextAsync();
            return await db.Runs.AsNoTracking().Include(r => r.Metrics).Include(r => r.Log).SingleAsync(r => r.Id == id);
        }

        // 40 steps of 200 ms: about 8 s of work, the outage (3 s) in its middle.
        var run = await runs.CreateAsync("test-sleep", new SleepConfig(40, 200));
        var before = await Wait.UntilAsync(() => GetAsync(run.Id), r => r.Status == RunStatus.Running && r.Progress > 0.1,
            TimeSpan.FromSeconds(30), "the run to be under way");

        server.Stop();
        DateTime restartedAt;
        try { await Task.Delay(TimeSpan.FromSeconds(3)); }
        finally
        {
            server.Start();
            restartedAt = DateTime.UtcNow;
        }

        // The heartbeat resumes: a beat after the restart, with progress beyond what was written before the outage.
        var resumed = await Wait.UntilAsync(() => GetAsync(run.Id), r => r.HeartbeatAt > restartedAt,
            TimeSpan.FromSeconds(60), "a heartbeat after the restart");
        Assert.True(resumed.IsFinished || resumed.Progress > before.Progress,
            $"progress did not move on after the restart: {before.Progress} before, {resumed.Progress} after");

        var done = await Wait.UntilAsync(() => GetAsync(run.Id), r => r.IsFinished, TimeSpan.FromSeconds(120), "the run to finish");
        Assert.True(done.Status == RunStatus.Succeeded, $"run ended {done.Status}: {done.Error}");
        Assert.Equal(1.0, done.Progress);
        Assert.Equal(1, done.Attempts);
        Assert.Equal(40, done.Metrics.Single(m => m.Name == "steps").Value);
        Assert.Equal("done", Sleep.Outcomes[run.Id]);
        await using (var db = await dbFactory.CreateDbContextAsync())
            Assert.Equal(1, await db.Runs.CountAsync());
        Assert.Single(done.Log, l => l.Message.StartsWith("started by", StringComparison.Ordinal));

        // The queue reconnected by itself: a new run is delivered and runs.
        var next = await runs.CreateAsync("test-sleep", new SleepConfig(2, 10));
        var nextDone = await Wait.UntilAsync(() => GetAsync(next.Id), r => r.IsFinished, TimeSpan.FromSeconds(60), "a run queued after the restart");
        Assert.Equal(RunStatus.Succeeded, nextDone.Status);
    }
}
#endif
