using System.Text.Json.Nodes;
using Bunit;
using Microsoft.Extensions.DependencyInjection;
using Portal.Components.Pages;
using Portal.Experiments;
using Portal.Datasets;
using Portal.Zoo;
using Portal.Runs;
using Portal.Store;
using Portal.Tests.Components;

namespace Portal.Tests.Jobs;

/// <summary>The Experiments page keeps a history of grids (cells, status, best cell) and draws a grid's metric as a heatmap over its axes.</summary>
public sealed class ExperimentHistoryTests : PortalComponentTest
{
    [Fact]
    public async Task Past_grids_are_listed_with_their_status_and_open_as_a_heatmap_of_mean_and_sd()
    {
        var datasetId = Add(new Dataset
        {
            Name = "eval-set", Path = Path.Combine(DataDir, "eval-set"), Layout = "real-fake", Status = DatasetStatus.Ready,
            CreatedAt = DateTime.UtcNow, ScannedAt = DateTime.UtcNow, Images = 8, ManifestPath = "datasets/1/manifest.json.gz",
            Subsets = [new DatasetSubset { Generator = "eval-set", Split = "all", Label = "real", Count = 4 }],
        });
        File.WriteAllBytes(Path.Combine(DataDir, "detector.pth"), [1, 2, 3]);
        var experiments = Services.GetRequiredService<ExperimentService>();
        var grid = await experiments.QueueAsync(new ExperimentRequest(EvaluationJob.KindName,
            new JsonObject { ["datasetId"] = datasetId, ["checkpoint"] = "detector.pth" },
            new Dictionary<string, JsonArray> { ["perturbation"] = ["none", "jpeg:75"], ["batching"] = ["single", "size"] }, [0, 1]));
        Assert.Equal(8, grid.Cells.Count);

        // Every run succeeds but one; ACC depends on the perturbation and the seed.
        await using (var db = await DbFactory.CreateDbContextAsync())
        {
            foreach (var cell in grid.Cells)
            {
                var run = db.Runs.Single(r => r.Id == cell.RunId);
                var jpeg = cell.Config["perturbation"]!.GetValue<string>() == "jpeg:75";
                var single = cell.Config["batching"]!.GetValue<string>() == "single";
                if (!jpeg && !single && cell.Seed == 1) { run.Status = RunStatus.Failed; continue; }
                run.Status = RunStatus.Succeeded;
                db.RunMetrics.Add(new RunMetric { RunId = run.Id, Name = "acc", Step = 0, Value = (jpeg ? 0.6 : 0.9) + 0.02 * cell.Seed!.Value, At = DateTime.UtcNow });
            }
            await db.SaveChangesAsync();
        }

        var page = Render<Portal.Components.Pages.Experiments>();
        page.WaitForAssertion(() => Assert.Single(page.FindAll("[data-testid=history-row]")));
        var row = page.Find("[data-testid=history-row]");
        Assert.Equal(grid.Id, row.GetAttribute("data-experiment"));
        Assert.Equal("1 failed, 7 succeeded", row.QuerySelector("[data-testid=history-status]")!.TextContent.Trim());
        Assert.StartsWith("none, single: 91.0 ± 1.4 (acc)", row.QuerySelector("[data-testid=history-best]")!.TextContent.Trim());

        page.Find("[data-testid=history-open]").Click();
        page.WaitForAssertion(() => Assert.NotNull(page.Find("[data-testid=experiment-heatmap]")));
        Assert.Equal(["none", "jpeg:75"], page.FindAll("[data-testid=heatmap-row]").Select(r => r.TextContent));
        Assert.Equal(["single", "size"], page.FindAll("[data-testid=heatmap-column]").Select(c => c.TextContent));
        string Cell(string r, string c) => page.Find($"[data-testid=heatmap-cell][data-row='{r}'][data-column='{c}']").TextContent.Trim();
        Assert.Equal("91.0 ± 1.4", Cell("none", "single"));
        Assert.Equal("90.0", Cell("none", "size"));   // one seed succeeded: no sd
        Assert.Equal("61.0 ± 1.4", Cell("jpeg:75", "size"));
        // Higher is darker.
        Assert.NotEqual(page.Find("[data-testid=heatmap-cell][data-row='none'][data-column='single']").GetAttribute("style"),
            page.Find("[data-testid=heatmap-cell][data-row='jpeg:75'][data-column='single']").GetAttribute("style"));
    }
}
