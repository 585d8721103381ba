using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Portal.Store;
using Portal.Tests.Support;
using Xunit.Abstractions;

namespace Portal.Tests.Jobs;

/// <summary>
/// The "train" job with arch torchscript: a TorchScript detector of the zoo fine-tuned on aligned pairs (synced mode),
/// saved back as TorchScript with its card, registered in the zoo, evaluated, and shown on the leaderboard.
/// </summary>
[Collection(Support.TorchThreadsCollection.Name)]
public class TorchScriptTrainingJobTests(ITestOutputHelper testOutput)
{
    static string Fixture(params string[] parts) => Path.Combine([AppContext.BaseDirectory, "fixtures", "detectors", .. parts]);

    /// <summary>An aligned MiniGenImage-like set (train/val splits of reals and their same-stem fakes) and the fixture modules with their cards.</summary>
    static TempDir Files()
    {
        var tmp = new TempDir();
        ImageFolders.Aligned(tmp.Sub("aligned"), train: 6, val: 6, side: 20, fakeSeedBase: 1000);
        File.Copy(Fixture("trainable_scripted.pt"), tmp.Sub("mine.pt"));
        File.Copy(Fixture("trainable_scripted.card.json"), tmp.Sub("mine.card.json"));
        File.Copy(Fixture("tinycnn_prob_traced.pt"), tmp.Sub("prob.pt"));
        File.Copy(Fixture("cards", "none.prob.card.json"), tmp.Sub("prob.card.json"));
        File.Copy(Fixture("trainable_frozen.pt"), tmp.Sub("frozen.pt"));
        return tmp;
    }

    static async Task<long> RegisterDatasetAsync(HttpClient client)
    {
        var registered = await client.PostJsonAsync("/api/datasets", new { name = "aligned", path = "aligned" }, 202);
        await Wait.RunFinishedAsync(client, registered.GetProperty("runId").GetInt64());
        return registered.GetProperty("id").GetInt64();
    }

    [Fact]
    public async Task A_torchscript_detector_trained_by_the_portal_in_synced_mode_is_evaluated_and_appears_on_the_leaderboard()
    {
        using var tmp = Files();
        var recorder = new ProgressRecorder();
        await using var app = new PortalFactory(tmp.Path, ProgressRecorder.Into(recorder));
        var client = app.CreateClient();
        var datasetId = await RegisterDatasetAsync(client);
        var initial = await client.PostJsonAsync("/api/models", new { name = "mine", path = "mine.pt" }, 201);
        Assert.Equal("torchscript", initial.GetProperty("architecture").GetString());

        var queued = await client.PostJsonAsync("/api/runs", new
        {
            kind = "train",
            config = new
            {
                trainDatasetId = datasetId, arch = "torchscript", initWeightsId = initial.GetProperty("id").GetInt64(), mode = "synced",
                epochs = 2, pairsPerBatch = 3, crop = 16, augment = "none", seed = 5, learningRate = 1e-2,
            },
            seed = 5,
        }, 202);
        var trainId = queued.GetProperty("id").GetInt64();
        var run = await Wait.RunFinishedAsync(client, trainId, TimeSpan.FromSeconds(180));
        Assert.True(run.GetProperty("status").GetString() == "succeeded", run.GetRawText());
        // Step by step over 2 epochs (the training loop shared with res50nodown), never back, up to 1.
        testOutput.WriteLine("torchscript train: " + recorder.AssertTracksWork(trainId, maxJump: 0.35, finalGap: 0));
        Assert.Contains(recorder.Of(trainId), r => r.Phase!.StartsWith("epoch 2/2", StringComparison.Ordinal));

        ModelWeights weights;
        await using (var db = await app.Services.GetRequiredService<IDbContextFactory<PortalDb>>().CreateDbContextAsync())
        {
            var metrics = await db.RunMetrics.Where(m => m.RunId == trainId).ToListAsync();
            Assert.Equal(2, metrics.Count(m => m.Name == "val_balanced_acc"));
            Assert.True(metrics.Count(m => m.Name == "loss") >= 2);
            weights = await db.Weights.SingleAsync(w => w.SourceRunId == trainId);
            var kinds = await db.Artifacts.Where(a => a.RunId == trainId).Select(a => a.Kind).ToListAsync();
            Assert.Contains("weights", kinds);
            Assert.Contains("card", kinds);
        }
        Assert.Equal($"torchscript-run{trainId}", weights.Name);
        Assert.Equal(("detector", "torchscript", "torchscript"), (weights.Kind, weights.Architecture, weights.Format));
        Assert.EndsWith("best.pt", weights.Path);
        Assert.True(File.Exists(Path.ChangeExtension(weights.Path, ".card.json")));
        Assert.Contains("fine-tuned by run", weights.Card);
        Assert.NotEqual(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(await File.ReadAllBytesAsync(tmp.Sub("mine.pt")))), weights.Sha256);

