using Microsoft.AspNetCore.Authorization;
using Microsoft.Extensions.Options;
using Portal.Infrastructure;

namespace Portal.Auth;

/// <summary>The named authorization policies, defined here and nowhere else.</summary>
public static class Policies
{
    /// <summary>Users, settings, the Hangfire dashboard, and everything on any run.</summary>
    public const string Admin = "admin";
    /// <summary>Register data and weights, queue runs, cancel/tag/delete their own runs (admins too).</summary>
    public const string Researcher = "researcher";
    /// <summary>Any signed-in user with a role (read only).</summary>
    public const string Viewer = "viewer";
    /// <summary>The leaderboard: any signed-in user, or anyone when Portal:Auth:PublicLeaderboard is set.</summary>
    public const string Leaderboard = "leaderboard";

    /// <summary>
    /// Adds the policies. Every endpoint without its own policy, and every plain [Authorize], needs a signed-in user with
    /// one of the roles: an account without a role (none given, or its role removed) reads nothing.
    /// </summary>
    public static void Add(AuthorizationOptions o)
    {
        o.AddPolicy(Admin, p => p.RequireRole(Roles.Admin));
        o.AddPolicy(Researcher, p => p.RequireRole(Roles.Admin, Roles.Researcher));
        o.AddPolicy(Viewer, p => p.RequireRole(Roles.All));
        o.AddPolicy(Leaderboard, p => p.AddRequirements(new LeaderboardRequirement()));
        var anyRole = new AuthorizationPolicyBuilder().RequireAuthenticatedUser().RequireRole(Roles.All).Build();
        o.FallbackPolicy = anyRole;
        o.DefaultPolicy = anyRole;
    }
}

/// <summary>Met by any signed-in user with a role, or by anyone when the leaderboard is configured public.</summary>
public sealed class LeaderboardRequirement : IAuthorizationRequirement;

sealed class LeaderboardHandler(IOptions<PortalOptions> options) : AuthorizationHandler<LeaderboardRequirement>
{
    protected override Task HandleRequirementAsync(AuthorizationHandlerContext context, LeaderboardRequirement requirement)
    {
        if (options.Value.Auth.PublicLeaderboard || (context.User.Identity?.IsAuthenticated == true && Roles.All.Any(context.User.IsInRole)))
            context.Succeed(requirement);
        return Task.CompletedTask;
    }
}

/// <summary>Portal:Auth settings.</summary>
public sealed class AuthOptions
{
    /// <summary>Serve /leaderboard and GET /api/leaderboard(.csv/.tex) to anonymous users, read only (default false).</summary>
    public bool PublicLeaderboard { get; set; }
    /// <summary>Wrong passwords from one source address that cost nothing; each further one doubles the wait before its next try (default 5).</summary>
    public int LoginFreeFailures { get; set; } = 5;
    /// <summary>The longest wait a source is made to keep between two sign-in tries (default 300 s).</summary>
    public double LoginMaxDelaySeconds { get; set; } = 300;
}
