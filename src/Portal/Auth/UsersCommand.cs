using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Portal.Infrastructure;
using Portal.Store;

namespace Portal.Auth;

/// <summary>
/// `Portal users add NAME --role ROLE [--token TOKEN-NAME] [--Section:Key=value ...]`: the headless way to a first account
/// and API token, for teams that deploy with scripts. It opens the store the portal would open with the same settings
/// (SQLite under the data directory, or the team's PostgreSQL), applies its migrations, creates the user with the role (an
/// existing user is refused, nothing changes), and prints a new API token on stdout, once (only its SHA-256 is stored;
/// messages go to stderr, so `TOKEN=$(...)` captures the token alone). Both are in the audit log, by the operating-system
/// user who ran the command. The user has no password; an admin gives them a set-password link on /admin/users if they
/// need the web pages.
/// </summary>
public static class UsersCommand
{
    public const string Verb = "users";
    const string Usage = "usage: Portal users add NAME --role admin|researcher|viewer [--token TOKEN-NAME] [--Section:Key=value ...]";

    /// <summary>True when the command line asks for this verb.</summary>
    public static bool Is(string[] args) => args.Length > 0 && args[0] == Verb;

    /// <summary>Runs the verb; returns the exit code (0 done, 1 refused, 2 bad usage).</summary>
    public static async Task<int> RunAsync(string[] args, TextWriter? stdout = null, TextWriter? stderr = null)
    {
        stdout ??= Console.Out;
        stderr ??= Console.Error;
        if (args.Length < 3 || args[1] != "add" || args[2].StartsWith("--", StringComparison.Ordinal))
        {
            await stderr.WriteLineAsync(Usage);
            return 2;
        }
        var userName = args[2].Trim();
        string? role = null, tokenName = null;
        var hostArgs = new List<string>();
        for (var i = 3; i < args.Length; i++)
        {
            if (args[i] is "--role" or "--token")
            {
                if (i + 1 >= args.Length) { await stderr.WriteLineAsync($"{args[i]} needs a value\n{Usage}"); return 2; }
                if (args[i] == "--role") role = args[++i].Trim().ToLowerInvariant(); else tokenName = args[++i];
            }
            else hostArgs.Add(args[i]);
        }
        if (role is null || !Roles.All.Contains(role))
        {
            await stderr.WriteLineAsync($"--role must be one of {string.Join(", ", Roles.All)}\n{Usage}");
            return 2;
        }
        tokenName = tokenName?.Trim() ?? "bootstrap";
        // Checked before anything is stored, so a refused token name never leaves a user without its token.
        if (tokenName.Length is 0 or > 100)
        {
            await stderr.WriteLineAsync($"--token must be a name of 1 to 100 characters\n{Usage}");
            return 2;
        }

        var builder = Host.CreateApplicationBuilder(hostArgs.ToArray());
        PortalConfiguration.AddAppSettings(builder.Configuration);
        builder.Logging.ClearProviders(); // stdout carries the token alone
        builder.Services.AddPortalStore(builder.Configuration);
        builder.Services.AddScoped(sp => sp.GetRequiredService<IDbContextFactory<PortalDb>>().CreateDbContext());
        builder.Services.AddIdentityCore<PortalUser>().AddRoles<IdentityRole>().AddEntityFrameworkStores<PortalDb>();
        builder.Services.AddTransient<CurrentUser>();
        builder.Services.AddTransient<AuditLog>();
        builder.Services.AddTransient<ApiTokens>();
        using var host = builder.Build();

        var actor = $"{Environment.UserName}@{Environment.MachineName} (command line)";
        await using (var db = await host.Services.GetRequiredService<IDbContextFactory<PortalDb>>().CreateDbContextAsync())
            await db.Database.MigrateAsync();
        using var scope = host.Services.CreateScope();
        var roles = scope.ServiceProvider.GetRequiredService<RoleManager<IdentityRole>>();
        foreach (var r in Roles.All)
            if (!await roles.RoleExistsAsync(r)) await roles.CreateAsync(new IdentityRole(r));
        var users = scope.ServiceProvider.GetRequiredService<UserManager<PortalUser>>();
        if (await users.FindByNameAsync(userName) is not null)
        {
            await stderr.WriteLineAsync($"user '{userName}' already exists; nothing was changed (an admin manages it on /admin/users)");
            return 1;
        }
        var user = new PortalUser { UserName = userName, CreatedAt = DateTime.UtcNow, LockoutEnabled = true };
        var created = await users.CreateAsync(user);
        if (!created.Succeeded)
        {
            await stderr.WriteLineAsync($"user '{userName}' was not created: {string.Join(" ", created.Errors.Select(e => e.Description))}");
            return 1;
        }
        await users.AddToRoleAsync(user, role);
        var audit = scope.ServiceProvider.GetRequiredService<AuditLog>();
        await audit.RecordAsync("user.create", $"user:{userName}", $"role {role}, from the command line (users add)", actor);
        string text;
        try { (_, text) = await scope.ServiceProvider.GetRequiredService<ApiTokens>().CreateAsync(user.Id, tokenName, actor); }
        catch (Runs.FieldException e)
        {
            await stderr.WriteLineAsync($"user '{userName}' was created (role {role}), but its token was not: {e.Message}");
            return 1;
        }
        await stderr.WriteLineAsync($"created user '{userName}' (role {role}) and its API token '{tokenName}'; the token follows on stdout, shown this once:");
        await stdout.WriteLineAsync(text);
        return 0;
    }
}
