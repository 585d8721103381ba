using Hangfire;
using Portal.Api;
using Portal.Auth;
using Portal.Components;
using Portal.Infrastructure;

// `worker`: a jobs-only process (no web server) that joins the shared queue (Infrastructure/WorkerHost.cs).
if (WorkerHost.Is(args)) return await WorkerHost.RunAsync(args);
// `users add NAME --role R --token T`: the headless first account and API token, on the configured store (Auth/UsersCommand.cs).
if (Portal.Auth.UsersCommand.Is(args)) return await Portal.Auth.UsersCommand.RunAsync(args);
// `leaderboard rebuild [--all]`: the leaderboard's rows indexed again from the runs, on the configured store (Leaderboard/LeaderboardCommand.cs).
if (Portal.Leaderboard.LeaderboardCommand.Is(args)) return await Portal.Leaderboard.LeaderboardCommand.RunAsync(args);
// `demo-report`: the demo benchmark run in this process, its tables printed (Experiments/Demo/DemoReportCommand.cs).
var demoReport = Portal.Experiments.DemoReportCommand.Is(args) ? Portal.Experiments.DemoReportCommand.Parse(args) : null;
var builder = WebApplication.CreateBuilder(demoReport is null ? args : Portal.Experiments.DemoReportCommand.HostArgs(demoReport));
// The top-level appsettings.json (copied next to the app) is the base configuration, whatever the working directory.
PortalConfiguration.AddAppSettings(builder.Configuration);
// Portal:Mode=worker in any configuration source: the same as the `worker` verb.
if (demoReport is null && builder.Configuration[$"{PortalOptions.Section}:Mode"] == PortalModes.Worker) return await WorkerHost.RunAsync(args);
// Jobs on a CUDA device need the CUDA build: stop now, saying so, rather than at the first job.
if (TorchBuildCheck.Refuse(builder.Configuration)) return TorchBuildCheck.ExitCode;

// Serve the static web assets (the top-level wwwroot/ through src/Portal/wwwroot, and MudBlazor's) from the build
// output in every environment, wherever the app is started from, not only in Development.
builder.WebHost.UseStaticWebAssets();

builder.Services.AddPortalCore(builder.Configuration);    // store (SQLite or PostgreSQL), runs and jobs, torch, leaderboard, demo definitions
builder.Services.AddPortalUi();                           // Blazor Server, MudBlazor, OpenAPI
builder.Services.AddPortalAuth();                         // accounts and roles (Identity), cookie + API tokens, policies, audit

var app = builder.Build();
app.UseExceptionHandler();
app.UseStatusCodePages();
Portal.Auth.AuthSetup.UsePortalAuth(app);                 // body limit, authentication, authorization, the API's role guard
app.UseAntiforgery();
app.MapStaticAssets().AllowAnonymous();
app.MapOpenApi();
app.MapPortalApi();
app.MapLeaderboardApi();
app.MapArtifactApi();
app.MapExperimentApi();
app.MapMatrixApi();
Portal.Experiments.SubmissionEndpoints.MapSubmissionApi(app); // score submissions (runs of kind "submission")
app.MapZooApi();
app.MapWorkerApi();
Portal.Auth.AuthEndpoints.MapAuthApi(app);
app.MapHangfireDashboard("/hangfire", new DashboardOptions
{
    Authorization = [new LocalRequestsOnly(app.Services)],
    DisplayStorageConnectionString = false,
}).RequireAuthorization(Portal.Auth.Policies.Admin);
app.MapRazorComponents<App>().AddInteractiveServerRenderMode();
if (demoReport is not null) return await Portal.Experiments.DemoReportCommand.RunAsync(app, demoReport, args);
app.Run();
return 0;

/// <summary>Entry point type, visible to WebApplicationFactory in the tests.</summary>
public partial class Program;
