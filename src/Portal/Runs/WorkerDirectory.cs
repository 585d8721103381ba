using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Portal.Infrastructure;
using Portal.Store;

namespace Portal.Runs;

/// <summary>Reads the Workers table with each live worker's current runs.</summary>
public sealed class WorkerDirectory(IDbContextFactory<PortalDb> dbFactory, IOptions<PortalOptions> options)
{
    /// <summary>How long a stopped or gone worker stays listed.</summary>
    public static readonly TimeSpan EndedShownFor = TimeSpan.FromDays(1);

    /// <summary>Live workers first (by name), then the ones that ended within <see cref="EndedShownFor"/>, latest first.</summary>
    public async Task<List<WorkerStatus>> ListAsync(CancellationToken ct = default)
    {
        var now = DateTime.UtcNow;
        var fresh = now - TimeSpan.FromSeconds(Math.Max(0.5, options.Value.Jobs.OrphanAfterSeconds));
        var shownSince = now - EndedShownFor;
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        var rows = await db.Workers.AsNoTracking().Where(w => w.HeartbeatAt >= shownSince).ToListAsync(ct);
        var running = await db.Runs.AsNoTracking().Where(r => r.Status == RunStatus.Running && r.Worker != null)
            .OrderBy(r => r.Id).Select(r => new { r.Id, r.Kind, r.Progress, r.Phase, r.Worker }).ToListAsync(ct);
        // A worker of this host whose process is gone is "gone" at once, as takeover treats it (RunRecovery).
        string State(WorkerNode w) => w.StoppedAt is not null ? "stopped"
            : w.HeartbeatAt >= fresh && LocalWorkerProcess.GoneReason(w.Host, w.ProcessId) is null ? "live" : "gone";
        return rows
            .Select(w => (Row: w, State: State(w)))
            .OrderBy(x => x.State == "live" ? 0 : 1).ThenBy(x => x.State == "live" ? x.Row.Name : "", StringComparer.Ordinal)
            .ThenByDescending(x => x.Row.HeartbeatAt)
            .Select(x => new WorkerStatus(x.Row.Name, x.Row.Host, x.Row.ProcessId, x.Row.Mode, x.Row.DeviceKind, x.Row.DeviceName,
                x.Row.MemoryBytes, x.Row.Threads, x.Row.Queues.Split(',', StringSplitOptions.RemoveEmptyEntries), x.Row.StartedAt,
                x.Row.HeartbeatAt, x.Row.StoppedAt, x.State,
                x.State == "live" ? running.Where(r => r.Worker == x.Row.Name).Select(r => new WorkerRun(r.Id, r.Kind, r.Progress, r.Phase)).ToList() : []))
            .ToList();
    }
}
