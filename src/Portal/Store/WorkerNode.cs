using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Portal.Store;

/// <summary>
/// One job-running process (the portal with embedded workers, or a `worker` process on a GPU/CPU box): written when it
/// starts, its heartbeat refreshed while it lives, StoppedAt set when it stops cleanly. A row whose heartbeat is old is a
/// process that vanished (killed, machine lost). One row per process start.
/// </summary>
public class WorkerNode
{
    public long Id { get; set; }
    /// <summary>The name the process writes in a run's Worker column: "machine:pid".</summary>
    public string Name { get; set; } = "";
    public string Host { get; set; } = "";
    public int ProcessId { get; set; }
    /// <summary>"embedded" (job servers inside the web portal) or "worker" (a jobs-only process).</summary>
    public string Mode { get; set; } = "";
    /// <summary>"cpu" or "cuda": the device queue it serves.</summary>
    public string DeviceKind { get; set; } = "";
    /// <summary>The GPU's or CPU's model name, when known.</summary>
    public string? DeviceName { get; set; }
    /// <summary>The GPU's memory for cuda (when the driver reports it), else the machine's memory.</summary>
    public long MemoryBytes { get; set; }
    /// <summary>Torch's intra-op threads once torch is loaded, else the processor count.</summary>
    public int Threads { get; set; }
    /// <summary>The queues it listens on, comma-separated.</summary>
    public string Queues { get; set; } = "";
    public DateTime StartedAt { get; set; }
    public DateTime HeartbeatAt { get; set; }
    public DateTime? StoppedAt { get; set; }
}

class WorkerNodeConfiguration : IEntityTypeConfiguration<WorkerNode>
{
    public void Configure(EntityTypeBuilder<WorkerNode> b)
    {
        b.ToTable("Workers");
        b.Property(w => w.Name).HasMaxLength(256);
        b.Property(w => w.Host).HasMaxLength(256);
        b.Property(w => w.Mode).HasMaxLength(16);
        b.Property(w => w.DeviceKind).HasMaxLength(16);
        b.Property(w => w.DeviceName).HasMaxLength(256);
        b.Property(w => w.Queues).HasMaxLength(256);
        b.HasIndex(w => w.Name);
        b.HasIndex(w => w.HeartbeatAt);
    }
}
