using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using ScottPlot;
using Portal.Experiments;
using Portal.Store;

namespace Portal.Components.Shared;

/// <summary>One point of a chart series: x (a step, an epoch, a JPEG quality...) and its value.</summary>
public readonly record struct ChartPoint(double X, double Y);

/// <summary>
/// A chart to draw: its title and its named series (legend in enumeration order), and how to draw them. The defaults
/// are a plain line chart against "step".
/// </summary>
public sealed record ChartSpec(string Title, IReadOnlyDictionary<string, IReadOnlyList<ChartPoint>> Series)
{
    public string XLabel { get; init; } = "step";
    public string YLabel { get; init; } = "value";
    /// <summary>Values are 0..1 fractions drawn as 0-100 % (axis fixed to 0-100, tooltips in <see cref="Format.Score"/>).</summary>
    public bool Percent { get; init; }
    /// <summary>A dashed horizontal reference line, in the data's units (0.5: chance on a percent chart).</summary>
    public double? ReferenceY { get; init; }
    public string? ReferenceLabel { get; init; }
    /// <summary>Log-scale y (non-positive values are left out; decades are labelled 1e-4, 1e-3...).</summary>
    public bool LogY { get; init; }
    /// <summary>x ticks on whole numbers only (epochs).</summary>
    public bool IntegerX { get; init; }
    /// <summary>Ticks at these positions with these labels (a robustness axis: each severity, and "clean").</summary>
    public IReadOnlyList<(double X, string Label)>? XTicks { get; init; }
    /// <summary>x grows to the left (JPEG quality: lower quality, more severe, to the right).</summary>
    public bool InvertX { get; init; }
    /// <summary>A dotted vertical marker (the best epoch) and its legend text.</summary>
    public double? MarkerX { get; init; }
    public string? MarkerLabel { get; init; }
    /// <summary>Draw every point's marker (few points: epochs, severities); off for dense per-step series (a lone point always has one).</summary>
    public bool Markers { get; init; }
    /// <summary>Write each point's value above it (a one-point sweep).</summary>
    public bool ShowValues { get; init; }
    /// <summary>Per-step series: the raw values faint, a debiased exponential moving average on top.</summary>
    public bool Smooth { get; init; }
}

/// <summary>A chart drawn once: the SVG markup to show inline and both files as data: URIs for download.</summary>
public sealed record RenderedChart(string Svg, string SvgDataUri, string PngDataUri);

/// <summary>
/// A point (or, with <see cref="BarWidth"/> &gt; 0, a bar from <see cref="BarBase"/> to <see cref="Y"/>) that shows
/// <see cref="Text"/> on hover, in the plot's data coordinates.
/// </summary>
public readonly record struct HoverTarget(double X, double Y, string Text, double BarWidth = 0, double BarBase = 0);

/// <summary>
/// Line charts drawn on the server with ScottPlot 5 (SkiaSharp), so pages need no chart script. Series longer than
/// <see cref="MaxPointsPerSeries"/> are averaged over consecutive buckets (the legend says so) to keep the markup small.
/// Points get hover tooltips (an SVG &lt;title&gt; each) with their exact values.
/// </summary>
public static partial class MetricPlot
{
    /// <summary>The most points drawn per series; longer series are bucket-averaged down to this.</summary>
    public const int MaxPointsPerSeries = 1000;

    /// <summary>The most hover targets per series (evenly spaced), so a long loss curve stays light.</summary>
    public const int MaxHoverPerSeries = 200;

    /// <summary>A ScottPlot line chart of <paramref name="series"/>; non-finite points are left out (a gap in the data, not a zero).</summary>
    public static Plot Build(string title, IReadOnlyDictionary<string, IReadOnlyList<ChartPoint>> series, string xLabel = "step", string yLabel = "value") =>
        Build(new ChartSpec(title, series ?? throw new ArgumentNullException(nameof(series))) { XLabel = xLabel, YLabel = yLabel }, []);

