using Hangfire.Dashboard;
using Microsoft.Extensions.Options;

namespace Portal.Infrastructure;

/// <summary>The Hangfire dashboard answers admins only, and local requests only unless Portal:HangfireDashboardRemote is set.</summary>
public sealed class LocalRequestsOnly(IServiceProvider services) : IDashboardAuthorizationFilter
{
    public bool Authorize(DashboardContext context)
    {
        var http = context.GetHttpContext();
        if (!http.User.IsInRole(Auth.Roles.Admin)) return false;
        if (services.GetRequiredService<IOptions<PortalOptions>>().Value.HangfireDashboardRemote) return true;
        var remote = http.Connection.RemoteIpAddress;
        return remote is null || System.Net.IPAddress.IsLoopback(remote) || remote.Equals(http.Connection.LocalIpAddress);
    }
}
