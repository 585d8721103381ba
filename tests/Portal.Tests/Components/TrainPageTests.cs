using System.Text.Json;
using Bunit;
using Microsoft.AspNetCore.Components;
using Microsoft.Extensions.DependencyInjection;
using Portal.Components.Pages;
using Portal.Experiments;
using Portal.Datasets;
using Portal.Zoo;
using Portal.Runs;
using Portal.Store;

namespace Portal.Tests.Components;

public sealed class TrainPageTests : PortalComponentTest
{
    static readonly JsonSerializerOptions Web = new(JsonSerializerDefaults.Web);

    long SeedReadyDataset(string name = "aligned-set") => Add(new Dataset
    {
        Name = name, Path = Path.Combine(DataDir, name), Layout = "real-fake", Status = DatasetStatus.Ready,
        CreatedAt = DateTime.UtcNow, ScannedAt = DateTime.UtcNow, Images = 8, ManifestPath = "datasets/1/manifest.json.gz",
        Subsets = [new DatasetSubset { Generator = name, Split = "train", Label = "real", Count = 4 }],
    });

    Run QueuedRun(long runId)
    {
        using var db = Db();
        return db.Runs.Single(r => r.Id == runId);
    }

    [Fact]
    public void A_synced_run_with_the_recipe_defaults_is_queued_on_the_device_queue_and_opens_its_run()
    {
        var datasetId = SeedReadyDataset();
        var cut = Render<Train>();
        Assert.True(cut.Find("#train-mode-synced").HasAttribute("checked"));
        cut.Find("#queue-training").Click();

        cut.WaitForAssertion(() => Assert.Single(Queue.Enqueued));
        Assert.True(Queue.Enqueued.TryPeek(out var queued));
        Assert.Equal(JobQueues.DeviceCpu, queued.Queue);
        var run = QueuedRun(queued.RunId);
        Assert.Equal(TrainingJob.KindName, run.Kind);
        Assert.Equal(17, run.Seed);
        var config = JsonSerializer.Deserialize<TrainingJob.Config>(run.ConfigJson, Web)!;
        Assert.Equal(new TrainingJob.Config(datasetId, null, "synced", 1000, 64, 1e-4, 17, 64, null, 96, "reference", null) with { Layers = config.Layers },
            config);
        Assert.Equal([3, 4, 6, 3], config.Layers!);
        Assert.EndsWith($"runs/{run.Id}", Services.GetRequiredService<NavigationManager>().Uri);
    }

    [Fact]
    public void Switching_to_unsynced_changes_only_the_mode()
    {
        SeedReadyDataset();
        var synced = Render<Train>();
        synced.Find("#train-preset-small").Click();
        synced.Find("#queue-training").Click();
        synced.WaitForAssertion(() => Assert.Single(Queue.Enqueued));

        var unsynced = Render<Train>();
        unsynced.Find("#train-preset-small").Click();
        unsynced.Find("#train-mode-unsynced").Change("unsynced");
        unsynced.WaitForAssertion(() => Assert.True(unsynced.Find("#train-mode-unsynced").HasAttribute("checked")));
        Assert.False(unsynced.Find("#train-mode-synced").HasAttribute("checked"));
        unsynced.Find("#queue-training").Click();
        unsynced.WaitForAssertion(() => Assert.Equal(2, Queue.Enqueued.Count));

        var runs = Queue.Enqueued.Select(q => QueuedRun(q.RunId)).ToList();
        var first = JsonSerializer.Deserialize<TrainingJob.Config>(runs[0].ConfigJson, Web)!;
        var second = JsonSerializer.Deserialize<TrainingJob.Config>(runs[1].ConfigJson, Web)!;
        Assert.Equal("synced", first.Mode);
        Assert.Equal("unsynced", second.Mode);
        // The small preset reached the config, and nothing but the mode differs.
        Assert.Equal((8, 32, 8, 5), (first.Width, first.Crop, first.PairsPerBatch, first.Epochs));
        Assert.Equal([1, 1, 1, 1], first.Layers!);
        Assert.Equal(runs[0].ConfigJson.Replace("\"mode\":\"synced\"", "\"mode\":\"unsynced\""), runs[1].ConfigJson);
        Assert.NotEqual(runs[0].ConfigHash, runs[1].ConfigHash);
    }

    [Fact]
    public void Invalid_epochs_are_reported_on_their_field_and_nothing_is_queued()
    {
        SeedReadyDataset();
        var cut = Render<Train>();
        cut.Find("#train-epochs").Change("0");
        cut.Find("#queue-training").Click();

        cut.WaitForAssertion(() => Assert.Contains("MaxEpochs must be at least 1", cut.Markup));
        // The message sits in the epochs field's own helper line, not in the general alert.
        var field = cut.Find("#train-epochs").Closest(".mud-input-control")!;
        Assert.Contains("MaxEpochs must be at least 1", field.TextContent);
        Assert.Empty(cut.FindAll("[data-testid=train-error]"));
        Assert.Empty(Queue.Enqueued);
    }

    [Fact]
    public void Malformed_layers_are_reported_on_their_field_before_queueing()
    {
        SeedReadyDataset();
        var cut = Render<Train>();
        cut.Find("#train-layers").Change("3,4,6");
        cut.Find("#queue-training").Click();

        cut.WaitForAssertion(() => Assert.Contains("four positive integers", cut.Find("#train-layers").Closest(".mud-input-control")!.TextContent));
        Assert.Empty(Queue.Enqueued);
    }

    [Fact]
    public void Without_a_ready_dataset_the_training_dataset_field_says_so()
    {
        var cut = Render<Train>();
        cut.Find("#queue-training").Click();
        cut.WaitForAssertion(() => Assert.Contains("register one first", cut.Markup));
        Assert.Empty(Queue.Enqueued);
    }
}
