using Forensics.ML.Protocols;

namespace Portal.Experiments;

/// <summary>
/// What a "crossgen" run writes, and the one place that names it: crossgen.json and crossgen.csv (artifacts "crossgen" and
/// "crossgen-csv"), and per threshold mode the <see cref="EvaluationResults"/> metric families per generator with the
/// mode's suffix ("acc/&lt;generator&gt;", "acc@best/&lt;generator&gt;", "acc_ci_lo@calibrated/&lt;generator&gt;") plus an
/// average row ("acc/avg"). The leaderboard, the matrix and the result panels read them through this type.
/// </summary>
public static class CrossGeneratorResults
{
    /// <summary>The per-generator report, the artifact's kind and its file name.</summary>
    public const string JsonArtifact = "crossgen", JsonFileName = CrossGeneratorResult.JsonFileName;
    /// <summary>The same tables as CSV.</summary>
    public const string CsvArtifact = "crossgen-csv", CsvFileName = CrossGeneratorResult.CsvFileName;
    /// <summary>The pseudo-generator of a table's average row ("acc/avg"): not a generator column.</summary>
    public const string AverageRow = "avg";
    /// <summary>Separates a metric family from a threshold mode's name: "acc@best".</summary>
    public const char ModeSeparator = '@';

    /// <summary>The threshold modes in the order the leaderboard lists them, with the suffix their metric names carry.</summary>
    public static IReadOnlyList<ThresholdMode> Modes { get; } = [ThresholdMode.Fixed, ThresholdMode.BestOnTest, ThresholdMode.CalibratedOnValidation];

    /// <summary>The suffix a mode's metric names carry: "" for the fixed threshold, "@best", "@calibrated".</summary>
    public static string Suffix(ThresholdMode mode) => mode == ThresholdMode.Fixed ? "" : ModeSeparator + mode.Name();

    /// <summary>A per-generator metric of a mode: Metric("acc", BestOnTest, "adm") = "acc@best/adm".</summary>
    public static string Metric(string metric, ThresholdMode mode, string generator) => EvaluationResults.Metric(metric, generator, Suffix(mode));

    /// <summary>The metrics stored for one generator's row (or the average row) of a mode's table.</summary>
    public static IEnumerable<(string Name, double? Value)> Values(ThresholdMode mode, string generator, Forensics.ML.Metrics.DetectionReport r) =>
    [
        (Metric(EvaluationResults.Acc, mode, generator), r.Acc), (Metric(EvaluationResults.Ap, mode, generator), r.Ap),
        (Metric(EvaluationResults.AccCiLow, mode, generator), r.AccCi?.Low), (Metric(EvaluationResults.AccCiHigh, mode, generator), r.AccCi?.High),
        (Metric(EvaluationResults.ApCiLow, mode, generator), r.ApCi?.Low), (Metric(EvaluationResults.ApCiHigh, mode, generator), r.ApCi?.High),
    ];
}
