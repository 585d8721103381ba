using System.Net;
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

public class RunLifecycleTests
{
    static async Task<Run> QueueAsync(PortalFactory app, string kind, SleepConfig config) =>
        await app.Services.GetRequiredService<RunService>().CreateAsync(kind, config);

    static async Task<Run> GetAsync(PortalFactory app, long id)
    {
        await using var db = await app.Services.GetRequiredService<IDbContextFactory<PortalDb>>().CreateDbContextAsync();
        return await db.Runs.AsNoTracking().Include(r => r.Metrics).Include(r => r.Log).SingleAsync(r => r.Id == id);
    }

    static Task<Run> FinishedAsync(PortalFactory app, long id) =>
        Wait.UntilAsync(() => GetAsync(app, id), r => r.IsFinished, what: $"run {id} to finish");

    [Fact]
    public async Task A_run_succeeds_with_progress_metrics_log_and_provenance()
    {
        using var tmp = new TempDir();
        await using var app = new PortalFactory(tmp.Path);
        var run = await QueueAsync(app, "test-sleep", new SleepConfig(3, 20));
        var done = await FinishedAsync(app, run.Id);
        Assert.Equal(RunStatus.Succeeded, done.Status);
        Assert.Equal(1.0, done.Progress);
        Assert.Equal(1, done.Attempts);
        Assert.Equal(RunExecutor.WorkerName, done.Worker);
        Assert.NotNull(done.StartedAt);
        Assert.True(done.FinishedAt >= done.StartedAt);
        Assert.Equal(64, done.ConfigHash.Length);
        Assert.NotEmpty(done.CodeVersion);
        Assert.Equal(3, done.Metrics.Single(m => m.Name == "steps").Value);
        Assert.Contains(done.Log, l => l.Message.StartsWith("started by"));
    }

    [Fact]
    public async Task A_failing_run_is_failed_with_its_error_and_is_not_retried()
    {
        using var tmp = new TempDir();
        await using var app = new PortalFactory(tmp.Path);
        var run = await QueueAsync(app, "test-sleep", new SleepConfig(1, 10, FailWith: "out of memory at step 1"));
        var done = await FinishedAsync(app, run.Id);
        Assert.Equal(RunStatus.Failed, done.Status);
        Assert.Equal("out of memory at step 1", done.Error);
        await Task.Delay(1500);
        var later = await GetAsync(app, run.Id);
        Assert.Equal(RunStatus.Failed, later.Status);
        Assert.Equal(1, later.Attempts);
    }

    [Fact]
    public async Task Cancel_from_the_API_reaches_the_running_jobs_token()
    {
        using var tmp = new TempDir();
        await using var app = new PortalFactory(tmp.Path);
        var client = app.CreateClient();
        var run = await QueueAsync(app, "test-sleep", new SleepConfig(600, 100));
        await Wait.UntilAsync(() => GetAsync(app, run.Id), r => r.Progress > 0, what: "progress");
        using var response = await client.PostAsync($"/api/runs/{run.Id}/cancel", null);
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var done = await FinishedAsync(app, run.Id);
        Assert.Equal(RunStatus.Canceled, done.Status);
        Assert.Equal("token canceled", Sleep.Outcomes[run.Id]);
        // A second cancel of a finished run is a conflict, not a change.
        Assert.Equal(HttpStatusCode.Conflict, (await client.PostAsync($"/api/runs/{run.Id}/cancel", null)).StatusCode);
    }

    [Fact]
    public async Task Device_jobs_never_run_at_the_same_time_and_a_queued_one_can_be_canceled()
    {
        using var tmp = new TempDir();
        await using var app = new PortalFactory(tmp.Path);
        DeviceProbe.MaxConcurrent = 0;
        var runs = new List<Run>();
        for (var i = 0; i < 3; i++) runs.Add(await QueueAsync(app, "test-device", new SleepConfig(1, 300, Tag: $"{i}")));
        var waiting = await QueueAsync(app, "test-device", new SleepConfig(1, 300, Tag: "canceled"));
        Assert.Equal(CancelOutcome.Canceled, await app.Services.GetRequiredService<RunService>().CancelAsync(waiting.Id));
        foreach (var r in runs) Assert.Equal(RunStatus.Succeeded, (await FinishedAsync(app, r.Id)).Status);
        Assert.Equal(1, DeviceProbe.MaxConcurrent);
        var canceled = await GetAsync(app, waiting.Id);
        Assert.Equal(RunStatus.Canceled, canceled.Status);
        Assert.Equal(0, canceled.Attempts); // never claimed
    }

