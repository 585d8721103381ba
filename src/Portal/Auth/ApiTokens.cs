using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Portal.Experiments;
using Portal.Datasets;
using Portal.Zoo;
using Portal.Runs;
using Portal.Store;

namespace Portal.Auth;

/// <summary>A user's own API tokens: created (the text is returned once), listed, revoked.</summary>
public sealed class ApiTokens(IDbContextFactory<PortalDb> dbFactory, AuditLog audit)
{
    /// <summary>The token text's prefix, so a leaked token is recognisable.</summary>
    public const string Prefix = "fp_";

    /// <summary>
    /// A new token of 32 random bytes for <paramref name="userId"/>; only its hash is stored, the text is returned once.
    /// <paramref name="actorName"/> names who made it in the audit log (default: the acting user).
    /// </summary>
    public async Task<(ApiToken Token, string Text)> CreateAsync(string userId, string? name, string? actorName = null)
    {
        name = name?.Trim();
        if (string.IsNullOrEmpty(name)) throw new FieldException("name", "name is required (e.g. \"laptop cli\")");
        if (name.Length > 100) throw new FieldException("name", "name must be at most 100 characters");
        var text = Prefix + Base64Url(RandomNumberGenerator.GetBytes(32));
        var token = new ApiToken { UserId = userId, Name = name, Hash = Hash(text), CreatedAt = DateTime.UtcNow };
        await using (var db = await dbFactory.CreateDbContextAsync())
        {
            db.ApiTokens.Add(token);
            await db.SaveChangesAsync();
        }
        await audit.RecordAsync("token.create", $"token:{token.Id}", name, actorName);
        return (token, text);
    }

    public async Task<List<ApiToken>> ListAsync(string userId)
    {
        await using var db = await dbFactory.CreateDbContextAsync();
        return await db.ApiTokens.AsNoTracking().Where(t => t.UserId == userId).OrderByDescending(t => t.Id).ToListAsync();
    }

    /// <summary>Revokes one of the user's own tokens; false when the user has no such token.</summary>
    public async Task<bool> RevokeAsync(string userId, long id)
    {
        await using var db = await dbFactory.CreateDbContextAsync();
        var token = await db.ApiTokens.SingleOrDefaultAsync(t => t.Id == id && t.UserId == userId);
        if (token is null) return false;
        token.RevokedAt ??= DateTime.UtcNow;
        await db.SaveChangesAsync();
        await audit.RecordAsync("token.revoke", $"token:{id}", token.Name);
        return true;
    }

    public static string Hash(string text) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)));

    public static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}

/// <summary>Authenticates "Authorization: Bearer &lt;token&gt;" against the stored hashes; the principal carries the user's role.</summary>
sealed class ApiTokenHandler(IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder,
    IDbContextFactory<PortalDb> dbFactory, UserManager<PortalUser> users, IUserClaimsPrincipalFactory<PortalUser> principals)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "Bearer";

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var header = Request.Headers.Authorization.ToString();
        if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)) return AuthenticateResult.NoResult();
        var hash = ApiTokens.Hash(header["Bearer ".Length..].Trim());
        await using var db = await dbFactory.CreateDbContextAsync();
        ApiToken? token;
        // An unusable store fails the authentication (401), so /api/health can still report it rather than a 500.
        try { token = await db.ApiTokens.AsNoTracking().SingleOrDefaultAsync(t => t.Hash == hash); }
        catch (Exception e) when (e is Microsoft.Data.Sqlite.SqliteException or InvalidOperationException or DbUpdateException)
        {
            return AuthenticateResult.Fail($"the token store is unavailable: {e.Message}");
        }
        if (token is null) return AuthenticateResult.Fail("unknown API token");
        if (token.RevokedAt is not null) return AuthenticateResult.Fail("the API token was revoked");
        var user = await users.FindByIdAsync(token.UserId);
        if (user is null) return AuthenticateResult.Fail("the API token's user no longer exists");
        // Only an admin's lock stops tokens: wrong passwords never lock anyone (LoginThrottle), so nobody can turn them off from outside.
        if (UserAdmin.IsLockedByAdmin(user)) return AuthenticateResult.Fail("the API token's user is locked by an admin");
        var now = DateTime.UtcNow;
        await db.ApiTokens.Where(t => t.Id == token.Id).ExecuteUpdateAsync(s => s.SetProperty(t => t.LastUsedAt, now));
        var principal = await principals.CreateAsync(user);
        var identity = new ClaimsIdentity(principal.Claims, SchemeName, ClaimTypes.Name, ClaimTypes.Role);
        return AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), SchemeName));
    }

    protected override async Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        var failure = (await HandleAuthenticateOnceSafeAsync()).Failure?.Message;
        Response.Headers.WWWAuthenticate = "Bearer";
        await AuthProblems.WriteAsync(Context, 401, "authentication required",
            failure ?? (HttpMethods.IsGet(Request.Method) || HttpMethods.IsHead(Request.Method)
                ? "sign in, or send Authorization: Bearer <token>"
                : "unsafe API methods need Authorization: Bearer <token> (a browser cookie alone is not accepted); create a token on /account/tokens"));
    }

    protected override Task HandleForbiddenAsync(AuthenticationProperties properties) =>
        AuthProblems.WriteAsync(Context, 403, "forbidden", $"{Context.User.Identity?.Name} may not do this");
}

/// <summary>401/403 answers as problem details.</summary>
static class AuthProblems
{
    public static Task WriteAsync(HttpContext http, int status, string title, string detail)
    {
        http.Response.StatusCode = status;
        return http.Response.WriteAsJsonAsync(new Microsoft.AspNetCore.Mvc.ProblemDetails { Status = status, Title = title, Detail = detail },
            options: (System.Text.Json.JsonSerializerOptions?)null, contentType: "application/problem+json");
    }
}
