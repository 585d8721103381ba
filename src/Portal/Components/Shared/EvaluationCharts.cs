using System.Globalization;
using System.Text.Json;
using Forensics.ML.Metrics;
using Forensics.ML.Protocols;
using ScottPlot;
using Portal.Store;

namespace Portal.Components.Shared;

/// <summary>One config key whose value differs between runs: the key (dotted path) and each run's value (null = absent).</summary>
public sealed record ConfigDiffRow(string Key, IReadOnlyList<string?> Values);

/// <summary>The config keys of several runs: those that differ (one row each) and those identical in all of them.</summary>
public sealed record ConfigDiffResult(IReadOnlyList<ConfigDiffRow> Differing, IReadOnlyList<string> Identical);

/// <summary>Compares run configs key by key; nested objects are flattened to dotted keys.</summary>
public static class ConfigComparison
{
    /// <summary>The keys of <paramref name="configs"/> (JSON objects, one per run, in column order) split into differing and identical.</summary>
    public static ConfigDiffResult Compare(IReadOnlyList<string> configs)
    {
        ArgumentNullException.ThrowIfNull(configs);
        var flat = configs.Select(Flatten).ToList();
        var keys = flat.SelectMany(f => f.Keys).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        var differing = new List<ConfigDiffRow>();
        var identical = new List<string>();
        foreach (var key in keys)
        {
            var values = flat.Select(f => f.TryGetValue(key, out var v) ? v : null).ToList();
            if (values.Distinct(StringComparer.Ordinal).Count() == 1) identical.Add(key);
            else differing.Add(new ConfigDiffRow(key, values));
        }
        return new ConfigDiffResult(differing, identical);
    }

    /// <summary>Leaf values of a JSON object by dotted key (arrays kept as their JSON text); a non-object config is a single "(config)" key.</summary>
    public static IReadOnlyDictionary<string, string> Flatten(string json)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        JsonElement root;
        try { root = JsonDocument.Parse(string.IsNullOrWhiteSpace(json) ? "{}" : json).RootElement; }
        catch (JsonException) { result["(config)"] = json; return result; }
        if (root.ValueKind != JsonValueKind.Object) { result["(config)"] = root.GetRawText(); return result; }
        Walk(root, "", result);
        return result;
    }

    static void Walk(JsonElement e, string prefix, Dictionary<string, string> into)
    {
        foreach (var p in e.EnumerateObject())
        {
            var key = prefix.Length == 0 ? p.Name : $"{prefix}.{p.Name}";
            if (p.Value.ValueKind == JsonValueKind.Object) Walk(p.Value, key, into);
            else into[key] = p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString()! : p.Value.GetRawText();
        }
    }
}

/// <summary>One row of sweep.csv: axis, severity (null = clean), generator ("all" = every generator), metric and value.</summary>
public sealed record SweepRow(string Axis, double? Severity, string Generator, string Metric, double Value);

/// <summary>Reads sweep.csv and overlays the curves of several sweeps (x = severity).</summary>
public static class SweepCurves
{
    /// <summary>The metrics charted, in order: accuracy, AP and the mean P(fake) of reals and fakes.</summary>
    public static readonly IReadOnlyList<string> ChartedMetrics = ["acc", "ap", "mean_pfake_real", "mean_pfake_fake"];

    /// <summary>The rows of a sweep.csv (header axis,severity,generator,metric,value).</summary>
    /// <exception cref="InvalidDataException">A missing column or a value that is not a number; the message names file and line.</exception>
    public static IReadOnlyList<SweepRow> Read(string path)
    {
        var lines = File.ReadAllLines(path);
        if (lines.Length == 0) throw new InvalidDataException($"{path}: empty, expected the header axis,severity,generator,metric,value");
        var header = lines[0].Split(',').Select(h => h.Trim()).ToList();
        int Col(string name) => header.IndexOf(name) is var i and >= 0 ? i
            : throw new InvalidDataException($"{path}: no '{name}' column in the header '{lines[0]}'");
        int axis = Col("axis"), severity = Col("severity"), generator = Col("generator"), metric = Col("metric"), value = Col("value");
        var rows = new List<SweepRow>();
        for (var n = 1; n < lines.Length; n++)
        {
            if (string.IsNullOrWhiteSpace(lines[n])) continue;
            // A generator name may hold a comma; the job quotes it then.
            var f = SplitCsv(lines[n]);
            if (f.Count != header.Count) throw new InvalidDataException($"{path}:{n + 1}: {f.Count} fields, expected {header.Count}");
            double? sev = f[severity].Equals("clean", StringComparison.OrdinalIgnoreCase) ? null
                : double.TryParse(f[severity], NumberStyles.Float, CultureInfo.InvariantCulture, out var s) ? s
                : throw new InvalidDataException($"{path}:{n + 1}: severity '{f[severity]}' is not a number or 'clean'");
            if (!double.TryParse(f[value], NumberStyles.Float, CultureInfo.InvariantCulture, out var v))
                throw new InvalidDataException($"{path}:{n + 1}: value '{f[value]}' is not a number");
            rows.Add(new SweepRow(f[axis], sev, f[generator], f[metric], v));
        }
        return rows;
    }

