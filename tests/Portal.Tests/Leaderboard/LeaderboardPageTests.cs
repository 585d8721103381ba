using System.Text.Json;
using Bunit;
using Microsoft.AspNetCore.Components;
using Microsoft.Extensions.DependencyInjection;
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
/// The /leaderboard page: one table per benchmark (the paper's rows only beside GenImage-shaped data), the headline mean
/// first, filters in the URL, detectors named (and linked) by their zoo name, robustness summaries from sweeps.
/// </summary>
public class LeaderboardPageTests : PortalComponentTest
{
    static readonly string[] MiniGenerators = ["ldm_nearest", "ldm_transpose", "dcgan"];

    NavigationManager Nav => Services.GetRequiredService<NavigationManager>();

    /// <summary>A MiniGenImage-like dataset (generators that are not GenImage's) with one detector's evaluation, tagged "demo".</summary>
    async Task<(long Dataset, long Run)> SeedMiniAsync()
    {
        var mini = await LeaderboardSeed.AddDatasetAsync(DbFactory, "minigenimage");
        var runs = await LeaderboardSeed.AddAsync(DbFactory,
            [new("/models/mini.pth", null, mini, null, 0, MiniGenerators.ToDictionary(g => g, g => (0.81, 0.9)), Split: "test")]);
        await using var db = await DbFactory.CreateDbContextAsync();
        var run = db.Runs.Single(r => r.Id == runs[0]);
        run.Tags = RunTags.Format(["demo"]);
        await db.SaveChangesAsync();
        return (mini, runs[0]);
    }

    static string Table(IRenderedComponent<Portal.Components.Pages.Leaderboard> page, long dataset) =>
        page.Find($"#leaderboard-table-{dataset}").TextContent;

    [Fact]
    public async Task Shows_measured_and_paper_rows_and_links_the_exports_with_the_filters()
    {
        var (dataset, _) = await LeaderboardQueryTests.SeedAsync(DbFactory);
        var page = Render<Portal.Components.Pages.Leaderboard>();

        page.WaitForAssertion(() => Assert.Contains("det-a", Table(page, dataset)), TimeSpan.FromSeconds(10));
        Assert.Contains("62.0 ± 2.8", Table(page, dataset));
        Assert.Contains("77.0 ± 1.4", Table(page, dataset));
        Assert.Contains("Swin-T", Table(page, dataset));
        Assert.Equal(7, page.FindAll("tr.leaderboard-published").Count);
        foreach (var label in new[] { "MJ", "SD1.4", "GLIDE", "BigGAN" }) Assert.Contains(label, page.Find($"#leaderboard-table-{dataset} thead").TextContent);
        Assert.Equal("/api/leaderboard.csv", page.Find("#leaderboard-csv").GetAttribute("href"));

        page.Find("#leaderboard-perturbation").Change("jpeg:75");
        page.WaitForAssertion(() => Assert.Empty(page.FindAll("tr.leaderboard-published")), TimeSpan.FromSeconds(10));
        // det-a is there before and after the filter: wait until the table has reloaded without the clean-only b_v2.
        page.WaitForAssertion(() =>
        {
            var body = page.Find($"#leaderboard-table-{dataset} tbody").TextContent;
            Assert.Contains("det-a", body);
            Assert.DoesNotContain("b_v2", body);
        }, TimeSpan.FromSeconds(30));
        Assert.Equal("/api/leaderboard.tex?perturbation=jpeg%3A75", page.Find("#leaderboard-tex").GetAttribute("href"));
    }

