using System.Text.Json.Nodes;
using Bunit;
using Hangfire;
using Hangfire.InMemory;
using Microsoft.AspNetCore.Components;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using MudBlazor.Services;
using Portal.Components.Pages;
using Portal.Infrastructure;
using Portal.Experiments;
using Portal.Datasets;
using Portal.Zoo;
using Portal.Runs;
using Portal.Store;

namespace Portal.Tests.Components;

/// <summary>The pipeline form on /experiments (inputs, the run it queues, stage-prefixed errors, the hand-over to the grid builder) and the /matrix page.</summary>
public sealed class PipelineFormTests : PortalComponentTest
{
    // The machine running the tests may be busy: give the renderer time rather than fail on bUnit's one-second default.
    static readonly TimeSpan Patience = TimeSpan.FromSeconds(15);

    long Dataset(string name, DatasetStatus status = DatasetStatus.Ready) => Add(new Dataset
    {
        Name = name, Path = Path.Combine(DataDir, name), Layout = "real-fake", Status = status, CreatedAt = DateTime.UtcNow,
        ScannedAt = DateTime.UtcNow, Images = 8, ManifestPath = $"datasets/{name}/manifest.json.gz",
    });

    JsonObject QueuedConfig(int index)
    {
        using var db = Db();
        var id = Queue.Enqueued.ElementAt(index).RunId;
        return JsonNode.Parse(db.Runs.Single(r => r.Id == id).ConfigJson)!.AsObject();
    }

    [Fact]
    public void The_pipeline_form_renders_queues_a_pipeline_reports_stage_fields_and_feeds_the_grid()
    {
        Dataset("broken", DatasetStatus.Failed); // not ready: never offered, never the default
        var reals = Dataset("reals");
        Add(new ModelWeights { Name = "sd-vae", Kind = ModelZooService.Autoencoder, Path = "/models/vae", CreatedAt = DateTime.UtcNow });

        var cut = Render<Portal.Components.Pages.Experiments>();
        var form = cut.Find("[data-testid=pipeline-form]");
        foreach (var id in new[] { "pipeline-train-dataset", "pipeline-vae", "pipeline-mode", "pipeline-epochs", "pipeline-pairs", "pipeline-width",
                     "pipeline-train-seed", "pipeline-test-dataset", "pipeline-modes", "pipeline-split", "pipeline-sweep-axis-0", "pipeline-sweep-severities-0",
                     "pipeline-add-sweep", "pipeline-use-in-grid", "queue-pipeline" })
            Assert.NotNull(form.QuerySelector($"#{id}"));
        Assert.Contains("no alignment: train on the dataset as it is", form.TextContent);

        cut.Find("#pipeline-epochs").Change("2");
        cut.Find("#pipeline-train-seed").Change("5");
        cut.Find("#queue-pipeline").Click();
        cut.WaitForAssertion(() => Assert.Single(Queue.Enqueued), Patience);
        Assert.Equal(JobQueues.Orchestration, Queue.Enqueued.Single().Queue);
        var config = QueuedConfig(0);
        Assert.Equal(reals, (long)config["trainDatasetId"]!);
        Assert.Null(config["align"]);
        Assert.Null(config["evaluate"]);
        Assert.Empty(config["sweeps"]!.AsArray());
        Assert.Equal((2, 5L), ((int)config["train"]!["epochs"]!, (long)config["train"]!["seed"]!));
        // Before its first stage starts, the pipeline's plan shows: a training stage only (no alignment, test or sweep).
        cut.WaitForAssertion(() => Assert.Equal(["train"], cut.FindAll("[data-testid=pipeline-cell-stages] [data-testid=pipeline-stage]").Select(s => s.GetAttribute("data-stage"))), Patience);
        Assert.Equal("planned", cut.Find("[data-testid=pipeline-cell-stages] [data-testid=pipeline-stage]").GetAttribute("data-state"));

        // A bad training field comes back under its stage name, on the epochs input, and queues nothing.
        cut.Find("#pipeline-epochs").Change("0");
        cut.Find("#queue-pipeline").Click();
        cut.WaitForAssertion(() => Assert.Contains("MaxEpochs must be at least 1", cut.Find("#pipeline-epochs").Closest(".mud-input-control")!.TextContent), Patience);
        Assert.Single(Queue.Enqueued);

        // The same pipeline as a grid's base config, with a train.seed axis: two cells, two pipeline runs.
        cut.Find("#pipeline-epochs").Change("2");
        cut.Find("#pipeline-use-in-grid").Click();
        cut.WaitForAssertion(() => Assert.Equal("train.seed", cut.Find("#axis-field-0").GetAttribute("value")), Patience);
        Assert.Contains("\"trainDatasetId\"", cut.Find("#experiment-config").GetAttribute("value") ?? cut.Find("#experiment-config").TextContent);
        cut.Find("#queue-experiment").Click();
        cut.WaitForAssertion(() => Assert.Equal(3, Queue.Enqueued.Count), Patience);
        Assert.Equal([1L, 2L], new[] { 1, 2 }.Select(i => (long)QueuedConfig(i)["train"]!["seed"]!));
        // The page shows the grid once it has also re-read its history of grids.
        cut.WaitForAssertion(() => Assert.Contains("train.seed=1", cut.Find("[data-testid=experiment-cells]").TextContent), Patience);
        Assert.Equal(2, cut.FindAll("[data-testid=pipeline-cell-stages]").Count);
    }

