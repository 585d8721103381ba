using Bunit;
using Portal.Components.Pages;
using Portal.Runs;
using Portal.Experiments;
using Portal.Datasets;
using Portal.Zoo;
using Portal.Store;
using Portal.Tests.Components;

namespace Portal.Tests.Demo;

/// <summary>The home page's MiniGenImage card: the build's progress, then the dataset's counts per generator and split.</summary>
public sealed class HomeMiniGenImageCardTests : PortalComponentTest
{
    [Fact]
    public void A_running_build_shows_its_progress_and_links_the_run()
    {
        var run = NewRun(RunStatus.Running, 0.4);
        run.Kind = MiniGenImageBuildJob.KindName;
        run.Phase = "dcgan train/fake 3/4";
        Add(run);

        var cut = Render<Home>();

        var card = cut.Find("[data-testid=home-minigenimage]");
        Assert.Equal("0.4", card.QuerySelector("[data-testid=run-progress]")!.GetAttribute("data-progress"));
        Assert.Contains("dcgan train/fake 3/4", card.TextContent);
        Assert.Equal($"runs/{run.Id}", cut.Find("[data-testid=minigenimage-run-link]").GetAttribute("href"));
        Assert.Empty(cut.FindAll("[data-testid=minigenimage-counts]"));
    }

    [Fact]
    public void A_built_dataset_shows_its_counts_per_generator_and_split()
    {
        var dataset = new Dataset
        {
            Name = "minigenimage", Path = DataDir, Status = DatasetStatus.Ready, CreatedAt = DateTime.UtcNow, Images = 24, RegistrationRunId = 7,
            LineageJson = """{"kind": "minigenimage", "buildRunId": 7}""",
        };
        foreach (var g in new[] { "ldm_nearest", "dcgan" })
            foreach (var (split, n) in new[] { ("train", 4), ("val", 2), ("test", 0) })
                foreach (var label in new[] { "fake", "real" })
                    if (n > 0) dataset.Subsets.Add(new DatasetSubset { Generator = g, Split = split, Label = label, Count = label == "fake" ? n : n + 1 });
        Add(dataset);

        var cut = Render<Home>();

        Assert.Equal("ready", cut.Find("[data-testid=minigenimage-status]").TextContent.Trim());
        var rows = cut.FindAll("[data-testid=minigenimage-counts] tbody tr");
        Assert.Equal(["dcgan", "ldm_nearest"], rows.Select(r => r.GetAttribute("data-generator")));
        Assert.Equal(["dcgan", "4 / 5", "2 / 3", "0 / 0"], rows[0].QuerySelectorAll("td").Select(td => td.TextContent.Trim()));
        Assert.Equal($"datasets/{dataset.Id}", cut.Find("[data-testid=minigenimage-link]").GetAttribute("href"));
    }

    [Fact]
    public void A_users_dataset_of_the_same_name_is_not_shown_as_minigenimage()
    {
        Add(new Dataset { Name = "minigenimage", Path = DataDir, Status = DatasetStatus.Ready, CreatedAt = DateTime.UtcNow, Images = 3 });

        var cut = Render<Home>();

        Assert.Empty(cut.FindAll("[data-testid=minigenimage-counts]"));
        Assert.NotNull(cut.Find("[data-testid=minigenimage-missing]"));
    }
}
