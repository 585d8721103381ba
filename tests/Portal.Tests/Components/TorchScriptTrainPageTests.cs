using System.Text.Json;
using Bunit;
using Portal.Components.Pages;
using Portal.Experiments;
using Portal.Runs;
using Portal.Zoo;
using Portal.Store;

namespace Portal.Tests.Components;

/// <summary>The Train page's TorchScript switch: a torchscript detector of the zoo goes into the config with res50nodown's recipe but not its network shape.</summary>
public sealed class TorchScriptTrainPageTests : PortalComponentTest
{
    static string Fixture(params string[] parts) => Path.Combine([AppContext.BaseDirectory, "fixtures", "detectors", .. parts]);

    long ReadyDataset() => Add(new Dataset
    {
        Name = "aligned-set", Path = Path.Combine(DataDir, "aligned-set"), Layout = "real-fake", Status = DatasetStatus.Ready,
        CreatedAt = DateTime.UtcNow, ScannedAt = DateTime.UtcNow, Images = 8, ManifestPath = "datasets/1/manifest.json.gz",
        Subsets = [new DatasetSubset { Generator = "aligned-set", Split = "train", Label = "real", Count = 4 }],
    });

    long ZooDetector()
    {
        var path = Path.Combine(DataDir, "mine.pt");
        File.Copy(Fixture("trainable_scripted.pt"), path, overwrite: true);
        File.Copy(Fixture("trainable_scripted.card.json"), Path.Combine(DataDir, "mine.card.json"), overwrite: true);
        return Add(new ModelWeights { Name = "mine", Kind = ModelZooService.Detector, Architecture = "torchscript", Format = "torchscript", Path = path, CreatedAt = DateTime.UtcNow });
    }

    [Fact]
    public void The_torchscript_switch_queues_the_zoo_detector_with_the_recipe_and_without_a_network_shape()
    {
        var datasetId = ReadyDataset();
        var detector = ZooDetector();
        var cut = Render<Train>();
        cut.Find("#train-arch-torchscript").Change("torchscript");
        cut.WaitForAssertion(() => Assert.True(cut.Find("#train-arch-torchscript").HasAttribute("checked")));
        Assert.Empty(cut.FindAll("#train-width"));
        Assert.Empty(cut.FindAll("#train-layers"));
        Assert.NotEmpty(cut.FindAll("#train-mode-synced"));
        Assert.NotEmpty(cut.FindAll("#train-torchscript"));
        Assert.NotEmpty(cut.FindAll("#train-card"));
        cut.Find("#train-preset-small").Click();
        cut.Find("#queue-training").Click();

        cut.WaitForAssertion(() => Assert.Single(Queue.Enqueued), TimeSpan.FromSeconds(30));
        Assert.True(Queue.Enqueued.TryPeek(out var queued));
        using var db = Db();
        var run = db.Runs.Single(r => r.Id == queued.RunId);
        var config = JsonSerializer.Deserialize<TrainingJob.Config>(run.ConfigJson, JobInputs.Json)!;
        Assert.Equal(("torchscript", datasetId, detector, "synced", 32, 8, 5), (config.Arch, config.TrainDatasetId, config.InitWeightsId, config.Mode, config.Crop, config.PairsPerBatch, config.Epochs));
        using var doc = JsonDocument.Parse(run.ConfigJson);
        foreach (var field in new[] { "width", "layers" })
            Assert.False(doc.RootElement.TryGetProperty(field, out _), $"{field} was sent with torchscript: {run.ConfigJson}");
    }

    [Fact]
    public void A_module_the_trainer_refuses_shows_why_on_its_field_and_nothing_is_queued()
    {
        ReadyDataset();
        File.Copy(Fixture("trainable_frozen.pt"), Path.Combine(DataDir, "frozen.pt"), overwrite: true);
        var cut = Render<Train>();
        cut.Find("#train-arch-torchscript").Change("torchscript");
        cut.WaitForAssertion(() => Assert.NotEmpty(cut.FindAll("#train-torchscript-path")));
        cut.Find("#train-torchscript-path").Change("frozen.pt");
        cut.Find("#queue-training").Click();
        cut.WaitForAssertion(() => Assert.Contains("no trainable parameters", cut.Markup), TimeSpan.FromSeconds(30));
        Assert.Empty(Queue.Enqueued);
    }
}
