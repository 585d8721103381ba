using System.Runtime.CompilerServices;
using Hangfire;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Portal.Infrastructure;
using Portal.Store;

namespace Portal.Runs;

/// <summary>
/// The queue's entry point for every run. It claims the run atomically (queued -> running, so a duplicate delivery
/// exits), runs the job for its kind, writes heartbeat and progress, watches for cancellation, and records the outcome.
/// A short database outage (a PostgreSQL restart) loses nothing: a failed heartbeat is logged and the next one writes
/// the progress again, and the outcome is written again until it lands, for up to <see cref="OutcomePatience"/>.
/// </summary>
public sealed class RunExecutor(IDbContextFactory<PortalDb> dbFactory, IEnumerable<IRunJob> jobs, PortalPaths paths, IRunQueue queue,
    RunCancellations cancellations, IServiceProvider services, IOptions<PortalOptions> options, ILogger<RunExecutor> logger)
{
    /// <summary>This process's name in the Worker column.</summary>
    public static readonly string WorkerName = $"{Environment.MachineName}:{Environment.ProcessId}";

    /// <summary>How long the end of a run (its last progress and its outcome) keeps being written through a database outage.</summary>
    public static TimeSpan OutcomePatience { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>
    /// Executes run <paramref name="runId"/>. Hangfire passes its shutdown token as <paramref name="shutdown"/>.
    /// No automatic retry: a failed run is recorded as failed and re-run on request, never silently repeated
    /// (a multi-hour job that fails deterministically would otherwise run ten more times).
    /// </summary>
    [AutomaticRetry(Attempts = 0, OnAttemptsExceeded = AttemptsExceededAction.Delete)]
    [JobDisplayName("run {0}")]
    public async Task ExecuteAsync(long runId, CancellationToken shutdown)
    {
        var run = await ClaimAsync(runId);
        if (run is null) return;
        var job = jobs.FirstOrDefault(j => j.Kind == run.Kind);
        if (job is null)
        {
            await FinishAsync(runId, RunStatus.Failed, $"no job is registered for run kind '{run.Kind}'");
            return;
        }

        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(shutdown);
        cancellations.Register(runId, cancel);
        var context = new RunContext(runId, run.Kind, run.ConfigJson, run.Attempts, paths, dbFactory, services, cancel.Token);
        using var stopHeartbeat = new CancellationTokenSource();
        var lost = new StrongBox<bool>();
        var heartbeat = HeartbeatAsync(context, cancel, lost, stopHeartbeat.Token);
        try
        {
            await context.LogAsync(run.Attempts > 1 ? $"taken up again (attempt {run.Attempts}) by {WorkerName}" : $"started by {WorkerName}");
            await job.ExecuteAsync(context);
            await StopAsync(stopHeartbeat, heartbeat);
            await PersistAsync(runId, "last progress", () => FlushProgressAsync(context));
            await PersistAsync(runId, "outcome", () => FinishAsync(runId, RunStatus.Succeeded, null));
            await OnSucceededAsync(runId, run.Kind);
        }
        catch (OperationCanceledException) when (cancel.IsCancellationRequested)
        {
            await StopAsync(stopHeartbeat, heartbeat);
            await PersistAsync(runId, "last progress", () => FlushProgressAsync(context));
            var byRequest = false;
            await PersistAsync(runId, "cancel request", async () => byRequest = await CancelRequestedAsync(runId));
            if (lost.Value)
            {
                // Another worker took the run over (this one's heartbeat had gone stale): stop without writing its state.
                logger.LogWarning("Run {RunId} was taken over by another worker; this execution stopped", runId);
                await context.LogAsync($"{WorkerName} lost the run to a takeover and stopped its execution", "warning");
            }
            else if (shutdown.IsCancellationRequested && !byRequest)
            {
                // The process is stopping: hand the run back so the next start (or another worker) takes it up again.
                await PersistAsync(runId, "outcome", () => FinishAsync(runId, RunStatus.Queued, null));
                // A shared queue hands it to another live worker now; an in-process one dies with this process, and the
                // next start delivers the run again (RunRecovery).
                if (queue.Durable) queue.Enqueue(runId, run.Queue);
                await context.LogAsync("interrupted by shutdown; queued again");
            }
            else
            {
                // The hook first: once the run reads as canceled, what it left (a dataset marked failed) is already in place.
                if (job is ICancelHook hook) await PersistAsync(runId, "cancel hook", () => hook.OnCanceledAsync(run));
                await PersistAsync(runId, "outcome", () => FinishAsync(runId, RunStatus.Canceled, "canceled by request"));
                await context.LogAsync("canceled");
            }
        }
        catch (Exception e)
        {
            await StopAsync(stopHeartbeat, heartbeat);
            await PersistAsync(runId, "last progress", () => FlushProgressAsync(context));
            logger.LogError(e, "Run {RunId} ({Kind}) failed", runId, run.Kind);
            await PersistAsync(runId, "outcome", () => FinishAsync(runId, RunStatus.Failed, e.Message));
            await context.LogAsync($"{e.GetType().Name}: {e.Message}", "error");
        }
        finally
        {
            cancellations.Unregister(runId);
        }
    }

    async Task<Run?> ClaimAsync(long runId)
    {
        await using var db = await dbFactory.CreateDbContextAsync();
        var now = DateTime.UtcNow;
        var claimed = await db.Runs
            .Where(r => r.Id == runId && r.Status == RunStatus.Queued && !r.CancelRequested)
            .ExecuteUpdateAsync(s => s
                .SetProperty(r => r.Status, RunStatus.Running)
                .SetProperty(r => r.StartedAt, now)
                .SetProperty(r => r.HeartbeatAt, now)
                .SetProperty(r => r.Worker, WorkerName)
                .SetProperty(r => r.Attempts, r => r.Attempts + 1));
        if (claimed == 0)
        {
            logger.LogInformation("Run {RunId} was not queued (already taken, finished or canceled): delivery ignored", runId);
            return null;
        }
        return await db.Runs.AsNoTracking().SingleAsync(r => r.Id == runId);
    }

    /// <summary>Writes progress and heartbeat; cancels the job on a cancel request, or when the run is no longer this worker's (<paramref name="lost"/>).</summary>
    async Task HeartbeatAsync(RunContext context, CancellationTokenSource cancel, StrongBox<bool> lost, CancellationToken stop)
    {
        var period = TimeSpan.FromSeconds(Math.Max(0.1, options.Value.Jobs.HeartbeatSeconds));
        try
        {
            while (!stop.IsCancellationRequested)
            {
                await Task.Delay(period, stop);
                // One failed beat (the database briefly away) is logged and the next one tries again: the job goes on.
                try
                {
                    if (await FlushProgressAsync(context) == 0)
                    {
                        lost.Value = true;
                        await cancel.CancelAsync();
                        return;
                    }
                    if (await CancelRequestedAsync(context.RunId)) cancel.Cancel();
                }
                catch (Exception e) when (e is not OperationCanceledException || !stop.IsCancellationRequested)
                {
                    logger.LogWarning(e, "Heartbeat of run {RunId} failed; trying again in {Period}", context.RunId, period);
                }
            }
        }
        catch (OperationCanceledException) { }
    }

    /// <summary>
    /// Repeats <paramref name="write"/> until it succeeds, for up to <see cref="OutcomePatience"/> (each failure logged);
    /// the store's own retrying strategy covers a blip, this covers an outage longer than its retries.
    /// </summary>
    async Task PersistAsync(long runId, string what, Func<Task> write)
    {
        var deadline = DateTime.UtcNow + OutcomePatience;
        var delay = TimeSpan.FromMilliseconds(250);
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await write();
                if (attempt > 1) logger.LogInformation("Wrote the {What} of run {RunId} at attempt {Attempt}", what, runId, attempt);
                return;
            }
            catch (Exception e) when (DateTime.UtcNow + delay < deadline)
            {
                logger.LogWarning(e, "Writing the {What} of run {RunId} failed (attempt {Attempt}); trying again in {Delay}", what, runId, attempt, delay);
                await Task.Delay(delay);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(5).Ticks));
            }
        }
    }

    /// <summary>Writes progress and heartbeat while the run is this worker's; returns the rows written (0: taken over).</summary>
    async Task<int> FlushProgressAsync(RunContext context)
    {
        var changed = context.TakeProgress(out var progress, out var phase);
        try
        {
            await using var db = await dbFactory.CreateDbContextAsync();
            var now = DateTime.UtcNow;
            var mine = db.Runs.Where(r => r.Id == context.RunId && r.Status == RunStatus.Running && r.Worker == WorkerName);
            return changed
                ? await mine.ExecuteUpdateAsync(s => s.SetProperty(r => r.Progress, progress).SetProperty(r => r.Phase, phase).SetProperty(r => r.HeartbeatAt, now))
                : await mine.ExecuteUpdateAsync(s => s.SetProperty(r => r.HeartbeatAt, now));
        }
        catch when (changed)
        {
            context.ProgressNotWritten();
            throw;
        }
    }

    async Task<bool> CancelRequestedAsync(long runId)
    {
        await using var db = await dbFactory.CreateDbContextAsync();
        return await db.Runs.Where(r => r.Id == runId).Select(r => r.CancelRequested).SingleAsync();
    }

    /// <summary>The hooks that derive rows from a succeeded run (the leaderboard's); a failure is logged, the run stays succeeded.</summary>
    async Task OnSucceededAsync(long runId, string kind)
    {
        foreach (var hook in services.GetServices<IRunSucceededHook>())
        {
            try { await hook.OnSucceededAsync(runId, kind); }
            catch (Exception e) { logger.LogWarning(e, "Run {RunId} succeeded but {Hook} failed; it is rebuilt at the next start", runId, hook.GetType().Name); }
        }
    }

    async Task FinishAsync(long runId, RunStatus status, string? error)
    {
        await using var db = await dbFactory.CreateDbContextAsync();
        var now = DateTime.UtcNow;
        // Only the worker that holds the run may finish it: a run taken over elsewhere is not overwritten.
        var mine = db.Runs.Where(r => r.Id == runId && r.Status == RunStatus.Running && r.Worker == WorkerName);
        if (status == RunStatus.Queued)
            await mine.ExecuteUpdateAsync(s => s.SetProperty(r => r.Status, status).SetProperty(r => r.Worker, (string?)null));
        else
            await mine.ExecuteUpdateAsync(s => s
                .SetProperty(r => r.Status, status)
                .SetProperty(r => r.Error, error)
                .SetProperty(r => r.FinishedAt, now)
                .SetProperty(r => r.Progress, r => status == RunStatus.Succeeded ? 1.0 : r.Progress));
    }

    static async Task StopAsync(CancellationTokenSource stop, Task heartbeat)
    {
        await stop.CancelAsync();
        await heartbeat;
    }
}
