using Portal.Bench;
using Portal.Experiments;
using Portal.Datasets;
using Portal.Zoo;
using Portal.Runs;
using Portal.Leaderboard;
using Portal.Store;
using Portal.Tests.Components;

namespace Portal.Tests.Leaderboard;

/// <summary>
/// The pivot over seeded evaluation runs: 2 detectors x 3 generators x 2 seeds (plus one perturbed run): values, mean over
/// generators, mean ± sd over seeds, filters, sorting by a generator column, paging, exports and the paper's rows.
/// </summary>
public class LeaderboardQueryTests : PortalComponentTest
{
    internal const string Mj = "imagenet_midjourney", Sd4 = "imagenet_ai_0419_sdv4", Glide = "imagenet_glide";

    internal static Dictionary<string, (double, double)> Values(double mj, double sd4, double glide) => new()
    {
        [Mj] = (mj, mj - 0.05), [Sd4] = (sd4, sd4 - 0.05), [Glide] = (glide, glide - 0.05),
    };

    /// <summary>Detector A (zoo name det-a, arch from the zoo) and B (a path with an underscore, arch in the config), seeds 0 and 1, and A under JPEG.</summary>
    internal static async Task<(long Dataset, List<long> Runs)> SeedAsync(Microsoft.EntityFrameworkCore.IDbContextFactory<PortalDb> dbFactory)
    {
        await using (var db = await dbFactory.CreateDbContextAsync())
        {
            db.Weights.Add(new ModelWeights { Name = "det-a", Kind = "detector", Architecture = "res50nodown", Path = "/models/a.pth", CreatedAt = DateTime.UtcNow });
            await db.SaveChangesAsync();
        }
        var dataset = await LeaderboardSeed.AddDatasetAsync(dbFactory, "genimage-val");
        var runs = await LeaderboardSeed.AddAsync(dbFactory,
        [
            new("/models/a.pth", null, dataset, null, 0, Values(0.60, 0.98, 0.70)),
            new("/models/a.pth", null, dataset, "none", 1, Values(0.64, 0.96, 0.74)),
            new("/models/b_v2.pth", "resnet50", dataset, null, 0, Values(0.55, 0.99, 0.50)),
            new("/models/b_v2.pth", "resnet50", dataset, "", 1, Values(0.57, 0.99, 0.54)),
            new("/models/a.pth", null, dataset, "jpeg:75", 0, Values(0.51, 0.80, 0.45)),
        ]);
        return (dataset, runs);
    }

    LeaderboardQuery Query => new(DbFactory);

    static LeaderboardRequest Measured(string? sort = null, bool? desc = null, int skip = 0, int? take = null) =>
        new(Sort: sort, Desc: desc, Skip: skip, Take: take, Baselines: false);

    [Fact]
    public async Task Pivot_aggregates_seeds_into_mean_and_sd_per_generator_and_the_mean_over_generators()
    {
        var (dataset, runs) = await SeedAsync(DbFactory);
        var page = await Query.RunAsync(Measured());

        Assert.Equal(3, page.Total);
        Assert.Equal([Mj, Sd4, Glide], page.Generators);   // the paper's column order
        var a = Assert.Single(page.Rows, r => r.Detector == "det-a" && r.Perturbation == "none");
        Assert.Equal(("res50nodown", "genimage-val", dataset, "val", "0.5", "measured"), (a.Arch, a.Dataset, a.DatasetId!.Value, a.Split, a.Threshold, a.Source));
        Assert.Equal([runs[0], runs[1]], a.RunIds);
        Assert.Equal([0L, 1L], a.Seeds);
        Assert.Equal(0.62, a.Acc[Mj].Mean, 9);
        Assert.Equal(Math.Sqrt(2 * 0.02 * 0.02), a.Acc[Mj].Sd!.Value, 9);
        Assert.Equal(2, a.Acc[Mj].N);
        Assert.Equal(0.97, a.Acc[Sd4].Mean, 9);
        Assert.Equal(0.57, a.Ap[Mj].Mean, 9);
        // Per-run means over generators: 0.76 and 0.78.
        Assert.Equal(0.77, a.MeanAcc!.Mean, 9);
        Assert.Equal(Math.Sqrt(2 * 0.01 * 0.01), a.MeanAcc.Sd!.Value, 9);
        Assert.Equal(0.72, a.MeanAp!.Mean, 9);

        var b = Assert.Single(page.Rows, r => r.Detector == "/models/b_v2.pth");
        Assert.Equal("resnet50", b.Arch);
        Assert.Equal(0.99, b.Acc[Sd4].Mean, 9);
        Assert.Equal(0, b.Acc[Sd4].Sd!.Value, 9);
        Assert.Equal(0.69, b.MeanAcc!.Mean, 9);

        var jpeg = Assert.Single(page.Rows, r => r.Perturbation == "jpeg:75");
        Assert.Equal(1, jpeg.Acc[Glide].N);
        Assert.Null(jpeg.Acc[Glide].Sd);
        Assert.Equal(runs[4], jpeg.RunId);
        // Default order: mean ACC, highest first.
        Assert.Equal([a, b, jpeg], page.Rows);
    }

