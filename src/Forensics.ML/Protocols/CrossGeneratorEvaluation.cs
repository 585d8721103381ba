using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Forensics.ML.Detectors;
using Forensics.ML.Evaluation;
using Forensics.ML.Metrics;

namespace Forensics.ML.Protocols;

/// <summary>Settings of <see cref="CrossGeneratorEvaluation"/>.</summary>
public sealed record CrossGenOptions
{
    /// <summary>How images are scored (perturbation, batching, seed, device).</summary>
    public EvalOptions Eval { get; init; } = new();

    /// <summary>Bootstrap settings of every row; its Threshold is the fixed mode's threshold (0.5 by default).</summary>
    public MetricsOptions Metrics { get; init; } = new();

    /// <summary>The threshold modes to report, each as its own table.</summary>
    public IReadOnlyList<ThresholdMode> Modes { get; init; } = [ThresholdMode.Fixed];

    /// <summary>The split that selected the checkpoint (caller's statement, e.g. "val" or "last epoch"); "unknown" by default.</summary>
    public string CheckpointChosenOn { get; init; } = "unknown";
}

/// <summary>One generator's row: its own reals and fakes (GenImage keeps a nature/ folder per generator).</summary>
/// <param name="Generator">The generator's folder name.</param>
/// <param name="Result">Metrics and how the threshold was chosen.</param>
public sealed record CrossGenRow(string Generator, ThresholdedReport Result)
{
    /// <summary>The row as JSON: generator, n_real, n_fake, acc, real_acc, fake_acc, ap, auc, acc_ci, ap_ci, threshold.</summary>
    public JsonObject ToJson()
    {
        var r = Result.Report;
        return new JsonObject
        {
            ["generator"] = Generator,
            ["n_real"] = r.NReal,
            ["n_fake"] = r.NFake,
            ["threshold"] = r.Threshold,
            ["acc"] = r.Acc,
            ["real_acc"] = r.RealAcc,
            ["fake_acc"] = r.FakeAcc,
            ["ap"] = r.Ap,
            ["auc"] = r.Auc,
            ["acc_ci"] = r.AccCi is { } a ? new JsonArray(a.Low, a.High) : null,
            ["ap_ci"] = r.ApCi is { } p ? new JsonArray(p.Low, p.High) : null,
            ["undefined_reason"] = r.UndefinedReason,
        };
    }
}

/// <summary>
/// GenImage's "avg" row: the unweighted mean over generators of each metric. A metric undefined for a generator (e.g.
/// AP without reals) is left out of its mean; <see cref="Generators"/> and the per-metric counts say how many entered.
/// </summary>
public sealed record CrossGenAverage(int Generators, double Acc, double? RealAcc, double? FakeAcc, double? Ap, double? Auc, int NRealAcc, int NFakeAcc, int NAp, int NAuc)
{
    /// <summary>The mean of each metric over <paramref name="rows"/>.</summary>
    /// <exception cref="ArgumentException">No rows.</exception>
    public static CrossGenAverage Of(IReadOnlyList<CrossGenRow> rows)
    {
        if (rows.Count == 0) throw new ArgumentException("no generator rows to average", nameof(rows));
        static (double? Mean, int N) Mean(IEnumerable<double?> values)
        {
            var defined = values.Where(v => v.HasValue).Select(v => v!.Value).ToList();
            return defined.Count == 0 ? (null, 0) : (defined.Average(), defined.Count);
        }
        var reports = rows.Select(r => r.Result.Report).ToList();
        var real = Mean(reports.Select(r => r.RealAcc));
        var fake = Mean(reports.Select(r => r.FakeAcc));
        var ap = Mean(reports.Select(r => r.Ap));
        var auc = Mean(reports.Select(r => r.Auc));
        return new CrossGenAverage(rows.Count, reports.Average(r => r.Acc), real.Mean, fake.Mean, ap.Mean, auc.Mean, real.N, fake.N, ap.N, auc.N);
    }

    /// <summary>The row as JSON (generator "avg").</summary>
    public JsonObject ToJson() => new()
    {
        ["generator"] = "avg",
        ["generators"] = Generators,
        ["acc"] = Acc,
        ["real_acc"] = RealAcc,
        ["fake_acc"] = FakeAcc,
        ["ap"] = Ap,
        ["auc"] = Auc,
        ["n_generators_ap"] = NAp,
        ["n_generators_auc"] = NAuc,
    };
}

