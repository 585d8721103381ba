using Microsoft.EntityFrameworkCore;
using Portal.Store;

namespace Portal.Auth;

/// <summary>Writes audit events with the acting user's name.</summary>
public sealed class AuditLog(IDbContextFactory<PortalDb> dbFactory, CurrentUser user)
{
    public async Task RecordAsync(string action, string target, string? detail = null, string? userName = null)
    {
        userName ??= (await user.GetAsync()).Name;
        await using var db = await dbFactory.CreateDbContextAsync();
        db.AuditEvents.Add(new AuditEvent { At = DateTime.UtcNow, UserName = userName, Action = action, Target = target, Detail = detail });
        await db.SaveChangesAsync();
    }
}
