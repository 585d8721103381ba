using Bunit;
using Portal.Components.Pages;
using Portal.Store;
using Portal.Tests.Components;

namespace Portal.Tests.Jobs;

/// <summary>The /experiments page queues a grid through <see cref="Portal.Jobs.ExperimentService"/> and shows its cells, reused ones marked.</summary>
public sealed class ExperimentPageTests : PortalComponentTest
{
    long SeedReadyDataset() => Add(new Dataset
    {
        Name = "eval-set", Path = Path.Combine(DataDir, "eval-set"), Layout = "real-fake", Status = DatasetStatus.Ready,
        CreatedAt = DateTime.UtcNow, ScannedAt = DateTime.UtcNow, Images = 8, ManifestPath = "datasets/1/manifest.json.gz",
        Subsets = [new DatasetSubset { Generator = "eval-set", Split = "all", Label = "real", Count = 4 }],
    });

    [Fact]
    public void A_grid_queued_twice_from_the_page_queues_its_cells_once_and_marks_them_reused()
    {
        var datasetId = SeedReadyDataset();
        File.WriteAllBytes(Path.Combine(DataDir, "detector.pth"), [1, 2, 3]);
        var cut = Render<Portal.Components.Pages.Experiments>();
        cut.Find("#experiment-config").Change($"{{\"datasetId\": {datasetId}, \"checkpoint\": \"detector.pth\"}}");
        cut.Find("#axis-field-0").Change("perturbation");
        cut.Find("#axis-values-0").Change("none, jpeg:75");
        cut.Find("#experiment-seeds").Change("0, 1");
        cut.Find("#queue-experiment").Click();

        cut.WaitForAssertion(() => Assert.Equal(4, Queue.Enqueued.Count));
        cut.WaitForAssertion(() => Assert.Equal(4, cut.FindAll("[data-testid=experiment-cells] tbody tr").Count));
        Assert.Contains("4 cell(s), 0 reused", cut.Markup);
        Assert.Equal(2, cut.FindAll("[data-testid=experiment-summary] tbody tr").Count);

        cut.Find("#queue-experiment").Click();
        cut.WaitForAssertion(() => Assert.Contains("4 reused", cut.Markup));
        Assert.Equal(4, Queue.Enqueued.Count);
        using var db = Db();
        Assert.Equal(4, db.Runs.Count(r => r.Kind == "evaluate"));
    }

    [Fact]
    public void An_axis_that_is_not_a_config_field_is_reported_on_that_axis_and_nothing_is_queued()
    {
        var datasetId = SeedReadyDataset();
        var cut = Render<Portal.Components.Pages.Experiments>();
        cut.Find("#experiment-config").Change($"{{\"datasetId\": {datasetId}, \"checkpoint\": \"detector.pth\"}}");
        cut.Find("#axis-field-0").Change("perturbaton");
        cut.Find("#queue-experiment").Click();
        cut.WaitForAssertion(() => Assert.Contains("&#x27;perturbaton&#x27; is not a field", cut.Markup.Replace("'", "&#x27;")));
        Assert.Empty(Queue.Enqueued);
    }
}
