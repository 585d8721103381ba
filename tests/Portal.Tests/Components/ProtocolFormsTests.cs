using System.Text.Json;
using Bunit;
using Microsoft.AspNetCore.Components;
using Microsoft.Extensions.DependencyInjection;
using MudBlazor;
using Portal.Components.Pages;
using Portal.Experiments;
using Portal.Datasets;
using Portal.Zoo;
using Portal.Runs;
using Portal.Store;

namespace Portal.Tests.Components;

/// <summary>The cross-generator (/crossgen) and robustness sweep (/sweep) forms: rendering, field errors, queued configs.</summary>
public sealed class ProtocolFormsTests : ProtocolComponentTest
{
    static readonly JsonSerializerOptions Web = new(JsonSerializerDefaults.Web);

    long SeedReadyDataset(string name) => Add(new Dataset
    {
        Name = name, Path = Path.Combine(DataDir, name), Layout = "genimage", Status = DatasetStatus.Ready,
        CreatedAt = DateTime.UtcNow, ScannedAt = DateTime.UtcNow, Images = 8, ManifestPath = "datasets/1/manifest.json.gz",
        // Both splits: the jobs check at queueing time that the test and validation splits exist.
        Subsets = [new DatasetSubset { Generator = "sdv4", Split = "val", Label = "real", Count = 4 }, new DatasetSubset { Generator = "sdv4", Split = "train", Label = "real", Count = 4 }],
    });

    string Checkpoint(string name = "detector.pth")
    {
        File.WriteAllBytes(Path.Combine(DataDir, name), [1, 2, 3]);
        return name;
    }

    Run QueuedRun()
    {
        Assert.True(Queue.Enqueued.TryPeek(out var queued));
        Assert.Equal(JobQueues.DeviceCpu, queued.Queue);
        using var db = Db();
        return db.Runs.Single(r => r.Id == queued.RunId);
    }

    /// <summary>The text of the MudBlazor input control around the input <paramref name="selector"/> (label, value, helper or error).</summary>
    static string FieldText(IRenderedComponent<CrossGen> cut, string selector) => cut.Find(selector).Closest(".mud-input-control")!.TextContent;
    static string FieldText(IRenderedComponent<Sweep> cut, string selector) => cut.Find(selector).Closest(".mud-input-control")!.TextContent;

    [Fact]
    public void The_crossgen_form_lists_ready_datasets_zoo_detectors_and_the_three_threshold_modes()
    {
        SeedReadyDataset("genimage-val");
        Add(new ModelWeights
        {
            Name = "res50-aligned", Kind = ModelZooService.Detector, Architecture = "res50nodown", Path = Path.Combine(DataDir, "zoo.pth"),
            CreatedAt = DateTime.UtcNow,
        });
        Add(new ModelWeights { Name = "sd-vae", Kind = ModelZooService.Autoencoder, Path = DataDir, CreatedAt = DateTime.UtcNow });
        var cut = Render<CrossGen>();

        Assert.Contains("genimage-val", cut.Find("[data-testid=crossgen-form]").TextContent);
        var modes = cut.Find("[data-testid=crossgen-modes]").TextContent;
        Assert.Contains("fixed (0.5)", modes);
        Assert.Contains("best on test", modes);
        Assert.Contains("calibrated on a validation split", modes);
        Assert.Equal("val", cut.Find("#crossgen-split").GetAttribute("value"));
        Assert.Equal("unknown", cut.Find("#crossgen-checkpoint-chosen-on").GetAttribute("value"));
        // The validation dataset only matters for calibrated thresholds, so it appears with that mode.
        Assert.Empty(cut.FindAll("#crossgen-val-split"));
        // The zoo's detectors are offered, its other weights are not.
        var zoo = cut.FindComponents<MudSelect<long>>().Single(s => s.Instance.Label == "Detector");
        var zooItems = zoo.FindComponents<MudSelectItem<long>>().Select(i => i.Instance.Value).ToList();
        Assert.Equal(2, zooItems.Count);
    }

