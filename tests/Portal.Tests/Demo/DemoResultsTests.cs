using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Portal.Demo;
using Portal.Jobs;
using Portal.Store;
using Microsoft.Extensions.DependencyInjection;

namespace Portal.Tests.Demo;

public class DemoResultsTests : DemoBenchmarkTestBase
{
    static readonly string[] Gens = ["ldm_nearest", "ldm_transpose", "dcgan"];

    /// <summary>A succeeded run tagged demo with step-0 metrics.</summary>
    long Succeeded(string kind, object config, IReadOnlyDictionary<string, double> metrics, string tags = ",demo,")
    {
        var json = config as string ?? JsonSerializer.Serialize(config, JobInputs.Json);
        var id = Add(new Run
        {
            Kind = kind, Queue = JobQueues.Device, ConfigJson = json, ConfigHash = RunService.ConfigHash(kind, json), Status = RunStatus.Succeeded,
            Progress = 1, CreatedAt = DateTime.UtcNow, StartedAt = DateTime.UtcNow, FinishedAt = DateTime.UtcNow, CodeVersion = "test", Tags = tags,
        });
        using var db = Db();
        db.RunMetrics.AddRange(metrics.Select(m => new RunMetric { RunId = id, Name = m.Key, Step = 0, Value = m.Value, At = DateTime.UtcNow }));
        db.SaveChanges();
        return id;
    }

    /// <summary>A sweep run whose sweep.json holds one point at <paramref name="severity"/> with per-generator acc (ap = acc / 2 + 0.5).</summary>
    long Sweep(string axis, double severity, double[] acc)
    {
        var id = Succeeded(RobustnessSweepJob.KindName, new { datasetId = DatasetId, checkpoint = "x", axis }, new Dictionary<string, double>(), "");
        var point = new JsonObject
        {
            ["severity"] = severity.ToString("R", CultureInfo.InvariantCulture),
            ["per_generator"] = new JsonArray(Gens.Select((g, i) => (JsonNode)new JsonObject { ["generator"] = g, ["acc"] = acc[i], ["ap"] = acc[i] / 2 + 0.5 }).ToArray()),
        };
        var relative = $"runs/{id}/sweep.json";
        Directory.CreateDirectory(Path.Combine(DataDir, "runs", id.ToString()));
        File.WriteAllText(Path.Combine(DataDir, relative), new JsonObject { ["axis"] = axis, ["points"] = new JsonArray(point) }.ToJsonString());
        Add(new Artifact { RunId = id, Kind = "sweep", RelativePath = relative, CreatedAt = DateTime.UtcNow });
        return id;
    }

    /// <summary>A succeeded demo pipeline with its crossgen (clean acc per generator, ap = acc / 2 + 0.5) and JPEG / resize sweeps.</summary>
    void Pipeline(bool aligned, double? fraction, double[] clean, double[] jpeg, double[] resize)
    {
        var crossgen = Succeeded(CrossGeneratorJob.KindName, new { datasetId = DatasetId, checkpoint = "x" },
            Gens.Select((g, i) => (g, i)).SelectMany(x => new[] { KeyValuePair.Create($"acc/{x.g}", clean[x.i]), KeyValuePair.Create($"ap/{x.g}", clean[x.i] / 2 + 0.5) })
                .ToDictionary(), "");
        var j = Sweep("jpeg", DemoBenchmark.JpegQuality, jpeg);
        var r = Sweep("resize", DemoBenchmark.ResizeScale, resize);
        var config = new PipelineJob.Config(DatasetId, aligned ? new PipelineJob.AlignStage(VaeWeightsId: 1) : null,
            new PipelineJob.TrainStage(Mode: aligned ? "synced" : "independent", Generators: ["ldm_nearest"], Fraction: fraction));
        Succeeded(PipelineJob.KindName, config, new Dictionary<string, double> { ["child/crossgen"] = crossgen, ["child/sweeps[0]"] = j, ["child/sweeps[1]"] = r });
    }

