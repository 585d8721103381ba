using System.Globalization;
using System.Text.Json;
using Forensics.ML.Datasets;
using Forensics.ML.Detectors;
using Forensics.ML.Evaluation;
using Forensics.ML.Metrics;
using Forensics.ML.Protocols;
using Forensics.ML.Runtime;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Portal.Infrastructure;
using Portal.Store;
using Portal.Runs;
using Portal.Datasets;
using Portal.Zoo;

namespace Portal.Experiments;

/// <summary>
/// A robustness sweep: one detector on one dataset along a perturbation axis (JPEG, WebP, resize, blur, noise) over
/// severities, through the same code as `forensics sweep`. The clean point reuses the scores of an earlier clean
/// evaluation of the same checkpoint and dataset when one exists, instead of scoring the images again. Every point's
/// metrics are stored as "&lt;metric&gt;@&lt;severity&gt;" series (step = severity index) for the curves.
/// </summary>
public sealed class RobustnessSweepJob(IDbContextFactory<PortalDb> dbFactory, PortalPaths paths, IOptions<PortalOptions> options) : IRunJob
{
    readonly JobInputs inputs = new(dbFactory, paths);

    public const string KindName = "sweep";

    /// <summary>Severities: comma-separated ("clean,100,90,..."); empty: the axis's defaults.</summary>
    public sealed record Config(long DatasetId, string Checkpoint, string Axis, string? Severities = null, string? Arch = null,
        string? Split = null, long Seed = 0, int Bootstrap = 200, string? Card = null);

    static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public string Kind => KindName;
    public string Queue => JobQueues.Device;

    public async Task ValidateAsync(string configJson)
    {
        var c = JobInputs.Parse<Config>(configJson, "sweep");
        var limits = options.Value.Limits;
        var checks = new FieldChecks();
        checks.Run(() => ConfigLimits.AtMost("bootstrap", c.Bootstrap, limits.Bootstrap, nameof(limits.Bootstrap)));
        if (c.Bootstrap < 0) checks.Fail("bootstrap", "bootstrap must not be negative");
        // Counted before parsing, so a list of a million severities costs nothing.
        var severitiesInLimit = c.Severities is not { } listed
            || checks.Run(() => ConfigLimits.AtMost("severities", listed.Count(ch => ch == ',') + 1, limits.Severities, nameof(limits.Severities)));
        var dataset = await checks.RunAsync(() => inputs.ReadyDatasetAsync(c.DatasetId, "datasetId"));
        if (dataset is not null) await checks.RunAsync(() => inputs.SplitAsync(dataset, c.Split, "split"));
        var checkpoint = checks.Run(() => CheckpointPath(c));
        // The axis first, on its own, so a bad severity (whose message names the axis too) is reported on "severities".
        var axisKnown = true;
        try { SweepAxes.Check(c.Axis); }
        catch (ArgumentException e) { checks.Fail("axis", e.Message); axisKnown = false; }
        if (axisKnown && severitiesInLimit)
        {
            try { Severities(c); }
            catch (ArgumentException e) { checks.Fail("severities", e.Message); }
        }
        if (checks.Run(() => JobInputs.DetectorArch(c.Arch)) && checks.Run(() => { inputs.DetectorCard(c.Card, c.Arch); }) && checkpoint is not null)
            checks.Run(() => JobInputs.DetectorCheckpointFits(checkpoint, c.Arch, options.Value.Torch));
        checks.ThrowIfAny();
    }

    string CheckpointPath(Config c) => inputs.ExistingFile(c.Checkpoint, "checkpoint");

    static IReadOnlyList<double?> Severities(Config c) => string.IsNullOrWhiteSpace(c.Severities)
        ? SweepAxes.DefaultSeverities(SweepAxes.Check(c.Axis))
        : SweepAxes.ParseSeverities(c.Axis, c.Severities);

    const double ScoringStart = 0.02, ScoringShare = 0.96;

