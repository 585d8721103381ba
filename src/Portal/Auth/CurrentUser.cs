using System.Security.Claims;
using Microsoft.AspNetCore.Components.Authorization;

namespace Portal.Auth;

/// <summary>
/// Who is acting: a signed-in user (from the HTTP request or the Blazor circuit), an anonymous web visitor, or the portal
/// itself (jobs, start-up: no request and no circuit), which may do anything.
/// </summary>
public sealed record Actor(string? UserId, string Name, string? Role, bool IsSystem)
{
    public static readonly Actor System = new(null, "system", null, true);
    /// <summary>No one signed in: may read only what is public.</summary>
    public static readonly Actor Anonymous = new(null, "anonymous", null, false);
    public bool IsAdmin => IsSystem || Role == Roles.Admin;
    public bool CanQueue => IsAdmin || Role == Roles.Researcher;

    /// <summary>Cancel, tag or delete a run: admins any run, researchers their own (never a system run).</summary>
    public bool CanChange(string? ownerId) => IsAdmin || (Role == Roles.Researcher && ownerId is not null && ownerId == UserId);

    public static Actor From(ClaimsPrincipal user)
    {
        if (user.Identity?.IsAuthenticated != true) return Anonymous;
        var role = Roles.All.FirstOrDefault(user.IsInRole);
        return new Actor(user.FindFirstValue(ClaimTypes.NameIdentifier), user.Identity.Name ?? "?", role, false);
    }
}

/// <summary>Finds the acting user of the current scope; see <see cref="Actor"/>.</summary>
public sealed class CurrentUser(IServiceProvider services)
{
    public async Task<Actor> GetAsync()
    {
        // A Blazor circuit (or a static page render) has its authentication state; an API request or a job scope does not.
        // (From the root provider, or before the state is set, this throws InvalidOperationException: not a circuit.)
        try
        {
            if (services.GetService<AuthenticationStateProvider>() is { } provider)
                return Actor.From((await provider.GetAuthenticationStateAsync()).User);
        }
        catch (InvalidOperationException) { }
        var http = services.GetService<IHttpContextAccessor>()?.HttpContext;
        return http is null ? Actor.System : Actor.From(http.User);
    }

    /// <summary>Throws <see cref="AccessDeniedException"/> unless the actor may queue runs or register data and weights.</summary>
    public async Task<Actor> RequireQueueAsync(string what)
    {
        var actor = await GetAsync();
        if (!actor.CanQueue) throw new AccessDeniedException($"{actor.Name} ({actor.Role ?? "no role"}) may not {what}: it needs the researcher or admin role");
        return actor;
    }
}

/// <summary>The acting user may not do this (HTTP 403 with the message).</summary>
public sealed class AccessDeniedException(string message) : Exception(message);