    /// <summary>The ScottPlot chart of <paramref name="spec"/>; the points that get tooltips are added to <paramref name="hover"/>.</summary>
    public static Plot Build(ChartSpec spec, List<HoverTarget> hover)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var plot = new Plot();
        var palette = new ScottPlot.Palettes.Category10();
        double Y(double v) => spec.LogY ? Math.Log10(v) : spec.Percent ? 100 * v : v;
        string Text(double v) => spec.Percent ? Format.Score(v) + " %" : v.ToString(spec.LogY ? "G3" : "G4", CultureInfo.InvariantCulture);
        var index = 0;
        var legendEntries = 0;
        var yValues = new List<double>();
        foreach (var (name, raw) in spec.Series)
        {
            var color = palette.GetColor(index++);
            var finite = raw.Where(p => double.IsFinite(p.X) && double.IsFinite(p.Y) && (!spec.LogY || p.Y > 0)).ToList();
            if (finite.Count == 0) continue;
            var (points, bucket) = Downsample(finite, MaxPointsPerSeries);
            var xs = points.Select(p => p.X).ToArray();
            var ys = points.Select(p => Y(p.Y)).ToArray();
            yValues.AddRange(ys);
            var line = plot.Add.Scatter(xs, ys, color);
            var label = bucket > 1 ? $"{name} (mean of {bucket})" : name;
            line.LineWidth = 1.5f;
            line.MarkerShape = MarkerShape.FilledCircle;
            line.MarkerSize = spec.Markers || points.Count == 1 ? 7 : 0;
            line.LegendText = label;
            legendEntries++;
            if (spec.Smooth && points.Count > 2)
            {
                line.Color = color.WithAlpha(0.3);
                line.LineWidth = 1;
                line.LegendText = $"{label} (raw)";
                var trend = plot.Add.Scatter(xs, Ema(ys, points.Count > 50 ? 0.9 : 0.6), color);
                trend.LineWidth = 2;
                trend.MarkerSize = 0;
                trend.LegendText = $"{label} (smoothed)";
                legendEntries++;
            }
            var every = Math.Max(1, (points.Count + MaxHoverPerSeries - 1) / MaxHoverPerSeries);
            for (var i = 0; i < points.Count; i += every)
                hover.Add(new HoverTarget(xs[i], ys[i], $"{name}: {Text(points[i].Y)} at {spec.XLabel} {XText(spec, points[i].X)}"));
            if (spec.ShowValues)
                for (var i = 0; i < points.Count; i++)
                {
                    var t = plot.Add.Text(Text(points[i].Y), xs[i], ys[i]);
                    t.LabelFontSize = 13;
                    t.LabelFontColor = color;
                    t.LabelBold = true;
                    // Above the point, or below it near the top of a 0-100 % axis, so the label stays inside.
                    var below = spec.Percent && ys[i] > 90;
                    t.LabelAlignment = below ? Alignment.UpperCenter : Alignment.LowerCenter;
                    t.OffsetY = below ? 8 : -8;
                }
        }
        if (spec.ReferenceY is { } reference)
        {
            var h = plot.Add.HorizontalLine(Y(reference), 1, Colors.Gray, LinePattern.Dashed);
            if (spec.ReferenceLabel is { } rl) { h.LegendText = rl; legendEntries++; }
        }
        if (spec.MarkerX is { } marker)
        {
            var v = plot.Add.VerticalLine(marker, 1.5f, Colors.Black.WithAlpha(0.6), LinePattern.Dotted);
            if (spec.MarkerLabel is { } ml) { v.LegendText = ml; legendEntries++; }
        }
        plot.Title(spec.Title);
        plot.XLabel(spec.XLabel);
        plot.YLabel(spec.Percent ? spec.YLabel + " (%)" : spec.LogY ? spec.YLabel + " (log scale)" : spec.YLabel);
        if (spec.XTicks is { Count: > 0 } ticks)
        {
            plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(ticks.Select(t => t.X).ToArray(), ticks.Select(t => t.Label).ToArray());
            var lo = ticks.Min(t => t.X);
            var hi = ticks.Max(t => t.X);
            var pad = hi > lo ? (hi - lo) * 0.08 : 1;
            if (spec.InvertX) plot.Axes.SetLimitsX(hi + pad, lo - pad);
            else plot.Axes.SetLimitsX(lo - pad, hi + pad);
        }
        else if (spec.IntegerX)
        {
            plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { IntegerTicksOnly = true };
            // A few epochs would otherwise get a sub-integer range around them.
            var xs = spec.Series.Values.SelectMany(s => s).Where(p => double.IsFinite(p.X)).Select(p => p.X).ToList();
            if (xs.Count > 0) plot.Axes.SetLimitsX(xs.Min() - 0.3, Math.Max(xs.Max(), xs.Min() + 1) + 0.3);
        }
        if (spec.Percent)
            plot.Axes.SetLimitsY(0, 100);
        if (spec.LogY && yValues.Count > 0)
        {
            // Half a decade of room on each side, so a constant lr sits mid-chart between two labelled decades.
            var lo = Math.Floor(yValues.Min() - 0.5);
            var hi = Math.Ceiling(yValues.Max() + 0.5);
            var decades = Enumerable.Range((int)lo, (int)(hi - lo) + 1).Select(d => (double)d).ToArray();
            plot.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericManual(decades,
                decades.Select(d => "1e" + d.ToString("0", CultureInfo.InvariantCulture)).ToArray());
            plot.Axes.SetLimitsY(lo - 0.05, hi + 0.05);
        }
        // The legend sits beside the data area, never over the lines.
        if (legendEntries > 1) plot.ShowLegend(Edge.Right);
        return plot;
    }

    static string XText(ChartSpec spec, double x) =>
        spec.XTicks?.FirstOrDefault(t => t.X == x).Label is { Length: > 0 } label ? label : x.ToString("G6", CultureInfo.InvariantCulture);

    /// <summary>TensorBoard's debiased exponential moving average: each point keeps <paramref name="smoothing"/> of the running mean.</summary>
    public static double[] Ema(IReadOnlyList<double> values, double smoothing)
    {
        if (smoothing is < 0 or >= 1) throw new ArgumentOutOfRangeException(nameof(smoothing), $"smoothing must be in [0, 1), got {smoothing}");
        var result = new double[values.Count];
        double last = 0, weight = 0;
        for (var i = 0; i < values.Count; i++)
        {
            last = last * smoothing + (1 - smoothing) * values[i];
            weight = weight * smoothing + (1 - smoothing);
            result[i] = last / weight;
        }
        return result;
    }

    /// <summary>Draws the chart as SVG and PNG (<paramref name="width"/> x <paramref name="height"/> pixels).</summary>
    public static RenderedChart Render(string title, IReadOnlyDictionary<string, IReadOnlyList<ChartPoint>> series, int width, int height,
        string xLabel = "step", string yLabel = "value") =>
        Render(new ChartSpec(title, series ?? throw new ArgumentNullException(nameof(series))) { XLabel = xLabel, YLabel = yLabel }, width, height);

    /// <summary>Draws <paramref name="spec"/> as SVG (with a hover tooltip per point) and PNG.</summary>
    public static RenderedChart Render(ChartSpec spec, int width, int height)
    {
        if (width < 1 || height < 1) throw new ArgumentOutOfRangeException(nameof(width), $"chart size must be positive, got {width}x{height}");
        var hover = new List<HoverTarget>();
        var plot = Build(spec, hover);
        return Finish(plot, spec.Title, width, height, hover);
    }

    /// <summary>
    /// Renders <paramref name="plot"/> to PNG and SVG and lays the hover targets over the inline SVG: a transparent circle
    /// per point or a transparent rectangle per bar, each with a &lt;title&gt; the browser shows as a tooltip.
    /// </summary>
    public static RenderedChart Finish(Plot plot, string title, int width, int height, IReadOnlyList<HoverTarget> hover)
    {
        ArgumentNullException.ThrowIfNull(plot);
        if (width < 1 || height < 1) throw new ArgumentOutOfRangeException(nameof(width), $"chart size must be positive, got {width}x{height}");
        var png = plot.GetImageBytes(width, height, ImageFormat.Png);
        // The SVG render comes last: its layout is the one GetPixel maps data coordinates through.
        var svg = plot.GetSvgXml(width, height);
        var layer = new StringBuilder("<g class=\"chart-hover\">");
        foreach (var t in hover)
        {
            // XML escaping only: an HTML entity such as &#183; would show as text inside an SVG <title>.
            var text = System.Security.SecurityElement.Escape(t.Text);
            if (t.BarWidth > 0)
            {
                var a = plot.GetPixel(new Coordinates(t.X - t.BarWidth / 2, t.Y));
                var b = plot.GetPixel(new Coordinates(t.X + t.BarWidth / 2, t.BarBase));
                layer.Append(FormattableString.Invariant(
                    $"<rect data-hover=\"bar\" x=\"{Math.Min(a.X, b.X):0.#}\" y=\"{Math.Min(a.Y, b.Y):0.#}\" width=\"{Math.Abs(b.X - a.X):0.#}\" height=\"{Math.Max(3, Math.Abs(b.Y - a.Y)):0.#}\" fill=\"transparent\"><title>{text}</title></rect>"));
            }
            else
            {
                var p = plot.GetPixel(new Coordinates(t.X, t.Y));
                layer.Append(FormattableString.Invariant(
                    $"<circle data-hover=\"point\" cx=\"{p.X:0.#}\" cy=\"{p.Y:0.#}\" r=\"7\" fill=\"transparent\"><title>{text}</title></circle>"));
            }
        }
        layer.Append("</g>");
        var close = svg.LastIndexOf("</svg>", StringComparison.Ordinal);
        if (close < 0) throw new InvalidOperationException("ScottPlot returned no </svg>");
        return new RenderedChart(Inline(svg[..close] + layer + svg[close..], title, width, height),
            "data:image/svg+xml;base64," + Convert.ToBase64String(Encoding.UTF8.GetBytes(svg)),
            "data:image/png;base64," + Convert.ToBase64String(png));
    }

    /// <summary>
    /// At most <paramref name="max"/> points: consecutive buckets of equal size averaged (x and y), so a long noisy loss
    /// curve keeps its trend. Returns the bucket size (1: the points as given).
    /// </summary>
    public static (IReadOnlyList<ChartPoint> Points, int Bucket) Downsample(IReadOnlyList<ChartPoint> points, int max)
    {
        if (max < 1) throw new ArgumentOutOfRangeException(nameof(max), $"max must be at least 1, got {max}");
        if (points.Count <= max) return (points, 1);
        var bucket = (points.Count + max - 1) / max;
        var result = new List<ChartPoint>(max);
        for (var start = 0; start < points.Count; start += bucket)
        {
            var end = Math.Min(start + bucket, points.Count);
            double x = 0, y = 0;
            for (var i = start; i < end; i++) { x += points[i].X; y += points[i].Y; }
            result.Add(new ChartPoint(x / (end - start), y / (end - start)));
        }
        return (result, bucket);
    }

    /// <summary>
    /// The SVG document as markup for inside an HTML page: no XML declaration, a viewBox so CSS can scale it, a label for
    /// screen readers, and its ids made unique.
    /// </summary>
    static string Inline(string svg, string title, int width, int height)
    {
        var start = svg.IndexOf("<svg", StringComparison.Ordinal);
        if (start < 0) throw new InvalidOperationException("ScottPlot returned no <svg> element");
        var label = System.Net.WebUtility.HtmlEncode(title);
        var element = svg[start..].Insert("<svg".Length, $" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"{label}\"");
        return ScopeIds(element);
    }

    // Several inline SVGs share the page's id space: ScottPlot's clip-path ids would resolve to the first chart's.
    static string ScopeIds(string svg)
    {
        var prefix = "c" + Guid.NewGuid().ToString("N")[..8] + "-";
        return SvgUrlRef().Replace(SvgId().Replace(svg, m => $"id=\"{prefix}{m.Groups[1].Value}\""), m => $"url(#{prefix}{m.Groups[1].Value})");
    }

    [GeneratedRegex("\\bid=\"([^\"]+)\"")]
    private static partial Regex SvgId();

    /// <summary>A safe file-name stem for a chart's downloads: letters, digits, '-' and '_' only.</summary>
    public static string FileStem(string name) => UnsafeFileChars().Replace(name, "_").Trim('_') is { Length: > 0 } s ? s : "chart";

    [GeneratedRegex("[^A-Za-z0-9_-]+")]
    private static partial Regex UnsafeFileChars();

    [GeneratedRegex(@"url\(#([^)]+)\)")]
    private static partial Regex SvgUrlRef();
}

