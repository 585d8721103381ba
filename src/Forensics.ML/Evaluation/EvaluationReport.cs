using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using Forensics.ML.Data;
using Forensics.ML.Detectors;
using Forensics.ML.Imaging;
using Forensics.ML.Metrics;

namespace Forensics.ML.Evaluation;

/// <summary>
/// The outcome of evaluating a detector on a data folder: per-image scores, metrics over all images and per generator,
/// what was skipped, and what produced it (checkpoint, perturbation, seed, batching).
/// </summary>
public sealed record EvaluationReport
{
    /// <summary>Name of the per-image scores file that <see cref="Write"/> creates.</summary>
    public const string ScoresFileName = "scores.csv";

    /// <summary>Name of the metrics file that <see cref="Write"/> creates.</summary>
    public const string MetricsFileName = "metrics.json";

    /// <summary>Metrics over every scored image.</summary>
    public required DetectionReport Overall { get; init; }

    /// <summary>Metrics per generator (ordinal order); a generator with one class only has null AP/AUC.</summary>
    public required IReadOnlyDictionary<string, DetectionReport> PerGenerator { get; init; }

    /// <summary>Per-image scores, in the data set's order.</summary>
    public required IReadOnlyList<ImageScore> Scores { get; init; }

    /// <summary>Images left out: unreadable at scan time, then those that failed to decode during scoring.</summary>
    public required IReadOnlyList<SkippedImage> Skipped { get; init; }

    /// <summary>The perturbation applied before scoring.</summary>
    public required PerturbationSpec Perturbation { get; init; }

    /// <summary>Decision threshold on P(fake) of the accuracies (fake when score &gt; threshold).</summary>
    public double Threshold => Overall.Threshold;

    /// <summary>The data folder (full path).</summary>
    public required string DataRoot { get; init; }

    /// <summary>The split evaluated; null: every split.</summary>
    public string? Split { get; init; }

    /// <summary>The checkpoint file; null for a network built in code.</summary>
    public string? CheckpointPath { get; init; }

    /// <summary>SHA-256 of the checkpoint file.</summary>
    public string? CheckpointSha256 { get; init; }

    /// <summary>The detector's architecture name.</summary>
    public required string Architecture { get; init; }

    /// <summary>The detector's inferred configuration: stem width, blocks per stage, number of logits.</summary>
    public required (int BaseWidth, IReadOnlyList<int> Layers, int NumClasses) Network { get; init; }

    /// <summary>The run seed of the perturbations.</summary>
    public ulong Seed { get; init; }

    /// <summary>How images were batched.</summary>
    public EvalBatching Batching { get; init; }

    /// <summary>The evaluation's pixel limit and what it did with larger images (metrics.json "image_limit").</summary>
    public (long MaxPixels, OversizePolicy Policy) ImageLimit { get; init; } = (EvalOptions.DefaultMaxPixels, OversizePolicy.Refuse);

    /// <summary>Images scored.</summary>
    public int NScored => Scores.Count;

    /// <summary>The folder of precomputed LaRE maps the scores used (LaRE² only); null for detectors without maps.</summary>
    public string? LareFolder { get; init; }

    /// <summary>The side of the centre crop fed to the network (LaRE² only); null when the full image is scored.</summary>
    public int? InputCrop { get; init; }

    /// <summary>
    /// Computes the metrics of <paramref name="result"/>. Skipped images are those of <paramref name="data"/> (scan)
    /// followed by those of the scoring run.
    /// </summary>
    /// <exception cref="InvalidOperationException">No image could be scored.</exception>
    public static EvaluationReport Create(Detector detector, EvaluationSet data, ScoringResult result, EvalOptions options, MetricsOptions? metrics = null)
    {
        ArgumentNullException.ThrowIfNull(detector);
        return Create(detector.Architecture.Name, detector.Summary,
            detector.CheckpointPath, detector.CheckpointSha256, data, result, options, metrics);
    }

    /// <summary>
    /// The same report for any scorer: <paramref name="architecture"/> and <paramref name="network"/> describe it in
    /// metrics.json's "checkpoint" object (LaRE² fills them from its backbone).
    /// </summary>
    /// <exception cref="InvalidOperationException">No image could be scored.</exception>
    public static EvaluationReport Create(string architecture, (int BaseWidth, IReadOnlyList<int> Layers, int NumClasses) network,
        string? checkpointPath, string? checkpointSha256, EvaluationSet data, ScoringResult result, EvalOptions options, MetricsOptions? metrics = null)
    {
        ArgumentNullException.ThrowIfNull(architecture);
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(result);
        ArgumentNullException.ThrowIfNull(options);
        var skipped = data.Unreadable.Concat(result.Skipped).ToList();
        if (result.Scores.Count == 0)
            throw new InvalidOperationException(
                $"No image of '{data.Root}'{(data.Split is null ? "" : $" (split '{data.Split}')")} could be scored; {skipped.Count} skipped" +
                (skipped.Count > 0 ? $", e.g. {skipped[0].RelativePath}: {skipped[0].Reason}" : "") + ".");
        metrics ??= new MetricsOptions();
        var overall = DetectionMetrics.Compute(result.Scores.Select(s => s.Label).ToArray(), result.Scores.Select(s => s.Score).ToArray(), metrics);
        var perGenerator = DetectionMetrics.ComputeByGroup(result.Scores.Select(s => (s.Generator, s.Label, s.Score)), metrics);
        return new EvaluationReport
        {
            Overall = overall,
            PerGenerator = perGenerator,
            Scores = result.Scores,
            Skipped = skipped,
            Perturbation = options.Perturbation ?? PerturbationSpec.None,
            DataRoot = data.Root,
            Split = data.Split,
            CheckpointPath = checkpointPath,
            CheckpointSha256 = checkpointSha256,
            Architecture = architecture,
            Network = network,
            Seed = options.Seed,
            Batching = options.Batching,
            ImageLimit = (options.MaxPixels, options.Oversize),
        };
    }