    [Fact]
    public async Task Filters_by_dataset_perturbation_arch_and_detector_text()
    {
        var (dataset, _) = await SeedAsync(DbFactory);
        async Task<List<string>> Rows(LeaderboardRequest r) =>
            (await Query.RunAsync(r with { Baselines = false })).Rows.Select(x => $"{x.Detector}|{x.Perturbation}").ToList();

        Assert.Equal(["det-a|none", "/models/b_v2.pth|none"], await Rows(new(Perturbation: "none")));
        Assert.Equal(["det-a|none", "/models/b_v2.pth|none"], await Rows(new(Perturbation: "clean")));
        Assert.Equal(["det-a|jpeg:75"], await Rows(new(Perturbation: "jpeg:75")));
        Assert.Equal(["/models/b_v2.pth|none"], await Rows(new(Arch: "ResNet50")));
        Assert.Equal(["det-a|none", "det-a|jpeg:75"], await Rows(new(Arch: "res50nodown")));
        Assert.Equal(["/models/b_v2.pth|none"], await Rows(new(Q: "B_V2")));
        Assert.Equal(["det-a|none", "det-a|jpeg:75"], await Rows(new(Q: "DET-")));
        Assert.Equal(3, (await Rows(new(Dataset: "genimage-val"))).Count);
        Assert.Equal(3, (await Rows(new(Dataset: dataset.ToString()))).Count);
        Assert.Empty(await Rows(new(Dataset: "other")));
        var none = await Query.RunAsync(new LeaderboardRequest(Dataset: "other", Baselines: false));
        Assert.Equal(0, none.Total);
        Assert.Empty(none.Generators);
    }

    [Fact]
    public async Task Sorts_by_a_generator_column_and_by_text_and_pages_in_order()
    {
        await SeedAsync(DbFactory);
        async Task<List<string>> Order(LeaderboardRequest r) => (await Query.RunAsync(r)).Rows.Select(x => $"{x.Detector}|{x.Perturbation}").ToList();

        string[] byGlide = ["det-a|none", "/models/b_v2.pth|none", "det-a|jpeg:75"];   // 0.72, 0.52, 0.45
        Assert.Equal(byGlide, await Order(Measured("acc:" + Glide)));
        Assert.Equal(byGlide.Reverse(), await Order(Measured("acc:" + Glide, desc: false)));
        Assert.Equal(["/models/b_v2.pth|none", "det-a|none", "det-a|jpeg:75"], await Order(Measured("acc:" + Sd4)));   // 0.99, 0.97, 0.80
        Assert.Equal(["/models/b_v2.pth|none", "det-a|jpeg:75", "det-a|none"], await Order(Measured("detector")));
        Assert.Equal(["det-a|none", "/models/b_v2.pth|none", "det-a|jpeg:75"], await Order(Measured("ap:" + Mj)));

        var second = await Query.RunAsync(Measured("acc:" + Glide, skip: 1, take: 1));
        Assert.Equal(3, second.Total);
        Assert.Equal("/models/b_v2.pth", Assert.Single(second.Rows).Detector);
        var past = await Query.RunAsync(Measured(skip: 10, take: 5));
        Assert.Equal(3, past.Total);
        Assert.Empty(past.Rows);
    }

    [Fact]
    public async Task Bad_sort_paging_and_baseline_names_name_the_parameter()
    {
        await SeedAsync(DbFactory);
        Assert.Equal("sort", (await Assert.ThrowsAsync<FieldException>(() => Query.RunAsync(Measured("bogus")))).Field);
        Assert.Equal("sort", (await Assert.ThrowsAsync<FieldException>(() => Query.RunAsync(Measured("acc:nope")))).Field);
        Assert.Equal("skip", (await Assert.ThrowsAsync<FieldException>(() => Query.RunAsync(Measured(skip: -1)))).Field);
        Assert.Equal("take", (await Assert.ThrowsAsync<FieldException>(() => Query.RunAsync(Measured(take: 0)))).Field);
        Assert.Equal("published", (await Assert.ThrowsAsync<FieldException>(() => Query.RunAsync(new LeaderboardRequest(Published: "ResNet-51")))).Field);
    }

