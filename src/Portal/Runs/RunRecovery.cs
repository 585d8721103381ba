using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Portal.Infrastructure;
using Portal.Store;

namespace Portal.Runs;

/// <summary>
/// Takes over the runs whose worker vanished, so another worker resumes them from their last checkpoint. A running run is
/// orphaned when its heartbeat is older than Portal:Jobs:OrphanAfterSeconds, or when its worker ran on this host and that
/// process no longer exists (a restart on one machine resumes at once, without waiting for the heartbeat to age). Live
/// runs of other machines are never touched. The takeover is one conditional UPDATE (running -> queued, only while the
/// row still shows the same worker and, for the heartbeat rule, a stale heartbeat), so of two sweepers only one wins and
/// enqueues it. Every job-running process sweeps at start and then periodically (<see cref="OrphanSweeper"/>).
/// </summary>
public sealed class RunRecovery(IDbContextFactory<PortalDb> dbFactory, IRunQueue queue, IOptions<PortalOptions> options, ILogger<RunRecovery> logger)
{
    /// <summary>
    /// One sweep. At start (<paramref name="atStart"/>) it also closes runs whose cancellation was requested while queued,
    /// moves unfinished runs stored on the legacy "device" queue to the default kind's device queue, and, when the queue
    /// is in-process (lost with the previous process), enqueues the queued runs again. Returns the runs enqueued.
    /// </summary>
    public async Task<int> SweepAsync(bool atStart, CancellationToken ct = default)
    {
        var o = options.Value;
        var served = JobQueues.Served(o);
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        var now = DateTime.UtcNow;
        var enqueued = new List<(long Id, string Queue)>();
        if (atStart)
        {
            // Queued with a cancel request: a shutdown handed it back after the request; nobody holds it.
            await db.Runs.Where(r => r.Status == RunStatus.Queued && r.CancelRequested)
                .ExecuteUpdateAsync(s => s.SetProperty(r => r.Status, RunStatus.Canceled).SetProperty(r => r.FinishedAt, now)
                    .SetProperty(r => r.Error, "canceled by request"), ct);
            // Runs stored before the per-kind device queues: the kind a config without "device" gets today.
            var legacyTarget = JobQueues.ForDevice(JobQueues.DefaultDeviceKind(o));
            await db.Runs.Where(r => r.Queue == JobQueues.Device && (r.Status == RunStatus.Queued || r.Status == RunStatus.Running))
                .ExecuteUpdateAsync(s => s.SetProperty(r => r.Queue, legacyTarget), ct);
        }

        var cutoff = now - TimeSpan.FromSeconds(Math.Max(0.5, o.Jobs.OrphanAfterSeconds));
        var running = await db.Runs.AsNoTracking().Where(r => r.Status == RunStatus.Running)
            .Select(r => new { r.Id, r.Worker, r.HeartbeatAt, r.Queue, r.CancelRequested, r.Attempts, r.Phase }).ToListAsync(ct);
        foreach (var r in running)
        {
            // An in-process queue delivers only to this process: take only what this process can run.
            if (!queue.Durable && !served.Contains(r.Queue)) continue;
            var stale = r.HeartbeatAt is null || r.HeartbeatAt < cutoff;
            var reason = stale ? $"heartbeat older than {o.Jobs.OrphanAfterSeconds:0.#} s (last {r.HeartbeatAt:u})"
                : ProcessGone(r.Worker, atStart);
            if (!stale && reason is null) continue;
            var rows = db.Runs.Where(x => x.Id == r.Id && x.Status == RunStatus.Running && x.Worker == r.Worker);
            if (stale) rows = rows.Where(x => x.HeartbeatAt == null || x.HeartbeatAt < cutoff);
            // A poison run (its worker died at every attempt, e.g. killed for memory) is failed rather than started again.
            var target = r.CancelRequested ? RunStatus.Canceled : r.Attempts >= MaxAttempts(o) ? RunStatus.Failed : RunStatus.Queued;
            var error = target == RunStatus.Failed ? PoisonError(r.Attempts, r.Phase) : "canceled by request";
            var taken = target == RunStatus.Queued
                ? await rows.ExecuteUpdateAsync(s => s.SetProperty(x => x.Status, RunStatus.Queued).SetProperty(x => x.Worker, (string?)null), ct)
                : await rows.ExecuteUpdateAsync(s => s.SetProperty(x => x.Status, target).SetProperty(x => x.FinishedAt, now)
                    .SetProperty(x => x.Error, error), ct);
            if (taken == 0) continue; // another sweeper took it first, or its worker wrote a heartbeat meanwhile
            db.RunLog.Add(new RunLogLine { RunId = r.Id, At = now, Level = target == RunStatus.Failed ? "error" : "warning",
                Message = $"worker {r.Worker} is gone ({reason}); " + target switch
                {
                    RunStatus.Queued => $"taken over by {RunExecutor.WorkerName}",
                    RunStatus.Failed => $"failed after {r.Attempts} of at most {MaxAttempts(o)} attempts (Portal:Jobs:MaxAttempts): {error}",
                    _ => "closed as canceled by request",
                } });
            if (target == RunStatus.Failed) logger.LogError("Run {RunId} failed: {Error}", r.Id, error);
            if (target == RunStatus.Queued) enqueued.Add((r.Id, r.Queue));
        }
        await db.SaveChangesAsync(ct);

        if (atStart)
        {
            // The previous process's in-process queue is gone, and even a durable queue lacks a run whose process died
            // between storing it and enqueueing it: every queued run this process serves is delivered again. A second
            // delivery of a run the queue still holds is harmless: the claim (queued -> running) is atomic.
            var queued = await db.Runs.AsNoTracking().Where(r => r.Status == RunStatus.Queued && served.Contains(r.Queue))
                .OrderBy(r => r.Id).Select(r => new { r.Id, r.Queue }).ToListAsync(ct);
            enqueued.AddRange(queued.Where(q => enqueued.All(e => e.Id != q.Id)).Select(q => (q.Id, q.Queue)));
        }
        foreach (var (id, q) in enqueued.OrderBy(e => e.Id)) queue.Enqueue(id, q);
        if (enqueued.Count > 0) logger.LogInformation("Queued {Count} run(s) again (orphaned or left queued)", enqueued.Count);
        return enqueued.Count;
    }

    /// <summary>Portal:Jobs:MaxAttempts, at least 1.</summary>
    static int MaxAttempts(PortalOptions o) => Math.Max(1, o.Jobs.MaxAttempts);

    /// <summary>The error of a run whose worker died at each of its <paramref name="attempts"/> attempts.</summary>
    public static string PoisonError(int attempts, string? phase) =>
        $"its worker died {attempts} time{(attempts == 1 ? "" : "s")} while running it (last phase: {(string.IsNullOrWhiteSpace(phase) ? "none reported" : phase)}); " +
        "it is not taken over again (re-run it once the cause is fixed)";

    /// <summary>
    /// Why a worker on this host is gone (null when it may be alive or is elsewhere): its process no longer exists, or, at
    /// start, it carries this very process's name (a container restarted with the same pid runs nothing yet).
    /// </summary>
    static string? ProcessGone(string? worker, bool atStart)
    {
        if (worker is null) return "no worker recorded";
        var colon = worker.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(worker.AsSpan(colon + 1), out var pid)) return null;
        var host = worker[..colon];
        if (LocalWorkerProcess.IsThisProcess(host, pid)) return atStart ? "this process restarted with the same id" : null;
        return LocalWorkerProcess.GoneReason(host, pid);
    }
}
