using System.Text.Json;
using Forensics.ML.Data;
using Forensics.ML.Datasets;
using Forensics.ML.Detectors;
using Forensics.ML.Evaluation;
using Forensics.ML.Imaging;
using Forensics.ML.Lare2;
using Forensics.ML.Metrics;
using Forensics.ML.Training;
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
/// Evaluates a detector checkpoint on a registered dataset (optionally one split, under a perturbation): per-image
/// scores and the metrics, overall and per generator, through the same code as `forensics eval`. Writes scores.csv and
/// metrics.json as artifacts and stores the metrics on the run.
/// </summary>
public sealed class EvaluationJob(IDbContextFactory<PortalDb> dbFactory, PortalPaths paths, IOptions<PortalOptions> options) : IRunJob
{
    readonly JobInputs inputs = new(dbFactory, paths);

    public const string KindName = "evaluate";

    /// <summary>What to evaluate. Checkpoint is a path under an allowed root; Perturbation a spec such as "jpeg:75+resize:0.5".</summary>
    /// <remarks>
    /// Arch "lare2" scores with precomputed LaRE maps: LareRunId names the "lare" run whose maps (data/lare/&lt;run&gt;) belong
    /// to this dataset; no perturbation (the maps were made from the unperturbed images).
    /// </remarks>
    public sealed record Config(long DatasetId, string Checkpoint, string? Arch = null, string? Split = null, string? Perturbation = null,
        string Batching = "size", int MaxBatch = 16, long Seed = 0, int Bootstrap = 1000, long? LareRunId = null, string? Card = null);

    static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public string Kind => KindName;
    public string Queue => JobQueues.Device;

    public async Task ValidateAsync(string configJson)
    {
        var c = JobInputs.Parse<Config>(configJson, "evaluation");
        var limits = options.Value.Limits;
        var checks = new FieldChecks();
        checks.Run(() => ConfigLimits.AtMost("maxBatch", c.MaxBatch, limits.Batch, nameof(limits.Batch)));
        checks.Run(() => ConfigLimits.AtMost("bootstrap", c.Bootstrap, limits.Bootstrap, nameof(limits.Bootstrap)));
        var dataset = await checks.RunAsync(() => inputs.ReadyDatasetAsync(c.DatasetId, "datasetId"));
        if (dataset is not null) await checks.RunAsync(() => inputs.SplitAsync(dataset, c.Split, "split"));
        var checkpoint = checks.Run(() => CheckpointPath(c));
        if (IsLare2(c))
        {
            if (c.LareRunId is not { } lareRun) checks.Fail("lareRunId", "arch lare2 needs lareRunId: the LaRE extraction run of this dataset");
            else if (dataset is not null) await checks.RunAsync(() => inputs.LareMapsAsync(lareRun, dataset, "lareRunId"));
            if (!string.IsNullOrWhiteSpace(c.Perturbation) && c.Perturbation.Trim() != "none")
                checks.Fail("perturbation", "no perturbation with lare2: the LaRE maps were computed on the unperturbed images");
        }
        else if (checks.Run(() => JobInputs.DetectorArch(c.Arch, alsoKnown: Lare2Evaluator.Architecture)) && checks.Run(() => { inputs.DetectorCard(c.Card, c.Arch); }) && checkpoint is not null)
            checks.Run(() => JobInputs.DetectorCheckpointFits(checkpoint, c.Arch, options.Value.Torch));
        if (!PerturbationSpec.TryParse(c.Perturbation, out _, out var error)) checks.Fail("perturbation", error!);
        checks.Run(() => ParseBatching(c.Batching));
        if (c.MaxBatch < 1) checks.Fail("maxBatch", "maxBatch must be at least 1");
        if (c.Bootstrap < 0) checks.Fail("bootstrap", "bootstrap must not be negative");
        checks.ThrowIfAny();
    }

    string CheckpointPath(Config c) => inputs.ExistingFile(c.Checkpoint, "checkpoint");

    static bool IsLare2(Config c) => string.Equals(c.Arch?.Trim(), Lare2Evaluator.Architecture, StringComparison.OrdinalIgnoreCase);

    static EvalBatching ParseBatching(string batching) => batching switch
    {
        "single" => EvalBatching.Single,
        "size" => EvalBatching.BySize,
        _ => throw new FieldException("batching", $"batching must be 'single' (full image, batch 1) or 'size' (batches of equal-size images), not '{batching}'"),
    };

    const double ScoringStart = 0.02, ScoringShare = 0.96;