    [Fact]
    public async Task Published_rows_carry_the_papers_numbers_and_a_named_baseline_gives_deltas()
    {
        await SeedAsync(DbFactory);
        var page = await Query.RunAsync(new LeaderboardRequest());

        Assert.Equal(10, page.Total);
        // Every GenImage generator gets a column for the paper's rows, in the paper's order.
        Assert.Equal(PublishedBaselines.GenImageGenerators.Select(g => g.Folder), page.Generators);
        var published = page.Rows.Take(7).ToList();
        Assert.All(published, r => Assert.Equal(PublishedBaselines.GenImageSource, r.Source));
        Assert.Equal(["Swin-T", "ResNet-50", "DeiT-S", "GramNet", "Spec", "F3Net", "CNNSpot"], published.Select(r => r.Detector));
        var resnet = published[1];
        Assert.Equal(0.549, resnet.Acc[Mj].Mean, 9);
        Assert.Equal(0.999, resnet.Acc[Sd4].Mean, 9);
        Assert.Equal(0.619, resnet.Acc[Glide].Mean, 9);
        Assert.Equal(0.520, resnet.Acc["imagenet_ai_0419_biggan"].Mean, 9);
        Assert.Equal(0.721, resnet.MeanAcc!.Mean, 9);
        Assert.Equal(0.468, published[6].Acc["imagenet_ai_0419_biggan"].Mean, 9);
        Assert.Equal("det-a", page.Rows[7].Detector);

        // The paper's table is clean: no paper rows under a perturbation; arch and text filters apply to them.
        Assert.Equal(1, (await Query.RunAsync(new LeaderboardRequest(Perturbation: "jpeg:75"))).Total);
        Assert.Equal(["ResNet-50", "CNNSpot", "/models/b_v2.pth"],
            (await Query.RunAsync(new LeaderboardRequest(Arch: "resnet50"))).Rows.Select(r => r.Detector));

        var compared = await Query.RunAsync(new LeaderboardRequest(Published: "resnet-50", Perturbation: "none", Baselines: false));
        var a = compared.Rows.Single(r => r.Detector == "det-a");
        Assert.Equal("ResNet-50", a.ComparedTo);
        Assert.Equal(0.549, a.Acc[Mj].Published!.Value, 9);
        Assert.Equal(0.62 - 0.549, a.Acc[Mj].Delta!.Value, 9);
        Assert.Equal(0.77 - 0.721, a.MeanAcc!.Delta!.Value, 9);
        Assert.Null(a.Ap[Mj].Published);
    }

