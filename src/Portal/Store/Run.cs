using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Portal.Store;

/// <summary>The life of a run: queued -> running -> succeeded | failed | canceled. Stored as lower-case text.</summary>
public enum RunStatus { Queued, Running, Succeeded, Failed, Canceled }

/// <summary>One job execution (registration, alignment, training, evaluation...). The row is the source of truth; the queue only delivers its id.</summary>
public class Run
{
    public long Id { get; set; }
    /// <summary>The job kind, e.g. "register-dataset".</summary>
    public string Kind { get; set; } = "";
    /// <summary>The queue that runs it: "device" (one heavy job at a time) or "light".</summary>
    public string Queue { get; set; } = "light";
    public string ConfigJson { get; set; } = "{}";
    /// <summary>SHA-256 of the canonical config JSON: identical configs share a hash, so computed cells can be reused.</summary>
    public string ConfigHash { get; set; } = "";
    public RunStatus Status { get; set; } = RunStatus.Queued;
    /// <summary>0..1.</summary>
    public double Progress { get; set; }
    /// <summary>What the job is doing now, e.g. "decoding 120/4000".</summary>
    public string? Phase { get; set; }
    public DateTime CreatedAt { get; set; }
    public DateTime? StartedAt { get; set; }
    public DateTime? FinishedAt { get; set; }
    public DateTime? HeartbeatAt { get; set; }
    public string? Error { get; set; }
    /// <summary>The worker (machine/process) that claimed it last.</summary>
    public string? Worker { get; set; }
    public long? Seed { get; set; }
    public string CodeVersion { get; set; } = "";
    /// <summary>How many times it has been claimed (a restart after a crash claims it again).</summary>
    public int Attempts { get; set; }
    public bool CancelRequested { get; set; }
    /// <summary>The run this one re-runs, if any.</summary>
    public long? RerunOf { get; set; }
    /// <summary>Free labels ("ablation-t", "paper-table-2"), stored as ",a,b," so a tag filter is one substring test; see <see cref="RunTags"/>.</summary>
    public string Tags { get; set; } = "";
    /// <summary>The user who queued it (Identity user id); null for runs the portal queued itself (demo, pipelines' stages), which only admins change.</summary>
    public string? OwnerId { get; set; }

    public List<RunMetric> Metrics { get; set; } = [];
    public List<RunLogLine> Log { get; set; } = [];
    public List<Artifact> Artifacts { get; set; } = [];

    public bool IsFinished => Status is RunStatus.Succeeded or RunStatus.Failed or RunStatus.Canceled;
}

/// <summary>One point of a named series over steps (loss, val_acc, ...), or a final value at step 0.</summary>
public class RunMetric
{
    public long Id { get; set; }
    public long RunId { get; set; }
    public string Name { get; set; } = "";
    public long Step { get; set; }
    public double Value { get; set; }
    public DateTime At { get; set; }
}

/// <summary>A line of a run's log.</summary>
public class RunLogLine
{
    public long Id { get; set; }
    public long RunId { get; set; }
    public DateTime At { get; set; }
    public string Level { get; set; } = "info";
    public string Message { get; set; } = "";
}

/// <summary>A file a run produced, stored under the data directory.</summary>
public class Artifact
{
    public long Id { get; set; }
    public long? RunId { get; set; }
    public string Kind { get; set; } = "";
    /// <summary>Relative to the data directory, '/' separated.</summary>
    public string RelativePath { get; set; } = "";
    public long Bytes { get; set; }
    public string? Sha256 { get; set; }
    public DateTime CreatedAt { get; set; }
}

class RunConfiguration : IEntityTypeConfiguration<Run>
{
    public void Configure(EntityTypeBuilder<Run> b)
    {
        b.Property(r => r.Kind).HasMaxLength(64);
        b.Property(r => r.Queue).HasMaxLength(32);
        b.Property(r => r.ConfigHash).HasMaxLength(64);
        b.Property(r => r.Status).HasConversion(s => s.ToString().ToLowerInvariant(), s => Enum.Parse<RunStatus>(s, true)).HasMaxLength(16);
        b.HasIndex(r => r.Status);
        b.HasIndex(r => r.ConfigHash);
        b.HasIndex(r => r.CreatedAt);
        b.HasIndex(r => r.OwnerId);
        b.Property(r => r.Tags).HasMaxLength(RunTags.MaxStoredLength).HasDefaultValue("");
        b.HasMany(r => r.Metrics).WithOne().HasForeignKey(m => m.RunId).OnDelete(DeleteBehavior.Cascade);
        b.HasMany(r => r.Log).WithOne().HasForeignKey(l => l.RunId).OnDelete(DeleteBehavior.Cascade);
        b.HasMany(r => r.Artifacts).WithOne().HasForeignKey(a => a.RunId).OnDelete(DeleteBehavior.SetNull);
    }
}

class RunMetricConfiguration : IEntityTypeConfiguration<RunMetric>
{
    public void Configure(EntityTypeBuilder<RunMetric> b)
    {
        b.Property(m => m.Name).HasMaxLength(128);
        b.HasIndex(m => new { m.RunId, m.Name, m.Step });
    }
}

class RunLogLineConfiguration : IEntityTypeConfiguration<RunLogLine>
{
    public void Configure(EntityTypeBuilder<RunLogLine> b)
    {
        b.Property(l => l.Level).HasMaxLength(16);
        b.HasIndex(l => new { l.RunId, l.Id });
    }
}

class ArtifactConfiguration : IEntityTypeConfiguration<Artifact>
{
    public void Configure(EntityTypeBuilder<Artifact> b) => b.Property(a => a.Kind).HasMaxLength(64);
}

/// <summary>
/// A run's tags: lower-case labels of letters, digits and - _ . : (at most <see cref="MaxTags"/>, each at most
/// <see cref="MaxTagLength"/> characters), stored as ",a,b," in <see cref="Run.Tags"/>.
/// </summary>
public static class RunTags
{
    public const int MaxTags = 16;
    public const int MaxTagLength = 40;
    public const int MaxStoredLength = MaxTags * (MaxTagLength + 1) + 1;

    /// <summary>The stored form of the tags (sorted, distinct); a bad tag throws an ArgumentException naming it.</summary>
    public static string Format(IEnumerable<string>? tags)
    {
        var list = (tags ?? []).Select(t => (t ?? "").Trim().ToLowerInvariant()).Where(t => t.Length > 0).Distinct().Order(StringComparer.Ordinal).ToList();
        foreach (var t in list)
            if (t.Length > MaxTagLength || !t.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or ':'))
                throw new ArgumentException($"tag '{t}' must be at most {MaxTagLength} letters, digits or - _ . :");
        if (list.Count > MaxTags) throw new ArgumentException($"a run has at most {MaxTags} tags, not {list.Count}");
        return list.Count == 0 ? "" : "," + string.Join(",", list) + ",";
    }

    /// <summary>The tags of a stored value.</summary>
    public static IReadOnlyList<string> Parse(string? stored) =>
        (stored ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries);
}
