using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using AngleSharp.Dom;
using Bunit;
using Portal.Api;
using Portal.Components.Pages;
using Portal.Components.Shared;
using Portal.Experiments;
using Portal.Datasets;
using Portal.Zoo;
using Portal.Runs;
using Portal.Store;

namespace Portal.Tests.Components;

/// <summary>
/// Results a researcher reads at a glance: robustness plots (markers, 0-100 %, chance line, the clean point on its own
/// place, one axis per perturbation kind), training curves (epochs, log lr, best epoch, smoothing), hover tooltips,
/// and run pages that put the results before the raw metric list.
/// </summary>
public sealed class ResultsPresentationTests : PortalComponentTest
{
    static List<SweepRow> Sweep(string axis, params (double? Severity, double Acc)[] points) =>
        points.SelectMany(p => new[]
        {
            new SweepRow(axis, p.Severity, "all", "acc", p.Acc),
            new SweepRow(axis, p.Severity, "adm", "acc", 0.01), // a per-generator row stays off the overall curve
        }).ToList();

    static List<string> Texts(IElement svg) => svg.QuerySelectorAll("text").Select(t => t.TextContent.Trim()).Where(t => t.Length > 0).ToList();

    // ScottPlot draws markers as SVG circles or ellipses; the hover layer's circles carry data-hover.
    static int Markers(IElement svg) => svg.QuerySelectorAll("ellipse, circle").Count(e => !e.HasAttribute("data-hover"));

    IElement Draw(ChartSpec spec, out IRenderedComponent<MetricChart> cut)
    {
        cut = Render<MetricChart>(p => p.Add(c => c.Spec, spec).Add(c => c.Width, 640).Add(c => c.Height, 360));
        return cut.Find("[data-testid=metric-chart-svg] svg");
    }

    [Fact]
    public void A_one_point_sweep_is_drawn_as_points_with_their_values_on_a_0_to_100_axis_with_a_chance_line()
    {
        var group = Assert.Single(SweepCurves.ByAxis([(7, Sweep("jpeg", (null, 0.9), (50, 0.532)))]));
        Assert.Equal("JPEG quality", group.Title);
        var spec = Assert.Single(group.Charts);
        Assert.True(spec.Percent && spec.Markers && spec.ShowValues);

        var svg = Draw(spec, out _);
        var texts = Texts(svg);
        Assert.Contains("53.2 %", texts); // the value written beside the point
        Assert.Contains("90.0 %", texts);
        Assert.Contains("0", texts); // y from 0 ...
        Assert.Contains("100", texts); // ... to 100 %
        Assert.DoesNotContain(texts, t => t.StartsWith('-'));
        Assert.Contains("clean", texts); // the clean point's own tick
        Assert.Contains("50", texts);
        Assert.Contains("chance", texts);
        Assert.True(Markers(svg) >= 2, $"expected a marker per point, found {Markers(svg)}");
        var hover = svg.QuerySelectorAll("circle[data-hover=point]");
        Assert.Equal(2, hover.Length);
        Assert.Contains(hover, h => h.QuerySelector("title")!.TextContent == "#7: 53.2 % at JPEG quality (lower = stronger compression) 50");
        Assert.Contains(hover, h => h.QuerySelector("title")!.TextContent.EndsWith(" clean", StringComparison.Ordinal));
    }

