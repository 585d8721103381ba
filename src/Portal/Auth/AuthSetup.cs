using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Portal.Infrastructure;
using Portal.Store;

namespace Portal.Auth;

/// <summary>Accounts (Identity in the portal's store), the cookie and bearer-token schemes, the policies and the API's guard.</summary>
public static class AuthSetup
{
    /// <summary>Picks the scheme: a bearer header, or any unsafe /api request, goes to tokens; everything else to the cookie.</summary>
    public const string PortalScheme = "portal";
    /// <summary>The largest API request body (413 above).</summary>
    public const long MaxApiBodyBytes = 1 << 20;

    public static IServiceCollection AddPortalAuth(this IServiceCollection services)
    {
        // Identity's stores need a scoped context; the portal otherwise uses the factory.
        services.AddScoped(sp => sp.GetRequiredService<IDbContextFactory<PortalDb>>().CreateDbContext());
        services.AddIdentityCore<PortalUser>(o =>
            {
                o.Password.RequiredLength = 10;
                // Wrong passwords never lock an account (the login page uses LoginThrottle, per source); only an admin's lock does.
                o.Lockout.MaxFailedAccessAttempts = 10;
                o.User.RequireUniqueEmail = false;
            })
            .AddRoles<IdentityRole>()
            .AddEntityFrameworkStores<PortalDb>()
            .AddSignInManager()
            .AddDefaultTokenProviders();
        services.AddAuthentication(o =>
            {
                o.DefaultScheme = PortalScheme;
                o.DefaultSignInScheme = IdentityConstants.ApplicationScheme;
            })
            .AddPolicyScheme(PortalScheme, "cookie or bearer token", o => o.ForwardDefaultSelector = http =>
                http.Request.Headers.Authorization.ToString().StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) || IsUnsafeApi(http.Request)
                    ? ApiTokenHandler.SchemeName : IdentityConstants.ApplicationScheme)
            .AddScheme<AuthenticationSchemeOptions, ApiTokenHandler>(ApiTokenHandler.SchemeName, null)
            .AddIdentityCookies();
        services.ConfigureApplicationCookie(o =>
        {
            o.LoginPath = "/account/login";
            o.LogoutPath = "/account/logout";
            o.AccessDeniedPath = "/account/denied";
            o.Cookie.Name = "portal.auth";
            o.Cookie.SameSite = SameSiteMode.Lax;
            // The API answers 401/403 rather than a redirect to the login page.
            o.Events.OnRedirectToLogin = c => IsApi(c.Request) ? AuthProblems.WriteAsync(c.HttpContext, 401, "authentication required", "sign in, or send Authorization: Bearer <token>") : Redirect(c);
            o.Events.OnRedirectToAccessDenied = c => IsApi(c.Request) ? AuthProblems.WriteAsync(c.HttpContext, 403, "forbidden", $"{c.HttpContext.User.Identity?.Name} may not do this") : Redirect(c);
        });
        // A role change or a lock reaches signed-in browsers within a minute.
        services.Configure<SecurityStampValidatorOptions>(o => o.ValidationInterval = TimeSpan.FromMinutes(1));
        services.AddAuthorization(Policies.Add);
        services.AddSingleton<IAuthorizationHandler, LeaderboardHandler>();
        services.AddCascadingAuthenticationState();
        services.AddHttpContextAccessor();
        // Transient: jobs and hosted services (root provider) use them too, where they find no user and act as the portal.
        services.AddTransient<CurrentUser>();
        services.AddTransient<AuditLog>();
        services.AddTransient<ApiTokens>();
        services.AddScoped<UserAdmin>();
        services.AddSingleton(sp => new LoginThrottle(sp.GetRequiredService<Microsoft.Extensions.Options.IOptions<PortalOptions>>().Value.Auth, TimeProvider.System));
        services.AddSingleton<AdminSetup>();
        services.AddHostedService<AdminSetupStartup>();
        services.AddExceptionHandler<ApiExceptionHandler>();
        // Malformed bodies reach ApiExceptionHandler in every environment, so the answer names the field.
        services.Configure<Microsoft.AspNetCore.Routing.RouteHandlerOptions>(o => o.ThrowOnBadRequest = true);
        return services;
    }

    static Task Redirect(RedirectContext<Microsoft.AspNetCore.Authentication.Cookies.CookieAuthenticationOptions> c)
    {
        c.Response.Redirect(c.RedirectUri);
        return Task.CompletedTask;
    }

    static bool IsApi(HttpRequest r) => r.Path.StartsWithSegments("/api");

    static bool IsUnsafeApi(HttpRequest r) =>
        IsApi(r) && !(HttpMethods.IsGet(r.Method) || HttpMethods.IsHead(r.Method) || HttpMethods.IsOptions(r.Method));

    /// <summary>
    /// Authentication, authorization, and the API guard: bodies over 1 MB are refused (413), and every unsafe /api call
    /// except the caller's own tokens needs the researcher policy (the services check again).
    /// </summary>
    public static WebApplication UsePortalAuth(this WebApplication app)
    {
        app.Use(async (http, next) =>
        {
            if (IsApi(http.Request))
            {
                if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit) limit.MaxRequestBodySize = MaxApiBodyBytes;
                if (http.Request.ContentLength > MaxApiBodyBytes)
                {
                    await AuthProblems.WriteAsync(http, 413, "request body too large", $"the body ({http.Request.ContentLength} bytes) is over the API's limit of {MaxApiBodyBytes} bytes");
                    return;
                }
            }
            await next();
        });
        app.UseAuthentication();
        app.UseAuthorization();
        app.Use(async (http, next) =>
        {
            if (IsUnsafeApi(http.Request) && !http.Request.Path.StartsWithSegments("/api/tokens") && http.User.Identity?.IsAuthenticated == true)
            {
                var authz = http.RequestServices.GetRequiredService<IAuthorizationService>();
                if (!(await authz.AuthorizeAsync(http.User, Policies.Researcher)).Succeeded)
                {
                    var actor = Actor.From(http.User);
                    await AuthProblems.WriteAsync(http, 403, "forbidden",
                        $"{actor.Name} ({actor.Role ?? "no role"}) may not change anything: {http.Request.Method} {http.Request.Path} needs the researcher or admin role");
                    return;
                }
            }
            await next();
        });
        return app;
    }
}