        var eval = await client.PostJsonAsync("/api/runs", new
        {
            kind = "evaluate", config = new { datasetId, checkpoint = weights.Path, arch = "torchscript", split = "val", bootstrap = 0 },
        }, 202);
        var evalRun = await Wait.RunFinishedAsync(client, eval.GetProperty("id").GetInt64(), TimeSpan.FromSeconds(120));
        Assert.True(evalRun.GetProperty("status").GetString() == "succeeded", evalRun.GetRawText());
        var scores = File.ReadAllLines(Path.Combine(tmp.Path, "runs", eval.GetProperty("id").GetInt64().ToString(CultureInfo.InvariantCulture), "scores.csv"));
        Assert.Equal(13, scores.Length);   // header + 6 reals + 6 fakes of the val split

        var board = await client.GetJsonAsync("/api/leaderboard?arch=torchscript");
        var row = Assert.Single(board.GetProperty("rows").EnumerateArray(), r => r.GetProperty("detector").GetString() == weights.Name);
        Assert.Equal("torchscript", row.GetProperty("arch").GetString());
        Assert.Equal("val", row.GetProperty("split").GetString());
        // The row's accuracy is the evaluation's own (one run: its mean over the dataset's generators).
        var overall = JsonDocument.Parse(File.ReadAllText(Path.Combine(tmp.Path, "runs", eval.GetProperty("id").GetInt64().ToString(CultureInfo.InvariantCulture), "metrics.json")))
            .RootElement.GetProperty("overall");
        Assert.Equal(overall.GetProperty("acc").GetDouble(), row.GetProperty("meanAcc").GetProperty("mean").GetDouble(), 9);
    }

    [Theory]
    [InlineData("""{"arch": "torchscript"}""", "initWeightsId", "fine-tunes a TorchScript detector")]
    [InlineData("""{"arch": "torchscript", "init": "prob.pt"}""", "init", "training needs logits")]
    [InlineData("""{"arch": "torchscript", "init": "frozen.pt"}""", "init", "no trainable parameters")]
    [InlineData("""{"arch": "torchscript", "init": "mine.pt", "width": 8}""", "width", "res50nodown setting")]
    [InlineData("""{"init": "mine.pt", "card": "mine.card.json"}""", "card", "arch torchscript only")]
    public async Task A_torchscript_training_config_the_trainer_cannot_run_is_400_naming_the_field(string config, string field, string message)
    {
        using var tmp = Files();
        await using var app = new PortalFactory(tmp.Path);
        var client = app.CreateClient();
        var datasetId = await RegisterDatasetAsync(client);
        var node = System.Text.Json.Nodes.JsonNode.Parse(config)!.AsObject();
        node["trainDatasetId"] = datasetId;
        using var response = await client.PostAsJsonAsync("/api/runs", new { kind = "train", config = node });
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        Assert.True(problem.GetProperty("errors").TryGetProperty(field, out var messages), problem.GetRawText());
        Assert.Contains(message, messages.GetRawText());
    }
}
