using Microsoft.AspNetCore.Identity.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore;

namespace Portal.Store;

/// <summary>The portal's store (with the Identity tables). One context per operation (IDbContextFactory), never shared across threads.</summary>
public class PortalDb(DbContextOptions<PortalDb> options) : IdentityDbContext<Auth.PortalUser>(options)
{
    public DbSet<Dataset> Datasets => Set<Dataset>();
    public DbSet<DatasetSubset> DatasetSubsets => Set<DatasetSubset>();
    public DbSet<UnreadableFile> UnreadableFiles => Set<UnreadableFile>();
    public DbSet<ModelWeights> Weights => Set<ModelWeights>();
    public DbSet<Run> Runs => Set<Run>();
    public DbSet<RunMetric> RunMetrics => Set<RunMetric>();
    public DbSet<RunLogLine> RunLog => Set<RunLogLine>();
    public DbSet<Artifact> Artifacts => Set<Artifact>();
    public DbSet<Leaderboard.LeaderboardEntry> LeaderboardEntries => Set<Leaderboard.LeaderboardEntry>();
    /// <summary>The job-running processes and their heartbeats (table "Workers").</summary>
    public DbSet<WorkerNode> Workers => Set<WorkerNode>();
    public DbSet<Auth.ApiToken> ApiTokens => Set<Auth.ApiToken>();
    public DbSet<Auth.AuditEvent> AuditEvents => Set<Auth.AuditEvent>();

    protected override void OnModelCreating(ModelBuilder modelBuilder)
    {
        base.OnModelCreating(modelBuilder); // the Identity tables
        modelBuilder.ApplyConfigurationsFromAssembly(typeof(PortalDb).Assembly);
    }

    protected override void ConfigureConventions(ModelConfigurationBuilder b)
    {
        // SQLite has no native DateTime: store UTC round-trip text so ordering and comparisons stay correct.
        b.Properties<DateTime>().HaveConversion<UtcDateTimeConverter>();
        b.Properties<DateTime?>().HaveConversion<UtcDateTimeConverter>();
    }
}

/// <summary>Stores every DateTime as UTC and reads it back as DateTimeKind.Utc.</summary>
class UtcDateTimeConverter() : Microsoft.EntityFrameworkCore.Storage.ValueConversion.ValueConverter<DateTime, DateTime>(
    v => v.Kind == DateTimeKind.Utc ? v : v.ToUniversalTime(),
    v => DateTime.SpecifyKind(v, DateTimeKind.Utc));