    static List<string> SplitCsv(string line)
    {
        var fields = new List<string>();
        var current = new System.Text.StringBuilder();
        var quoted = false;
        for (var i = 0; i < line.Length; i++)
        {
            var c = line[i];
            if (quoted)
            {
                if (c == '"' && i + 1 < line.Length && line[i + 1] == '"') { current.Append('"'); i++; }
                else if (c == '"') quoted = false;
                else current.Append(c);
            }
            else if (c == '"') quoted = true;
            else if (c == ',') { fields.Add(current.ToString()); current.Clear(); }
            else current.Append(c);
        }
        fields.Add(current.ToString());
        return fields;
    }

    /// <summary>
    /// One chart per metric of <see cref="ChartedMetrics"/> that any sweep has, with one series per run: the overall
    /// ("all") value against severity, 0-100 % with a chance line, the clean point at its own place. Sweeps of several
    /// axes are drawn on separate charts (see <see cref="ByAxis"/>), never on one axis.
    /// </summary>
    public static IReadOnlyList<ChartSpec> Overlay(IReadOnlyList<(long RunId, IReadOnlyList<SweepRow> Rows)> sweeps) =>
        ByAxis(sweeps).SelectMany(g => g.Charts).ToList();

    /// <summary>The sweeps grouped by perturbation axis (in <see cref="SweepAxes.All"/> order), each axis with its own charts.</summary>
    public static IReadOnlyList<SweepAxisCharts> ByAxis(IReadOnlyList<(long RunId, IReadOnlyList<SweepRow> Rows)> sweeps)
    {
        ArgumentNullException.ThrowIfNull(sweeps);
        var axes = sweeps.SelectMany(s => s.Rows.Select(r => r.Axis)).Distinct(StringComparer.Ordinal)
            .OrderBy(a => SweepAxes.All.ToList().IndexOf(a) is var i and >= 0 ? i : int.MaxValue).ThenBy(a => a, StringComparer.Ordinal).ToList();
        var groups = new List<SweepAxisCharts>();
        foreach (var axis in axes)
        {
            var overall = sweeps.Select(s => (s.RunId, Rows: s.Rows.Where(r => r.Axis == axis && r.Generator == SweepResult.AllGenerators).ToList()))
                .Where(s => s.Rows.Count > 0).ToList();
            var scale = SweepScale.Of(axis, overall.SelectMany(s => s.Rows).Where(r => r.Severity is not null).Select(r => r.Severity!.Value));
            var charts = new List<ChartSpec>();
            foreach (var metric in ChartedMetrics)
            {
                var series = new Dictionary<string, IReadOnlyList<ChartPoint>>(StringComparer.Ordinal);
                foreach (var (runId, rows) in overall)
                {
                    var points = rows.Where(r => r.Metric == metric).GroupBy(r => r.Severity).Select(g => g.Last())
                        .Select(r => new ChartPoint(scale.X(r.Severity), r.Value)).OrderBy(p => p.X).ToList();
                    if (points.Count > 0) series[$"#{runId}"] = points;
                }
                if (series.Count == 0) continue;
                var onePoint = series.Values.All(p => p.Count(q => q.X != scale.CleanX) <= 1);
                charts.Add(new ChartSpec($"{scale.Title}: {MetricTitle(metric)}", series)
                {
                    XLabel = scale.Label, YLabel = MetricTitle(metric), Percent = true, Markers = true,
                    ReferenceY = 0.5, ReferenceLabel = metric.StartsWith("mean_pfake", StringComparison.Ordinal) ? "threshold 0.5" : "chance",
                    XTicks = scale.Ticks, InvertX = scale.Inverted, ShowValues = onePoint || series.Count == 1 && series.Values.First().Count <= 4,
                });
            }
            if (charts.Count > 0) groups.Add(new SweepAxisCharts(axis, scale.Title, charts));
        }
        return groups;
    }

    /// <summary>How a metric of sweep.csv is titled on charts and tables.</summary>
    public static string MetricTitle(string metric) => metric switch
    {
        "acc" => "ACC",
        "ap" => "AP",
        "auc" => "AUC",
        "real_acc" => "real ACC",
        "fake_acc" => "fake ACC",
        "mean_pfake_real" => "mean P(fake), reals",
        "mean_pfake_fake" => "mean P(fake), fakes",
        _ => metric,
    };
}

