using Portal.Experiments;
using Portal.Datasets;
using Portal.Zoo;
using Portal.Runs;

namespace Portal.Api;

/// <summary>GET /api/workers: the job-running processes (live, stopped, gone) and the runs each live one executes.</summary>
public static class WorkerEndpoints
{
    public static IEndpointRouteBuilder MapWorkerApi(this IEndpointRouteBuilder app)
    {
        app.MapGet("/api/workers", async (WorkerDirectory workers, CancellationToken ct) => await workers.ListAsync(ct))
            .WithTags("portal")
            .WithSummary("Job-running processes: state live|stopped|gone (heartbeat older than Portal:Jobs:OrphanAfterSeconds, or its process on this host has exited), device, queues, current runs");
        return app;
    }
}
