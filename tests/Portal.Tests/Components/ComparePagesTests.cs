using System.Globalization;
using Bunit;
using Forensics.ML.Metrics;
using Microsoft.AspNetCore.Components;
using Microsoft.Extensions.DependencyInjection;
using Portal.Components.Pages;
using Portal.Components.Shared;
using Portal.Experiments;
using Portal.Datasets;
using Portal.Zoo;
using Portal.Runs;
using Portal.Store;

namespace Portal.Tests.Components;

/// <summary>The compare page (config diff, overlaid sweep curves, per-generator bars, run picker) and the evaluation panels of a run.</summary>
public class ComparePagesTests : PortalComponentTest
{
    long AddRun(string kind, string config)
    {
        var run = NewRun(RunStatus.Succeeded, 1);
        run.Kind = kind;
        run.Queue = JobQueues.Device;
        run.ConfigJson = config;
        run.FinishedAt = DateTime.UtcNow;
        return Add(run);
    }

    string RunDir(long id) => Directory.CreateDirectory(Path.Combine(DataDir, "runs", id.ToString(CultureInfo.InvariantCulture))).FullName;

    void WriteSweep(long id, string axis, params (string Severity, double Acc)[] points)
    {
        var lines = new List<string> { "axis,severity,generator,metric,value" };
        foreach (var (severity, acc) in points)
        {
            lines.Add($"{axis},{severity},all,acc,{acc.ToString("R", CultureInfo.InvariantCulture)}");
            lines.Add($"{axis},{severity},all,mean_pfake_fake,{(acc / 2).ToString("R", CultureInfo.InvariantCulture)}");
            // A per-generator row is not part of the overall curve.
            lines.Add($"{axis},{severity},sdv4,acc,0.01");
        }
        File.WriteAllLines(Path.Combine(RunDir(id), "sweep.csv"), lines);
    }

    void AddMetric(long runId, string name, double value) =>
        Add(new RunMetric { RunId = runId, Name = name, Step = 0, Value = value, At = DateTime.UtcNow });

    [Fact]
    public void Compare_shows_only_the_differing_config_keys_and_overlays_one_sweep_curve_per_run()
    {
        var a = AddRun(RobustnessSweepJob.KindName, "{\"datasetId\":1,\"checkpoint\":\"a.pth\",\"axis\":\"jpeg\",\"seed\":0}");
        var b = AddRun(RobustnessSweepJob.KindName, "{\"datasetId\":1,\"checkpoint\":\"b.pth\",\"axis\":\"jpeg\",\"seed\":0,\"split\":\"test\"}");
        WriteSweep(a, "jpeg", ("clean", 0.99), ("95", 0.9), ("75", 0.8), ("50", 0.6));
        WriteSweep(b, "jpeg", ("clean", 0.97), ("95", 0.95), ("75", 0.85), ("50", 0.7));

        Services.GetRequiredService<NavigationManager>().NavigateTo($"compare?runs={a},{b}");
        var cut = Render<Compare>();

        var keys = cut.FindAll("[data-testid=config-diff-row]").Select(r => r.GetAttribute("data-key")).ToList();
        Assert.Equal(["checkpoint", "split"], keys);
        Assert.Contains("datasetId", cut.Find("[data-testid=config-identical]").TextContent);
        var split = cut.Find("[data-testid=config-diff-row][data-key=split]").QuerySelectorAll("td").Select(td => td.TextContent).ToList();
        Assert.Equal(["—", "test"], split);

        var charts = cut.FindComponents<MetricChart>();
        Assert.Equal(["JPEG quality: ACC", "JPEG quality: mean P(fake), fakes"], charts.Select(c => c.Instance.Spec!.Title));
        var acc = charts[0].Instance.Spec!;
        Assert.Equal([$"#{a}", $"#{b}"], acc.Series.Keys);
        // x = JPEG quality; the clean point at its own place beyond quality 100 (108: 100 + 15 % of the 50-point span, at
        // least 8); the per-generator rows stay out of the overall curve.
        Assert.Equal([new ChartPoint(50, 0.6), new ChartPoint(75, 0.8), new ChartPoint(95, 0.9), new ChartPoint(108, 0.99)], acc.Series[$"#{a}"]);
        Assert.True(acc.InvertX);
        Assert.Contains((108.0, "clean"), acc.XTicks!);
        var svg = charts[0].Find("[data-testid=metric-chart-svg]").InnerHtml;
        Assert.Contains($"#{a}", svg);
        Assert.Contains($"#{b}", svg);
        Assert.StartsWith("data:image/png;base64,", charts[0].Find("[data-testid=chart-png]").GetAttribute("href"));
    }

