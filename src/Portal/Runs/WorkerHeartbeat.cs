using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using Forensics.ML.Runtime;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Portal.Infrastructure;
using Portal.Store;

namespace Portal.Runs;

/// <summary>
/// Advertises this job-running process in the Workers table: the row is written at start (after the store's migration,
/// before the job servers), its heartbeat refreshed every Portal:Jobs:HeartbeatSeconds, and StoppedAt written when the
/// host stops (after the job servers have handed their runs back).
/// </summary>
public sealed class WorkerHeartbeat(IDbContextFactory<PortalDb> dbFactory, IOptions<PortalOptions> options, ILogger<WorkerHeartbeat> logger)
    : BackgroundService
{
    long rowId;
    bool torchReported;

    public override async Task StartAsync(CancellationToken ct)
    {
        var o = options.Value;
        var kind = JobQueues.OwnDeviceKind(o);
        var (deviceName, memory) = DeviceDescription.Describe(o.Torch.Device);
        var now = DateTime.UtcNow;
        var row = new WorkerNode
        {
            Name = RunExecutor.WorkerName, Host = Environment.MachineName, ProcessId = Environment.ProcessId,
            Mode = o.Mode == PortalModes.Worker ? "worker" : "embedded", DeviceKind = kind, DeviceName = deviceName, MemoryBytes = memory,
            Threads = o.Torch.Threads > 0 ? o.Torch.Threads : Environment.ProcessorCount,
            Queues = string.Join(",", JobQueues.Served(o)), StartedAt = now, HeartbeatAt = now,
        };
        await using (var db = await dbFactory.CreateDbContextAsync(ct))
        {
            db.Workers.Add(row);
            await db.SaveChangesAsync(ct);
        }
        rowId = row.Id;
        logger.LogInformation("Worker {Name} ({Mode}, {Kind}: {Device}) listens on {Queues}", row.Name, row.Mode, kind, deviceName, row.Queues);
        await base.StartAsync(ct);
    }

    protected override async Task ExecuteAsync(CancellationToken stop)
    {
        var period = TimeSpan.FromSeconds(Math.Max(0.1, options.Value.Jobs.HeartbeatSeconds));
        while (!stop.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(period, stop);
                await using var db = await dbFactory.CreateDbContextAsync(stop);
                var now = DateTime.UtcNow;
                var mine = db.Workers.Where(w => w.Id == rowId);
                // Torch loads in the background: its thread count replaces the guess once known.
                if (!torchReported && TorchRuntime.Status is { Loaded: true } torch)
                {
                    await mine.ExecuteUpdateAsync(s => s.SetProperty(w => w.HeartbeatAt, now).SetProperty(w => w.Threads, torch.Threads), stop);
                    torchReported = true;
                }
                else await mine.ExecuteUpdateAsync(s => s.SetProperty(w => w.HeartbeatAt, now), stop);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested) { }
            catch (Exception e) { logger.LogWarning(e, "Worker heartbeat failed"); }
        }
    }

    public override async Task StopAsync(CancellationToken ct)
    {
        await base.StopAsync(ct);
        try
        {
            await using var db = await dbFactory.CreateDbContextAsync(ct);
            var now = DateTime.UtcNow;
            await db.Workers.Where(w => w.Id == rowId).ExecuteUpdateAsync(s => s.SetProperty(w => w.StoppedAt, now).SetProperty(w => w.HeartbeatAt, now), ct);
        }
        catch (Exception e) { logger.LogWarning(e, "Could not mark worker {Name} as stopped", RunExecutor.WorkerName); }
    }
}