    [Fact]
    public void The_matrix_page_shows_a_row_per_checkpoint_named_after_its_training_set_with_the_crossgen_numbers()
    {
        var empty = Render<Matrix>();
        empty.WaitForAssertion(() => Assert.NotNull(empty.Find("[data-testid=matrix-empty]")), Patience);

        var trainSet = Dataset("sdv4-train");
        var testSet = Dataset("genimage-val");
        var trainRun = Add(new Run
        {
            Kind = TrainingJob.KindName, Queue = JobQueues.Device, ConfigJson = $"{{\"trainDatasetId\":{trainSet}}}", ConfigHash = "t", Status = RunStatus.Succeeded,
            CreatedAt = DateTime.UtcNow, CodeVersion = "test",
        });
        var weights = Path.Combine(DataDir, "runs", trainRun.ToString(), "best.safetensors");
        Directory.CreateDirectory(Path.GetDirectoryName(weights)!);
        File.WriteAllBytes(weights, [1]);
        Add(new Artifact { RunId = trainRun, Kind = "weights", RelativePath = $"runs/{trainRun}/best.safetensors", CreatedAt = DateTime.UtcNow });

        // A cross-generator result from known scores, stored as the crossgen job stores it.
        var scores = new List<Forensics.ML.Evaluation.ImageScore>();
        var rng = new Random(4);
        foreach (var generator in new[] { "adm", "sdv4" })
            for (var i = 0; i < 6; i++)
                scores.Add(new Forensics.ML.Evaluation.ImageScore($"{generator}/{i}.png", i % 2, generator, double.NaN, rng.NextDouble()));
        var result = Forensics.ML.Protocols.CrossGeneratorEvaluation.FromScores(scores, "genimage (split val)", null, null,
            new Forensics.ML.Protocols.CrossGenOptions { Metrics = new Forensics.ML.Metrics.MetricsOptions { BootstrapSamples = 0 } });
        var crossgen = Add(new Run
        {
            Kind = CrossGeneratorJob.KindName, Queue = JobQueues.Device, ConfigHash = "c", Status = RunStatus.Succeeded, CreatedAt = DateTime.UtcNow,
            CodeVersion = "test", ConfigJson = System.Text.Json.JsonSerializer.Serialize(new { datasetId = testSet, checkpoint = weights }),
        });
        Directory.CreateDirectory(Path.Combine(DataDir, "runs", crossgen.ToString()));
        File.WriteAllText(Path.Combine(DataDir, "runs", crossgen.ToString(), "crossgen.json"), result.ToJson().ToJsonString());
        Add(new Artifact { RunId = crossgen, Kind = "crossgen", RelativePath = $"runs/{crossgen}/crossgen.json", CreatedAt = DateTime.UtcNow });

        var cut = Render<Matrix>();
        cut.WaitForAssertion(() => Assert.NotNull(cut.Find("[data-testid=matrix]")), Patience);
        var row = cut.Find("[data-testid=matrix] tbody tr");
        Assert.Equal("sdv4-train", row.GetAttribute("data-row"));
        Assert.Equal(["trained on \\ tested on", "adm", "sdv4", "avg", "run"], cut.FindAll("[data-testid=matrix] thead th").Select(h => h.TextContent.Trim()));
        var table = result.Table(Forensics.ML.Protocols.ThresholdMode.Fixed);
        var cells = row.QuerySelectorAll("td").Select(td => td.TextContent.Trim()).ToList();
        string F(double? v) => (100 * v!.Value).ToString("0.0", System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal($"{F(table.Rows[0].Result.Report.Acc)} / {F(table.Rows[0].Result.Report.Ap)}", cells[0]);
        Assert.Equal($"{F(table.Rows[1].Result.Report.Acc)} / {F(table.Rows[1].Result.Report.Ap)}", cells[1]);
        Assert.Equal($"{F(table.Average.Acc)} / {F(table.Average.Ap)}", cells[2]);
        Assert.Contains($"runs/{crossgen}", row.InnerHtml);
        // A heatmap: every known cell is coloured by its ACC and names its pair and numbers on hover.
        var first = row.QuerySelector("[data-testid=matrix-cell]")!;
        Assert.Equal(Portal.Components.Shared.MatrixHeat.Style(table.Rows[0].Result.Report.Acc), first.GetAttribute("style"));
        Assert.StartsWith("background-color: hsl(", first.GetAttribute("style"));
        Assert.Contains("trained on sdv4-train, tested on adm: ACC", first.GetAttribute("title"));
    }
}