    public async Task ExecuteAsync(RunContext context)
    {
        await ValidateAsync(context.ConfigJson);
        var c = context.Config<Config>();
        var ct = context.CancellationToken;
        Dataset dataset;
        await using (var db = await dbFactory.CreateDbContextAsync(ct))
            dataset = await db.Datasets.AsNoTracking().SingleAsync(d => d.Id == c.DatasetId, ct);

        context.ReportProgress(0, "loading checkpoint");
        TorchRuntime.EnsureLoaded(options.Value.Torch);
        var device = TorchRuntime.ResolveDevice(options.Value.Torch.Device);
        var checkpoint = CheckpointPath(c);
        var manifest = DatasetManifest.Load(context.Paths.Data(dataset.ManifestPath!));
        var set = EvaluationSet.FromManifest(manifest, string.IsNullOrEmpty(c.Split) ? null : c.Split);
        // Scoring is the work; loading before it and the metrics (bootstrap) and writes after it take small fixed shares.
        var progress = new SyncProgress<EvalProgress>(p =>
            context.ReportProgress(ScoringStart + ScoringShare * (p.Total == 0 ? 1 : (double)p.Done / p.Total), $"scoring {p.Done}/{p.Total}"));
        context.ReportProgress(ScoringStart); // still loading: the checkpoint is read just before scoring
        var metricsOptions = new MetricsOptions { BootstrapSamples = c.Bootstrap, Seed = unchecked((int)c.Seed) };
        EvaluationReport report;
        ScoringResult result;
        if (IsLare2(c))
        {
            using var model = Lare2Classifier.Load(checkpoint);
            var maps = new LareMapFolder(context.Paths.Data(LareResults.MapsFolder, c.LareRunId!.Value.ToString()), model.Options.Egre.LareChannels);
            var lareOptions = new Lare2EvalOptions
            {
                CropSize = model.Options.Backbone.InputResolution, Device = device,
                BatchSize = ParseBatching(c.Batching) == EvalBatching.Single ? 1 : c.MaxBatch,
            };
            await context.LogAsync($"checkpoint {checkpoint} (lare2, {model.Options.Backbone}); maps of run {c.LareRunId}; scoring {set.Images.Count} image(s)");
            result = Lare2Evaluator.Score(model, set.Images, maps, lareOptions, progress, context.CancellationToken);
            report = Lare2Evaluator.CreateReport(model, checkpoint, DetectorCheckpoint.Sha256(checkpoint), maps, set, result, lareOptions, metricsOptions);
        }
        else
        {
            (result, report) = await ScoreDetectorAsync(context, c, checkpoint, device, set, progress, metricsOptions);
        }

        context.ReportProgress(ScoringStart + ScoringShare, "writing the report");
        report.Write(context.WorkDir);
        await context.ArtifactAsync(EvaluationResults.ScoresArtifact, Path.Combine(context.WorkDir, EvaluationReport.ScoresFileName));
        await context.ArtifactAsync(EvaluationResults.MetricsArtifact, Path.Combine(context.WorkDir, EvaluationReport.MetricsFileName));
        await EvaluationResults.StoreAsync(context, report);
        foreach (var s in result.Skipped) await context.LogAsync($"skipped {s.RelativePath}: {s.Reason}", "warning");
        await context.LogAsync(report.FormatTable());
    }

    /// <summary>A ResNet-family detector (res50nodown, resnet50): decode, perturb, normalise, full image.</summary>
    async Task<(ScoringResult, EvaluationReport)> ScoreDetectorAsync(RunContext context, Config c, string checkpoint,
        TorchSharp.torch.Device device, EvaluationSet set, IProgress<EvalProgress> progress, MetricsOptions metricsOptions)
    {
        using var detector = DetectorCheckpoint.Load(checkpoint, string.IsNullOrEmpty(c.Arch) ? null : c.Arch, device, inputs.DetectorCard(c.Card, c.Arch));
        await context.LogAsync(detector.IsNative
            ? $"checkpoint {checkpoint} ({detector.Architecture.Name}, width {detector.Options.BaseWidth}, " +
              $"layers [{string.Join(",", detector.Options.Layers)}], sha256 {detector.CheckpointSha256})"
            : $"checkpoint {checkpoint} ({detector.Architecture.Name}, sha256 {detector.CheckpointSha256}), card {detector.CardPath ?? "default"}: {detector.Card.ToJson().ReplaceLineEndings(" ")}");

        var evalOptions = new EvalOptions
        {
            Perturbation = PerturbationSpec.Parse(c.Perturbation), Batching = ParseBatching(c.Batching), MaxBatch = c.MaxBatch,
            Seed = unchecked((ulong)c.Seed), Device = device, MaxPixels = options.Value.Images.MaxEvalPixels,
        };
        await context.LogAsync($"scoring {set.Images.Count} image(s){(set.Split is null ? "" : $", split {set.Split}")}, perturbation {evalOptions.Perturbation}; " +
                               $"images over {evalOptions.MaxPixels} pixels: {evalOptions.Oversize.ToString().ToLowerInvariant()} (Portal:Images:MaxEvalPixels)");
        var result = DetectorEvaluator.Score(detector, set.Images, evalOptions, progress, context.CancellationToken);
        return (result, EvaluationReport.Create(detector, set, result, evalOptions, metricsOptions));
    }
}
