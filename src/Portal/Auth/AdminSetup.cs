using System.Security.Cryptography;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Identity;

namespace Portal.Auth;

/// <summary>
/// First start: while no admin exists, one random setup code per process start, printed once as a link to /setup, valid
/// until the admin is created with it. There is no default password anywhere.
/// </summary>
public sealed class AdminSetup(IServiceScopeFactory scopes, ILogger<AdminSetup> logger)
{
    readonly SemaphoreSlim gate = new(1, 1);
    string? code;

    /// <summary>The link printed at start, or null when an admin exists (or it was used).</summary>
    public string? Link { get; private set; }

    /// <summary>Creates the roles; when no admin exists, makes the code and prints the link with the server's first address.</summary>
    internal async Task StartAsync(string baseAddress)
    {
        using var scope = scopes.CreateScope();
        var roles = scope.ServiceProvider.GetRequiredService<RoleManager<IdentityRole>>();
        foreach (var role in Roles.All)
            if (!await roles.RoleExistsAsync(role)) await roles.CreateAsync(new IdentityRole(role));
        var users = scope.ServiceProvider.GetRequiredService<UserManager<PortalUser>>();
        if ((await users.GetUsersInRoleAsync(Roles.Admin)).Count > 0) return;
        code = ApiTokens.Base64Url(RandomNumberGenerator.GetBytes(24));
        Link = $"{baseAddress.TrimEnd('/')}/setup?code={code}";
        logger.LogWarning("No admin account yet. Create it once with this link (valid until used; a new one is printed at each start until then):\n    {Link}", Link);
    }

    /// <summary>Whether <paramref name="candidate"/> is the current, unused setup code.</summary>
    public bool IsValid(string? candidate) =>
        code is { } c && candidate is not null && CryptographicOperations.FixedTimeEquals(System.Text.Encoding.UTF8.GetBytes(c), System.Text.Encoding.UTF8.GetBytes(candidate));

    /// <summary>Creates the admin with the code (once); the errors name what was wrong, empty on success.</summary>
    public async Task<List<string>> CreateAdminAsync(string? candidate, string? userName, string? password)
    {
        await gate.WaitAsync();
        try
        {
            if (!IsValid(candidate)) return ["the setup code is invalid or was already used; restart the portal for a new link if no admin exists"];
            if (string.IsNullOrWhiteSpace(userName)) return ["user name is required"];
            if (string.IsNullOrEmpty(password)) return ["password is required"];
            using var scope = scopes.CreateScope();
            var users = scope.ServiceProvider.GetRequiredService<UserManager<PortalUser>>();
            if ((await users.GetUsersInRoleAsync(Roles.Admin)).Count > 0) { code = null; Link = null; return ["an admin already exists"]; }
            var user = new PortalUser { UserName = userName.Trim(), CreatedAt = DateTime.UtcNow };
            var created = await users.CreateAsync(user, password);
            if (!created.Succeeded) return created.Errors.Select(e => e.Description).ToList();
            await users.AddToRoleAsync(user, Roles.Admin);
            code = null;
            Link = null;
            await scope.ServiceProvider.GetRequiredService<AuditLog>().RecordAsync("user.create", $"user:{user.UserName}", "first admin, through the setup link", user.UserName);
            return [];
        }
        finally { gate.Release(); }
    }
}

/// <summary>Runs <see cref="AdminSetup"/> once the server listens, so the printed link has the real address.</summary>
sealed class AdminSetupStartup(AdminSetup setup, IServer server, IHostApplicationLifetime lifetime) : IHostedService
{
    public Task StartAsync(CancellationToken ct)
    {
        lifetime.ApplicationStarted.Register(() =>
        {
            var address = server.Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault() ?? "http://localhost";
            // The wildcard hosts Kestrel reports are not browsable: show localhost instead.
            address = address.Replace("://+", "://localhost").Replace("://*", "://localhost").Replace("://0.0.0.0", "://localhost").Replace("://[::]", "://localhost");
            setup.StartAsync(address).GetAwaiter().GetResult();
        });
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken ct) => Task.CompletedTask;
}

/// <summary>Admin operations on accounts: create with a role (and a one-time set-password link), change role, lock.</summary>
public sealed class UserAdmin(UserManager<PortalUser> users, AuditLog audit)
{
    /// <summary>Creates a user without a password; returns the relative one-time link where they choose it.</summary>
    public async Task<(PortalUser User, string SetPasswordLink)> CreateAsync(string? userName, string? role)
    {
        userName = userName?.Trim();
        if (string.IsNullOrEmpty(userName)) throw new Runs.FieldException("userName", "user name is required");
        if (role is null || !Roles.All.Contains(role)) throw new Runs.FieldException("role", $"role must be one of {string.Join(", ", Roles.All)}");
        var user = new PortalUser { UserName = userName, CreatedAt = DateTime.UtcNow, LockoutEnabled = true };
        var created = await users.CreateAsync(user);
        if (!created.Succeeded) throw new Runs.FieldException("userName", string.Join(" ", created.Errors.Select(e => e.Description)));
        await users.AddToRoleAsync(user, role);
        await audit.RecordAsync("user.create", $"user:{userName}", $"role {role}");
        return (user, await SetPasswordLinkAsync(user));
    }

    /// <summary>A one-time link to choose a password (Identity's reset token: void once the password is set).</summary>
    public async Task<string> SetPasswordLinkAsync(PortalUser user)
    {
        var token = await users.GeneratePasswordResetTokenAsync(user);
        return $"account/set-password?user={Uri.EscapeDataString(user.Id)}&token={Uri.EscapeDataString(token)}";
    }

    public async Task SetRoleAsync(PortalUser user, string role)
    {
        if (!Roles.All.Contains(role)) throw new Runs.FieldException("role", $"role must be one of {string.Join(", ", Roles.All)}");
        await users.RemoveFromRolesAsync(user, await users.GetRolesAsync(user));
        await users.AddToRoleAsync(user, role);
        await users.UpdateSecurityStampAsync(user);
        await audit.RecordAsync("user.role", $"user:{user.UserName}", role);
    }

    /// <summary>Locked on /admin/users (a lock without end); not a timed lockout, which the portal no longer sets.</summary>
    public static bool IsLockedByAdmin(PortalUser user) => user.LockoutEnabled && user.LockoutEnd is { } end && end.UtcDateTime.Year >= 9999;

    public async Task SetLockedAsync(PortalUser user, bool locked)
    {
        await users.SetLockoutEnabledAsync(user, true);
        await users.SetLockoutEndDateAsync(user, locked ? DateTimeOffset.MaxValue : null);
        await users.UpdateSecurityStampAsync(user);
        await audit.RecordAsync(locked ? "user.lock" : "user.unlock", $"user:{user.UserName}");
    }
}
