using Microsoft.EntityFrameworkCore;

namespace Portal.Store;

/// <summary>What the System page says about the store: where it is, which provider, its runs by status.</summary>
public sealed record StoreStatus(string DataSource, bool IsPostgres, IReadOnlyDictionary<RunStatus, int> RunsByStatus);

/// <summary>Reads <see cref="StoreStatus"/>; throws when the database cannot be read (the page says so).</summary>
public sealed class StoreStatusQuery(IDbContextFactory<PortalDb> dbFactory)
{
    public async Task<StoreStatus> ReadAsync()
    {
        await using var db = await dbFactory.CreateDbContextAsync();
        var runs = (await db.Runs.GroupBy(r => r.Status).Select(g => new { g.Key, Count = g.Count() }).ToListAsync()).ToDictionary(x => x.Key, x => x.Count);
        return new StoreStatus(db.Database.GetDbConnection().DataSource, db is PostgresPortalDb, runs);
    }
}
