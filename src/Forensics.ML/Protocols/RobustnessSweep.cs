using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Forensics.ML.Detectors;
using Forensics.ML.Evaluation;
using Forensics.ML.Imaging;
using Forensics.ML.Metrics;

namespace Forensics.ML.Protocols;

/// <summary>
/// The perturbation axes of a robustness sweep and their default severities, taken from the papers' sweeps:
/// jpeg: quality 100..30 step 10 (GenImage tests q65 and q30; SIDBench a fixed JPEG grid);
/// webp: quality 100..30 step 10 (AlignedForensics' WebP sweep);
/// resize: scale 0.25, 0.5, 0.75, 1.25, 1.5, 1.75, 2.0 (AlignedForensics' 0.25-2.0 bicubic sweep);
/// blur: Gaussian sigma 1..5 px (GenImage tests sigma 3 and 5);
/// noise: Gaussian sigma 5, 10, 15, 20 in 0..255 units (our grid: the papers name no noise levels).
/// Every default sweep starts with "clean" (no perturbation).
/// </summary>
public static class SweepAxes
{
    /// <summary>The axis names.</summary>
    public static readonly IReadOnlyList<string> All = ["jpeg", "webp", "resize", "blur", "noise"];

    /// <summary>The severity token for "no perturbation".</summary>
    public const string Clean = "clean";

    /// <summary>The canonical axis name.</summary>
    /// <exception cref="ArgumentException">Not an axis; the message quotes the value and lists the axes.</exception>
    public static string Check(string axis)
    {
        ArgumentNullException.ThrowIfNull(axis);
        var name = axis.Trim().ToLowerInvariant();
        return All.Contains(name) ? name : throw new ArgumentException($"unknown sweep axis '{axis}'; expected one of {string.Join(", ", All)}", nameof(axis));
    }

    /// <summary>The default severities of <paramref name="axis"/> (null = clean), see the class remarks.</summary>
    public static IReadOnlyList<double?> DefaultSeverities(string axis) => Check(axis) switch
    {
        "jpeg" or "webp" => [null, 100, 90, 80, 70, 60, 50, 40, 30],
        "resize" => [null, 0.25, 0.5, 0.75, 1.25, 1.5, 1.75, 2.0],
        "blur" => [null, 1, 2, 3, 4, 5],
        _ => [null, 5, 10, 15, 20],
    };

    /// <summary>The perturbation of one severity on <paramref name="axis"/>; null severity = none.</summary>
    /// <exception cref="ArgumentException">The severity is out of the axis' range; the message names axis and value.</exception>
    public static PerturbationSpec Spec(string axis, double? severity)
    {
        var name = Check(axis);
        if (severity is not { } s) return PerturbationSpec.None;
        var token = name is "jpeg" or "webp"
            ? (s == Math.Floor(s) ? $"{name}:{(int)s}" : throw Bad(name, s, "quality must be a whole number 1..100"))
            : $"{name}:{s.ToString("R", CultureInfo.InvariantCulture)}";
        if (!PerturbationSpec.TryParse(token, out var spec, out var error))
            throw Bad(name, s, error ?? "out of range");
        return spec;
    }

    /// <summary>Parses a comma list of severities ("clean,100,90"); "clean" or "none" is no perturbation.</summary>
    /// <exception cref="ArgumentException">A token is not a number or is out of range for the axis; the message quotes it.</exception>
    public static IReadOnlyList<double?> ParseSeverities(string axis, string text)
    {
        var name = Check(axis);
        ArgumentNullException.ThrowIfNull(text);
        var list = new List<double?>();
        foreach (var raw in text.Split(','))
        {
            var token = raw.Trim();
            if (token.Equals(Clean, StringComparison.OrdinalIgnoreCase) || token.Equals("none", StringComparison.OrdinalIgnoreCase)) { list.Add(null); continue; }
            if (!double.TryParse(token, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) || !double.IsFinite(value))
                throw new ArgumentException($"severity '{raw}' of axis {name} is not a number (or 'clean')", nameof(text));
            Spec(name, value); // range check now, before any scoring
            list.Add(value);
        }
        if (list.Count == 0) throw new ArgumentException("no severities given", nameof(text));
        return list;
    }

