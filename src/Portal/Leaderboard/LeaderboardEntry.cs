using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using Portal.Store;

namespace Portal.Leaderboard;

/// <summary>
/// One succeeded evaluation or cross-generator run at one threshold mode, as the leaderboard groups and sorts it: the row
/// key from its config and its mean ACC/AP over generators. Derived from the run's config and step-0 metrics by
/// <see cref="LeaderboardQuery"/> the first time a query sees the run (never edited; deleted with the run), so paging
/// and sorting 10,000 runs reads one narrow table instead of every run's JSON and metrics.
/// </summary>
public class LeaderboardEntry
{
    public long Id { get; set; }
    public long RunId { get; set; }
    /// <summary>"0.5" (fixed), "best" (best on the test data, flagged) or "calibrated" (on a validation split).</summary>
    public string Threshold { get; set; } = "";
    public string Checkpoint { get; set; } = "";
    public long? DatasetId { get; set; }
    /// <summary>The split evaluated; "" = every image.</summary>
    public string Split { get; set; } = "";
    /// <summary>"none" for clean.</summary>
    public string Perturbation { get; set; } = "none";
    /// <summary>The config's arch ("" = the checkpoint's own, named by the zoo).</summary>
    public string ConfigArch { get; set; } = "";
    public long Seed { get; set; }
    public double? MeanAcc { get; set; }
    public double? MeanAp { get; set; }
    /// <summary>The run's generators, sorted, separated by <see cref="GeneratorSeparator"/>.</summary>
    public string Generators { get; set; } = "";

    public const char GeneratorSeparator = '\u001f';
}

class LeaderboardEntryConfiguration : IEntityTypeConfiguration<LeaderboardEntry>
{
    public void Configure(EntityTypeBuilder<LeaderboardEntry> b)
    {
        b.Property(e => e.Threshold).HasMaxLength(16);
        b.HasIndex(e => new { e.RunId, e.Threshold }).IsUnique();
        b.HasOne<Run>().WithMany().HasForeignKey(e => e.RunId).OnDelete(DeleteBehavior.Cascade);
    }
}