/// <summary>How a run's metrics are charted on its page.</summary>
public static class RunMetricCharts
{
    /// <summary>The validation series drawn together on one chart, in legend order.</summary>
    public static readonly IReadOnlyList<string> ValidationSeries = TrainingResults.ValidationSeries;

    /// <summary>The metric that picks the best epoch (the trainers' plateau rule watches it).</summary>
    public const string BestEpochMetric = TrainingResults.BestEpochMetric;

    /// <summary>Title of the chart that holds <see cref="ValidationSeries"/>.</summary>
    public const string ValidationTitle = "validation";

    /// <summary>The series written once per epoch (step = epoch); "loss" is written per optimisation step.</summary>
    static readonly HashSet<string> PerEpoch = [.. TrainingResults.PerEpoch];

    /// <summary>
    /// One chart per metric name with 2 or more points, except that the validation series share one chart; "loss" comes
    /// first (x = step, smoothed), then validation (x = epoch, 0-100 %, a chance line and the best epoch marked), then the
    /// others by name ("lr" on a log scale; per-epoch series against whole epochs). Points are ordered by step.
    /// </summary>
    public static IReadOnlyList<ChartSpec> Group(IEnumerable<RunMetric> metrics)
    {
        var byName = metrics.GroupBy(m => m.Name, StringComparer.Ordinal)
            .Select(g => (Name: g.Key, Points: (IReadOnlyList<ChartPoint>)g.OrderBy(m => m.Step).ThenBy(m => m.Id)
                .Select(m => new ChartPoint(m.Step, m.Value)).ToList()))
            .Where(s => s.Points.Count >= 2)
            .ToDictionary(s => s.Name, s => s.Points, StringComparer.Ordinal);

        var best = BestEpoch(byName.GetValueOrDefault(BestEpochMetric));
        var charts = new List<ChartSpec>();
        if (byName.Remove(TrainingResults.Loss, out var loss))
            charts.Add(new ChartSpec("loss", new Dictionary<string, IReadOnlyList<ChartPoint>> { ["loss"] = loss }) { XLabel = "step", YLabel = "loss", Smooth = true, IntegerX = true });
        var validation = new Dictionary<string, IReadOnlyList<ChartPoint>>(StringComparer.Ordinal);
        foreach (var name in ValidationSeries)
            if (byName.Remove(name, out var points)) validation[name] = points;
        if (validation.Count > 0)
            charts.Add(new ChartSpec(ValidationTitle, validation)
            {
                XLabel = "epoch", YLabel = "validation", IntegerX = true, Percent = true, Markers = true, ReferenceY = 0.5, ReferenceLabel = "chance",
                MarkerX = best, MarkerLabel = best is { } b ? $"best epoch {b:0}" : null,
            });
        foreach (var (name, points) in byName.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            var series = new Dictionary<string, IReadOnlyList<ChartPoint>> { [name] = points };
            charts.Add(PerEpoch.Contains(name)
                ? new ChartSpec(name, series) { XLabel = "epoch", YLabel = name, IntegerX = true, Markers = true, LogY = name == TrainingResults.LearningRate, MarkerX = best, MarkerLabel = best is { } e ? $"best epoch {e:0}" : null }
                : new ChartSpec(name, series) { YLabel = name });
        }
        return charts;
    }

    /// <summary>The first epoch with the highest value (null without points).</summary>
    static double? BestEpoch(IReadOnlyList<ChartPoint>? points) =>
        points is { Count: > 0 } ? points.Where(p => double.IsFinite(p.Y)).OrderByDescending(p => p.Y).ThenBy(p => p.X).Select(p => (double?)p.X).FirstOrDefault() : null;
}
