using Microsoft.EntityFrameworkCore;
using Portal.Store;

namespace Portal.Auth;

/// <summary>The audit page's read: the newest events.</summary>
public sealed class AuditQuery(IDbContextFactory<PortalDb> dbFactory)
{
    /// <summary>The newest <paramref name="count"/> audit events, newest first.</summary>
    public async Task<List<AuditEvent>> RecentAsync(int count)
    {
        await using var db = await dbFactory.CreateDbContextAsync();
        return await db.AuditEvents.AsNoTracking().OrderByDescending(e => e.Id).Take(count).ToListAsync();
    }
}