    [Fact]
    public void A_multi_point_jpeg_sweep_has_a_marker_per_point_and_quality_decreasing_to_the_right_after_the_clean_point()
    {
        var spec = SweepCurves.ByAxis([(3, Sweep("jpeg", (null, 0.95), (90, 0.9), (70, 0.75), (50, 0.6)))]).Single().Charts.Single();
        Assert.Equal(["clean", "90", "70", "50"], spec.XTicks!.OrderByDescending(t => t.X).Select(t => t.Label));

        var svg = Draw(spec, out _);
        Assert.True(Markers(svg) >= 4, $"expected a marker per point, found {Markers(svg)}");
        var texts = Texts(svg);
        Assert.Contains("0", texts);
        Assert.Contains("100", texts);
        var x = svg.QuerySelectorAll("circle[data-hover=point]").ToDictionary(
            h => h.QuerySelector("title")!.TextContent.Split(' ')[^1], h => double.Parse(h.GetAttribute("cx")!, CultureInfo.InvariantCulture));
        Assert.True(x["clean"] < x["90"] && x["90"] < x["70"] && x["70"] < x["50"], string.Join(", ", x));
        // Higher scores sit higher (smaller pixel y): q50's 60 % below the clean point's 95 %.
        var y = svg.QuerySelectorAll("circle[data-hover=point]").ToDictionary(
            h => h.QuerySelector("title")!.TextContent.Split(' ')[^1], h => double.Parse(h.GetAttribute("cy")!, CultureInfo.InvariantCulture));
        Assert.True(y["50"] > y["clean"], string.Join(", ", y));
    }

    [Fact]
    public void Sweeps_of_different_kinds_get_their_own_axes_in_their_own_units()
    {
        var groups = SweepCurves.ByAxis([(1, Sweep("resize", (null, 0.9), (0.5, 0.7), (2.0, 0.8))), (2, Sweep("jpeg", (null, 0.9), (75, 0.7))),
                                        (4, Sweep("blur", (null, 0.9), (2, 0.6)))]);

        Assert.Equal(["jpeg", "resize", "blur"], groups.Select(g => g.Axis));
        Assert.Equal(["#2"], groups[0].Charts.Single().Series.Keys); // never a resize run on the JPEG axis
        var resize = groups[1].Charts.Single();
        Assert.Equal(["#1"], resize.Series.Keys);
        Assert.Equal("resize scale (× side length)", resize.XLabel);
        Assert.Equal([(0.5, "0.5×"), (1.0, "clean (1×)"), (2.0, "2×")], resize.XTicks);
        Assert.False(resize.InvertX);
        Assert.Equal([(0.0, "clean (σ 0)"), (2.0, "2")], groups[2].Charts.Single().XTicks);
        Assert.Equal("blur sigma (px)", groups[2].Charts.Single().XLabel);
    }

    [Fact]
    public void Training_curves_use_epochs_a_log_lr_the_best_epoch_and_smoothed_per_step_loss()
    {
        var metrics = new List<RunMetric>();
        void M(string name, long step, double value) => metrics.Add(new RunMetric { Id = metrics.Count + 1, Name = name, Step = step, Value = value });
        for (var s = 1; s <= 30; s++) M("loss", s, 0.7 - 0.01 * s + (s % 2 == 0 ? 0.05 : -0.05));
        foreach (var (e, acc, rate) in new[] { (1, 0.6, 1e-4), (2, 0.8, 1e-4), (3, 0.7, 1e-5) })
        {
            M("val_balanced_acc", e, acc); M("val_acc", e, acc - 0.01); M("lr", e, rate); M("train_loss", e, 0.5 / e);
        }

        var charts = RunMetricCharts.Group(metrics);
        var loss = charts.Single(c => c.Title == "loss");
        Assert.True(loss.Smooth && loss.IntegerX);
        var validation = charts.Single(c => c.Title == RunMetricCharts.ValidationTitle);
        Assert.Equal("epoch", validation.XLabel);
        Assert.True(validation.IntegerX && validation.Percent && validation.Markers);
        Assert.Equal(2, validation.MarkerX);
        var lr = charts.Single(c => c.Title == "lr");
        Assert.True(lr.LogY && lr.IntegerX);

        var validationSvg = Draw(validation, out _);
        var texts = Texts(validationSvg);
        Assert.Contains("epoch", texts);
        Assert.Contains("best epoch 2", texts);
        Assert.DoesNotContain(texts, t => Regex.IsMatch(t, @"^\d+\.\d+$")); // whole epochs and whole percents only
        Assert.Contains(texts, t => t is "1" or "2" or "3");
        var lrTexts = Texts(Draw(lr, out _));
        Assert.Contains("1e-5", lrTexts);
        Assert.Contains("1e-4", lrTexts);
        Assert.Contains("lr (log scale)", lrTexts);
        Assert.Contains(Texts(Draw(loss, out _)), t => t.Contains("(smoothed)"));
    }