    [Fact]
    public void A_missing_checkpoint_is_shown_on_the_checkpoint_field_of_the_crossgen_form_and_nothing_is_queued()
    {
        SeedReadyDataset("genimage-val");
        var cut = Render<CrossGen>();
        cut.Find("#crossgen-checkpoint").Change("nowhere.pth");
        cut.Find("#queue-crossgen").Click();

        cut.WaitForAssertion(() => Assert.Contains("'nowhere.pth' does not exist", FieldText(cut, "#crossgen-checkpoint")));
        Assert.DoesNotContain("does not exist", FieldText(cut, "#crossgen-split"));
        Assert.Empty(cut.FindAll("[data-testid=crossgen-error]"));
        Assert.Empty(Queue.Enqueued);
    }

    [Fact]
    public void A_crossgen_run_with_all_modes_and_a_validation_dataset_is_queued_with_that_config_and_opens_its_run()
    {
        var test = SeedReadyDataset("genimage-val");
        var val = SeedReadyDataset("wukong-train");
        var checkpoint = Checkpoint();
        var cut = Render<CrossGen>();
        cut.Find("#crossgen-checkpoint").Change(checkpoint);
        cut.Find("#crossgen-checkpoint-chosen-on").Change("val");
        cut.Find("#crossgen-mode-best").Change(true);
        cut.Find("#crossgen-mode-calibrated").Change(true);
        var valSelect = cut.FindComponents<MudSelect<long>>().Single(s => s.Instance.Label!.StartsWith("Validation dataset"));
        cut.InvokeAsync(() => valSelect.Instance.ValueChanged.InvokeAsync(val));
        cut.Find("#crossgen-val-split").Change("train");
        cut.Find("#crossgen-bootstrap").Change("50");
        cut.Find("#queue-crossgen").Click();

        cut.WaitForAssertion(() => Assert.Single(Queue.Enqueued));
        var run = QueuedRun();
        Assert.Equal(CrossGeneratorJob.KindName, run.Kind);
        var config = JsonSerializer.Deserialize<CrossGeneratorJob.Config>(run.ConfigJson, Web)!;
        Assert.Equal(new CrossGeneratorJob.Config(test, checkpoint, "res50nodown", "val", "fixed,best,calibrated", val, "train", "val", 0, 50), config);
        Assert.EndsWith($"runs/{run.Id}", Services.GetRequiredService<NavigationManager>().Uri);
    }

    [Fact]
    public void A_crossgen_run_without_calibration_queues_no_validation_data_and_no_mode_is_refused_on_the_modes()
    {
        var test = SeedReadyDataset("genimage-val");
        var cut = Render<CrossGen>();
        cut.Find("#crossgen-checkpoint").Change(Checkpoint());
        cut.Find("#crossgen-mode-fixed").Change(false);
        cut.Find("#queue-crossgen").Click();
        cut.WaitForAssertion(() => Assert.Contains("at least one threshold mode", cut.Find("[data-testid=crossgen-modes-error]").TextContent));
        Assert.Empty(Queue.Enqueued);

        cut.Find("#crossgen-mode-best").Change(true);
        cut.Find("#crossgen-split").Change("");
        cut.Find("#queue-crossgen").Click();
        cut.WaitForAssertion(() => Assert.Single(Queue.Enqueued));
        using var json = JsonDocument.Parse(QueuedRun().ConfigJson);
        var c = json.RootElement;
        Assert.Equal(test, c.GetProperty("datasetId").GetInt64());
        Assert.Equal("best", c.GetProperty("modes").GetString());
        Assert.Equal(JsonValueKind.Null, c.GetProperty("split").ValueKind);
        Assert.Equal(JsonValueKind.Null, c.GetProperty("valDatasetId").ValueKind);
        Assert.Equal("unknown", c.GetProperty("checkpointChosenOn").GetString());
    }

    [Fact]
    public void A_zoo_detector_brings_its_file_and_architecture_into_the_queued_sweep()
    {
        var dataset = SeedReadyDataset("genimage-val");
        var zooFile = Path.Combine(DataDir, Checkpoint("zoo-resnet.pth"));
        var zooId = Add(new ModelWeights
        {
            Name = "resnet-zoo", Kind = ModelZooService.Detector, Architecture = "resnet50", Path = zooFile, CreatedAt = DateTime.UtcNow,
        });
        var cut = Render<Sweep>();
        var zoo = cut.FindComponents<MudSelect<long>>().Single(s => s.Instance.Label == "Detector");
        Assert.Equal("a checkpoint file (path below)", zoo.Instance.ToStringFunc!(0));
        cut.InvokeAsync(() => zoo.Instance.ValueChanged.InvokeAsync(zooId));
        cut.WaitForAssertion(() => Assert.True(cut.Find("#sweep-checkpoint").HasAttribute("disabled")));
        Assert.Equal(zooFile, cut.Find("#sweep-checkpoint").GetAttribute("value"));
        cut.Find("#queue-sweep").Click();

        cut.WaitForAssertion(() => Assert.Single(Queue.Enqueued));
        var config = JsonSerializer.Deserialize<RobustnessSweepJob.Config>(QueuedRun().ConfigJson, Web)!;
        Assert.Equal(dataset, config.DatasetId);
        Assert.Equal(zooFile, config.Checkpoint);
        Assert.Equal("resnet50", config.Arch);
        Assert.Equal("clean,100,90,80,70,60,50,40,30", config.Severities);
    }

