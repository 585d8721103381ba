using Forensics.ML.Protocols;

namespace Portal.Experiments;

/// <summary>
/// What a "sweep" run writes, and the one place that names it: sweep.json and sweep.csv (artifacts "sweep" and
/// "sweep-csv"), and one series per metric and axis ("acc@jpeg") whose step i is the sweep's point i (severity i of the
/// axis, the clean point first). The robustness summary and the result panels read them through this type.
/// </summary>
public static class SweepResults
{
    /// <summary>The sweep's report and its CSV: artifact kinds and file names.</summary>
    public const string JsonArtifact = "sweep", JsonFileName = SweepResult.JsonFileName;
    public const string CsvArtifact = "sweep-csv", CsvFileName = SweepResult.CsvFileName;
    /// <summary>Separates a metric from the axis: "acc@jpeg".</summary>
    public const char AxisSeparator = '@';

    /// <summary>The series of <paramref name="metric"/> ("acc", "ap", ...) along <paramref name="axis"/>: "acc@jpeg".</summary>
    public static string Metric(string metric, string axis) => $"{metric}{AxisSeparator}{axis}";

    /// <summary>The prefix of every axis's series of <paramref name="metric"/>: "acc@".</summary>
    public static string MetricPrefix(string metric) => metric + AxisSeparator;
}