    [Fact]
    public async Task Csv_and_latex_hold_the_shown_rows_as_percentages()
    {
        var (_, runs) = await SeedAsync(DbFactory);
        var page = await Query.RunAsync(Measured("acc:" + Glide, take: 2));

        var lines = LeaderboardExport.Csv(page, showAp: false).Split("\r\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(3, lines.Length);
        Assert.Equal("source,detector,arch,dataset,split,perturbation,threshold,runs,seeds,run_ids," +
                     $"acc_{Mj},acc_{Mj}_sd,acc_{Mj}_ci_lo,acc_{Mj}_ci_hi,acc_{Sd4},acc_{Sd4}_sd,acc_{Sd4}_ci_lo,acc_{Sd4}_ci_hi," +
                     $"acc_{Glide},acc_{Glide}_sd,acc_{Glide}_ci_lo,acc_{Glide}_ci_hi,mean_acc,mean_acc_sd,mean_acc_ci_lo,mean_acc_ci_hi", lines[0]);
        // Over two seeds a cell is mean and sd; the bootstrap interval belongs to a single run, so it stays empty here.
        Assert.Equal($"measured,det-a,res50nodown,genimage-val,val,none,0.5,2,0 1,{runs[0]} {runs[1]},62.0,2.8,,,97.0,1.4,,,72.0,2.8,,,77.0,1.4,,", lines[1]);
        Assert.StartsWith("measured,/models/b_v2.pth,resnet50,", lines[2]);
        Assert.EndsWith(",56.0,1.4,,,99.0,0.0,,,52.0,2.8,,,69.0,1.4,,", lines[2]);
        var withAp = LeaderboardExport.Csv(page, showAp: true).Split("\r\n")[1];
        Assert.EndsWith(",57.0,2.8,,,92.0,1.4,,,67.0,2.8,,,72.0,1.4,,", withAp);

        var tex = LeaderboardExport.Latex(page, showAp: false);
        Assert.Contains("\\begin{tabular}{lllllrrrr}", tex);
        Assert.Contains("\\toprule\nDetector & Source & Dataset & Perturbation & Threshold & MJ & SD1.4 & GLIDE & Mean \\\\\n\\midrule\n", tex);
        Assert.Contains("det-a & measured & genimage-val & none & 0.5 & 62.0 $\\pm$ 2.8 & 97.0 $\\pm$ 1.4 & 72.0 $\\pm$ 2.8 & 77.0 $\\pm$ 1.4 \\\\\n", tex);
        Assert.Contains("/models/b\\_v2.pth & measured & genimage-val & none & 0.5 & 56.0 $\\pm$ 1.4 & 99.0 $\\pm$ 0.0 & 52.0 $\\pm$ 2.8 & 69.0 $\\pm$ 1.4 \\\\\n\\bottomrule\n\\end{tabular}\n", tex);
        Assert.Equal(2, tex.Split('\n').Count(l => l.EndsWith(" \\\\", StringComparison.Ordinal)) - 1);

        var paper = await Query.RunAsync(new LeaderboardRequest(Q: "swin"));
        var paperTex = LeaderboardExport.Latex(paper, showAp: false);
        Assert.Contains("Swin-T & GenImage paper & GenImage (trained on SD V1.4) & none & 0.5 & 62.1 & 99.9 & 99.8 & 49.8 & 67.6 & 99.1 & 62.3 & 57.6 & 74.8 \\\\", paperTex);
        Assert.StartsWith("% " + PublishedBaselines.GenImageCitation, paperTex);
        Assert.Equal("a\\_b \\& c\\% \\$\\#\\{x\\}\\textasciitilde{}\\textasciicircum{}\\textbackslash{}", LeaderboardExport.Escape("a_b & c% $#{x}~^\\"));
    }

    [Fact]
    public async Task A_detector_named_as_a_baseline_is_compared_with_it_and_the_exports_carry_the_delta()
    {
        var (dataset, _) = await SeedAsync(DbFactory);
        await using (var db = await DbFactory.CreateDbContextAsync())
        {
            db.Weights.Add(new ModelWeights { Name = "ResNet-50", Kind = "detector", Architecture = "resnet50", Path = "/models/r.pth", CreatedAt = DateTime.UtcNow });
            await db.SaveChangesAsync();
        }
        await LeaderboardSeed.AddAsync(DbFactory, [new("/models/r.pth", null, dataset, null, 0, Values(0.50, 0.999, 0.70))]);

        var page = await Query.RunAsync(new LeaderboardRequest(Q: "resnet-50", Baselines: false));
        var row = Assert.Single(page.Rows);
        Assert.Equal("ResNet-50", row.ComparedTo);
        Assert.Equal(0.50 - 0.549, row.Acc[Mj].Delta!.Value, 9);
        Assert.Equal(0, row.Acc[Sd4].Delta!.Value, 9);
        Assert.Null((await Query.RunAsync(new LeaderboardRequest(Q: "det-a", Baselines: false))).Rows[0].ComparedTo);

        var csv = LeaderboardExport.Csv(page, showAp: false).Split("\r\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.Contains($"acc_{Mj},acc_{Mj}_sd,acc_{Mj}_ci_lo,acc_{Mj}_ci_hi,acc_{Mj}_published,acc_{Mj}_delta,", csv[0]);
        Assert.Contains(",50.0,,,,54.9,-4.9,99.9,,,,99.9,+0.0,70.0,,,,61.9,+8.1,", csv[1]);
        Assert.Contains("& 50.0 (-4.9) & 99.9 (+0.0) & 70.0 (+8.1) &", LeaderboardExport.Latex(page, showAp: false));
    }

    /// <summary>A succeeded crossgen run of det-a (seed 0) with its metrics in every threshold mode, as the crossgen job writes them.</summary>
    async Task<long> AddCrossgenAsync(long dataset, string tags = "")
    {
        long id;
        await using (var db = await DbFactory.CreateDbContextAsync())
        {
            var run = new Run
            {
                Kind = CrossGeneratorJob.KindName, Queue = JobQueues.Device, Status = RunStatus.Succeeded, Progress = 1, CreatedAt = DateTime.UtcNow,
                CodeVersion = "test", ConfigHash = "x", Tags = tags, Seed = 0,
                ConfigJson = $$"""{"datasetId":{{dataset}},"checkpoint":"/models/a.pth","split":"val","modes":"fixed,best,calibrated","seed":0}""",
            };
            db.Runs.Add(run);
            await db.SaveChangesAsync();
            id = run.Id;
        }
        var metrics = new List<(string, double)>();
        foreach (var (suffix, shift) in new[] { ("", 0.0), ("@best", 0.1), ("@calibrated", 0.05) })
        {
            foreach (var (g, acc) in new[] { (Mj, 0.60), (Sd4, 0.98), (Glide, 0.70) })
                metrics.AddRange([($"acc{suffix}/{g}", acc + shift), ($"ap{suffix}/{g}", 0.9), ($"acc_ci_lo{suffix}/{g}", acc + shift - 0.03), ($"acc_ci_hi{suffix}/{g}", acc + shift + 0.02)]);
            metrics.AddRange([($"acc{suffix}/avg", 0.76 + shift), ($"ap{suffix}/avg", 0.9)]);
        }
        await LeaderboardSeed.AddMetricsAsync(DbFactory, id, metrics);
        return id;
    }

    [Fact]
    public async Task Crossgen_runs_give_a_row_per_threshold_mode_with_bootstrap_intervals_and_best_on_test_flagged()
    {
        var dataset = await LeaderboardSeed.AddDatasetAsync(DbFactory, "genimage-val");
        await using (var db = await DbFactory.CreateDbContextAsync())
        {
            db.Weights.Add(new ModelWeights { Name = "det-a", Kind = "detector", Architecture = "res50nodown", Path = "/models/a.pth", CreatedAt = DateTime.UtcNow });
            await db.SaveChangesAsync();
        }
        var crossgen = await AddCrossgenAsync(dataset);

        var all = await Query.RunAsync(Measured(sort: "threshold", desc: false));
        Assert.Equal(["0.5", "best", "calibrated"], all.Rows.Select(r => r.Threshold));
        Assert.Equal([Mj, Sd4, Glide], all.Generators);   // the average row is not a generator column
        var best = all.Rows[1];
        Assert.True(best.IsBestOnTest);
        Assert.False(all.Rows[0].IsBestOnTest);
        Assert.Equal(0.70, best.Acc[Mj].Mean, 9);
        Assert.Equal(0.67, best.Acc[Mj].Low!.Value, 9);
        Assert.Equal(0.72, best.Acc[Mj].High!.Value, 9);
        Assert.Equal(0.86, best.MeanAcc!.Mean, 9);
        Assert.Equal("70.0 [67.0, 72.0]", LeaderboardExport.Cell(best.Acc[Mj]));

        var calibrated = await Query.RunAsync(new LeaderboardRequest(Threshold: "calibrated", Baselines: true));
        var row = Assert.Single(calibrated.Rows);   // the paper's rows are at 0.5, so they drop out
        Assert.Equal(0.65, row.Acc[Mj].Mean, 9);
        Assert.Equal(crossgen, row.RunId);
        await Assert.ThrowsAsync<FieldException>(() => Query.RunAsync(new LeaderboardRequest(Threshold: "0.7")));

        // An evaluate run of the same checkpoint, data and seed is the same measurement: one run per seed, the newest.
        var evaluate = (await LeaderboardSeed.AddAsync(DbFactory, [new("/models/a.pth", null, dataset, null, 0, Values(0.60, 0.98, 0.70))]))[0];
        var fixedRow = Assert.Single((await Query.RunAsync(new LeaderboardRequest(Threshold: "fixed", Baselines: false))).Rows);
        Assert.Equal([evaluate], fixedRow.RunIds);
        Assert.Equal(1, fixedRow.Acc[Mj].N);
    }

    [Fact]
    public async Task The_tag_filter_keeps_the_runs_carrying_the_tag()
    {
        var dataset = await LeaderboardSeed.AddDatasetAsync(DbFactory, "genimage-val");
        var tagged = await AddCrossgenAsync(dataset, RunTags.Format(["Ablation-T", "paper"]));
        await LeaderboardSeed.AddAsync(DbFactory, [new("/models/other.pth", null, dataset, null, 0, Values(0.5, 0.5, 0.5))]);

        Assert.Equal(",ablation-t,paper,", RunTags.Format(["paper", "Ablation-T", "paper"]));
        Assert.Throws<ArgumentException>(() => RunTags.Format(["has space"]));
        var page = await Query.RunAsync(new LeaderboardRequest(Tag: "ablation-t"));
        Assert.All(page.Rows, r => Assert.Equal([tagged], r.RunIds));
        Assert.Equal(3, page.Total);   // its three threshold modes, no paper rows
        Assert.Empty((await Query.RunAsync(new LeaderboardRequest(Tag: "ablation"))).Rows);   // whole tags only
        Assert.Equal(2, (await Query.RunAsync(new LeaderboardRequest(Threshold: "0.5", Baselines: false))).Total);
    }
}
