using Hangfire;
using Portal.Api;
using Portal.Components;
using Portal.Infrastructure;

var builder = WebApplication.CreateBuilder(args);
// The top-level appsettings.json (copied next to the app) is the base configuration, whatever the working directory.
builder.Configuration.Sources.Insert(0, new Microsoft.Extensions.Configuration.Json.JsonConfigurationSource
{
    Path = "appsettings.json", Optional = false, ReloadOnChange = false,
    FileProvider = new Microsoft.Extensions.FileProviders.PhysicalFileProvider(AppContext.BaseDirectory),
});

// Serve the static web assets (the top-level wwwroot/ through src/Portal/wwwroot, and MudBlazor's) from the build
// output in every environment, wherever the app is started from, not only in Development.
builder.WebHost.UseStaticWebAssets();

builder.Services.AddPortalStore(builder.Configuration);   // SQLite store, data directory, migrations on start
builder.Services.AddPortalJobs(builder.Configuration);    // runs, jobs, Hangfire queues, recovery on start
builder.Services.AddPortalTorch();                        // torch loaded in the background with the configured device
builder.Services.AddPortalLeaderboard();                 // leaderboard query over the evaluation runs
builder.Services.AddPortalUi();                           // Blazor Server, MudBlazor, OpenAPI

var app = builder.Build();
app.UseExceptionHandler();
app.UseStatusCodePages();
app.UseAntiforgery();
app.MapStaticAssets();
app.MapOpenApi();
app.MapPortalApi();
app.MapLeaderboardApi();
app.MapArtifactApi();
app.MapExperimentApi();
app.MapMatrixApi();
app.MapZooApi();
app.MapHangfireDashboard("/hangfire", new DashboardOptions
{
    Authorization = [new LocalRequestsOnly(app.Services)],
    DisplayStorageConnectionString = false,
});
app.MapRazorComponents<App>().AddInteractiveServerRenderMode();
app.Run();

/// <summary>Entry point type, visible to WebApplicationFactory in the tests.</summary>
public partial class Program;