/// <summary>The per-generator table under one threshold mode.</summary>
/// <param name="Mode">The threshold mode.</param>
/// <param name="Rows">One row per generator, in ordinal name order.</param>
/// <param name="Average">The mean over the rows.</param>
/// <param name="CalibratedThreshold">With <see cref="ThresholdMode.CalibratedOnValidation"/>: the threshold chosen on validation, else null.</param>
public sealed record CrossGenTable(ThresholdMode Mode, IReadOnlyList<CrossGenRow> Rows, CrossGenAverage Average, double? CalibratedThreshold)
{
    /// <summary>True when some row's threshold or checkpoint was chosen on its test data.</summary>
    public bool MixesSplits => Rows.Any(r => r.Result.MixesSplits);

    /// <summary>The table as JSON, provenance first.</summary>
    public JsonObject ToJson()
    {
        var first = Rows[0].Result;
        return new JsonObject
        {
            ["threshold_mode"] = Mode.Name(),
            ["threshold_chosen_on"] = first.ThresholdChosenOn,
            ["checkpoint_chosen_on"] = first.CheckpointChosenOn,
            ["reported_on"] = first.ReportedOn,
            ["calibrated_threshold"] = CalibratedThreshold,
            ["mixes_splits"] = MixesSplits,
            ["warning"] = Rows.Select(r => r.Result.Warning).FirstOrDefault(w => w is not null),
            ["rows"] = new JsonArray(Rows.Select(r => (JsonNode)r.ToJson()).ToArray()),
            ["avg"] = Average.ToJson(),
        };
    }
}

/// <summary>The cross-generator evaluation of one detector: the scores and a table per threshold mode.</summary>
public sealed record CrossGeneratorResult
{
    /// <summary>File name of <see cref="ToJson"/> in the CLI's output folder.</summary>
    public const string JsonFileName = "crossgen.json";

    /// <summary>File name of <see cref="ToCsv"/> in the CLI's output folder.</summary>
    public const string CsvFileName = "crossgen.csv";

    /// <summary>The test data's description (folder, and split when one was selected).</summary>
    public required string TestData { get; init; }
    /// <summary>The validation data's description; null without validation data.</summary>
    public string? ValidationData { get; init; }
    /// <summary>The test images' scores.</summary>
    public required IReadOnlyList<ImageScore> TestScores { get; init; }
    /// <summary>The validation images' scores; null without validation data.</summary>
    public IReadOnlyList<ImageScore>? ValidationScores { get; init; }
    /// <summary>Test and validation images that could not be scored (unreadable at scan or decode time).</summary>
    public IReadOnlyList<SkippedImage> Skipped { get; init; } = [];
    /// <summary>One table per requested threshold mode, in the order asked.</summary>
    public required IReadOnlyList<CrossGenTable> Tables { get; init; }

    /// <summary>The table of <paramref name="mode"/>.</summary>
    /// <exception cref="KeyNotFoundException">That mode was not requested.</exception>
    public CrossGenTable Table(ThresholdMode mode) =>
        Tables.FirstOrDefault(t => t.Mode == mode) ?? throw new KeyNotFoundException($"threshold mode '{mode.Name()}' was not evaluated");

    /// <summary>crossgen.json: data, tables, skipped images (scores are not repeated here).</summary>
    public JsonObject ToJson() => new()
    {
        ["test_data"] = TestData,
        ["validation_data"] = ValidationData,
        ["n_test_scored"] = TestScores.Count,
        ["n_validation_scored"] = ValidationScores?.Count,
        ["tables"] = new JsonArray(Tables.Select(t => (JsonNode)t.ToJson()).ToArray()),
        ["skipped"] = new JsonArray(Skipped.Select(s => (JsonNode)new JsonObject { ["path"] = s.RelativePath, ["reason"] = s.Reason }).ToArray()),
    };

    /// <summary>crossgen.csv: threshold_mode, generator, n_real, n_fake, threshold, acc, real_acc, fake_acc, ap, auc, acc_ci_low/high, ap_ci_low/high, mixes_splits; an "avg" row per mode.</summary>
    public string ToCsv()
    {
        var csv = new StringBuilder("threshold_mode,generator,n_real,n_fake,threshold,acc,real_acc,fake_acc,ap,auc,acc_ci_low,acc_ci_high,ap_ci_low,ap_ci_high,mixes_splits\n");
        foreach (var table in Tables)
        {
            foreach (var row in table.Rows)
            {
                var r = row.Result.Report;
                csv.AppendLine(string.Join(',', table.Mode.Name(), Csv(row.Generator), r.NReal.ToString(CultureInfo.InvariantCulture), r.NFake.ToString(CultureInfo.InvariantCulture),
                    F(r.Threshold), F(r.Acc), F(r.RealAcc), F(r.FakeAcc), F(r.Ap), F(r.Auc), F(r.AccCi?.Low), F(r.AccCi?.High), F(r.ApCi?.Low), F(r.ApCi?.High),
                    row.Result.MixesSplits ? "true" : "false"));
            }
            var a = table.Average;
            csv.AppendLine(string.Join(',', table.Mode.Name(), "avg", "", "", F(table.CalibratedThreshold), F(a.Acc), F(a.RealAcc), F(a.FakeAcc), F(a.Ap), F(a.Auc), "", "", "", "",
                table.MixesSplits ? "true" : "false"));
        }
        return csv.ToString();
    }