    [Fact]
    public void Compare_draws_per_generator_bars_for_evaluations_and_the_picker_updates_the_url()
    {
        var a = AddRun(EvaluationJob.KindName, "{\"datasetId\":1,\"checkpoint\":\"a.pth\"}");
        var b = AddRun(EvaluationJob.KindName, "{\"datasetId\":1,\"checkpoint\":\"b.pth\"}");
        var unfinished = Add(NewRun(RunStatus.Running));
        foreach (var (id, shift) in new[] { (a, 0.0), (b, 0.1) })
        {
            AddMetric(id, "acc", 0.8 + shift);
            AddMetric(id, "acc/adm", 0.7 + shift);
            AddMetric(id, "acc/sdv4", 0.9 + shift);
            AddMetric(id, "ap/adm", 0.75 + shift);
            AddMetric(id, "ap/sdv4", 0.95);
        }

        var nav = Services.GetRequiredService<NavigationManager>();
        nav.NavigateTo($"compare?runs={a},{b}");
        var cut = Render<Compare>();

        var bars = cut.FindComponent<GeneratorBars>();
        Assert.Equal(["adm", "sdv4"], bars.Instance.Generators);
        Assert.Equal([$"#{a} acc", $"#{a} ap", $"#{b} acc", $"#{b} ap"], bars.Instance.Series.Keys);
        Assert.Equal(0.8, bars.Instance.Series[$"#{b} acc"]["adm"], 12);
        Assert.Contains("<svg", bars.Find("[data-testid=chart-figure-svg]").InnerHtml);

        var options = cut.FindAll("#run-picker option").Select(o => o.GetAttribute("value")).ToList();
        Assert.Equal([b.ToString(CultureInfo.InvariantCulture), a.ToString(CultureInfo.InvariantCulture)], options);
        Assert.DoesNotContain(unfinished.ToString(CultureInfo.InvariantCulture), options);
        cut.Find("#run-picker").Change(new[] { a.ToString(CultureInfo.InvariantCulture) });
        Assert.EndsWith($"compare?runs={a}", nav.Uri);
    }

    [Fact]
    public void An_evaluation_run_page_shows_bars_the_histogram_and_the_worst_images_in_order()
    {
        var id = AddRun(EvaluationJob.KindName, "{\"datasetId\":1,\"checkpoint\":\"a.pth\"}");
        AddMetric(id, "acc/adm", 0.5);
        AddMetric(id, "ap/adm", 0.6);
        var rows = new List<ScoreRow>();
        for (var i = 0; i < 12; i++) rows.Add(new ScoreRow($"real/r{i:00}.png", 0, i / 20.0));
        for (var i = 0; i < 12; i++) rows.Add(new ScoreRow($"fake/f{i:00}.png", 1, 1 - i / 20.0));
        ScoresCsv.Write(Path.Combine(RunDir(id), "scores.csv"), rows);

        var cut = Render<RunDetail>(p => p.Add(x => x.Id, id));

        cut.WaitForAssertion(() => Assert.NotNull(cut.Find("[data-testid=evaluation-panels]")));
        Assert.Contains("<svg", cut.Find("[data-testid=generator-bars] [data-testid=chart-figure-svg]").InnerHtml);
        Assert.Contains("<svg", cut.Find("[data-testid=score-histogram] [data-testid=chart-figure-svg]").InnerHtml);
        var reals = cut.FindAll("[data-testid=worst-reals] [data-testid=worst-image]").Select(f => f.GetAttribute("data-path")).ToList();
        Assert.Equal(Enumerable.Range(0, 8).Select(i => $"real/r{11 - i:00}.png"), reals);
        var fakes = cut.FindAll("[data-testid=worst-fakes] [data-testid=worst-image]").Select(f => f.GetAttribute("data-path")).ToList();
        Assert.Equal(Enumerable.Range(0, 8).Select(i => $"fake/f{11 - i:00}.png"), fakes);
        Assert.Equal($"api/runs/{id}/images/real/r11.png?size=128",
            cut.Find("[data-testid=worst-reals] [data-testid=worst-image] img").GetAttribute("src"));
    }

    [Fact]
    public void The_histogram_counts_scores_into_twenty_bins_with_one_in_the_last()
    {
        var counts = BarPlot.Histogram([0.0, 0.049, 0.05, 0.5, 0.99, 1.0, double.NaN], 20);
        Assert.Equal(20, counts.Length);
        Assert.Equal(2, counts[0]);
        Assert.Equal(1, counts[1]);
        Assert.Equal(1, counts[10]);
        Assert.Equal(2, counts[19]);
        Assert.Equal(6, counts.Sum());
    }
}
