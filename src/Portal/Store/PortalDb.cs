using Microsoft.AspNetCore.Identity.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore;

namespace Portal.Store;

/// <summary>
/// The portal's store (with the Identity tables). One context per operation (IDbContextFactory), never shared across threads. This type is the
/// SQLite store (its migrations in migrations/Sqlite); <see cref="PostgresPortalDb"/> is the same model on PostgreSQL.
/// </summary>
public class PortalDb : IdentityDbContext<Auth.PortalUser>
{
    /// <summary>The SQLite store.</summary>
    public PortalDb(DbContextOptions<PortalDb> options) : base(options) { }

    /// <summary>For a provider's subclass, which passes options built for its own type (EF picks migrations by the runtime type).</summary>
    protected PortalDb(DbContextOptions options) : base(options) { }

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
        // SQLite has no native DateTime: store UTC round-trip text so ordering and comparisons stay correct. On PostgreSQL
        // the same converter makes every value UTC before Npgsql writes it to a timestamptz (which refuses other kinds).
        b.Properties<DateTime>().HaveConversion<UtcDateTimeConverter>();
        b.Properties<DateTime?>().HaveConversion<UtcDateTimeConverter>();
    }
}

/// <summary>Stores every DateTime as UTC and reads it back as DateTimeKind.Utc.</summary>
class UtcDateTimeConverter() : Microsoft.EntityFrameworkCore.Storage.ValueConversion.ValueConverter<DateTime, DateTime>(
    v => v.Kind == DateTimeKind.Utc ? v : v.ToUniversalTime(),
    v => DateTime.SpecifyKind(v, DateTimeKind.Utc));

/// <summary>
/// The store on PostgreSQL (Portal:Store:Provider = postgres): the same model, its own migrations (migrations/Postgres,
/// attributed to this type). Code asks for <c>IDbContextFactory&lt;PortalDb&gt;</c> and gets this type. Every text
/// column uses the "C" collation: comparisons, ranges and ordering are by code point, as SQLite's BINARY is, whatever
/// locale the database was created with (the leaderboard's metric-name ranges depend on it).
/// </summary>
public sealed class PostgresPortalDb(DbContextOptions<PostgresPortalDb> options) : PortalDb(options)
{
    /// <summary>The collation of every text column.</summary>
    public const string Collation = "C";

    protected override void OnModelCreating(ModelBuilder modelBuilder)
    {
        base.OnModelCreating(modelBuilder);
        foreach (var property in modelBuilder.Model.GetEntityTypes().SelectMany(e => e.GetProperties()).Where(p => p.ClrType == typeof(string)))
            property.SetCollation(Collation);
    }
}