    [Fact]
    public async Task Each_benchmark_has_its_own_table_and_the_papers_rows_stand_only_beside_genimage()
    {
        var (genimage, _) = await LeaderboardQueryTests.SeedAsync(DbFactory);
        var (mini, _) = await SeedMiniAsync();
        var page = Render<Portal.Components.Pages.Leaderboard>();

        page.WaitForAssertion(() => Assert.Equal(2, page.FindAll("[data-testid=leaderboard-benchmark]").Count), TimeSpan.FromSeconds(10));
        page.WaitForAssertion(() => Assert.Contains("mini.pth", Table(page, mini)), TimeSpan.FromSeconds(10));
        page.WaitForAssertion(() => Assert.Contains("Swin-T", Table(page, genimage)), TimeSpan.FromSeconds(10));
        // MiniGenImage: its own generators, no paper rows, no GenImage columns.
        var miniHead = page.Find($"#leaderboard-table-{mini} thead").TextContent;
        foreach (var g in MiniGenerators) Assert.Contains(g, miniHead);
        Assert.DoesNotContain("MJ", miniHead);
        Assert.Empty(page.FindAll($"#leaderboard-table-{mini} tr.leaderboard-published"));
        Assert.DoesNotContain("mini.pth", Table(page, genimage));
        Assert.Equal(7, page.FindAll($"#leaderboard-table-{genimage} tr.leaderboard-published").Count);
        Assert.Contains("minigenimage", page.Find($"#benchmark-{mini} .benchmark-title").TextContent);

        // The headline column comes right after the detector: rank, detector, mean, then the generators.
        var headers = page.FindAll($"#leaderboard-table-{mini} thead th").Select(th => th.TextContent.Trim()).ToList();
        Assert.Equal(["#", "Detector", "Mean ACC"], headers.Take(3));
        Assert.Equal(MiniGenerators.Order(StringComparer.Ordinal), headers.Skip(3).Take(3));
        var firstRow = page.FindAll($"#leaderboard-table-{mini} tbody tr")[0].QuerySelectorAll("td").Select(td => td.TextContent.Trim()).ToList();
        Assert.Equal("1", firstRow[0]);
        Assert.StartsWith("81.0", firstRow[2]);
    }

    [Fact]
    public async Task Filters_come_from_the_url_and_go_back_into_it_so_a_reload_keeps_them()
    {
        var (genimage, _) = await LeaderboardQueryTests.SeedAsync(DbFactory);
        var (mini, _) = await SeedMiniAsync();

        // The demo page's link: only the runs tagged "demo" (and so no paper rows: they carry no tag).
        Nav.NavigateTo("leaderboard?tag=demo");
        var page = Render<Portal.Components.Pages.Leaderboard>();
        page.WaitForAssertion(() => Assert.Contains("mini.pth", Table(page, mini)), TimeSpan.FromSeconds(10));
        Assert.Equal("demo", page.Find("#leaderboard-tag").GetAttribute("value"));
        Assert.Single(page.FindAll("[data-testid=leaderboard-benchmark]"));
        Assert.Empty(page.FindAll($"#leaderboard-table-{genimage}"));
        Assert.Equal("/api/leaderboard.csv?tag=demo", page.Find("#leaderboard-csv").GetAttribute("href"));

        // A change goes into the address bar, next to the filters already there.
        page.Find("#leaderboard-perturbation").Change("none");
        page.WaitForAssertion(() => Assert.Contains("perturbation=none", Nav.Uri));
        Assert.Contains("tag=demo", Nav.Uri);
        page.Find("#leaderboard-arch").Change("nothing-like-this");
        page.WaitForAssertion(() => Assert.NotNull(page.Find("#leaderboard-empty")), TimeSpan.FromSeconds(10));
        var uri = Nav.Uri;
        Assert.Contains("arch=nothing-like-this", uri);

        // A reload of that address: a new page with the same filters and the same (empty) result.
        var reloaded = Render<Portal.Components.Pages.Leaderboard>();
        reloaded.WaitForAssertion(() => Assert.NotNull(reloaded.Find("#leaderboard-empty")), TimeSpan.FromSeconds(10));
        Assert.Equal("demo", reloaded.Find("#leaderboard-tag").GetAttribute("value"));
        Assert.Equal("none", reloaded.Find("#leaderboard-perturbation").GetAttribute("value"));
        Assert.Equal("nothing-like-this", reloaded.Find("#leaderboard-arch").GetAttribute("value"));

        // Back to a plain address (a link, or the back button): every filter is cleared again.
        Nav.NavigateTo("leaderboard?ap=true&baselines=false");
        reloaded.WaitForAssertion(() => Assert.Equal(2, reloaded.FindAll("[data-testid=leaderboard-benchmark]").Count), TimeSpan.FromSeconds(10));
        reloaded.WaitForAssertion(() => Assert.Contains("AP MJ", reloaded.Find($"#leaderboard-table-{genimage} thead").TextContent), TimeSpan.FromSeconds(10));
        Assert.Empty(reloaded.FindAll("tr.leaderboard-published"));
    }

