using Forensics.ML.Runtime;
using Hangfire;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Portal.Infrastructure;
using Portal.Experiments;
using Portal.Datasets;
using Portal.Zoo;
using Portal.Runs;
using Portal.Store;

namespace Portal.Api;

/// <summary>The JSON API shared by the UI's scripts and the CLI: health, datasets, runs. Described at /openapi/v1.json.</summary>
public static class ApiEndpoints
{
    public static IEndpointRouteBuilder MapPortalApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api").WithTags("portal");

        // Anonymous, for load balancers and start-up scripts: it reveals status only.
        api.MapGet("/health", HealthAsync).AllowAnonymous().WithSummary("Database, job server and torch status: 200 when all are up, else 503 (no login needed)");

        api.MapPost("/datasets", RegisterDatasetAsync).WithSummary("Register a dataset folder: 202 with the dataset id and its registration run id");
        api.MapGet("/datasets", async (DatasetService datasets) => (await datasets.ListAsync()).Select(DatasetDto.From).ToList())
            .WithSummary("All datasets (the unreadable list is included only by GET /api/datasets/{id})");
        api.MapGet("/datasets/{id:long}", async Task<Results<Ok<DatasetDto>, NotFound<ProblemDetailsLite>>> (long id, DatasetService datasets) =>
            await datasets.GetAsync(id) is { } d ? TypedResults.Ok(DatasetDto.From(d)) : TypedResults.NotFound(NotFound("dataset", id)))
            .WithSummary("One dataset with its counts per generator, split and label, and its unreadable files");
        api.MapPost("/datasets/{id:long}/rescan", async Task<Results<Accepted<RegisterDatasetResponse>, NotFound<ProblemDetailsLite>>> (long id, DatasetService datasets) =>
            await datasets.RescanAsync(id) is { } run
                ? TypedResults.Accepted($"/api/runs/{run.Id}", new RegisterDatasetResponse(id, run.Id))
                : TypedResults.NotFound(NotFound("dataset", id)))
            .WithSummary("Scan a registered dataset's folder again; the stored counts stay until the scan succeeds");