/// <summary>The charts of one perturbation axis: its name ("jpeg"), its title ("JPEG quality") and one chart per metric.</summary>
public sealed record SweepAxisCharts(string Axis, string Title, IReadOnlyList<ChartSpec> Charts);

/// <summary>
/// The x axis of one perturbation kind, in its own units: JPEG/WebP quality (decreasing to the right), resize scale,
/// blur sigma, noise sigma. The clean point sits at its own place, labelled: where the axis has a no-op value (scale 1,
/// sigma 0) it sits there; on a quality axis (where even 100 compresses) it sits beyond the best quality.
/// </summary>
public sealed record SweepScale(string Axis, string Title, string Label, bool Inverted, double CleanX, IReadOnlyList<(double X, string Label)> Ticks)
{
    /// <summary>The x of a severity (null = clean).</summary>
    public double X(double? severity) => severity ?? CleanX;

    /// <summary>The scale of <paramref name="axis"/> for these severities (the clean point is always on it).</summary>
    public static SweepScale Of(string axis, IEnumerable<double> severities)
    {
        var values = severities.Where(double.IsFinite).Distinct().Order().ToList();
        static string N(double v) => v.ToString("0.##", CultureInfo.InvariantCulture);
        (string title, string label, bool inverted, double clean, string cleanLabel, Func<double, string> tick) = axis switch
        {
            "jpeg" or "webp" => (axis == "jpeg" ? "JPEG quality" : "WebP quality", (axis == "jpeg" ? "JPEG" : "WebP") + " quality (lower = stronger compression)", true,
                Math.Max(100, values.DefaultIfEmpty(100).Max()) + Math.Max(8, 0.15 * (100 - values.DefaultIfEmpty(100).Min())), "clean", (Func<double, string>)N),
            "resize" => ("Resize scale", "resize scale (× side length)", false, 1.0, "clean (1×)", v => N(v) + "×"),
            "blur" => ("Gaussian blur", "blur sigma (px)", false, 0.0, "clean (σ 0)", N),
            "noise" => ("Gaussian noise", "noise sigma (0-255 pixel units)", false, 0.0, "clean (σ 0)", N),
            _ => (axis, axis + " severity", false, values.DefaultIfEmpty(0).Min() - 1, "clean", N),
        };
        var ticks = values.Where(v => v != clean).Select(v => (v, tick(v))).Append((clean, cleanLabel)).OrderBy(t => t.Item1).ToList();
        return new SweepScale(axis, title, label, inverted, clean, ticks);
    }
}

/// <summary>Per-generator metrics of an evaluation ("acc/&lt;generator&gt;", "ap/&lt;generator&gt;" rows).</summary>
public static class GeneratorMetrics
{
    /// <summary>Generator -> latest value of the "<paramref name="metric"/>/&lt;generator&gt;" rows (metric e.g. "acc" or "ap"), generators by name.</summary>
    public static IReadOnlyDictionary<string, double> Of(IEnumerable<RunMetric> metrics, string metric)
    {
        var prefix = metric + "/";
        return metrics.Where(m => m.Name.StartsWith(prefix, StringComparison.Ordinal) && m.Name.Length > prefix.Length)
            .GroupBy(m => m.Name[prefix.Length..], StringComparer.Ordinal)
            .OrderBy(g => g.Key, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.OrderByDescending(m => m.Step).ThenByDescending(m => m.Id).First().Value, StringComparer.Ordinal);
    }
}

/// <summary>The images an evaluation got most wrong: reals with the highest P(fake), fakes with the lowest.</summary>
public static class WorstScored
{
    /// <summary>The <paramref name="count"/> worst reals (label 0, highest score first) and fakes (label 1, lowest first); ties by path.</summary>
    public static (IReadOnlyList<ScoreRow> Reals, IReadOnlyList<ScoreRow> Fakes) Pick(IEnumerable<ScoreRow> rows, int count = 8)
    {
        var list = rows.Where(r => r.Path is not null && double.IsFinite(r.Score)).ToList();
        return (list.Where(r => r.Label == 0).OrderByDescending(r => r.Score).ThenBy(r => r.Path, StringComparer.Ordinal).Take(count).ToList(),
                list.Where(r => r.Label == 1).OrderBy(r => r.Score).ThenBy(r => r.Path, StringComparer.Ordinal).Take(count).ToList());
    }

    /// <summary>The thumbnail URL of an image of run <paramref name="runId"/> (each path segment escaped).</summary>
    public static string ThumbnailUrl(long runId, string path, int size = 128) =>
        $"api/runs/{runId}/images/{string.Join('/', path.Split('/').Select(Uri.EscapeDataString))}?size={size}";
}

