using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using Forensics.ML.Runtime;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Portal.Infrastructure;
using Portal.Store;

namespace Portal.Jobs;

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

/// <summary>Sweeps for orphaned runs at start (before the job servers start) and then every few seconds.</summary>
public sealed class OrphanSweeper(IServiceScopeFactory scopes, IOptions<PortalOptions> options, ILogger<OrphanSweeper> logger) : BackgroundService
{
    public override async Task StartAsync(CancellationToken ct)
    {
        using (var scope = scopes.CreateScope())
            await scope.ServiceProvider.GetRequiredService<RunRecovery>().SweepAsync(atStart: true, ct);
        await base.StartAsync(ct);
    }

    protected override async Task ExecuteAsync(CancellationToken stop)
    {
        // A quarter of the orphan age: a vanished worker's runs are taken over soon after they count as orphaned.
        var period = TimeSpan.FromSeconds(Math.Clamp(options.Value.Jobs.OrphanAfterSeconds / 4, 0.2, 15));
        while (!stop.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(period, stop);
                using var scope = scopes.CreateScope();
                await scope.ServiceProvider.GetRequiredService<RunRecovery>().SweepAsync(atStart: false, stop);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested) { }
            catch (Exception e) { logger.LogWarning(e, "Orphan sweep failed"); }
        }
    }
}

/// <summary>What a worker advertises about its device: the model name and the memory.</summary>
public static class DeviceDescription
{
    /// <summary>
    /// For cuda: the GPU's name and memory as the NVIDIA driver reports them (TorchSharp exposes neither); for cpu, or
    /// when the driver does not answer: the CPU's model name and the memory this process may use.
    /// </summary>
    public static (string Name, long MemoryBytes) Describe(string torchDevice)
    {
        var ram = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        if (JobQueues.KindOfTorchDevice(torchDevice) == "cuda")
        {
            var index = torchDevice.Contains(':') ? torchDevice[(torchDevice.IndexOf(':') + 1)..] : "0";
            return QueryGpu(index) is { } gpu ? gpu : ($"cuda:{index} (no answer from nvidia-smi)", ram);
        }
        return (CpuModel() ?? $"{RuntimeInformation.ProcessArchitecture} CPU", ram);
    }

    /// <summary>"NVIDIA H100 80GB HBM3, 81559" from nvidia-smi (MiB); null when it is missing or fails.</summary>
    static (string, long)? QueryGpu(string index)
    {
        try
        {
            using var p = Process.Start(new ProcessStartInfo("nvidia-smi", ["--query-gpu=name,memory.total", "--format=csv,noheader,nounits", "-i", index])
                { RedirectStandardOutput = true, RedirectStandardError = true });
            if (p is null) return null;
            var output = p.StandardOutput.ReadToEndAsync();
            if (!p.WaitForExit(5000)) { p.Kill(); return null; }
            var line = output.Result.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault();
            var comma = line?.LastIndexOf(',') ?? -1;
            if (p.ExitCode != 0 || line is null || comma < 0) return null;
            return long.TryParse(line[(comma + 1)..].Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var mib)
                ? (line[..comma].Trim(), mib * 1024 * 1024) : null;
        }
        catch (System.ComponentModel.Win32Exception) { return null; }
    }

    static string? CpuModel()
    {
        try
        {
            if (!File.Exists("/proc/cpuinfo")) return null;
            var line = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal));
            return line?[(line.IndexOf(':') + 1)..].Trim();
        }
        catch (IOException) { return null; }
    }
}
