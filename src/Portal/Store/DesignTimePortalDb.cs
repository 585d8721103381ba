using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Design;

namespace Portal.Store;

/// <summary>
/// Lets `dotnet ef` build the SQLite model without starting the app. Migrations live in the top-level migrations/ folder
/// (commands in migrations/README.md):
///   dotnet ef migrations add NAME --project src/Portal --context PortalDb --output-dir ../../migrations/Sqlite --namespace Portal.Migrations.Sqlite
/// </summary>
public sealed class DesignTimePortalDb : IDesignTimeDbContextFactory<PortalDb>
{
    public PortalDb CreateDbContext(string[] args) =>
        new(new DbContextOptionsBuilder<PortalDb>().UseSqlite("Data Source=design-time.db").Options);
}

/// <summary>
/// Lets `dotnet ef` build the PostgreSQL model without a server (adding a migration never connects):
///   dotnet ef migrations add NAME --project src/Portal --context PostgresPortalDb --output-dir ../../migrations/Postgres --namespace Portal.Migrations.Postgres
/// </summary>
public sealed class DesignTimePostgresPortalDb : IDesignTimeDbContextFactory<PostgresPortalDb>
{
    public PostgresPortalDb CreateDbContext(string[] args) =>
        new(new DbContextOptionsBuilder<PostgresPortalDb>().UseNpgsql("Host=localhost;Database=portal").Options);
}