    /// <summary>How a severity is written in JSON and CSV: "clean" or the number.</summary>
    public static string Format(double? severity) => severity is { } s ? s.ToString("R", CultureInfo.InvariantCulture) : Clean;

    private static ArgumentException Bad(string axis, double value, string why) =>
        new($"severity {value.ToString("R", CultureInfo.InvariantCulture)} of axis {axis} is invalid: {why}", "severity");
}

/// <summary>Mean and sample standard deviation of P(fake) over a class's images (the AlignedForensics resize plot).</summary>
public sealed record ScoreSpread(int N, double? Mean, double? Sd)
{
    /// <summary>The spread of <paramref name="scores"/>; null mean without images, null sd with fewer than two.</summary>
    public static ScoreSpread Of(IReadOnlyCollection<double> scores)
    {
        if (scores.Count == 0) return new ScoreSpread(0, null, null);
        var mean = scores.Average();
        double? sd = scores.Count < 2 ? null : Math.Sqrt(scores.Sum(s => (s - mean) * (s - mean)) / (scores.Count - 1));
        return new ScoreSpread(scores.Count, mean, sd);
    }
}

/// <summary>The metrics of one group (all images, or one generator) at one severity.</summary>
public sealed record SweepCell(string Generator, DetectionReport Report, ScoreSpread RealPFake, ScoreSpread FakePFake)
{
    /// <summary>(metric, value) pairs for the long CSV; undefined values are left out.</summary>
    public IEnumerable<(string Metric, double Value)> Metrics()
    {
        var r = Report;
        var all = new (string, double?)[]
        {
            ("n_real", r.NReal), ("n_fake", r.NFake), ("acc", r.Acc), ("real_acc", r.RealAcc), ("fake_acc", r.FakeAcc),
            ("ap", r.Ap), ("auc", r.Auc), ("acc_ci_low", r.AccCi?.Low), ("acc_ci_high", r.AccCi?.High),
            ("ap_ci_low", r.ApCi?.Low), ("ap_ci_high", r.ApCi?.High),
            ("mean_pfake_real", RealPFake.Mean), ("sd_pfake_real", RealPFake.Sd),
            ("mean_pfake_fake", FakePFake.Mean), ("sd_pfake_fake", FakePFake.Sd),
        };
        return all.Where(m => m.Item2.HasValue).Select(m => (m.Item1, m.Item2!.Value));
    }

    /// <summary>The cell as JSON: the report plus the P(fake) spreads.</summary>
    public JsonObject ToJson()
    {
        var json = Report.ToJson();
        json["generator"] = Generator;
        json["mean_pfake_real"] = RealPFake.Mean;
        json["sd_pfake_real"] = RealPFake.Sd;
        json["mean_pfake_fake"] = FakePFake.Mean;
        json["sd_pfake_fake"] = FakePFake.Sd;
        return json;
    }

    /// <summary>Metrics and spreads of one group of scores.</summary>
    public static SweepCell Of(string generator, IReadOnlyList<ImageScore> scores, MetricsOptions metrics) => new(
        generator,
        DetectionMetrics.Compute(scores.Select(s => s.Label).ToArray(), scores.Select(s => s.Score).ToArray(), metrics),
        ScoreSpread.Of(scores.Where(s => s.Label == 0).Select(s => s.Score).ToList()),
        ScoreSpread.Of(scores.Where(s => s.Label == 1).Select(s => s.Score).ToList()));
}

/// <summary>One severity of a sweep: its perturbation, the overall cell, one cell per generator, and its scores.</summary>
/// <param name="Severity">The severity; null = clean.</param>
/// <param name="Perturbation">The perturbation applied.</param>
/// <param name="FromCache">True when the clean scores were passed in rather than computed.</param>
public sealed record SweepPoint(double? Severity, PerturbationSpec Perturbation, bool FromCache, SweepCell Overall,
    IReadOnlyList<SweepCell> PerGenerator, IReadOnlyList<ImageScore> Scores, IReadOnlyList<SkippedImage> Skipped)
{
    /// <summary>The point as JSON (scores are not repeated).</summary>
    public JsonObject ToJson() => new()
    {
        ["severity"] = SweepAxes.Format(Severity),
        ["perturbation"] = Perturbation.ToString(),
        ["from_cache"] = FromCache,
        ["n_scored"] = Scores.Count,
        ["n_skipped"] = Skipped.Count,
        ["overall"] = Overall.ToJson(),
        ["per_generator"] = new JsonArray(PerGenerator.Select(c => (JsonNode)c.ToJson()).ToArray()),
    };
}

