using System.Text.Json;
using Forensics.ML.Evaluation;
using Forensics.ML.Metrics;
using Portal.Runs;

namespace Portal.Experiments;

/// <summary>
/// What an "evaluate" run writes, and the one place that names it: its final metrics (step 0) overall ("acc") and per
/// generator ("acc/&lt;generator&gt;"), its artifacts, and the config fields its readers (the leaderboard) take from the
/// stored config. The "crossgen" and "submission" runs write the same metric families (see
/// <see cref="CrossGeneratorResults"/> for the threshold-mode suffix), so the leaderboard reads all three through this type.
/// </summary>
public static class EvaluationResults
{
    /// <summary>Accuracy at the run's threshold (a fraction).</summary>
    public const string Acc = "acc";
    /// <summary>Average precision.</summary>
    public const string Ap = "ap";
    public const string RealAcc = "real_acc";
    public const string FakeAcc = "fake_acc";
    public const string BalancedAcc = "balanced_acc";
    public const string Auc = "auc";
    public const string BestAcc = "best_acc";
    public const string NReal = "n_real";
    public const string NFake = "n_fake";
    /// <summary>The stratified bootstrap interval of <see cref="Acc"/> and <see cref="Ap"/>: "acc_ci_lo", ....</summary>
    public const string AccCiLow = Acc + CiLow, AccCiHigh = Acc + CiHigh, ApCiLow = Ap + CiLow, ApCiHigh = Ap + CiHigh;
    /// <summary>The suffixes of a metric's interval bounds: "acc" + "_ci_lo".</summary>
    public const string CiLow = "_ci_lo", CiHigh = "_ci_hi";
    /// <summary>Separates a metric from its generator: "acc/&lt;generator&gt;".</summary>
    public const char GeneratorSeparator = '/';

    /// <summary>The scores.csv artifact (one row per image) and the metrics.json report.</summary>
    public const string ScoresArtifact = "scores", MetricsArtifact = "metrics";

    /// <summary>
    /// A metric's stored name: <paramref name="metric"/> ("acc"), then a threshold mode's suffix ("" or "@best", see
    /// <see cref="CrossGeneratorResults.Suffix"/>), then "/&lt;generator&gt;" when it is per generator.
    /// </summary>
    public static string Metric(string metric, string? generator = null, string modeSuffix = "") =>
        generator is null ? metric + modeSuffix : $"{metric}{modeSuffix}{GeneratorSeparator}{generator}";

    /// <summary>The prefix every per-generator name of a metric family starts with: "acc@best/".</summary>
    public static string PerGeneratorPrefix(string metric, string modeSuffix = "") => $"{metric}{modeSuffix}{GeneratorSeparator}";

    /// <summary>The final metrics of one report (overall or one generator's), under their names; null values are not stored.</summary>
    public static IEnumerable<(string Name, double? Value)> Values(DetectionReport r) =>
    [
        (Acc, r.Acc), (RealAcc, r.RealAcc), (FakeAcc, r.FakeAcc), (BalancedAcc, r.BalancedAcc),
        (Ap, r.Ap), (Auc, r.Auc), (BestAcc, r.BestAcc), (NReal, r.NReal), (NFake, r.NFake),
        (AccCiLow, r.AccCi?.Low), (AccCiHigh, r.AccCi?.High), (ApCiLow, r.ApCi?.Low), (ApCiHigh, r.ApCi?.High),
    ];

    /// <summary>Final metrics at step 0: overall as "acc", "ap", ...; per generator as "acc/&lt;generator&gt;"; bootstrap intervals as "acc_ci_lo", ....</summary>
    public static async Task StoreAsync(RunContext context, EvaluationReport report)
    {
        async Task Store(string? generator, DetectionReport r)
        {
            foreach (var (name, value) in Values(r))
                if (value is { } v) await context.MetricAsync(Metric(name, generator), 0, v);
        }
        await Store(null, report.Overall);
        foreach (var (generator, r) in report.PerGenerator) await Store(generator, r);
    }

    /// <summary>
    /// The config fields of a scored run (evaluate, crossgen, submission) that the leaderboard reads from its stored config
    /// JSON, as the configs are posted (camelCase). Derived from <see cref="EvaluationJob.Config"/>'s properties, so a
    /// rename there is a rename here; <c>ScoredRunConfigTests</c> checks that the crossgen and submission configs carry them too.
    /// </summary>
    public static class ConfigFields
    {
        public static readonly string Checkpoint = Name(nameof(EvaluationJob.Config.Checkpoint));
        public static readonly string DatasetId = Name(nameof(EvaluationJob.Config.DatasetId));
        public static readonly string Split = Name(nameof(EvaluationJob.Config.Split));
        public static readonly string Perturbation = Name(nameof(EvaluationJob.Config.Perturbation));
        public static readonly string Arch = Name(nameof(EvaluationJob.Config.Arch));
        public static readonly string Seed = Name(nameof(EvaluationJob.Config.Seed));

        /// <summary>Every field above.</summary>
        public static IReadOnlyList<string> All => [Checkpoint, DatasetId, Split, Perturbation, Arch, Seed];

        static string Name(string property) => JsonNamingPolicy.CamelCase.ConvertName(property);
    }
}