    [Fact]
    public async Task A_duplicate_delivery_of_the_same_run_executes_it_once()
    {
        using var tmp = new TempDir();
        await using var app = new PortalFactory(tmp.Path);
        var run = await QueueAsync(app, "test-sleep", new SleepConfig(5, 50));
        var queue = app.Services.GetRequiredService<IRunQueue>();
        queue.Enqueue(run.Id, JobQueues.Light);
        queue.Enqueue(run.Id, JobQueues.Light);
        var done = await FinishedAsync(app, run.Id);
        await Task.Delay(500);
        Assert.Equal(RunStatus.Succeeded, done.Status);
        Assert.Equal(1, (await GetAsync(app, run.Id)).Attempts);
        Assert.Single((await GetAsync(app, run.Id)).Log, l => l.Message.StartsWith("started by"));
    }

    [Fact]
    public async Task Rerun_queues_a_new_run_with_the_same_config_and_keeps_the_old_one()
    {
        using var tmp = new TempDir();
        await using var app = new PortalFactory(tmp.Path);
        var client = app.CreateClient();
        var run = await QueueAsync(app, "test-sleep", new SleepConfig(1, 10, FailWith: "flaky"));
        await FinishedAsync(app, run.Id);
        var rerun = await client.PostJsonAsync($"/api/runs/{run.Id}/rerun", new { }, 202);
        var newId = rerun.GetProperty("id").GetInt64();
        Assert.NotEqual(run.Id, newId);
        var old = await GetAsync(app, run.Id);
        var fresh = await FinishedAsync(app, newId);
        Assert.Equal(old.ConfigHash, fresh.ConfigHash);
        Assert.Equal(run.Id, fresh.RerunOf);
        Assert.Equal(RunStatus.Failed, old.Status);
    }

    [Fact]
    public async Task Runs_left_running_or_queued_by_a_dead_process_are_taken_up_again_on_start()
    {
        using var tmp = new TempDir();
        await using (var first = new PortalFactory(tmp.Path))
            _ = first.CreateClient(); // starts the host: the store is created and migrated
        var config = "{\"steps\":2,\"stepMs\":10}";
        // As a killed process leaves them: one claimed by a worker that no longer exists, one never delivered.
        var a = new Run { Kind = "test-sleep", Queue = JobQueues.Light, ConfigJson = config, ConfigHash = "x", Status = RunStatus.Running,
                          Worker = "dead-host:1", Attempts = 1, CreatedAt = DateTime.UtcNow, StartedAt = DateTime.UtcNow, Progress = 0.5 };
        var b = new Run { Kind = "test-sleep", Queue = JobQueues.Light, ConfigJson = config, ConfigHash = "x", Status = RunStatus.Queued, CreatedAt = DateTime.UtcNow };
        await using (var db = PortalFactory.OpenStore(tmp.Path))
        {
            db.Runs.AddRange(a, b);
            await db.SaveChangesAsync();
        }
        var (running, queued) = (a.Id, b.Id);
        await using var second = new PortalFactory(tmp.Path);
        _ = second.CreateClient();
        var ra = await FinishedAsync(second, running);
        var rb = await FinishedAsync(second, queued);
        Assert.Equal(RunStatus.Succeeded, ra.Status);
        Assert.Equal(2, ra.Attempts);
        Assert.Equal(RunStatus.Succeeded, rb.Status);
        Assert.Equal(1, rb.Attempts);
        await using var check = await second.Services.GetRequiredService<IDbContextFactory<PortalDb>>().CreateDbContextAsync();
        Assert.Equal(2, await check.Runs.CountAsync());
    }

    [Fact]
    public async Task A_run_interrupted_by_shutdown_is_queued_again_and_finishes_after_the_restart()
    {
        using var tmp = new TempDir();
        long id;
        await using (var first = new PortalFactory(tmp.Path))
        {
            var run = await QueueAsync(first, "test-sleep", new SleepConfig(40, 50));
            id = run.Id;
            await Wait.UntilAsync(() => GetAsync(first, id), r => r.Progress > 0, what: "progress");
        }
        await using var second = new PortalFactory(tmp.Path);
        _ = second.CreateClient();
        var done = await FinishedAsync(second, id);
        Assert.Equal(RunStatus.Succeeded, done.Status);
        Assert.Equal(2, done.Attempts);
        Assert.Contains(done.Log, l => l.Message.Contains("interrupted by shutdown"));
    }
}