/// <summary>A robustness curve: one <see cref="SweepPoint"/> per severity along one axis.</summary>
public sealed record SweepResult(string Axis, string Data, IReadOnlyList<SweepPoint> Points)
{
    /// <summary>File name of <see cref="ToJson"/> in the CLI's output folder.</summary>
    public const string JsonFileName = "sweep.json";

    /// <summary>File name of <see cref="ToCsv"/> in the CLI's output folder.</summary>
    public const string CsvFileName = "sweep.csv";

    /// <summary>Generator name of the overall rows in the CSV.</summary>
    public const string AllGenerators = "all";

    /// <summary>sweep.json.</summary>
    public JsonObject ToJson() => new()
    {
        ["axis"] = Axis,
        ["data"] = Data,
        ["points"] = new JsonArray(Points.Select(p => (JsonNode)p.ToJson()).ToArray()),
    };

    /// <summary>sweep.csv, long format for plotting: axis,severity,generator,metric,value ("all" = every generator).</summary>
    public string ToCsv()
    {
        var csv = new StringBuilder("axis,severity,generator,metric,value\n");
        foreach (var point in Points)
            foreach (var cell in point.PerGenerator.Prepend(point.Overall))
                foreach (var (metric, value) in cell.Metrics())
                    csv.Append(Axis).Append(',').Append(SweepAxes.Format(point.Severity)).Append(',').Append(Csv(cell.Generator)).Append(',')
                       .Append(metric).Append(',').Append(value.ToString("R", CultureInfo.InvariantCulture)).Append('\n');
        return csv.ToString();
    }

    /// <summary>One line per severity: overall acc, real/fake acc, AP, mean P(fake) on reals and fakes.</summary>
    public string FormatTable()
    {
        var text = new StringBuilder($"axis {Axis}\n{"severity",8}  {"acc",6}  {"real_acc",8}  {"fake_acc",8}  {"ap",6}  {"pfake_real",16}  {"pfake_fake",16}\n");
        foreach (var p in Points)
        {
            var o = p.Overall;
            text.AppendLine($"{SweepAxes.Format(p.Severity),8}  {T(o.Report.Acc),6}  {T(o.Report.RealAcc),8}  {T(o.Report.FakeAcc),8}  {T(o.Report.Ap),6}  " +
                            $"{Spread(o.RealPFake),16}  {Spread(o.FakePFake),16}");
        }
        return text.ToString();
    }

    private static string Spread(ScoreSpread s) => s.Mean is { } m ? $"{T(m)} +- {T(s.Sd)}" : "-";
    private static string T(double? v) => v is { } x ? x.ToString("0.0000", CultureInfo.InvariantCulture) : "-";
    private static string Csv(string s) => global::Forensics.ML.Data.CsvCell.Escape(s);
}

