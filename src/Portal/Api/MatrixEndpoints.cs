using System.Text.Json;
using System.Text.Json.Nodes;
using Forensics.ML.Metrics;
using Forensics.ML.Protocols;
using Microsoft.EntityFrameworkCore;
using Portal.Infrastructure;
using Portal.Experiments;
using Portal.Datasets;
using Portal.Zoo;
using Portal.Runs;
using Portal.Store;

namespace Portal.Api;

/// <summary>Where one matrix row comes from: the crossgen run, its checkpoint, and the training run and set behind it when known.</summary>
public sealed record MatrixRowSource(string TrainedOn, long CrossgenRunId, string Checkpoint, long? TrainRunId, long? TrainDatasetId, long TestDatasetId);

/// <summary>The train-on-X / test-on-Y matrix and the runs behind its rows; <see cref="Matrix"/> is null when no crossgen run qualifies.</summary>
public sealed record TrainTestMatrixAnswer(ThresholdMode Mode, TrainTestMatrix? Matrix, IReadOnlyList<MatrixRowSource> Rows)
{
    /// <summary>The matrix's JSON (threshold_mode, trained_on, tested_on, acc, ap, row averages) plus "rows": where each row comes from.</summary>
    public JsonObject ToJson()
    {
        var json = Matrix?.ToJson() ?? new JsonObject
        {
            ["threshold_mode"] = Mode.Name(), ["trained_on"] = new JsonArray(), ["tested_on"] = new JsonArray(), ["acc"] = new JsonArray(),
            ["ap"] = new JsonArray(), ["row_avg_acc"] = new JsonArray(), ["row_avg_ap"] = new JsonArray(),
        };
        json["rows"] = new JsonArray(Rows.Select(r => (JsonNode)new JsonObject
        {
            ["trained_on"] = r.TrainedOn, ["crossgen_run_id"] = r.CrossgenRunId, ["checkpoint"] = r.Checkpoint,
            ["train_run_id"] = r.TrainRunId, ["train_dataset_id"] = r.TrainDatasetId, ["test_dataset_id"] = r.TestDatasetId,
        }).ToArray());
        return json;
    }
}

/// <summary>
/// GenImage's train-on-X / test-on-Y matrix over the portal's succeeded crossgen runs: one row per checkpoint (its newest
/// crossgen run that has the threshold mode), labelled by the dataset that trained it (found through the training run that
/// produced the weights) or, when unknown, by the checkpoint's name; columns: the tested generators. Built by
/// <see cref="TrainTestMatrix.Build"/> from each run's crossgen.json.
/// </summary>
public static class MatrixEndpoints
{
    public static IEndpointRouteBuilder MapMatrixApi(this IEndpointRouteBuilder app)
    {
        app.MapGet("/api/matrix", async (string? mode, long? datasetId, IDbContextFactory<PortalDb> dbFactory, PortalPaths paths) =>
            {
                ThresholdMode parsed;
                try { parsed = ThresholdModes.Parse(string.IsNullOrWhiteSpace(mode) ? "fixed" : mode); }
                catch (ArgumentException e) { return ApiEndpoints.FieldProblem(new FieldException("mode", e.Message)); }
                var answer = await BuildAsync(dbFactory, paths, parsed, datasetId);
                return Results.Text(answer.ToJson().ToJsonString(), "application/json");
            })
            .WithTags("matrix")
            .WithSummary("The train-on-X / test-on-Y matrix from succeeded crossgen runs: ?mode=fixed|best|calibrated (threshold mode), ?datasetId= (test dataset); " +
                         "{threshold_mode, trained_on, tested_on, acc, ap, row_avg_acc, row_avg_ap, rows: [{trained_on, crossgen_run_id, checkpoint, train_run_id, train_dataset_id}]}")
            .Produces<JsonObject>();
        return app;
    }

