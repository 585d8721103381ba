using System.Globalization;
using Bunit;
using Forensics.ML.Evaluation;
using Forensics.ML.Metrics;
using Forensics.ML.Protocols;
using Portal.Components.Pages;
using Portal.Experiments;
using Portal.Datasets;
using Portal.Zoo;
using Portal.Runs;
using Portal.Store;

namespace Portal.Tests.Components;

/// <summary>A cross-generator run's page (per-generator tables, average, provenance, best-on-test flag) and a sweep's per-severity table.</summary>
public sealed class ProtocolRunPanelsTests : PortalComponentTest
{
    long AddSucceededRun(string kind, string config)
    {
        var run = NewRun(RunStatus.Succeeded, 1);
        run.Kind = kind;
        run.Queue = JobQueues.Device;
        run.ConfigJson = config;
        run.FinishedAt = DateTime.UtcNow;
        return Add(run);
    }

    string RunDir(long id) => Directory.CreateDirectory(Path.Combine(DataDir, "runs", id.ToString(CultureInfo.InvariantCulture))).FullName;

    static List<ImageScore> Scores(string generator, double[] reals, double[] fakes) =>
        reals.Select((s, i) => new ImageScore($"{generator}/val/nature/r{i}.png", 0, generator, double.NaN, s))
            .Concat(fakes.Select((s, i) => new ImageScore($"{generator}/val/ai/f{i}.png", 1, generator, double.NaN, s))).ToList();

    static string Cell(AngleSharp.Dom.IElement row, string metric) => row.QuerySelector($"[data-metric={metric}]")!.TextContent.Trim();

    [Fact]
    public void A_crossgen_run_shows_a_table_per_mode_with_the_average_row_the_provenance_and_best_on_test_flagged()
    {
        // Real result files from the library: two generators, fixed and best-on-test thresholds.
        var test = Scores("adm", [0.1, 0.6, 0.2], [0.7, 0.4, 0.9]).Concat(Scores("sdv4", [0.3, 0.2], [0.8, 0.55])).ToList();
        var result = CrossGeneratorEvaluation.FromScores(test, "genimage (val)", null, null, new CrossGenOptions
        {
            Modes = [ThresholdMode.Fixed, ThresholdMode.BestOnTest], CheckpointChosenOn = "train",
            Metrics = new MetricsOptions { BootstrapSamples = 0 },
        }, "val");
        var id = AddSucceededRun(CrossGeneratorJob.KindName, "{\"datasetId\":1,\"checkpoint\":\"a.pth\",\"modes\":\"fixed,best\"}");
        File.WriteAllText(Path.Combine(RunDir(id), CrossGeneratorResult.JsonFileName), result.ToJson().ToJsonString());

        var cut = Render<RunDetail>(p => p.Add(x => x.Id, id));

        cut.WaitForAssertion(() => Assert.NotNull(cut.Find("[data-testid=crossgen-panels]")));
        var tables = cut.FindAll("[data-testid=crossgen-table]");
        Assert.Equal(["fixed", "best"], tables.Select(t => t.GetAttribute("data-mode")));

        var fixedTable = tables[0];
        Assert.Equal("false", fixedTable.GetAttribute("data-mixes-splits"));
        Assert.Null(fixedTable.QuerySelector("[data-testid=crossgen-best-on-test]"));
        Assert.Equal("train", fixedTable.QuerySelector("[data-testid=crossgen-checkpoint-chosen-on]")!.TextContent);
        Assert.Equal("none (fixed)", fixedTable.QuerySelector("[data-testid=crossgen-threshold-chosen-on]")!.TextContent);
        Assert.Equal("val", fixedTable.QuerySelector("[data-testid=crossgen-reported-on]")!.TextContent);
        var rows = fixedTable.QuerySelectorAll("[data-testid=crossgen-row]");
        Assert.Equal(["adm", "sdv4", "avg"], rows.Select(r => r.GetAttribute("data-generator")));
        var fixedRows = result.Table(ThresholdMode.Fixed);
        // adm at 0.5: reals 0.1, 0.2 right and 0.6 wrong; fakes 0.7, 0.9 right and 0.4 wrong: 4/6.
        Assert.Equal("66.7", Cell(rows[0], "acc"));
        Assert.Equal((100 * fixedRows.Rows[0].Result.Report.Ap!.Value).ToString("0.0", CultureInfo.InvariantCulture), Cell(rows[0], "ap"));
        Assert.Equal("100.0", Cell(rows[1], "acc"));
        Assert.Equal("83.3", Cell(rows[2], "acc"));
        Assert.Equal(fixedRows.Average.Acc.ToString("R", CultureInfo.InvariantCulture),
            rows[2].QuerySelector("[data-metric=acc]")!.GetAttribute("data-value"));
        Assert.Contains("average (2 generators)", rows[2].TextContent);

        var bestTable = tables[1];
        Assert.Equal("true", bestTable.GetAttribute("data-mixes-splits"));
        Assert.Contains("best-on-test", bestTable.QuerySelector("[data-testid=crossgen-best-on-test]")!.TextContent);
        Assert.Equal("test: genimage (val) / each generator's own images (one threshold per row)",
            bestTable.QuerySelector("[data-testid=crossgen-threshold-chosen-on]")!.TextContent);
        Assert.Contains("chosen on the test data", bestTable.QuerySelector("[data-testid=crossgen-warning]")!.TextContent);
        // adm's classes overlap (a real at 0.6, a fake at 0.4): its best threshold still misses one of six.
        Assert.Equal("83.3", Cell(bestTable.QuerySelectorAll("[data-testid=crossgen-row]")[0], "acc"));
    }

