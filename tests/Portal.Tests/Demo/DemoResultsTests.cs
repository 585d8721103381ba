using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Portal.Experiments;
using Portal.Datasets;
using Portal.Zoo;
using Portal.Runs;
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

    /// <summary>A sweep run whose sweep.json holds a clean point (ignored) and one point per severity with per-generator acc (ap = acc / 2 + 0.5).</summary>
    long Sweep(string axis, IReadOnlyList<string> severities, double[] acc)
    {
        var id = Succeeded(RobustnessSweepJob.KindName, new { datasetId = DatasetId, checkpoint = "x", axis, severities = string.Join(",", severities) }, new Dictionary<string, double>(), "");
        JsonObject Point(string severity, double[] values) => new()
        {
            ["severity"] = severity,
            ["per_generator"] = new JsonArray(Gens.Select((g, i) => (JsonNode)new JsonObject { ["generator"] = g, ["acc"] = values[i], ["ap"] = values[i] / 2 + 0.5 }).ToArray()),
        };
        var points = new JsonArray(Point("clean", [1, 1, 1]));
        foreach (var severity in severities) points.Add(Point(severity, acc));
        var relative = $"runs/{id}/sweep.json";
        Directory.CreateDirectory(Path.Combine(DataDir, "runs", id.ToString()));
        File.WriteAllText(Path.Combine(DataDir, relative), new JsonObject { ["axis"] = axis, ["points"] = points }.ToJsonString());
        Add(new Artifact { RunId = id, Kind = "sweep", RelativePath = relative, CreatedAt = DateTime.UtcNow });
        return id;
    }

    static readonly string[] Jpeg = DemoBenchmark.JpegSeverities.Split(','), Resize = DemoBenchmark.ResizeSeverities.Split(',');

    /// <summary>
    /// A succeeded demo pipeline of one seed: its train child (final train_loss, weights and init artifacts), crossgen (clean
    /// acc per generator, ap = acc / 2 + 0.5), JPEG / resize sweeps at every severity, and its two sanity evaluations.
    /// </summary>
    void Pipeline(bool aligned, double? fraction, long seed, double[] clean, double[] perturbed, double trainedAp = 0.95, double untrainedAp = 0.5, double loss = 0.2)
    {
        var crossgen = Succeeded(CrossGeneratorJob.KindName, new { datasetId = DatasetId, checkpoint = $"x{seed}" },
            Gens.Select((g, i) => (g, i)).SelectMany(x => new[] { KeyValuePair.Create($"acc/{x.g}", clean[x.i]), KeyValuePair.Create($"ap/{x.g}", clean[x.i] / 2 + 0.5) })
                .ToDictionary(), "");
        var train = Succeeded(TrainingJob.KindName, new { trainDatasetId = DatasetId, seed, fraction, aligned }, new Dictionary<string, double>(), "");
        using (var db = Db())
        {
            db.RunMetrics.AddRange(new RunMetric { RunId = train, Name = "train_loss", Step = 1, Value = 0.69, At = DateTime.UtcNow },
                new RunMetric { RunId = train, Name = "train_loss", Step = 2, Value = loss, At = DateTime.UtcNow });
            db.SaveChanges();
        }
        var weights = $"runs/{train}/best.safetensors";
        var init = $"runs/{train}/init.safetensors";
        Add(new Artifact { RunId = train, Kind = "weights", RelativePath = weights, CreatedAt = DateTime.UtcNow });
        Add(new Artifact { RunId = train, Kind = TrainingJob.InitArtifact, RelativePath = init, CreatedAt = DateTime.UtcNow });
        foreach (var (file, ap) in new[] { (weights, trainedAp), (init, untrainedAp) })
            Succeeded(EvaluationJob.KindName, new EvaluationJob.Config(AlignSourceId, Path.Combine(DataDir, file), Split: "test", Bootstrap: 0),
                new Dictionary<string, double> { ["ap"] = ap, ["acc"] = ap });
        var children = new Dictionary<string, double> { ["child/train"] = train, ["child/crossgen"] = crossgen };
        if (fraction is null)
        {
            children["child/sweeps[0]"] = Sweep("jpeg", Jpeg, perturbed);
            children["child/sweeps[1]"] = Sweep("resize", Resize, perturbed);
        }
        var config = new PipelineJob.Config(DatasetId, aligned ? new PipelineJob.AlignStage(VaeWeightsId: 1) : null,
            new PipelineJob.TrainStage(Mode: aligned ? "synced" : "independent", Seed: seed, Generators: ["ldm_nearest"], Fraction: fraction));
        Succeeded(PipelineJob.KindName, config, children);
    }

    static double[] Plus(double[] v, double d) => v.Select(x => x + d).ToArray();

    [Fact]
    public async Task Seeded_runs_become_sanity_rows_and_claim_tables_with_mean_and_sd_and_verdicts()
    {
        double[] seedShift = [-0.02, 0, 0.02];
        for (var i = 0; i < 3; i++)
        {
            var seed = 17 + i;
            var d = seedShift[i];
            Pipeline(true, null, seed, Plus([0.99, 0.90, 0.60], d), Plus([0.95, 0.85, 0.55], d));
            Pipeline(false, null, seed, Plus([0.99, 0.70, 0.55], d), Plus([0.70, 0.60, 0.50], d));
            // The 10% aligned detector did not train: in-distribution AP 0.6.
            Pipeline(true, 0.1, seed, Plus([0.60, 0.60, 0.55], d), [], trainedAp: 0.6 + d, untrainedAp: 0.5, loss: 0.69);
            Pipeline(false, 0.1, seed, Plus([0.95, 0.80, 0.60], d), []);
        }
        // A run without the demo tag is not part of the demo.
        Succeeded(EvaluationJob.KindName, new { datasetId = DatasetId, checkpoint = "v", arch = "lare2" }, new Dictionary<string, double> { ["acc/dcgan"] = 1 }, "");

        var data = await DemoResults.LoadAsync(DbFactory, Services.GetRequiredService<Portal.Infrastructure.PortalPaths>());
        // Per seed: 4 rows x 3 generators clean, and the two 100% rows x 3 generators x every perturbed point.
        Assert.Equal(3 * (4 * 3 + 2 * 3 * (Jpeg.Length + Resize.Length)), data.Measurements.Count);
        Assert.Equal(0.87, data.Measurements.Single(x => x.Row == "aligned" && x.Generator == "ldm_transpose" && x.Condition == "resize 0.5" && x.Seed == 19).Acc, 6);
        Assert.Equal(12, data.Sanity.Count);

        var tables = DemoResults.Tables(data);
        var aligned = tables.Sanity.Single(s => s.Row == "aligned");
        Assert.Equal([17L, 18, 19], aligned.Seeds);
        Assert.Equal(0.95, aligned.InDistributionAp!.Value, 6);
        Assert.Equal(0.5, aligned.UntrainedAp!.Value, 6);
        Assert.Equal(0.2, aligned.FinalTrainLoss!.Value, 6); // the last epoch's loss
        Assert.True(aligned.Trained);
        var small = tables.Sanity.Single(s => s.Row == "aligned@10%");
        Assert.False(small.Trained);
        Assert.Equal(0.02, small.InDistributionApSd!.Value, 6);

        var clean = tables.Claims[2].Cells.Single(c => c.Row == DemoResults.ResNet && c.Generator == "ldm_transpose");
        Assert.Equal(0.70, clean.Acc, 6);
        Assert.Equal(0.02, clean.AccSd!.Value, 6);
        Assert.Equal(0.85, clean.Ap!.Value, 6);
        Assert.Equal(0.01, clean.ApSd!.Value, 6);

        // Robustness on the LDM generators, AP = acc / 2 + 0.5: aligned (0.975 + 0.925) / 2 = 0.95 vs usual (0.85 + 0.80) / 2 = 0.825,
        // each ± 0.01 over the seeds: difference 12.5 points, spread sqrt(2) = 1.4.
        Assert.Equal(DemoVerdict.Reproduces, tables.Claims[0].Outcome);
        Assert.Contains("aligned 95.0 ± 1.0 vs usual 82.5 ± 1.0; difference 12.5, spread 1.4", tables.Claims[0].Verdict);
        // Data efficiency: the aligned detector at 10% did not train, so no verdict, but its numbers.
        Assert.Equal(DemoVerdict.DetectorDidNotTrain, tables.Claims[1].Outcome);
        Assert.StartsWith("detector did not train: aligned@10% in-distribution AP 60.0 ± 2.0 (< 80.0), untrained init 50.0 ± 0.0, final training loss 0.690 ± 0.000 (ln 2 = 0.693)", tables.Claims[1].Verdict);
        // LaRE² has no runs yet.
        Assert.Equal(DemoVerdict.NotMeasured, tables.Claims[2].Outcome);

        var markdown = DemoResults.ToMarkdown(tables);
        Assert.Contains("| aligned | 17,18,19 | 95.0 ± 0.0 | 50.0 ± 0.0 | 0.200 ± 0.000 (ln 2 = 0.693) | trained |", markdown);
        Assert.Contains("| aligned@10% | 17,18,19 | 60.0 ± 2.0 | 50.0 ± 0.0 | 0.690 ± 0.000 (ln 2 = 0.693) | did not train |", markdown);
        Assert.Contains("| jpeg 90 | 97.5 ± 1.0 |", markdown);
        Assert.Contains("Verdict: reproduces", markdown);
        Assert.Contains("Verdict: detector did not train", markdown);
    }

    [Fact]
    public void The_verdict_needs_trained_detectors_and_a_difference_beyond_the_spread()
    {
        DemoSanityRow Sanity(double ap) => new("x", [17, 18, 19], ap, 0.01, 0.5, 0.05, 0.3, 0.01);
        var (trained, untrained) = (Sanity(0.9), Sanity(0.79));
        Assert.Equal(DemoVerdict.Reproduces, DemoResults.Verdict((0.90, 0.02), (0.80, 0.02), trained, trained, "a", "b", "w").Outcome);
        // 5 points apart with sds of 3 and 4: the spread is 5, not exceeded.
        Assert.Equal(DemoVerdict.DoesNotReproduce, DemoResults.Verdict((0.85, 0.03), (0.80, 0.04), trained, trained, "a", "b", "w").Outcome);
        Assert.Equal(DemoVerdict.DoesNotReproduce, DemoResults.Verdict((0.70, 0.01), (0.80, 0.01), trained, trained, "a", "b", "w").Outcome);
        // One seed: no spread, no verdict of reproduction.
        Assert.Equal(DemoVerdict.DoesNotReproduce, DemoResults.Verdict((0.90, null), (0.50, null), trained, trained, "a", "b", "w").Outcome);
        var (outcome, numbers) = DemoResults.Verdict((0.99, 0.01), (0.50, 0.01), trained, untrained, "a", "b", "w");
        Assert.Equal(DemoVerdict.DetectorDidNotTrain, outcome);
        Assert.Equal("b in-distribution AP 79.0 ± 1.0 (< 80.0), untrained init 50.0 ± 5.0, final training loss 0.300 ± 0.010 (ln 2 = 0.693)", numbers);
        Assert.Equal(DemoVerdict.DetectorDidNotTrain, DemoResults.Verdict((0.99, 0.01), (0.50, 0.01), null, trained, "a", "b", "w").Outcome);
        Assert.Equal("reproduces", DemoResults.VerdictKey(DemoVerdict.Reproduces));
        Assert.Equal("does-not-reproduce", DemoResults.VerdictKey(DemoVerdict.DoesNotReproduce));
        Assert.Equal("detector-did-not-train", DemoResults.VerdictKey(DemoVerdict.DetectorDidNotTrain));
    }

    [Fact]
    public void The_json_document_has_exactly_the_fields_of_the_issue()
    {
        var data = new DemoData(
            [new DemoMeasurement("aligned", "ldm_nearest", "clean", 0.9, 0.95, 17), new DemoMeasurement("aligned", "ldm_nearest", "clean", 0.8, 0.85, 18),
             new DemoMeasurement("usual", "ldm_nearest", "clean", 0.7, 0.75, 17), new DemoMeasurement("usual", "ldm_nearest", "jpeg 90", 0.6, null, 17)],
            [new DemoSanity("aligned", 17, 0.9, 0.5, 0.3), new DemoSanity("aligned", 18, 0.8, 0.4, 0.4)]);
        var shortcut = DemoResults.ShortcutRows(new Forensics.ML.Evaluation.ShortcutStatistics(100, 30, 50, 10), [("ldm_nearest", new Forensics.ML.Evaluation.ShortcutStatistics(110, 40, 25, 10))]);
        var json = DemoResults.ToJson(DemoResults.Tables(data, shortcut), "abc", "full", 12.25, new JsonObject { ["macs_ratio"] = 3.0 });
        Assert.Equal(["commit", "set", "minutes", "rows", "sanity", "shortcut", "claims", "cost"], json.Select(p => p.Key));
        Assert.Equal(("abc", "full", 12.25), (json["commit"]!.GetValue<string>(), json["set"]!.GetValue<string>(), json["minutes"]!.GetValue<double>()));
        var row = json["rows"]!.AsArray().Single(r => r!["training"]!.GetValue<string>() == "aligned" && r["condition"]!.GetValue<string>() == "clean")!.AsObject();
        Assert.Equal(["detector", "training", "seeds", "generator", "condition", "acc", "ap", "acc_sd", "ap_sd", "n"], row.Select(p => p.Key));
        Assert.Equal("res50nodown", row["detector"]!.GetValue<string>());
        Assert.Equal([17L, 18], row["seeds"]!.AsArray().Select(s => s!.GetValue<long>()));
        Assert.Equal(0.85, row["acc"]!.GetValue<double>(), 6);
        Assert.Equal(Math.Sqrt(0.005), row["acc_sd"]!.GetValue<double>(), 5);
        Assert.Equal(2, row["n"]!.GetValue<int>());
        var sanity = json["sanity"]!.AsArray().Single()!.AsObject();
        Assert.Equal(["detector", "training", "in_distribution_ap", "untrained_ap", "final_train_loss"], sanity.Select(p => p.Key));
        Assert.Equal(0.85, sanity["in_distribution_ap"]!.GetValue<double>(), 6);
        var cut = json["shortcut"]!.AsArray()[1]!.AsObject();
        Assert.Equal(["generator", "luma_mean", "luma_std", "laplacian_energy", "hf_ratio"], cut.Select(p => p.Key));
        Assert.Equal(0.5, cut["hf_ratio"]!.GetValue<double>(), 6);
        var claims = json["claims"]!.AsArray();
        Assert.Equal(3, claims.Count);
        Assert.All(claims, c => Assert.Equal(["claim", "verdict", "numbers"], c!.AsObject().Select(p => p.Key)));
        Assert.All(claims, c => Assert.Contains(c!["verdict"]!.GetValue<string>(), new[] { "reproduces", "does-not-reproduce", "detector-did-not-train", "not-measured" }));
        Assert.Equal(3.0, json["cost"]!["macs_ratio"]!.GetValue<double>());
    }

    [Fact]
    public void The_cost_table_reads_as_in_the_readme_and_the_page_uses_the_same_cells()
    {
        var macs = new Portal.Zoo.ModelCost(1, 2, 20, 64, 16, 90_000_000, 100_000_000, 120_450_816, 220_450_816, 1_929_000_000, 1_929_000_000 / 220_450_816.0, "");
        var cost = new DemoCost(macs, 0.026, 0.4538, 8);
        Assert.Equal(string.Join(Environment.NewLine,
            "### Cost: aligning vs generating one image", "",
            "| | alignment (vae-nearest encode + decode) | generation (ldm_nearest, 20 DDIM steps + decode) | ratio |",
            "|---|---:|---:|---:|",
            "| GMACs per 64 px image | 0.220 | 1.929 | 8.8x |",
            "| ms per image (wall, 8 images) | 26.0 | 453.8 | 17.5x |", "",
            "Paper (SD 1.x at 256 px): 2.32 vs 25.2 GMACs, 10.9x.", ""), DemoCost.ToMarkdown(cost));
        Assert.Equal(["GMACs per 64 px image", "0.220", "1.929", "8.8x"], DemoCost.MacsCells(macs));
        Assert.Equal("### Cost: aligning vs generating one image" + Environment.NewLine + Environment.NewLine +
                     "not measured: the zoo has no vae-nearest or ldm_nearest" + Environment.NewLine, DemoCost.ToMarkdown(null));
    }

    [Fact]
    public void A_claim_without_its_rows_says_what_is_not_measured_yet()
    {
        var tables = DemoResults.Tables(new DemoData([new DemoMeasurement("aligned", "dcgan", "clean", 0.9, 0.95)], []));
        Assert.All(tables.Claims, t => Assert.Null(t.Reproduces));
        Assert.Equal("not measured yet: no results for usual", tables.Claims[0].Verdict);
        Assert.Equal("not measured yet: no results for LaRE², ResNet-50 (usual)", tables.Claims[2].Verdict);
    }
}
