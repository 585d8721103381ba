using System.Text.Json;
using Bunit;
using Forensics.ML.Models.Clip;
using Forensics.ML.Runtime;
using Forensics.ML.Weights;
using Portal.Components.Pages;
using Portal.Experiments;
using Portal.Datasets;
using Portal.Zoo;
using Portal.Runs;
using Portal.Store;
using Portal.Tests.Components;
using static TorchSharp.torch;

namespace Portal.Tests.Jobs;

/// <summary>The Train page's LaRE² switch: the LaRE run of the chosen dataset and the zoo's CLIP tower go into a lare2 config.</summary>
public sealed class Lare2TrainPageTests : PortalComponentTest
{
    long ReadyDataset(string name) => Add(new Dataset
    {
        Name = name, Path = Path.Combine(DataDir, name), Layout = "real-fake", Status = DatasetStatus.Ready,
        CreatedAt = DateTime.UtcNow, ScannedAt = DateTime.UtcNow, Images = 8, ManifestPath = "datasets/1/manifest.json.gz",
        Subsets = [new DatasetSubset { Generator = name, Split = "train", Label = "real", Count = 4 }],
    });

    long LareRun(long datasetId)
    {
        var run = NewRun(RunStatus.Succeeded);
        (run.Kind, run.Queue, run.ConfigJson, run.FinishedAt) = (LareExtractionJob.KindName, JobQueues.Device, $"{{\"datasetId\":{datasetId},\"sd\":\"sd\"}}", DateTime.UtcNow);
        var id = Add(run);
        Directory.CreateDirectory(Path.Combine(DataDir, "lare", id.ToString()));
        return id;
    }

    long ClipTower()
    {
        TorchRuntime.EnsureLoaded();
        var path = Path.Combine(DataDir, "clip.safetensors");
        using (var tower = new ModifiedResNet(new ModifiedResNetOptions { Layers = [1, 1, 1, 1], Width = 8, Heads = 4, OutputDim = 32, InputResolution = 32 }))
            SafeTensors.Save(path, tower.state_dict().Select(p => (ClipVisual.Prefix + p.Key, p.Value)));
        return Add(new ModelWeights { Name = "tiny-clip", Kind = ModelZooService.Clip, Architecture = "clip-rn", Path = path, CreatedAt = DateTime.UtcNow });
    }

    [Fact]
    public async Task The_lare2_switch_queues_the_LaRE_run_of_the_chosen_dataset_and_the_zoo_tower_with_LaRE2_defaults()
    {
        var first = ReadyDataset("a-set");
        var second = ReadyDataset("b-set");
        LareRun(first);
        var secondMaps = LareRun(second);
        var tower = ClipTower();
        var cut = Render<Train>();
        cut.Find("#train-arch-lare2").Change("lare2");
        cut.WaitForAssertion(() => Assert.True(cut.Find("#train-arch-lare2").HasAttribute("checked")));
        // res50nodown's shape settings are gone; LaRE²'s fields are there.
        Assert.Empty(cut.FindAll("#train-width"));
        Assert.Empty(cut.FindAll("#train-mode-synced"));
        Assert.NotEmpty(cut.FindAll("#train-lare-run"));
        Assert.NotEmpty(cut.FindAll("#train-clip"));

        // The training dataset is the second one: its own LaRE run is taken, not the first dataset's.
        var datasetSelect = cut.FindComponents<MudBlazor.MudSelect<long?>>().Single().Instance;
        await cut.InvokeAsync(() => datasetSelect.ValueChanged.InvokeAsync(second));
        cut.Find("#queue-training").Click();
        cut.WaitForAssertion(() => Assert.Single(Queue.Enqueued));
        Assert.True(Queue.Enqueued.TryPeek(out var queued));
        using var db = Db();
        var run = db.Runs.Single(r => r.Id == queued.RunId);
        Assert.Equal(TrainingJob.KindName, run.Kind);
        var config = JsonSerializer.Deserialize<TrainingJob.Config>(run.ConfigJson, JobInputs.Json)!;
        Assert.Equal(("lare2", second, secondMaps, tower), (config.Arch, config.TrainDatasetId, config.LareRunId, config.InitWeightsId));
        Assert.Equal((100, 24, "none"), (config.Epochs, config.PairsPerBatch, config.Ablation));
        using var doc = JsonDocument.Parse(run.ConfigJson);
        foreach (var field in new[] { "mode", "width", "layers", "crop", "augment" })
            Assert.False(doc.RootElement.TryGetProperty(field, out _), $"{field} was sent with lare2: {run.ConfigJson}");
    }

    [Fact]
    public void A_lare2_config_without_a_LaRE_run_shows_the_error_on_its_field()
    {
        ReadyDataset("a-set");
        ClipTower();
        var cut = Render<Train>();
        cut.Find("#train-arch-lare2").Change("lare2");
        cut.WaitForAssertion(() => Assert.NotEmpty(cut.FindAll("#train-lare-run")));
        cut.Find("#queue-training").Click();
        cut.WaitForAssertion(() => Assert.Contains("needs lareRunId", cut.Markup));
        Assert.Empty(Queue.Enqueued);
    }

    [Fact]
    public void The_forms_typed_configs_name_only_fields_the_train_job_reads()
    {
        // The LaRE² and TorchScript forms post these records: a field the job's Config does not have would be ignored silently.
        var job = typeof(TrainingJob.Config).GetProperties().Select(p => p.Name).ToHashSet();
        foreach (var form in new[] { typeof(TrainingJob.Lare2Config), typeof(TrainingJob.TorchScriptConfig) })
            foreach (var property in form.GetProperties())
                Assert.True(job.Contains(property.Name), $"{form.Name}.{property.Name} is not a field of TrainingJob.Config");
        var lare2 = JsonSerializer.Serialize(new TrainingJob.Lare2Config(1, null, "lare2", 2, null, null, 3, "none", 1, 1, 1e-4, 17), JobInputs.Json);
        using var doc = JsonDocument.Parse(lare2);
        foreach (var field in new[] { "mode", "width", "layers", "crop", "augment", "augmentation" })
            Assert.False(doc.RootElement.TryGetProperty(field, out _), $"{field} is in the LaRE² form's config: {lare2}");
    }
}