    /// <summary>The matrix under <paramref name="mode"/>, optionally only over crossgen runs on test dataset <paramref name="testDatasetId"/>.</summary>
    public static async Task<TrainTestMatrixAnswer> BuildAsync(IDbContextFactory<PortalDb> dbFactory, PortalPaths paths, ThresholdMode mode, long? testDatasetId = null)
    {
        await using var db = await dbFactory.CreateDbContextAsync();
        var runs = await db.Runs.AsNoTracking().Where(r => r.Kind == CrossGeneratorJob.KindName && r.Status == RunStatus.Succeeded)
            .OrderByDescending(r => r.Id).Select(r => new { r.Id, r.ConfigJson }).ToListAsync();
        var runIds = runs.Select(r => r.Id).ToList();
        var results = await db.Artifacts.AsNoTracking().Where(a => a.RunId != null && runIds.Contains(a.RunId.Value) && a.Kind == CrossGeneratorResults.JsonArtifact)
            .ToDictionaryAsync(a => a.RunId!.Value, a => a.RelativePath);
        var zoo = await db.Weights.AsNoTracking().Select(w => new { w.Name, w.Path, w.SourceRunId }).ToListAsync();
        var weightArtifacts = await db.Artifacts.AsNoTracking().Where(a => a.Kind == TrainingResults.WeightsArtifact).Select(a => new { a.RunId, a.RelativePath }).ToListAsync();
        var trainRuns = await db.Runs.AsNoTracking().Where(r => r.Kind == TrainingJob.KindName).Select(r => new { r.Id, r.ConfigJson }).ToDictionaryAsync(r => r.Id, r => r.ConfigJson);
        var datasetNames = await db.Datasets.AsNoTracking().ToDictionaryAsync(d => d.Id, d => d.Name);

        var seen = new HashSet<string>(StringComparer.Ordinal);
        var picked = new List<(MatrixRowSource Source, CrossGeneratorResult Result, string Name)>();
        foreach (var run in runs)
        {
            CrossGeneratorJob.Config? config;
            try { config = JsonSerializer.Deserialize<CrossGeneratorJob.Config>(run.ConfigJson, JobInputs.Json); }
            catch (JsonException) { continue; }
            if (config is null || testDatasetId is { } only && config.DatasetId != only) continue;
            if (!results.TryGetValue(run.Id, out var relative) || !File.Exists(paths.Data(relative))) continue;
            string checkpoint;
            try { checkpoint = paths.ResolveAllowed(config.Checkpoint); }
            catch (PathNotAllowedException) { continue; }
            // The newest run per checkpoint stands for it.
            if (seen.Contains(checkpoint)) continue;
            var result = ReadResult(paths.Data(relative));
            if (result.Tables.All(t => t.Mode != mode)) continue;
            seen.Add(checkpoint);

            var zooEntry = zoo.FirstOrDefault(w => SamePath(w.Path, checkpoint));
            var trainRunId = zooEntry?.SourceRunId
                             ?? weightArtifacts.FirstOrDefault(a => a.RunId is not null && SamePath(paths.Data(a.RelativePath), checkpoint))?.RunId;
            long? trainDatasetId = null;
            if (trainRunId is { } t && trainRuns.TryGetValue(t, out var trainJson))
            {
                try { trainDatasetId = JsonSerializer.Deserialize<TrainingJob.Config>(trainJson, JobInputs.Json)?.TrainDatasetId; }
                catch (JsonException) { }
            }
            var name = zooEntry?.Name ?? Path.GetFileName(checkpoint);
            var label = trainDatasetId is { } d && datasetNames.TryGetValue(d, out var dataset) ? dataset : name;
            picked.Add((new MatrixRowSource(label, run.Id, config.Checkpoint, trainRunId, trainDatasetId, config.DatasetId), result, name));
        }
        // Two checkpoints trained on the same set are told apart by their names.
        var clashing = picked.GroupBy(p => p.Source.TrainedOn).Where(g => g.Count() > 1).Select(g => g.Key).ToHashSet();
        picked = picked.Select(p => clashing.Contains(p.Source.TrainedOn)
            ? p with { Source = p.Source with { TrainedOn = $"{p.Source.TrainedOn} ({p.Name} #{p.Source.CrossgenRunId})" } } : p).ToList();
        picked.Reverse(); // oldest first: rows keep their place as runs are added
        if (picked.Count == 0) return new TrainTestMatrixAnswer(mode, null, []);
        var matrix = TrainTestMatrix.Build(picked.Select(p => (p.Source.TrainedOn, p.Result)), mode);
        return new TrainTestMatrixAnswer(mode, matrix, picked.Select(p => p.Source).ToList());
    }

    static bool SamePath(string a, string b)
    {
        try { return PortalPaths.Canonical(Path.GetFullPath(a)) == PortalPaths.Canonical(Path.GetFullPath(b)); }
        catch (Exception e) when (e is IOException or ArgumentException or UnauthorizedAccessException) { return false; }
    }

    /// <summary>
    /// A crossgen.json read back into the tables the matrix needs (per generator: counts, threshold, ACC, real/fake ACC, AP,
    /// AUC, intervals). The file keeps neither scores nor best-threshold figures: those fields are NaN here.
    /// </summary>
    public static CrossGeneratorResult ReadResult(string file)
    {
        var root = JsonNode.Parse(File.ReadAllText(file))?.AsObject() ?? throw new InvalidDataException($"{file} is empty");
        var tables = new List<CrossGenTable>();
        foreach (var t in root["tables"]?.AsArray() ?? [])
        {
            var table = t!.AsObject();
            var mode = ThresholdModes.Parse((string?)table["threshold_mode"] ?? throw new InvalidDataException($"{file}: a table has no threshold_mode"));
            var rows = (table["rows"]?.AsArray() ?? []).Select(r => r!.AsObject()).Select(r => new CrossGenRow((string)r["generator"]!,
                new ThresholdedReport(mode, (string?)table["threshold_chosen_on"] ?? "", (string?)table["checkpoint_chosen_on"] ?? "unknown",
                    (string?)table["reported_on"] ?? "test", Report(r)))).ToList();
            if (rows.Count == 0) continue;
            tables.Add(new CrossGenTable(mode, rows, CrossGenAverage.Of(rows), (double?)table["calibrated_threshold"]));
        }
        return new CrossGeneratorResult { TestData = (string?)root["test_data"] ?? "", ValidationData = (string?)root["validation_data"], TestScores = [], Tables = tables };
    }

    static DetectionReport Report(JsonObject r)
    {
        double? real = (double?)r["real_acc"], fake = (double?)r["fake_acc"];
        return new DetectionReport
        {
            Threshold = (double)r["threshold"]!, NReal = (int)r["n_real"]!, NFake = (int)r["n_fake"]!, Acc = (double)r["acc"]!,
            RealAcc = real, FakeAcc = fake, BalancedAcc = real is { } a && fake is { } b ? (a + b) / 2 : null,
            Ap = (double?)r["ap"], Auc = (double?)r["auc"], BestAcc = double.NaN, BestThreshold = double.NaN,
            AccCi = Interval(r["acc_ci"]), ApCi = Interval(r["ap_ci"]), BootstrapSamples = 0, Confidence = double.NaN, Seed = 0,
            UndefinedReason = (string?)r["undefined_reason"],
        };
    }

    static Interval? Interval(JsonNode? node) => node is JsonArray { Count: 2 } a ? new Interval((double)a[0]!, (double)a[1]!) : null;
}
