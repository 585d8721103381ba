using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Portal.Auth;
using Portal.Infrastructure;
using Portal.Store;

namespace Portal.Tests.Support;

/// <summary>Accounts in the store of a portal running as a separate process, made with the real Identity services over its database file.</summary>
public static class StoreUsers
{
    /// <summary>
    /// An admin (created if missing) and a fresh API token for it, in the store of the portal over <paramref name="dataDir"/>
    /// (already migrated): its portal.db, the suite's PostgreSQL database for it, or the PostgreSQL database
    /// <paramref name="postgres"/> when given.
    /// </summary>
    public static Task<string> AdminTokenAsync(string dataDir, string userName = "process-admin", string? postgres = null) =>
        TokenAsync(dataDir, userName, Roles.Admin, postgres);

    /// <summary>A user with <paramref name="role"/> (created if missing) and a fresh API token for it, as <see cref="AdminTokenAsync"/>.</summary>
    public static async Task<string> TokenAsync(string dataDir, string userName, string role, string? postgres = null)
    {
        postgres ??= PortalFactory.Postgres ? PortalFactory.StoreSettings(dataDir)["ConnectionStrings:Portal"] : null;
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddDbContextFactory<PortalDb>(o =>
        {
            if (postgres is null) o.UseSqlite(ServiceSetup.SqliteConnectionString(null, dataDir));
            else o.UseNpgsql(postgres);
        });
        services.AddScoped(sp => sp.GetRequiredService<IDbContextFactory<PortalDb>>().CreateDbContext());
        services.AddIdentityCore<PortalUser>().AddRoles<IdentityRole>().AddEntityFrameworkStores<PortalDb>();
        services.AddTransient<CurrentUser>();
        services.AddTransient<AuditLog>();
        services.AddTransient<ApiTokens>();
        await using var provider = services.BuildServiceProvider();
        // The portal seeds its roles at start, perhaps at this very moment: a duplicate-key refusal means it got there first
        // (in a scope of its own, so the refused row is not saved again below).
        using (var roleScope = provider.CreateScope())
        {
            var roles = roleScope.ServiceProvider.GetRequiredService<RoleManager<IdentityRole>>();
            if (!await roles.RoleExistsAsync(role))
                try { await roles.CreateAsync(new IdentityRole(role)); }
                catch (DbUpdateException) { if (!await RoleExistsAfterAsync(provider, role)) throw; }
        }
        using var scope = provider.CreateScope();
        var users = scope.ServiceProvider.GetRequiredService<UserManager<PortalUser>>();
        var user = await users.FindByNameAsync(userName);
        if (user is null)
        {
            user = new PortalUser { UserName = userName, CreatedAt = DateTime.UtcNow };
            if (!(await users.CreateAsync(user)).Succeeded || !(await users.AddToRoleAsync(user, role)).Succeeded)
                throw new InvalidOperationException($"could not create {userName}");
        }
        return (await scope.ServiceProvider.GetRequiredService<ApiTokens>().CreateAsync(user.Id, "process test")).Text;
    }

    static async Task<bool> RoleExistsAfterAsync(IServiceProvider provider, string role)
    {
        using var scope = provider.CreateScope();
        return await scope.ServiceProvider.GetRequiredService<RoleManager<IdentityRole>>().RoleExistsAsync(role);
    }
}