        api.MapPost("/runs", QueueRunAsync).WithSummary("Queue a run: {\"kind\": \"evaluate\", \"config\": {...}, \"seed\": n, \"tags\": [\"...\"]}; 202 with the run, 400 naming the invalid field");
        api.MapPut("/runs/{id:long}/tags", async Task<IResult> (long id, RunTagsRequest? body, RunService runs) =>
        {
            try
            {
                return await runs.SetTagsAsync(id, body?.Tags) is { } r ? TypedResults.Ok(RunDto.From(r)) : TypedResults.NotFound(NotFound("run", id));
            }
            catch (FieldException e) { return FieldProblem(e); }
        }).WithSummary("Replace a run's tags ({\"tags\": [\"ablation-t\"]}: lower-case letters, digits, - _ . :); the leaderboard filters by tag");
        api.MapGet("/runs", ListRunsAsync).WithSummary("Runs, newest first; filter by status and kind; skip/take paging");
        api.MapGet("/runs/{id:long}", async Task<Results<Ok<RunDto>, NotFound<ProblemDetailsLite>>> (long id, IDbContextFactory<PortalDb> dbf) =>
        {
            await using var db = await dbf.CreateDbContextAsync();
            if (await db.Runs.AsNoTracking().SingleOrDefaultAsync(r => r.Id == id) is not { } r) return TypedResults.NotFound(NotFound("run", id));
            return TypedResults.Ok(RunDto.From(r, (await RunDto.OwnerNamesAsync(db, [r])).GetValueOrDefault(r.OwnerId ?? "")));
        }).WithSummary("One run: kind, status (queued|running|succeeded|failed|canceled), progress 0..1, error");
        api.MapGet("/runs/{id:long}/log", async (long id, int? tail, RunQuery query) =>
            (await query.LogTailAsync(id, Math.Clamp(tail ?? 200, 1, 5000))).Select(l => new RunLogDto(l.At, l.Level, l.Message)).ToList()).WithSummary("The last lines of a run's log (tail, default 200)");
        api.MapPost("/runs/{id:long}/cancel", CancelRunAsync).WithSummary("Cancel a queued or running run (its owner or an admin; 403 otherwise)");
        api.MapDelete("/runs/{id:long}", async Task<IResult> (long id, RunService runs) => await runs.DeleteAsync(id) switch
            {
                DeleteOutcome.NotFound => TypedResults.NotFound(NotFound("run", id)),
                DeleteOutcome.NotFinished => TypedResults.Problem($"run {id} has not finished: cancel it first", statusCode: 409, title: "run not finished"),
                _ => TypedResults.NoContent(),
            })
            .WithSummary("Delete a finished run (its owner or an admin): the row, its metrics, log, leaderboard entries and artifact rows; its files under data/runs/{id} stay. 204; 409 while queued or running");
        api.MapPost("/runs/{id:long}/rerun", async Task<IResult> (long id, RunService runs) =>
            {
                try
                {
                    return await runs.RerunAsync(id) is { } r
                        ? TypedResults.Accepted($"/api/runs/{r.Id}", RunDto.From(r, r.OwnerId is null ? null : (await runs.ActorAsync()).Name))
                        : TypedResults.NotFound(NotFound("run", id));
                }
                catch (FieldException e) { return FieldProblem(e); }
            })
            .WithSummary("Queue a new run with the same kind, config and seed; 409 while the run is queued or running");
        api.MapGet("/runs/{id:long}/queue", async Task<IResult> (long id, RunService runs) =>
                await runs.QueuePlaceAsync(id, show: 20) is { } place ? TypedResults.Ok(place) : TypedResults.NotFound(NotFound("queued run", id)))
            .WithSummary("A queued run's place: its queue, position (1 = next), the runs running there and the runs ahead of it; 404 unless queued");
        return app;
    }

    /// <summary>A problem-details body (RFC 9457) with the offending field.</summary>
    public sealed record ProblemDetailsLite(string Type, string Title, int Status, string Detail, IDictionary<string, string[]>? Errors = null);

    static ProblemDetailsLite NotFound(string what, long id) =>
        new("https://tools.ietf.org/html/rfc9110#section-15.5.5", $"{what} not found", 404, $"no {what} with id {id}");

    static async Task<IResult> RegisterDatasetAsync(RegisterDatasetRequest? body, DatasetService datasets)
    {
        if (body is null) return Problem400("body", "a JSON body {\"name\", \"path\"} is required");
        try
        {
            var (dataset, run) = await datasets.RegisterAsync(body.Name, body.Path);
            return TypedResults.Accepted($"/api/datasets/{dataset.Id}", new RegisterDatasetResponse(dataset.Id, run.Id));
        }
        catch (FieldException e)
        {
            return FieldProblem(e);
        }
    }

    /// <summary>A 400/409 problem-details answer that names the field.</summary>
    public static IResult FieldProblem(FieldException e) => e.Status == 400
        ? TypedResults.ValidationProblem(e.Errors.ToDictionary(p => p.Key, p => new[] { p.Value }), detail: e.Message, title: $"invalid {e.Field}")
        : TypedResults.Problem(e.Message, statusCode: e.Status, title: $"conflicting {e.Field}",
            extensions: new Dictionary<string, object?> { ["errors"] = new Dictionary<string, string[]> { [e.Field] = [e.Message] } });

    static IResult Problem400(string field, string message) =>
        TypedResults.ValidationProblem(new Dictionary<string, string[]> { [field] = [message] }, detail: message, title: $"invalid {field}");

    static async Task<IResult> QueueRunAsync(QueueRunRequest? body, RunService runs)
    {
        if (body is null || string.IsNullOrWhiteSpace(body.Kind)) return Problem400("kind", "kind is required (e.g. \"evaluate\")");
        if (body.Config is not { ValueKind: System.Text.Json.JsonValueKind.Object } config) return Problem400("config", "config must be a JSON object");
        try
        {
            var run = await runs.CreateAsync(body.Kind, config.GetRawText(), body.Seed, tags: body.Tags);
            return TypedResults.Accepted($"/api/runs/{run.Id}", RunDto.From(run, run.OwnerId is null ? null : (await runs.ActorAsync()).Name));
        }
        catch (FieldException e) { return FieldProblem(e); }
        catch (ArgumentException e) when (e.ParamName == "kind") { return Problem400("kind", e.Message); }
    }

    static async Task<IResult> ListRunsAsync(string? status, string? kind, int? skip, int? take, IDbContextFactory<PortalDb> dbf)
    {
        await using var db = await dbf.CreateDbContextAsync();
        var q = db.Runs.AsNoTracking();
        if (!string.IsNullOrEmpty(status))
        {
            if (!Enum.TryParse<RunStatus>(status, true, out var s))
                return Problem400("status", $"status must be one of queued, running, succeeded, failed, canceled; not '{status}'");
            q = q.Where(r => r.Status == s);
        }
        if (!string.IsNullOrEmpty(kind)) q = q.Where(r => r.Kind == kind);
        var runs = await q.OrderByDescending(r => r.Id).Skip(Math.Max(0, skip ?? 0)).Take(Math.Clamp(take ?? 100, 1, 1000)).ToListAsync();
        var owners = await RunDto.OwnerNamesAsync(db, runs);
        return TypedResults.Ok(runs.Select(r => RunDto.From(r, owners.GetValueOrDefault(r.OwnerId ?? ""))).ToList());
    }

    static async Task<IResult> CancelRunAsync(long id, RunService runs) => await runs.CancelAsync(id) switch
    {
        CancelOutcome.NotFound => TypedResults.NotFound(NotFound("run", id)),
        CancelOutcome.AlreadyFinished => TypedResults.Problem($"run {id} has already finished", statusCode: 409, title: "run finished"),
        var outcome => TypedResults.Accepted($"/api/runs/{id}", new { id, outcome = outcome.ToString().ToLowerInvariant() }),
    };

    static async Task<IResult> HealthAsync(IDbContextFactory<PortalDb> dbf, IOptions<PortalOptions> options, JobStorage storage)
    {
        HealthComponent database, jobs, torch;
        try
        {
            await using var db = await dbf.CreateDbContextAsync();
            database = await db.Database.CanConnectAsync() ? new(true, "sqlite") : new(false, "cannot connect");
        }
        catch (Exception e) { database = new(false, e.Message); }
        try
        {
            var servers = storage.GetMonitoringApi().Servers();
            var live = servers.Count(s => s.Heartbeat is { } h && DateTime.UtcNow - h < TimeSpan.FromMinutes(1));
            jobs = !options.Value.Jobs.RunWorkers ? new(true, "this node runs no workers")
                : live > 0 ? new(true, $"{live} server(s), queues: {string.Join(", ", servers.SelectMany(s => s.Queues).Distinct())}")
                : new(false, "no live job server");
        }
        catch (Exception e) { jobs = new(false, e.Message); }
        var t = TorchRuntime.Status;
        torch = t is null ? new(false, "loading") : t.Loaded ? new(true, $"TorchSharp {t.TorchSharpVersion}, {t.Device}, {t.Threads} threads") : new(false, t.Error);
        var ok = database.Ok && jobs.Ok && torch.Ok;
        var dto = new HealthDto(ok ? "healthy" : "unhealthy", database, jobs, torch);
        return ok ? TypedResults.Ok(dto) : TypedResults.Json(dto, statusCode: 503);
    }
}