    [Fact]
    public void The_moving_average_is_debiased_and_follows_the_trend()
    {
        Assert.Equal([1.0, 1.0, 1.0], MetricPlot.Ema([1, 1, 1], 0.9));
        var smoothed = MetricPlot.Ema([0, 10], 0.5);
        Assert.Equal(0, smoothed[0]);
        Assert.Equal(10 * 0.5 / 0.75, smoothed[1], 12);
        Assert.Throws<ArgumentOutOfRangeException>(() => MetricPlot.Ema([1], 1));
    }

    [Fact]
    public void The_training_phase_names_the_epoch_and_the_time_left()
    {
        Assert.Equal("epoch 2/3 · train, ETA 1:40", TrainingPhaseText.Of(Forensics.ML.Training.TrainingPhase.Train, 2, 3, TimeSpan.FromSeconds(99.2)));
        Assert.Equal("epoch 1/3 · validate", TrainingPhaseText.Of(Forensics.ML.Training.TrainingPhase.Validate, 1, 3, null));
        Assert.Equal("setup", TrainingPhaseText.Of(Forensics.ML.Training.TrainingPhase.Setup, 0, 3, null));
        Assert.Equal("done", TrainingPhaseText.Of(Forensics.ML.Training.TrainingPhase.Done, 3, 3, TimeSpan.Zero));
        Assert.Equal("1:02:05", TrainingPhaseText.Eta(TimeSpan.FromSeconds(3725)));
    }

    [Fact]
    public void Bars_and_histogram_bins_show_their_exact_values_on_hover()
    {
        var bars = BarPlot.Grouped("per generator", ["adm", "sdv4"], new Dictionary<string, IReadOnlyList<double>> { ["ACC"] = [0.532, 0.9], ["AP"] = [0.61, 0.95] },
            640, 320, "score", percent: true);
        var titles = Regex.Matches(bars.Svg, "<rect data-hover=\"bar\"[^>]*><title>([^<]*)</title>").Select(m => m.Groups[1].Value).ToList();
        Assert.Equal(["adm · ACC: 53.2 %", "sdv4 · ACC: 90.0 %", "adm · AP: 61.0 %", "sdv4 · AP: 95.0 %"], titles);

        var histogram = BarPlot.Histograms("P(fake)", new Dictionary<string, int[]> { ["real"] = [3, 0, 1, 0] }, 640, 320);
        Assert.Equal(2, Regex.Matches(histogram.Svg, "data-hover=\"bar\"").Count); // empty bins have nothing to say
        Assert.Contains("real: 3 image(s) with P(fake) in [0.00, 0.25)", histogram.Svg);
    }