    /// <summary>A fixed-width table per mode for the terminal, with the provenance line and any warning.</summary>
    public string FormatTable()
    {
        var text = new StringBuilder();
        foreach (var table in Tables)
        {
            var first = table.Rows[0].Result;
            text.AppendLine($"threshold: {table.Mode.Name()} (chosen on {first.ThresholdChosenOn}; checkpoint chosen on {first.CheckpointChosenOn}; reported on {first.ReportedOn}: {TestData})");
            if (table.Rows.Select(r => r.Result.Warning).FirstOrDefault(w => w is not null) is { } warning) text.AppendLine($"WARNING: {warning}");
            var width = Math.Max(9, table.Rows.Max(r => r.Generator.Length));
            text.AppendLine($"{"generator".PadRight(width)}  n_real  n_fake  thresh     acc  real_acc  fake_acc      ap     auc");
            foreach (var row in table.Rows)
            {
                var r = row.Result.Report;
                text.AppendLine($"{row.Generator.PadRight(width)}  {r.NReal,6}  {r.NFake,6}  {T(r.Threshold),6}  {T(r.Acc),6}  {T(r.RealAcc),8}  {T(r.FakeAcc),8}  {T(r.Ap),6}  {T(r.Auc),6}");
            }
            var a = table.Average;
            text.AppendLine($"{"avg".PadRight(width)}  {"",6}  {"",6}  {"",6}  {T(a.Acc),6}  {T(a.RealAcc),8}  {T(a.FakeAcc),8}  {T(a.Ap),6}  {T(a.Auc),6}");
        }
        return text.ToString();
    }

    private static string F(double? v) => v is { } x ? x.ToString("R", CultureInfo.InvariantCulture) : "";
    private static string T(double? v) => v is { } x ? x.ToString("0.0000", CultureInfo.InvariantCulture) : "-";
    private static string Csv(string s) => global::Forensics.ML.Data.CsvCell.Escape(s);
}

/// <summary>
/// GenImage's cross-generator protocol: score a detector on every generator's test images and report, per generator
/// (its own reals and fakes) and on average over generators, ACC, real/fake ACC, AP and AUC with bootstrap intervals,
/// under each requested threshold mode.
/// </summary>
public static class CrossGeneratorEvaluation
{
    /// <summary>
    /// Scores <paramref name="test"/> (and <paramref name="validation"/> when given) with <paramref name="detector"/>,
    /// then builds the tables with <see cref="FromScores"/>.
    /// </summary>
    /// <param name="progress">Images scored over test and validation together, reported after each batch.</param>
    /// <exception cref="ArgumentException">Calibrated mode without validation data, or data that cannot be reported (see <see cref="FromScores"/>).</exception>
    public static CrossGeneratorResult Run(Detector detector, EvaluationSet test, EvaluationSet? validation, CrossGenOptions? options = null,
        IProgress<ProtocolProgress>? progress = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(detector);
        ArgumentNullException.ThrowIfNull(test);
        options ??= new CrossGenOptions();
        CheckModes(options, validation is not null);
        var total = test.Images.Count + (validation?.Images.Count ?? 0);
        IProgress<EvalProgress>? Pass(string stage, int offset) => progress is null ? null : new PassProgress(progress, stage, offset, total);
        var testScores = DetectorEvaluator.Score(detector, test.Images, options.Eval, Pass("test", 0), ct);
        ScoringResult? valScores = validation is null ? null
            : DetectorEvaluator.Score(detector, validation.Images, options.Eval, Pass("validation", test.Images.Count), ct);
        // Calibrating on the test images themselves (same folder, overlapping split) must be flagged, whatever the paths' spelling.
        var overlap = validation is not null && Path.GetFullPath(validation.Root) == Path.GetFullPath(test.Root)
            && (validation.Split is null || test.Split is null || Data.Splits.Same(validation.Split, test.Split));
        var result = FromScores(testScores.Scores, Describe(test), valScores?.Scores, validation is null ? null : Describe(validation), options,
            test.Split, overlap);
        var skipped = test.Unreadable.Concat(testScores.Skipped)
            .Concat(validation?.Unreadable ?? []).Concat(valScores?.Skipped ?? []).ToList();
        return result with { Skipped = skipped };
    }

