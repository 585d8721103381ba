using Portal.Api;
using Portal.Infrastructure;
using Portal.Experiments;
using Portal.Datasets;
using Portal.Zoo;
using Portal.Runs;

namespace Portal.Experiments;

/// <summary>The body of POST /api/submissions: the dataset, its split (null: every image), the detector's name and the CSV text.</summary>
public sealed record SubmissionRequest(long? DatasetId, string? Split, string? Detector, string? Scores);

/// <summary>Score submissions for detectors that cannot run here.</summary>
public static class SubmissionEndpoints
{
    public static IEndpointRouteBuilder MapSubmissionApi(this IEndpointRouteBuilder app)
    {
        app.MapPost("/api/submissions", async (SubmissionRequest? body, RunService runs, PortalPaths paths) =>
            {
                if (body?.DatasetId is not { } datasetId) return ApiEndpoints.FieldProblem(new FieldException("datasetId", "datasetId is required"));
                try
                {
                    var run = await SubmissionJob.SubmitAsync(runs, paths, datasetId, body.Split, body.Detector, body.Scores);
                    return Results.Accepted($"/api/runs/{run.Id}", RunDto.From(run, (await runs.ActorAsync()).Name));
                }
                catch (FieldException e) { return ApiEndpoints.FieldProblem(e); }
            })
            .WithTags("submissions")
            .WithSummary("Submit scores computed elsewhere: {datasetId, split?, detector, scores: CSV text with path,score[,logit][,label]}; " +
                         "202 with the run (kind submission); 400 naming the field, for scores the first offending rows");
        return app;
    }
}