    [Fact]
    public void The_sweep_form_shows_each_axis_defaults_as_editable_severities()
    {
        SeedReadyDataset("genimage-val");
        var cut = Render<Sweep>();
        Assert.Equal("clean,100,90,80,70,60,50,40,30", cut.Find("#sweep-severities").GetAttribute("value"));
        Assert.Contains("Defaults for jpeg: clean,100,90,80,70,60,50,40,30", FieldText(cut, "#sweep-severities"));

        var axis = cut.FindComponents<MudSelect<string>>().Single(s => s.Instance.Label == "Axis");
        Assert.Equal(["jpeg", "webp", "resize", "blur", "noise"], axis.FindComponents<MudSelectItem<string>>().Select(i => i.Instance.Value));
        cut.InvokeAsync(() => axis.Instance.ValueChanged.InvokeAsync("blur"));
        cut.WaitForAssertion(() => Assert.Equal("clean,1,2,3,4,5", cut.Find("#sweep-severities").GetAttribute("value")));
        cut.InvokeAsync(() => axis.Instance.ValueChanged.InvokeAsync("resize"));
        cut.WaitForAssertion(() => Assert.Equal("clean,0.25,0.5,0.75,1.25,1.5,1.75,2", cut.Find("#sweep-severities").GetAttribute("value")));
    }

    [Fact]
    public void Sweep_field_errors_are_shown_on_their_fields_and_nothing_is_queued()
    {
        SeedReadyDataset("genimage-val");
        var cut = Render<Sweep>();
        cut.Find("#sweep-checkpoint").Change(Checkpoint());
        cut.Find("#sweep-severities").Change("clean,500");
        cut.Find("#queue-sweep").Click();
        cut.WaitForAssertion(() => Assert.Contains("severity 500 of axis jpeg is invalid", FieldText(cut, "#sweep-severities")));
        Assert.DoesNotContain("500", FieldText(cut, "#sweep-checkpoint"));

        // An error of the job's own validation: a checkpoint outside the allowed roots.
        cut.Find("#sweep-severities").Change("clean,50");
        cut.Find("#sweep-checkpoint").Change("/etc/hostname");
        cut.Find("#queue-sweep").Click();
        cut.WaitForAssertion(() => Assert.Contains("/etc/hostname", FieldText(cut, "#sweep-checkpoint")));
        Assert.DoesNotContain("500", FieldText(cut, "#sweep-severities"));
        Assert.Empty(Queue.Enqueued);
    }

    [Fact]
    public void A_jpeg_sweep_is_queued_with_its_severities_and_opens_its_run()
    {
        var dataset = SeedReadyDataset("genimage-val");
        var checkpoint = Checkpoint();
        var cut = Render<Sweep>();
        cut.Find("#sweep-checkpoint").Change(checkpoint);
        cut.Find("#sweep-severities").Change("clean,90,50");
        cut.Find("#sweep-split").Change("val");
        cut.Find("#sweep-seed").Change("7");
        cut.Find("#queue-sweep").Click();

        cut.WaitForAssertion(() => Assert.Single(Queue.Enqueued));
        var run = QueuedRun();
        Assert.Equal(RobustnessSweepJob.KindName, run.Kind);
        Assert.Equal(7, run.Seed);
        var config = JsonSerializer.Deserialize<RobustnessSweepJob.Config>(run.ConfigJson, Web)!;
        Assert.Equal(new RobustnessSweepJob.Config(dataset, checkpoint, "jpeg", "clean,90,50", "res50nodown", "val", 7, 200), config);
        Assert.EndsWith($"runs/{run.Id}", Services.GetRequiredService<NavigationManager>().Uri);
    }
}
