using Bunit;
using Microsoft.Extensions.DependencyInjection;
using Portal.Components.Pages;
using Portal.Experiments;
using Portal.Datasets;
using Portal.Zoo;
using Portal.Runs;
using Portal.Store;

namespace Portal.Tests.Components;

public sealed class EvaluatePageTests : PortalComponentTest
{

    long SeedReadyDataset() => Add(new Dataset
    {
        Name = "eval-set", Path = Path.Combine(DataDir, "eval-set"), Layout = "real-fake", Status = DatasetStatus.Ready,
        CreatedAt = DateTime.UtcNow, ScannedAt = DateTime.UtcNow, Images = 8, ManifestPath = "datasets/1/manifest.json.gz",
        Subsets = [new DatasetSubset { Generator = "eval-set", Split = "all", Label = "real", Count = 4 }],
    });

    [Fact]
    public void A_missing_checkpoint_is_reported_on_its_field_and_nothing_is_queued()
    {
        SeedReadyDataset();
        var cut = Render<Evaluate>();
        cut.Find("#eval-checkpoint").Change("nowhere.pth");
        cut.Find("#queue-evaluation").Click();
        cut.WaitForAssertion(() => Assert.Contains("does not exist", cut.Markup));
        Assert.Empty(Queue.Enqueued);
    }

    [Fact]
    public void A_valid_evaluation_is_queued_on_the_device_queue_and_opens_its_run()
    {
        SeedReadyDataset();
        File.WriteAllBytes(Path.Combine(DataDir, "detector.pth"), [1, 2, 3]);
        var cut = Render<Evaluate>();
        cut.Find("#eval-checkpoint").Change("detector.pth");
        cut.Find("#eval-perturbation").Change("jpeg:75");
        cut.Find("#queue-evaluation").Click();

        cut.WaitForAssertion(() => Assert.Single(Queue.Enqueued));
        Assert.True(Queue.Enqueued.TryPeek(out var queued));
        Assert.Equal(JobQueues.DeviceCpu, queued.Queue);
        using var db = Db();
        var run = db.Runs.Single(r => r.Id == queued.RunId);
        Assert.Equal("evaluate", run.Kind);
        Assert.Contains("\"perturbation\":\"jpeg:75\"", run.ConfigJson);
        Assert.EndsWith($"runs/{run.Id}", Services.GetRequiredService<Microsoft.AspNetCore.Components.NavigationManager>().Uri);
    }

    [Fact]
    public void An_unknown_perturbation_is_reported_on_its_field()
    {
        SeedReadyDataset();
        File.WriteAllBytes(Path.Combine(DataDir, "detector.pth"), [1, 2, 3]);
        var cut = Render<Evaluate>();
        cut.Find("#eval-checkpoint").Change("detector.pth");
        cut.Find("#eval-perturbation").Change("sharpen:3");
        cut.Find("#queue-evaluation").Click();
        cut.WaitForAssertion(() => Assert.Contains("sharpen", cut.Markup));
        Assert.Empty(Queue.Enqueued);
    }
}