    /// <summary>
    /// Writes <c>outDir/scores.csv</c> (path,label,score; path relative to the data folder with '/' separators) and
    /// <c>outDir/metrics.json</c> (snake_case; see <see cref="ToJson"/>), creating the folder when needed.
    /// </summary>
    public void Write(string outDir)
    {
        ArgumentNullException.ThrowIfNull(outDir);
        Directory.CreateDirectory(outDir);
        ScoresCsv.Write(Path.Combine(outDir, ScoresFileName), Scores.Select(s => new ScoreRow(s.RelativePath, s.Label, s.Score)));
        File.WriteAllText(Path.Combine(outDir, MetricsFileName), ToJson().ToJsonString(JsonOptions) + "\n", new UTF8Encoding(false));
    }

    /// <summary>
    /// The metrics as JSON: "overall" and "per_generator" objects (acc, real_acc, fake_acc, balanced_acc, ap, auc, best_acc,
    /// best_threshold, best_threshold_chosen_on_test, n_real, n_fake, acc_ci, ap_ci, ...), "perturbation", "threshold",
    /// "checkpoint" {path, sha256, arch, base_width, layers, num_classes}, "data", "split", "seed", "batching", counts and
    /// the "skipped" list [{path, reason}]. Undefined metrics are null; a best_threshold of -infinity is the string "-Infinity".
    /// </summary>
    public JsonObject ToJson()
    {
        var perGenerator = new JsonObject();
        foreach (var (generator, report) in PerGenerator) perGenerator[generator] = report.ToJson();
        return new JsonObject
        {
            ["checkpoint"] = new JsonObject
            {
                ["path"] = CheckpointPath,
                ["sha256"] = CheckpointSha256,
                ["arch"] = Architecture,
                ["base_width"] = Network.BaseWidth,
                ["layers"] = new JsonArray(Network.Layers.Select(n => (JsonNode?)JsonValue.Create(n)).ToArray()),
                ["num_classes"] = Network.NumClasses,
            },
            ["data"] = DataRoot,
            ["split"] = Split,
            ["perturbation"] = Perturbation.ToString(),
            ["seed"] = Seed,
            ["batching"] = Batching == EvalBatching.Single ? "single" : "size",
            ["image_limit"] = new JsonObject
            {
                ["max_pixels"] = ImageLimit.MaxPixels,
                ["policy"] = ImageLimit.Policy.ToString().ToLowerInvariant(),
                ["refused"] = Skipped.Count(s => s.Reason.StartsWith(ImageLimits.TooLargePrefix, StringComparison.Ordinal)),
            },
            ["threshold"] = Threshold,
            ["n_scored"] = NScored,
            ["n_skipped"] = Skipped.Count,
            ["overall"] = Overall.ToJson(),
            ["per_generator"] = perGenerator,
            ["lare"] = LareFolder,
            ["input_crop"] = InputCrop,
            ["skipped"] = new JsonArray(Skipped.Select(s => (JsonNode?)new JsonObject { ["path"] = s.RelativePath, ["reason"] = s.Reason }).ToArray()),
        };
    }


    /// <summary>A per-generator table (n, acc, real_acc, fake_acc, ap) and the overall line, for a terminal.</summary>
    public string FormatTable()
    {
        var rows = PerGenerator.Select(p => (Name: p.Key, Report: p.Value)).Append((Name: "overall", Report: Overall)).ToList();
        var width = Math.Max("generator".Length, rows.Max(r => r.Name.Length));
        var text = new StringBuilder();
        text.AppendLine($"{"generator".PadRight(width)}  {"n",6}  {"acc",7}  {"real_acc",8}  {"fake_acc",8}  {"ap",7}");
        for (var i = 0; i < rows.Count; i++)
        {
            var (name, r) = rows[i];
            if (i == rows.Count - 1) text.AppendLine(new string('-', width + 46));
            text.AppendLine($"{name.PadRight(width)}  {r.NReal + r.NFake,6}  {Percent(r.Acc),7}  {Percent(r.RealAcc),8}  {Percent(r.FakeAcc),8}  {Fraction(r.Ap),7}");
        }
        return text.ToString();
    }

    private static string Percent(double? v) => v is { } x ? (100 * x).ToString("0.00", CultureInfo.InvariantCulture) : "-";

    private static string Fraction(double? v) => v is { } x ? x.ToString("0.0000", CultureInfo.InvariantCulture) : "-";


    private static JsonSerializerOptions JsonOptions => ReportJson.Options;
}