    public async Task ExecuteAsync(RunContext context)
    {
        await ValidateAsync(context.ConfigJson);
        var c = context.Config<Config>();
        Dataset dataset;
        await using (var db = await dbFactory.CreateDbContextAsync())
            dataset = await db.Datasets.AsNoTracking().SingleAsync(d => d.Id == c.DatasetId);

        context.ReportProgress(0, "loading the checkpoint");
        TorchRuntime.EnsureLoaded(options.Value.Torch);
        var device = TorchRuntime.ResolveDevice(options.Value.Torch.Device);
        var checkpoint = CheckpointPath(c);
        using var detector = DetectorCheckpoint.Load(checkpoint, string.IsNullOrEmpty(c.Arch) ? null : c.Arch, device, inputs.DetectorCard(c.Card, c.Arch));
        var set = EvaluationSet.FromManifest(DatasetManifest.Load(context.Paths.Data(dataset.ManifestPath!)), string.IsNullOrEmpty(c.Split) ? null : c.Split);
        var clean = await CachedCleanScoresAsync(c, checkpoint, set);
        if (clean is not null) await context.LogAsync($"clean point: reusing the scores of evaluation run {clean.Value.RunId}");
        var severities = Severities(c);
        context.ReportProgress(ScoringStart, $"{c.Axis}: {severities.Count} point(s)");
        // Progress follows the images scored over every point that is scored (a reused clean point costs nothing).
        var progress = new SyncProgress<ProtocolProgress>(p =>
            context.ReportProgress(ScoringStart + ScoringShare * p.Done / Math.Max(1, p.Total), $"{p.Stage}: scoring {p.Done}/{p.Total}"));

        var sweep = RobustnessSweep.Run(detector, set, c.Axis, severities, new SweepOptions
        {
            Eval = new EvalOptions { Seed = unchecked((ulong)c.Seed), Device = device, MaxPixels = options.Value.Images.MaxEvalPixels },
            Metrics = new MetricsOptions { BootstrapSamples = c.Bootstrap, Seed = unchecked((int)c.Seed) },
        }, clean?.Scores, progress, context.CancellationToken);
        context.ReportProgress(ScoringStart + ScoringShare, "writing the curves");

        File.WriteAllText(Path.Combine(context.WorkDir, SweepResult.JsonFileName), sweep.ToJson().ToJsonString(Forensics.ML.Metrics.ReportJson.Options));
        File.WriteAllText(Path.Combine(context.WorkDir, SweepResult.CsvFileName), sweep.ToCsv());
        await context.ArtifactAsync(SweepResults.JsonArtifact, Path.Combine(context.WorkDir, SweepResults.JsonFileName));
        await context.ArtifactAsync(SweepResults.CsvArtifact, Path.Combine(context.WorkDir, SweepResults.CsvFileName));
        for (var i = 0; i < sweep.Points.Count; i++)
        {
            var point = sweep.Points[i];
            var label = point.Severity is { } s ? s.ToString(CultureInfo.InvariantCulture) : SweepAxes.Clean;
            foreach (var (metric, value) in point.Overall.Metrics())
                await context.MetricAsync(SweepResults.Metric(metric, c.Axis), i, value);
            await context.LogAsync($"{c.Axis} {label}: acc {point.Overall.Report.Acc:F4}, ap {point.Overall.Report.Ap?.ToString("F4", CultureInfo.InvariantCulture) ?? "-"}{(point.FromCache ? " (cached clean scores)" : "")}");
        }
    }

    /// <summary>The per-image scores of the newest clean, unsplit-or-same-split evaluation of this checkpoint on this dataset.</summary>
    async Task<(long RunId, IReadOnlyList<ImageScore> Scores)?> CachedCleanScoresAsync(Config c, string checkpoint, EvaluationSet set)
    {
        await using var db = await dbFactory.CreateDbContextAsync();
        var candidates = await db.Runs.AsNoTracking()
            .Where(r => r.Kind == EvaluationJob.KindName && r.Status == RunStatus.Succeeded)
            .OrderByDescending(r => r.Id).Select(r => new { r.Id, r.ConfigJson }).Take(200).ToListAsync();
        foreach (var run in candidates)
        {
            var e = JsonSerializer.Deserialize<EvaluationJob.Config>(run.ConfigJson, Json);
            if (e is null || e.DatasetId != c.DatasetId || !string.IsNullOrWhiteSpace(e.Perturbation) && e.Perturbation != "none") continue;
            if (!string.Equals(e.Split ?? "", c.Split ?? "", StringComparison.OrdinalIgnoreCase) || e.Seed != c.Seed) continue;
            if (!string.Equals(e.Arch ?? "", c.Arch ?? "", StringComparison.OrdinalIgnoreCase)) continue;
            if (!string.Equals(e.Card ?? "", c.Card ?? "", StringComparison.Ordinal)) continue;
            string path;
            try { path = paths.ResolveAllowed(e.Checkpoint); } catch (PathNotAllowedException) { continue; }
            if (path != checkpoint) continue;
            var scoresFile = paths.Data("runs", run.Id.ToString(), EvaluationReport.ScoresFileName);
            if (!File.Exists(scoresFile)) continue;
            var byPath = set.Images.ToDictionary(i => i.RelativePath, StringComparer.Ordinal);
            var scores = ScoresCsv.Read(scoresFile).Rows
                .Where(r => r.Path is not null && byPath.ContainsKey(r.Path))
                .Select(r => new ImageScore(r.Path!, r.Label, byPath[r.Path!].Generator, double.NaN, r.Score)).ToList();
            if (scores.Count > 0) return (run.Id, scores);
        }
        return null;
    }
}