/// <summary>Bar charts (grouped bars, histograms) drawn with ScottPlot to inline SVG plus PNG/SVG data: URIs, like <see cref="MetricPlot"/>.</summary>
public static class BarPlot
{
    /// <summary>Counts of <paramref name="scores"/> in <paramref name="bins"/> equal bins over [0, 1] (1.0 falls in the last bin); non-finite scores are left out.</summary>
    public static int[] Histogram(IEnumerable<double> scores, int bins = 20)
    {
        if (bins < 1) throw new ArgumentOutOfRangeException(nameof(bins), $"bins must be at least 1, got {bins}");
        var counts = new int[bins];
        foreach (var s in scores)
            if (double.IsFinite(s)) counts[Math.Clamp((int)Math.Floor(s * bins), 0, bins - 1)]++;
        return counts;
    }

    /// <summary>
    /// Grouped bars: one group per category, one bar per series in each group (legend in series order, beside the bars).
    /// With <paramref name="percent"/> the values are 0..1 fractions drawn as 0-100 % with a chance line at 50. Each bar
    /// shows its exact value on hover.
    /// </summary>
    public static RenderedChart Grouped(string title, IReadOnlyList<string> categories, IReadOnlyDictionary<string, IReadOnlyList<double>> series,
        int width, int height, string yLabel = "value", bool percent = false)
    {
        var plot = new Plot();
        var palette = new ScottPlot.Palettes.Category10();
        var perGroup = Math.Max(1, series.Count);
        var barWidth = 0.8 / perGroup;
        var hover = new List<HoverTarget>();
        var s = 0;
        foreach (var (name, values) in series)
        {
            if (values.Count != categories.Count) throw new ArgumentException($"series '{name}' has {values.Count} values for {categories.Count} categories", nameof(series));
            var color = palette.GetColor(s);
            var bars = values.Select((v, i) => new Bar
            {
                Position = i + (s - (perGroup - 1) / 2.0) * barWidth, Value = double.IsFinite(v) ? (percent ? 100 * v : v) : 0, Size = barWidth * 0.95, FillColor = color,
            }).ToList();
            plot.Add.Bars(bars);
            for (var i = 0; i < bars.Count; i++)
                hover.Add(new HoverTarget(bars[i].Position, bars[i].Value,
                    $"{categories[i]} · {name}: {(percent ? Format.Score(values[i]) + " %" : values[i].ToString("G4", CultureInfo.InvariantCulture))}", bars[i].Size));
            plot.Legend.ManualItems.Add(new LegendItem { LabelText = name, FillColor = color });
            s++;
        }
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(
            categories.Select((_, i) => (double)i).ToArray(), categories.ToArray());
        if (percent)
        {
            plot.Add.HorizontalLine(50, 1, Colors.Gray, LinePattern.Dashed);
            plot.Axes.SetLimitsY(0, 100);
        }
        else plot.Axes.Margins(bottom: 0);
        plot.Title(title);
        plot.YLabel(percent ? yLabel + " (%)" : yLabel);
        if (series.Count > 1) plot.ShowLegend(Edge.Right);
        return MetricPlot.Finish(plot, title, width, height, hover);
    }

    /// <summary>Overlaid histograms of P(fake) (bins over [0, 1]), one per named group, half transparent so both show; each bin shows its count on hover.</summary>
    public static RenderedChart Histograms(string title, IReadOnlyDictionary<string, int[]> counts, int width, int height)
    {
        var plot = new Plot();
        var palette = new ScottPlot.Palettes.Category10();
        var hover = new List<HoverTarget>();
        var s = 0;
        foreach (var (name, bins) in counts)
        {
            var color = palette.GetColor(s++).WithAlpha(0.5);
            var w = 1.0 / bins.Length;
            plot.Add.Bars(bins.Select((c, i) => new Bar { Position = (i + 0.5) * w, Value = c, Size = w, FillColor = color, LineWidth = 0 }).ToList());
            for (var i = 0; i < bins.Length; i++)
                if (bins[i] > 0)
                    hover.Add(new HoverTarget((i + 0.5) * w, bins[i], FormattableString.Invariant($"{name}: {bins[i]} image(s) with P(fake) in [{i * w:0.00}, {(i + 1) * w:0.00})"), w));
            plot.Legend.ManualItems.Add(new LegendItem { LabelText = name, FillColor = color });
        }
        plot.Axes.Margins(bottom: 0);
        plot.Title(title);
        plot.XLabel("P(fake)");
        plot.YLabel("images");
        plot.ShowLegend(Edge.Right);
        return MetricPlot.Finish(plot, title, width, height, hover);
    }

}
