using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Portal.Store;
using Portal.Experiments;
using Portal.Datasets;
using Portal.Zoo;
using Portal.Runs;

namespace Portal.Api;

/// <summary>
/// Grid experiments: POST /api/experiments queues a grid (reusing computed cells), GET /api/experiments/{id} reports it;
/// GET /api/pipelines/{runId}/children lists a pipeline run's stage runs.
/// </summary>
public static class ExperimentEndpoints
{
    public static IEndpointRouteBuilder MapExperimentApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/experiments").WithTags("experiments");
        api.MapPost("", QueueAsync)
            .WithSummary("Queue a grid: {\"kind\", \"config\": {...}, \"axes\": {\"field\": [values]}, \"seeds\": [..]}; 202 with the id and cells (reused: true where a run already computes the cell); 400 naming the invalid field");
        api.MapGet("/{id}", async (string id, ExperimentService experiments) =>
                await experiments.GetAsync(id) is { } e ? Results.Ok(e)
                    : Results.NotFound(new ApiEndpoints.ProblemDetailsLite("https://tools.ietf.org/html/rfc9110#section-15.5.5",
                        "experiment not found", 404, $"no experiment with id {id}")))
            .WithSummary("An experiment's cells with their runs' status, and each metric's mean ± sd over the seeds of a cell");
        app.MapGet("/api/pipelines/{runId:long}/children", async (long runId, IDbContextFactory<PortalDb> dbFactory) =>
            {
                await using (var db = await dbFactory.CreateDbContextAsync())
                    if (!await db.Runs.AnyAsync(r => r.Id == runId && r.Kind == PipelineJob.KindName))
                        return Results.NotFound(new ApiEndpoints.ProblemDetailsLite("https://tools.ietf.org/html/rfc9110#section-15.5.5",
                            "pipeline not found", 404, $"no pipeline run with id {runId}"));
                return Results.Ok(await PipelineJob.ChildrenAsync(dbFactory, runId));
            })
            .WithTags("experiments")
            .WithSummary("A pipeline run's stages: [{stage, runId, kind, status, progress, phase, error, created}] (created: false when the stage reused an existing run)")
            .Produces<IReadOnlyList<PipelineChild>>();
        return app;
    }

    static async Task<IResult> QueueAsync(HttpRequest http, ExperimentService experiments)
    {
        ExperimentRequest? request;
        // Read the body ourselves so malformed JSON is a 400 naming the body rather than the framework's bare 400.
        try { request = await http.ReadFromJsonAsync<ExperimentRequest>(); }
        catch (JsonException e) { return ApiEndpoints.FieldProblem(new FieldException("body", $"the body is not a valid experiment request: {e.Message}")); }
        catch (InvalidOperationException e) { return ApiEndpoints.FieldProblem(new FieldException("body", e.Message)); }
        if (request is null) return ApiEndpoints.FieldProblem(new FieldException("body", "a JSON body {\"kind\", \"config\", \"axes\"} is required"));
        try
        {
            var experiment = await experiments.QueueAsync(request);
            return TypedResults.Accepted($"/api/experiments/{experiment.Id}", experiment);
        }
        catch (FieldException e) { return ApiEndpoints.FieldProblem(e); }
    }
}
