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
/// GenImage's cross-generator protocol: one checkpoint against every generator subset of a dataset (each generator's
/// own reals and fakes), with the average row, under the requested threshold modes (0.5; best on test, flagged;
/// calibrated on a validation split). The same code as `forensics crossgen`. Stores "acc/&lt;generator&gt;" and
/// "acc/avg" style metrics per mode ("acc@best/...") and crossgen.json/csv as artifacts.
/// </summary>
public sealed class CrossGeneratorJob(IDbContextFactory<PortalDb> dbFactory, PortalPaths paths, IOptions<PortalOptions> options) : IRunJob
{
    readonly JobInputs inputs = new(dbFactory, paths);

    public const string KindName = "crossgen";

    /// <summary>Split: the test split (default "val", GenImage's test protocol); ValSplit: the split thresholds are calibrated on.</summary>
    public sealed record Config(long DatasetId, string Checkpoint, string? Arch = null, string? Split = "val", string Modes = "fixed",
        long? ValDatasetId = null, string? ValSplit = "train", string CheckpointChosenOn = "unknown", long Seed = 0, int Bootstrap = 200, string? Card = null);

    public string Kind => KindName;
    public string Queue => JobQueues.Device;

    public async Task ValidateAsync(string configJson)
    {
        var c = JobInputs.Parse<Config>(configJson, "cross-generator");
        var checks = new FieldChecks();
        checks.Run(() => ConfigLimits.AtMost("bootstrap", c.Bootstrap, options.Value.Limits.Bootstrap, nameof(ConfigLimits.Bootstrap)));
        if (c.Bootstrap < 0) checks.Fail("bootstrap", "bootstrap must not be negative");
        var test = await checks.RunAsync(() => ReadyAsync(c.DatasetId, "datasetId"));
        if (test is not null) await checks.RunAsync(() => inputs.SplitAsync(test, c.Split, "split"));
        var val = c.ValDatasetId is { } v ? await checks.RunAsync(() => ReadyAsync(v, "valDatasetId")) : test;
        var modes = checks.Run(() => ParseModes(c));
        if (val is not null && modes is not null && modes.Contains(ThresholdMode.CalibratedOnValidation))
            await checks.RunAsync(() => inputs.SplitAsync(val, c.ValSplit, "valSplit"));
        var checkpoint = checks.Run(() => CheckpointPath(c));
        if (checks.Run(() => JobInputs.DetectorArch(c.Arch)) && checks.Run(() => { inputs.DetectorCard(c.Card, c.Arch); }) && checkpoint is not null)
            checks.Run(() => JobInputs.DetectorCheckpointFits(checkpoint, c.Arch, options.Value.Torch));
        checks.ThrowIfAny();
    }

    static List<ThresholdMode> ParseModes(Config c)
    {
        try { return c.Modes.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(ThresholdModes.Parse).ToList(); }
        catch (ArgumentException e) { throw new FieldException("modes", e.Message); }
    }

    Task<Dataset> ReadyAsync(long id, string field) => inputs.ReadyDatasetAsync(id, field);

    string CheckpointPath(Config c) => inputs.ExistingFile(c.Checkpoint, "checkpoint");

    const double ScoringStart = 0.02, ScoringShare = 0.96;

    public async Task ExecuteAsync(RunContext context)
    {
        await ValidateAsync(context.ConfigJson);
        var c = context.Config<Config>();
        var modes = ParseModes(c);
        var test = await ReadyAsync(c.DatasetId, "datasetId");
        var valDataset = modes.Contains(ThresholdMode.CalibratedOnValidation) ? await ReadyAsync(c.ValDatasetId ?? c.DatasetId, "valDatasetId") : null;

        context.ReportProgress(0, "loading the checkpoint");
        TorchRuntime.EnsureLoaded(options.Value.Torch);
        var device = TorchRuntime.ResolveDevice(options.Value.Torch.Device);
        using var detector = DetectorCheckpoint.Load(CheckpointPath(c), string.IsNullOrEmpty(c.Arch) ? null : c.Arch, device, inputs.DetectorCard(c.Card, c.Arch));
        EvaluationSet Load(Dataset d, string? split) =>
            EvaluationSet.FromManifest(DatasetManifest.Load(context.Paths.Data(d.ManifestPath!)), string.IsNullOrEmpty(split) ? null : split);
        var testSet = Load(test, c.Split);
        var valSet = valDataset is null ? null : Load(valDataset, c.ValSplit);
        context.ReportProgress(ScoringStart, $"scoring {testSet.Images.Count + (valSet?.Images.Count ?? 0)} image(s)");
        // Progress follows the images scored over test and validation together; loading and writing take small fixed shares.
        var progress = new SyncProgress<ProtocolProgress>(p =>
            context.ReportProgress(ScoringStart + ScoringShare * p.Done / Math.Max(1, p.Total), $"{p.Stage}: scoring {p.Done}/{p.Total}"));

        var result = CrossGeneratorEvaluation.Run(detector, testSet, valSet, new CrossGenOptions
        {
            Eval = new EvalOptions { Seed = unchecked((ulong)c.Seed), Device = device, MaxPixels = options.Value.Images.MaxEvalPixels },
            Metrics = new MetricsOptions { BootstrapSamples = c.Bootstrap, Seed = unchecked((int)c.Seed) },
            Modes = modes, CheckpointChosenOn = c.CheckpointChosenOn,
        }, progress, context.CancellationToken);
        context.ReportProgress(ScoringStart + ScoringShare, "writing the tables");

        File.WriteAllText(Path.Combine(context.WorkDir, CrossGeneratorResults.JsonFileName), result.ToJson().ToJsonString(Forensics.ML.Metrics.ReportJson.Options));
        File.WriteAllText(Path.Combine(context.WorkDir, CrossGeneratorResults.CsvFileName), result.ToCsv());
        await context.ArtifactAsync(CrossGeneratorResults.JsonArtifact, Path.Combine(context.WorkDir, CrossGeneratorResults.JsonFileName));
        await context.ArtifactAsync(CrossGeneratorResults.CsvArtifact, Path.Combine(context.WorkDir, CrossGeneratorResults.CsvFileName));
        foreach (var table in result.Tables)
        {
            foreach (var row in table.Rows)
                foreach (var (name, value) in CrossGeneratorResults.Values(table.Mode, row.Generator, row.Result.Report))
                    if (value is { } v) await context.MetricAsync(name, 0, v);
            await context.MetricAsync(CrossGeneratorResults.Metric(EvaluationResults.Acc, table.Mode, CrossGeneratorResults.AverageRow), 0, table.Average.Acc);
            if (table.Average.Ap is { } avgAp) await context.MetricAsync(CrossGeneratorResults.Metric(EvaluationResults.Ap, table.Mode, CrossGeneratorResults.AverageRow), 0, avgAp);
            if (table.MixesSplits) await context.LogAsync($"{table.Mode.Name()}: the threshold or checkpoint was chosen on the reported data", "warning");
        }
        await context.LogAsync(result.FormatTable());
    }
}
