using System.Security.Claims;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Portal.Api;
using Portal.Experiments;
using Portal.Datasets;
using Portal.Zoo;
using Portal.Runs;
using Portal.Store;

namespace Portal.Auth;

/// <summary>POST /api/tokens body.</summary>
public sealed record CreateTokenRequest(string? Name);
/// <summary>201 answer: the token text, shown this once.</summary>
public sealed record CreatedTokenDto(long Id, string Name, string Token, DateTime CreatedAt);
/// <summary>A token as listed (never its text).</summary>
public sealed record TokenDto(long Id, string Name, DateTime CreatedAt, DateTime? LastUsedAt, DateTime? RevokedAt)
{
    public static TokenDto From(ApiToken t) => new(t.Id, t.Name, t.CreatedAt, t.LastUsedAt, t.RevokedAt);
}
public sealed record AuditEventDto(long Id, DateTime At, string UserName, string Action, string Target, string? Detail);

/// <summary>The caller's own API tokens, the audit log (admin), and logout.</summary>
public static class AuthEndpoints
{
    public static IEndpointRouteBuilder MapAuthApi(this IEndpointRouteBuilder app)
    {
        var tokens = app.MapGroup("/api/tokens").WithTags("auth").RequireAuthorization(Policies.Viewer);
        tokens.MapGet("", async (ClaimsPrincipal user, ApiTokens service) =>
                (await service.ListAsync(UserId(user))).Select(TokenDto.From).ToList())
            .WithSummary("The caller's API tokens (name, created, last used, revoked; never the token text)");
        tokens.MapPost("", async Task<IResult> (CreateTokenRequest? body, ClaimsPrincipal user, ApiTokens service) =>
            {
                try
                {
                    var (token, text) = await service.CreateAsync(UserId(user), body?.Name);
                    return TypedResults.Created($"/api/tokens/{token.Id}", new CreatedTokenDto(token.Id, token.Name, text, token.CreatedAt));
                }
                catch (FieldException e) { return ApiEndpoints.FieldProblem(e); }
            })
            .WithSummary("Create a token {\"name\"}: 201 with the token text, shown once (only its SHA-256 is stored)");
        tokens.MapDelete("/{id:long}", async Task<IResult> (long id, ClaimsPrincipal user, ApiTokens service) =>
                await service.RevokeAsync(UserId(user), id) ? TypedResults.NoContent()
                    : TypedResults.NotFound(new ApiEndpoints.ProblemDetailsLite("https://tools.ietf.org/html/rfc9110#section-15.5.5", "token not found", 404, $"you have no token with id {id}")))
            .WithSummary("Revoke one of the caller's tokens: 204; 404 when the caller has no such token");

        app.MapGet("/api/audit", async (int? take, string? action, IDbContextFactory<PortalDb> dbFactory) =>
            {
                await using var db = await dbFactory.CreateDbContextAsync();
                var q = db.AuditEvents.AsNoTracking();
                if (!string.IsNullOrWhiteSpace(action)) q = q.Where(e => e.Action == action);
                return (await q.OrderByDescending(e => e.Id).Take(Math.Clamp(take ?? 200, 1, 5000)).ToListAsync())
                    .Select(e => new AuditEventDto(e.Id, e.At, e.UserName, e.Action, e.Target, e.Detail)).ToList();
            })
            .RequireAuthorization(Policies.Admin).WithTags("auth")
            .WithSummary("The audit log, newest first (admin): who queued, cancelled, deleted, registered, created users and tokens; ?action=&take=");

        // A form post from the layout (antiforgery-checked), not an API call.
        app.MapPost("/account/logout", async (SignInManager<PortalUser> signIn, [Microsoft.AspNetCore.Mvc.FromForm] string? returnUrl) =>
        {
            await signIn.SignOutAsync();
            return TypedResults.LocalRedirect("~/account/login");
        }).AllowAnonymous().ExcludeFromDescription(); // an account without a role may still sign out
        return app;
    }

    static string UserId(ClaimsPrincipal user) =>
        user.FindFirstValue(ClaimTypes.NameIdentifier) ?? throw new AccessDeniedException("the caller has no user id");
}