    [Fact]
    public async Task Seeded_runs_become_the_claim_tables_with_their_verdicts()
    {
        Pipeline(true, null, [0.99, 0.90, 0.60], [0.95, 0.85, 0.55], [0.93, 0.80, 0.52]);
        Pipeline(false, null, [0.99, 0.70, 0.55], [0.70, 0.60, 0.50], [0.60, 0.55, 0.50]);
        Pipeline(true, 0.1, [0.90, 0.80, 0.55], [0.85, 0.75, 0.52], [0.80, 0.70, 0.50]);
        Pipeline(false, 0.1, [0.95, 0.80, 0.60], [0.60, 0.55, 0.50], [0.55, 0.52, 0.50]);
        Succeeded(EvaluationJob.KindName, new { datasetId = DatasetId, checkpoint = "w", arch = "lare2", split = "test", lareRunId = 1 },
            new Dictionary<string, double> { ["acc/ldm_nearest"] = 0.97, ["ap/ldm_nearest"] = 0.99, ["acc/ldm_transpose"] = 0.60, ["acc/dcgan"] = 0.50, ["acc"] = 0.7 });
        // A run without the demo tag is not part of the demo.
        Succeeded(EvaluationJob.KindName, new { datasetId = DatasetId, checkpoint = "v", arch = "lare2" }, new Dictionary<string, double> { ["acc/dcgan"] = 1 }, "");

        var m = await DemoResults.LoadAsync(DbFactory, Services.GetRequiredService<Portal.Infrastructure.PortalPaths>());
        Assert.Equal(4 * 9 + 3, m.Count);
        Assert.Equal(0.80, m.Single(x => x.Row == "aligned" && x.Generator == "ldm_transpose" && x.Condition == "resize").Acc, 6);
        Assert.Equal(0.80, m.Single(x => x.Row == "usual@10%" && x.Generator == "ldm_nearest" && x.Condition == "jpeg").Ap!.Value, 6);
        Assert.Null(m.Single(x => x.Row == DemoResults.Lare2 && x.Generator == "dcgan").Ap);

        var tables = DemoResults.Tables(m);
        Assert.Equal(3, tables.Count);
        // Robustness: aligned mean of its 6 perturbed cells 4.6/6 vs usual 3.45/6.
        Assert.Equal("reproduces: mean ACC under JPEG q75 and resize x0.5: aligned 76.7 vs usual 57.5", tables[0].Verdict);
        Assert.True(tables[0].Reproduces);
        // Data efficiency at 10%: clean AP aligned (0.95+0.90+0.775)/3 vs usual (0.975+0.90+0.80)/3.
        Assert.Equal("does not reproduce in miniature: mean clean AP with 10% of the images: aligned 87.5 vs usual 89.2", tables[1].Verdict);
        Assert.False(tables[1].Reproduces);
        // Families: LaRE² 69.0 vs the usual ResNet-50 74.7.
        Assert.Equal("does not reproduce in miniature: mean clean ACC over the three families: LaRE² 69.0 vs ResNet-50 74.7", tables[2].Verdict);

        var markdown = DemoResults.ToMarkdown(tables);
        Assert.Contains("| aligned | 99.0 | 99.5 | 95.0 | 97.5 | 93.0 | 96.5 | 90.0 | 95.0 |", markdown);
        Assert.Contains("| LaRE² | 97.0 | 99.0 | 60.0 | - | 50.0 | - |", markdown);
        Assert.Contains("Verdict: reproduces", markdown);
    }

    [Fact]
    public void A_claim_without_its_rows_says_what_is_not_measured_yet()
    {
        var tables = DemoResults.Tables([new DemoMeasurement("aligned", "dcgan", "clean", 0.9, 0.95)]);
        Assert.All(tables, t => Assert.Null(t.Reproduces));
        Assert.Equal("not measured yet: no results for usual", tables[0].Verdict);
        Assert.Equal("not measured yet: no results for LaRE², ResNet-50 (usual)", tables[2].Verdict);
    }
}