/// <summary>Access denied -> 403; a body or parameter that does not bind -> its 4xx, naming the field; never a 500 for bad input.</summary>
sealed class ApiExceptionHandler(IProblemDetailsService problems) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext http, Exception exception, CancellationToken ct)
    {
        (int Status, string Title, string Detail, string? Field)? answer = exception switch
        {
            AccessDeniedException e => (403, "forbidden", e.Message, null),
            BadHttpRequestException { InnerException: System.Text.Json.JsonException json } e =>
                (e.StatusCode, "invalid body", $"{e.Message} {json.Message}", FieldOf(json.Path)),
            BadHttpRequestException e => (e.StatusCode, e.StatusCode == 413 ? "request body too large" : "bad request", e.Message, null),
            _ => null,
        };
        if (answer is not { } a) return false;
        http.Response.StatusCode = a.Status;
        var details = new Microsoft.AspNetCore.Mvc.ProblemDetails { Status = a.Status, Title = a.Title, Detail = a.Detail };
        if (a.Field is not null) details.Extensions["errors"] = new Dictionary<string, string[]> { [a.Field] = [a.Detail] };
        return await problems.TryWriteAsync(new ProblemDetailsContext { HttpContext = http, ProblemDetails = details, Exception = exception });
    }

    /// <summary>"$.config.seed" -> "config.seed"; "$" (the whole body) -> "body".</summary>
    static string FieldOf(string? path) => path is null or "$" ? "body" : path.StartsWith("$.", StringComparison.Ordinal) ? path[2..] : path;
}