    [Fact]
    public async Task Detectors_are_named_by_their_zoo_entry_linked_to_it_and_renamed_with_it()
    {
        var (genimage, _) = await LeaderboardQueryTests.SeedAsync(DbFactory);
        long model;
        await using (var db = await DbFactory.CreateDbContextAsync())
            model = db.Weights.Single(w => w.Name == "det-a").Id;
        var page = Render<Portal.Components.Pages.Leaderboard>();
        page.WaitForAssertion(() => Assert.Contains("det-a", Table(page, genimage)), TimeSpan.FromSeconds(10));
        Assert.Contains(page.FindAll($"#leaderboard-table-{genimage} a"), a => a.GetAttribute("href") == $"models/{model}" && a.TextContent == "det-a");

        await Services.GetRequiredService<ModelZooService>().RenameAsync(model, "ResNet-50 (ours, 2 seeds)");
        var again = Render<Portal.Components.Pages.Leaderboard>();
        again.WaitForAssertion(() => Assert.Contains("ResNet-50 (ours, 2 seeds)", Table(again, genimage)), TimeSpan.FromSeconds(10));
        Assert.DoesNotContain("det-a", Table(again, genimage));
    }

    [Fact]
    public async Task Sweeps_give_a_robustness_summary_at_jpeg_q75_and_half_size()
    {
        var (genimage, _) = await LeaderboardQueryTests.SeedAsync(DbFactory);
        await AddSweepAsync(genimage, "/models/a.pth", "jpeg", "clean,90,75,50", [0.80, 0.70, 0.612, 0.50]);
        // Default resize severities: clean, 0.25, 0.5, ...: half size is point 2.
        await AddSweepAsync(genimage, "/models/a.pth", "resize", null, [0.80, 0.55, 0.734, 0.75, 0.79, 0.78, 0.77, 0.76]);
        await AddSweepAsync(genimage, "/models/b_v2.pth", "jpeg", "clean,70", [0.9, 0.65]);

        var page = Render<Portal.Components.Pages.Leaderboard>();
        page.WaitForAssertion(() => Assert.NotNull(page.Find($"#robustness-{genimage}")), TimeSpan.FromSeconds(10));
        var table = page.Find($"#robustness-{genimage}");
        var headers = table.QuerySelectorAll("thead th").Select(th => th.TextContent.Trim()).ToList();
        Assert.Equal(["Detector", "Clean", "JPEG q75", "JPEG q70", "resize ×0.5", "Sweeps"], headers);
        var rows = table.QuerySelectorAll("tbody tr").Select(tr => tr.QuerySelectorAll("td").Select(td => td.TextContent.Trim()).ToList()).ToList();
        var a = Assert.Single(rows, r => r[0] == "det-a");
        Assert.Equal(["80.0", "61.2", "—", "73.4"], a.Skip(1).Take(4));
        var b = Assert.Single(rows, r => r[0] == "b_v2.pth");
        Assert.Equal(["90.0", "—", "65.0", "—"], b.Skip(1).Take(4));
    }

    async Task AddSweepAsync(long dataset, string checkpoint, string axis, string? severities, double[] acc)
    {
        var id = Add(new Run
        {
            Kind = RobustnessSweepJob.KindName, Queue = JobQueues.DeviceCpu, Status = RunStatus.Succeeded, Progress = 1, CreatedAt = DateTime.UtcNow,
            FinishedAt = DateTime.UtcNow, CodeVersion = "test", ConfigHash = "sweep",
            ConfigJson = JsonSerializer.Serialize(new RobustnessSweepJob.Config(dataset, checkpoint, axis, severities), JobInputs.Json),
        });
        await using var db = await DbFactory.CreateDbContextAsync();
        db.RunMetrics.AddRange(acc.Select((v, i) => new RunMetric { RunId = id, Name = $"acc@{axis}", Step = i, Value = v, At = DateTime.UtcNow }));
        await db.SaveChangesAsync();
    }
}