/// <summary>
/// Robustness sweep: scores a data set under increasing severities of one perturbation and reports, per severity,
/// overall and per-generator metrics and the mean +- sd of P(fake) on reals and on fakes.
/// </summary>
public static class RobustnessSweep
{
    /// <summary>
    /// Sweeps <paramref name="axis"/> with <paramref name="detector"/> through <see cref="DetectorEvaluator.Score"/>;
    /// each severity's scores are exactly what that function gives with the severity's <see cref="PerturbationSpec"/>.
    /// The clean severity uses <paramref name="cleanScores"/> when given instead of scoring again.
    /// </summary>
    /// <param name="progress">Images scored over every severity that is scored (not the cached clean one), after each batch;
    /// the stage is the axis and severity ("jpeg 70").</param>
    /// <exception cref="ArgumentException">Unknown axis, a bad severity, or cached clean scores of an image not in <paramref name="data"/> (the message names it).</exception>
    public static SweepResult Run(Detector detector, EvaluationSet data, string axis, IReadOnlyList<double?>? severities = null,
        SweepOptions? options = null, IReadOnlyList<ImageScore>? cleanScores = null, IProgress<ProtocolProgress>? progress = null,
        CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(detector);
        ArgumentNullException.ThrowIfNull(data);
        options ??= new SweepOptions();
        if (cleanScores is not null)
        {
            // Cached scores of another data set would silently mix two curves: every cached image must be in this set.
            var paths = data.Images.Select(i => i.RelativePath).ToHashSet(StringComparer.Ordinal);
            var stranger = cleanScores.FirstOrDefault(s => !paths.Contains(s.RelativePath));
            if (stranger is not null)
                throw new ArgumentException($"cleanScores has '{stranger.RelativePath}', which is not an image of {CrossGeneratorEvaluation.Describe(data)}", nameof(cleanScores));
        }
        var eval = options.Eval;
        var name = SweepAxes.Check(axis);
        var list = severities ?? SweepAxes.DefaultSeverities(name);
        // The scorer is called once per scored severity, in order: the n-th call is the n-th scored pass.
        var scoredSeverities = list.Where(s => s is not null || cleanScores is null).ToList();
        var total = scoredSeverities.Count * data.Images.Count;
        var pass = 0;
        ScoringResult Score(PerturbationSpec spec)
        {
            var index = pass++;
            var stage = index < scoredSeverities.Count ? $"{name} {SweepAxes.Format(scoredSeverities[index])}" : name;
            var passProgress = progress is null ? null : new PassProgress(progress, stage, index * data.Images.Count, total);
            return DetectorEvaluator.Score(detector, data.Images, eval with { Perturbation = spec }, passProgress, ct);
        }
        return Run(Score, CrossGeneratorEvaluation.Describe(data), axis, severities, options, cleanScores, ct);
    }

    /// <summary>
    /// The sweep with any scorer (a function from perturbation to scores): the seam for other detector kinds and for
    /// tests. The scorer is called once per non-clean severity, and for clean only without <paramref name="cleanScores"/>.
    /// </summary>
    /// <exception cref="ArgumentException">Unknown axis, a severity out of range, an empty severity list, or empty clean scores.</exception>
    public static SweepResult Run(Func<PerturbationSpec, ScoringResult> score, string data, string axis, IReadOnlyList<double?>? severities = null,
        SweepOptions? options = null, IReadOnlyList<ImageScore>? cleanScores = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(score);
        options ??= new SweepOptions();
        var name = SweepAxes.Check(axis);
        severities ??= SweepAxes.DefaultSeverities(name);
        if (severities.Count == 0) throw new ArgumentException("no severities to sweep", nameof(severities));
        if (cleanScores is { Count: 0 }) throw new ArgumentException("cleanScores is empty; pass null to score the clean images", nameof(cleanScores));
        var specs = severities.Select(s => (Severity: s, Spec: SweepAxes.Spec(name, s))).ToList(); // all range errors before any scoring

        var points = new List<SweepPoint>();
        foreach (var (severity, spec) in specs)
        {
            ct.ThrowIfCancellationRequested();
            var fromCache = severity is null && cleanScores is not null;
            var result = fromCache ? new ScoringResult(cleanScores!, []) : score(spec);
            if (result.Scores.Count == 0) throw new InvalidOperationException($"no image could be scored at {name} severity {SweepAxes.Format(severity)}");
            var perGenerator = result.Scores.GroupBy(s => s.Generator, StringComparer.Ordinal).OrderBy(g => g.Key, StringComparer.Ordinal)
                .Select(g => SweepCell.Of(g.Key, g.ToList(), options.Metrics)).ToList();
            points.Add(new SweepPoint(severity, spec, fromCache, SweepCell.Of(SweepResult.AllGenerators, result.Scores, options.Metrics),
                perGenerator, result.Scores, result.Skipped));
        }
        return new SweepResult(name, data, points);
    }
}

/// <summary>Settings of <see cref="RobustnessSweep"/>.</summary>
public sealed record SweepOptions
{
    /// <summary>Scoring settings; the perturbation is replaced by each severity's.</summary>
    public EvalOptions Eval { get; init; } = new();

    /// <summary>Threshold and bootstrap of every cell.</summary>
    public MetricsOptions Metrics { get; init; } = new();
}