    [Fact]
    public void An_evaluation_page_shows_the_headline_table_first_and_the_raw_metrics_collapsed_below()
    {
        var run = NewRun(RunStatus.Succeeded, 1);
        run.Kind = EvaluationJob.KindName;
        run.Queue = JobQueues.Device;
        run.FinishedAt = DateTime.UtcNow;
        var id = Add(run);
        foreach (var (name, value) in new (string, double)[]
                 {
                     ("acc", 0.532), ("acc_ci_lo", 0.482), ("acc_ci_hi", 0.58), ("ap", 0.61), ("ap_ci_lo", 0.55), ("ap_ci_hi", 0.67),
                     ("real_acc", 0.5), ("n_real", 100), ("fake_acc", 0.564), ("n_fake", 100), ("auc", 0.6),
                     ("acc/adm", 0.55), ("ap/adm", 0.6), ("real_acc/adm", 0.5), ("n_real/adm", 50),
                 })
            Add(new RunMetric { RunId = id, Name = name, Step = 0, Value = value, At = DateTime.UtcNow });

        var cut = Render<RunDetail>(p => p.Add(c => c.Id, id));

        cut.WaitForAssertion(() => Assert.NotNull(cut.Find("[data-testid=headline-table]")));
        var rows = cut.FindAll("[data-testid=headline-row]");
        Assert.Equal(["all", "adm"], rows.Select(r => r.GetAttribute("data-generator")));
        string Cell(IElement row, string metric) => row.QuerySelector($"[data-metric={metric}]")!.TextContent.Trim();
        Assert.Equal("53.2 [48.2, 58.0]", Cell(rows[0], "acc"));
        Assert.Equal("61.0 [55.0, 67.0]", Cell(rows[0], "ap"));
        Assert.Equal("50.0 [40.4, 59.6]", Cell(rows[0], "real_acc")); // Wilson, n = 100
        Assert.Equal("55.0", Cell(rows[1], "acc")); // no interval stored for the generator
        Assert.Equal("60.0", Cell(rows[0], "auc"));

        var html = cut.Markup;
        var results = html.IndexOf("data-testid=\"run-results\"", StringComparison.Ordinal);
        var all = html.IndexOf("data-testid=\"all-metrics\"", StringComparison.Ordinal);
        Assert.True(results >= 0 && all > results, "the results section comes before \"All metrics\"");
        var details = cut.Find("details[data-testid=all-metrics]");
        Assert.False(details.HasAttribute("open"));
        Assert.Contains("All metrics (15)", details.QuerySelector("summary")!.TextContent);
        Assert.Equal(15, details.QuerySelectorAll("[data-testid=metric-row]").Length);
    }

    [Fact]
    public void The_matrix_colours_run_from_red_below_chance_through_pale_to_green()
    {
        Assert.Equal("", MatrixHeat.Style(null));
        Assert.StartsWith("background-color: hsl(0, ", MatrixHeat.Style(0));
        Assert.StartsWith("background-color: hsl(60, 70%, 92%)", MatrixHeat.Style(0.5));
        Assert.StartsWith("background-color: hsl(120, ", MatrixHeat.Style(1));
        Assert.Contains("color: #fff", MatrixHeat.Style(1)); // readable on the dark green
    }

    [Fact]
    public void A_lare_map_is_drawn_as_the_channel_norm_from_black_to_white()
    {
        // A [2, 1, 3] float32 map: pixel norms 0, 5 and 10.
        float[] values = [0, 3, 6, 0, 4, 8];
        var header = Encoding.UTF8.GetBytes("{\"lare\":{\"dtype\":\"F32\",\"shape\":[2,1,3],\"data_offsets\":[0,24]}}");
        var path = Path.Combine(DataDir, "map.safetensors");
        using (var file = File.Create(path))
        {
            file.Write(BitConverter.GetBytes((long)header.Length));
            file.Write(header);
            foreach (var v in values) file.Write(BitConverter.GetBytes(v));
        }

        using var bitmap = LareMapImage.Draw(path)!;
        Assert.Equal((3, 1), (bitmap.Width, bitmap.Height));
        Assert.Equal([0, 128, 255], Enumerable.Range(0, 3).Select(x => (int)bitmap.GetPixel(x, 0).Red));

        var wrong = Path.Combine(DataDir, "other.safetensors");
        var otherHeader = Encoding.UTF8.GetBytes("{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}");
        File.WriteAllBytes(wrong, [.. BitConverter.GetBytes((long)otherHeader.Length), .. otherHeader, 0, 0, 0, 0]);
        Assert.Null(LareMapImage.Draw(wrong));
    }
}