    [Fact]
    public void A_checkpoint_chosen_on_the_test_split_flags_even_the_fixed_table()
    {
        var result = CrossGeneratorEvaluation.FromScores(Scores("adm", [0.1, 0.2], [0.7, 0.9]), "genimage (val)", null, null,
            new CrossGenOptions { CheckpointChosenOn = "val", Metrics = new MetricsOptions { BootstrapSamples = 0 } }, "val");
        var id = AddSucceededRun(CrossGeneratorJob.KindName, "{\"datasetId\":1,\"checkpoint\":\"a.pth\"}");
        File.WriteAllText(Path.Combine(RunDir(id), CrossGeneratorResult.JsonFileName), result.ToJson().ToJsonString());

        var cut = Render<RunDetail>(p => p.Add(x => x.Id, id));

        cut.WaitForAssertion(() => Assert.NotNull(cut.Find("[data-testid=crossgen-table]")));
        var table = cut.Find("[data-testid=crossgen-table]");
        Assert.Equal("true", table.GetAttribute("data-mixes-splits"));
        Assert.NotNull(table.QuerySelector("[data-testid=crossgen-mixes-splits]"));
        Assert.Contains("checkpoint chosen on 'val'", table.QuerySelector("[data-testid=crossgen-warning]")!.TextContent);
    }

    [Fact]
    public void A_sweep_run_shows_its_curves_and_a_row_per_severity_with_the_overall_metrics()
    {
        var clean = Scores("adm", [0.1, 0.2, 0.3], [0.8, 0.9, 0.7]);
        var q50 = Scores("adm", [0.4, 0.6, 0.3], [0.45, 0.9, 0.7]);
        var metrics = new MetricsOptions { BootstrapSamples = 0 };
        SweepPoint Point(double? severity, List<ImageScore> s) => new(severity, SweepAxes.Spec("jpeg", severity), false,
            SweepCell.Of(SweepResult.AllGenerators, s, metrics), [SweepCell.Of("adm", s, metrics)], s, []);
        var sweep = new SweepResult("jpeg", "data", [Point(null, clean), Point(90, clean), Point(50, q50)]);
        var id = AddSucceededRun(RobustnessSweepJob.KindName, "{\"datasetId\":1,\"checkpoint\":\"a.pth\",\"axis\":\"jpeg\"}");
        File.WriteAllText(Path.Combine(RunDir(id), SweepResult.CsvFileName), sweep.ToCsv());

        var cut = Render<RunDetail>(p => p.Add(x => x.Id, id));

        cut.WaitForAssertion(() => Assert.NotNull(cut.Find("[data-testid=sweep-panels]")));
        Assert.NotEmpty(cut.FindAll("[data-testid=sweep-panels] svg"));
        var rows = cut.FindAll("[data-testid=sweep-point]");
        Assert.Equal(["clean", "90", "50"], rows.Select(r => r.GetAttribute("data-severity")));
        Assert.Equal("100.0", Cell(rows[0], "acc"));
        // q50: reals 0.4, 0.3 right, 0.6 wrong; fakes 0.9, 0.7 right, 0.45 wrong: 4/6.
        Assert.Equal("66.7", Cell(rows[2], "acc"));
        var mean = q50.Where(s => s.Label == 0).Average(s => s.Score);
        Assert.Equal(mean, double.Parse(rows[2].QuerySelector("[data-metric=mean_pfake_real]")!.GetAttribute("data-value")!, CultureInfo.InvariantCulture), 12);
    }
}