    /// <summary>
    /// Builds the per-generator tables from scores. Rows group test images by <see cref="ImageScore.Generator"/>.
    /// Fixed: <see cref="MetricsOptions.Threshold"/>. BestOnTest: each row at its own accuracy-maximising threshold
    /// (flagged). CalibratedOnValidation: one threshold maximising balanced accuracy over all validation images
    /// (generators pooled, as a deployed detector does not know the generator), applied to every row.
    /// </summary>
    /// <param name="test">The test images' scores.</param>
    /// <param name="testData">How the test data is named in the result (folder and split).</param>
    /// <param name="validation">The validation images' scores; needed for calibrated mode.</param>
    /// <param name="validationData">How the validation data is named.</param>
    /// <param name="options">Modes, bootstrap and the checkpoint's provenance.</param>
    /// <param name="testSplit">The test split's name, compared with <see cref="CrossGenOptions.CheckpointChosenOn"/>; null: "test".</param>
    /// <param name="validationIsTest">True when the validation data overlaps the test data (also assumed when both names are equal): calibrated results are flagged.</param>
    /// <exception cref="ArgumentException">No test scores, calibrated mode without validation scores, or validation scores of one class only.</exception>
    public static CrossGeneratorResult FromScores(IReadOnlyList<ImageScore> test, string testData,
        IReadOnlyList<ImageScore>? validation, string? validationData, CrossGenOptions? options = null,
        string? testSplit = null, bool validationIsTest = false)
    {
        ArgumentNullException.ThrowIfNull(test);
        ArgumentNullException.ThrowIfNull(testData);
        options ??= new CrossGenOptions();
        CheckModes(options, validation is not null);
        if (test.Count == 0) throw new ArgumentException($"no test images were scored in {testData}", nameof(test));
        if (options.Modes.Count == 0) throw new ArgumentException("no threshold mode requested", nameof(options));

        validationIsTest |= validationData is not null && validationData == testData;
        var reportedOn = testSplit ?? "test";
        var groups = test.GroupBy(s => s.Generator, StringComparer.Ordinal).OrderBy(g => g.Key, StringComparer.Ordinal).ToList();
        var tables = new List<CrossGenTable>();
        foreach (var mode in options.Modes.Distinct())
        {
            double? calibrated = null;
            if (mode == ThresholdMode.CalibratedOnValidation)
            {
                if (validation!.Count == 0) throw new ArgumentException($"no validation images were scored in {validationData}", nameof(validation));
                calibrated = ThresholdModes.CalibrateBalancedAccuracy(validation.Select(s => s.Label).ToArray(), validation.Select(s => s.Score).ToArray());
            }
            var rows = new List<CrossGenRow>();
            foreach (var group in groups)
            {
                var labels = group.Select(s => s.Label).ToArray();
                var scores = group.Select(s => s.Score).ToArray();
                var threshold = mode switch
                {
                    ThresholdMode.Fixed => options.Metrics.Threshold,
                    ThresholdMode.CalibratedOnValidation => calibrated!.Value,
                    _ => BestOnTest(labels, scores),
                };
                var report = DetectionMetrics.Compute(labels, scores, options.Metrics with { Threshold = threshold });
                var chosenOn = mode switch
                {
                    ThresholdMode.Fixed => "none (fixed)",
                    ThresholdMode.CalibratedOnValidation => $"validation: {validationData}",
                    _ => $"test: {testData} / {group.Key}",
                };
                rows.Add(new CrossGenRow(group.Key, new ThresholdedReport(mode, chosenOn, options.CheckpointChosenOn, reportedOn, report, validationIsTest)));
            }
            tables.Add(new CrossGenTable(mode, rows, CrossGenAverage.Of(rows), calibrated));
        }
        return new CrossGeneratorResult
        {
            TestData = testData,
            ValidationData = validationData,
            TestScores = test,
            ValidationScores = validation,
            Tables = tables,
        };
    }

    /// <summary>How an evaluation set is named in reports: its folder, plus the split when one was selected.</summary>
    public static string Describe(EvaluationSet set) => set.Split is null ? set.Root : $"{set.Root} (split {set.Split})";

    // The accuracy-maximising threshold of DetectionMetrics, kept finite (its "everything fake" candidate is -infinity).
    private static double BestOnTest(int[] labels, double[] scores)
    {
        var best = DetectionMetrics.Compute(labels, scores, new MetricsOptions { BootstrapSamples = 0 }).BestThreshold;
        return double.IsFinite(best) ? best : Math.BitDecrement(scores.Min());
    }

    private static void CheckModes(CrossGenOptions options, bool hasValidation)
    {
        if (options.Modes.Contains(ThresholdMode.CalibratedOnValidation) && !hasValidation)
            throw new ArgumentException("threshold mode 'calibrated' needs validation data to choose the threshold on", nameof(options));
    }
}
