using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Portal.Store;
using Portal.Tests.Support;
using SkiaSharp;

namespace Portal.Tests.Jobs;

/// <summary>The "pipeline" run kind: align -> train -> crossgen -> sweeps as child runs reused by config hash.</summary>
public class PipelineJobTests
{
    static string Fixture(params string[] parts) => Path.Combine([AppContext.BaseDirectory, "fixtures", .. parts]);

    /// <summary>Reals only (train/val 0_real), the source an alignment pairs with reconstructions.</summary>
    static void RealsOnly(string root, int perSplit)
    {
        var seed = 0;
        foreach (var split in new[] { "train", "val" })
            for (var i = 0; i < perSplit; i++)
                ImageFolders.Write(Path.Combine(root, split, "0_real", $"img{i}.png"), ImageFolders.Encode(16, 16, SKEncodedImageFormat.Png, seed++));
    }

    static async Task<long> RegisterAsync(HttpClient client, string name, string path)
    {
        var registered = await client.PostJsonAsync("/api/datasets", new { name, path }, 202);
        var run = await Wait.RunFinishedAsync(client, registered.GetProperty("runId").GetInt64());
        Assert.Equal("succeeded", run.GetProperty("status").GetString());
        return registered.GetProperty("id").GetInt64();
    }

    /// <summary>The smallest res50nodown that trains in a second.</summary>
    static object TinyTrain(long seed = 3, int epochs = 1) =>
        new { epochs, pairsPerBatch = 2, width = 4, layers = new[] { 1, 1, 1, 1 }, crop = 8, augment = "none", seed };

    static async Task<List<Run>> RunsAsync(PortalFactory app)
    {
        await using var db = await app.Services.GetRequiredService<IDbContextFactory<PortalDb>>().CreateDbContextAsync();
        return await db.Runs.AsNoTracking().Where(r => r.Kind != "register-dataset").OrderBy(r => r.Id).ToListAsync();
    }

    static async Task<Dictionary<string, JsonElement>> ChildrenAsync(HttpClient client, long pipelineId) =>
        (await client.GetJsonAsync($"/api/pipelines/{pipelineId}/children")).EnumerateArray()
        .ToDictionary(c => c.GetProperty("stage").GetString()!, c => c);

    [Fact]
    public async Task An_aligned_pipeline_aligns_trains_on_the_aligned_set_tests_and_sweeps_and_queued_again_starts_nothing()
    {
        using var tmp = new TempDir();
        RealsOnly(tmp.Sub("reals"), 3);
        ImageFolders.GenImage(tmp.Sub("genimage"));
        Directory.CreateDirectory(tmp.Sub("vae"));
        foreach (var name in new[] { "config.json", "diffusion_pytorch_model.safetensors" }) File.Copy(Fixture("sd", "vae", name), tmp.Sub("vae", name));
        await using var app = new PortalFactory(tmp.Path);
        var client = app.CreateClient();
        var realsId = await RegisterAsync(client, "reals", "reals");
        var testId = await RegisterAsync(client, "genimage", "genimage");
        var vaeId = (await client.PostJsonAsync("/api/models", new { name = "tiny-vae", path = "vae" }, 201)).GetProperty("id").GetInt64();

        var request = new
        {
            kind = "pipeline",
            config = new
            {
                trainDatasetId = realsId, align = new { vaeWeightsId = vaeId, seed = 42 }, train = TinyTrain(),
                evaluate = new { datasetId = testId, modes = "fixed,best", split = "val", bootstrap = 0 },
                // The sweep runs on the reals: a barely trained detector's best threshold there is finite (the sweep job cannot
                // write an "everything fake" -infinity threshold to its JSON).
                sweeps = new[] { new { axis = "jpeg", severities = "clean,50", datasetId = realsId, bootstrap = 0 } },
            },
            axes = new Dictionary<string, object[]>(),
        };
        var queued = await client.PostJsonAsync("/api/experiments", request, 202);
        var cell = queued.GetProperty("cells").EnumerateArray().Single();
        Assert.False(cell.GetProperty("reused").GetBoolean());
        var pipelineId = cell.GetProperty("runId").GetInt64();
        var pipeline = await Wait.RunFinishedAsync(client, pipelineId, TimeSpan.FromSeconds(300));
        Assert.True(pipeline.GetProperty("status").GetString() == "succeeded", pipeline.GetRawText());
        Assert.Equal("orchestration", pipeline.GetProperty("queue").GetString());

        var children = await ChildrenAsync(client, pipelineId);
        Assert.Equal(["align", "crossgen", "sweeps[0]", "train"], children.Keys.Order());
        foreach (var (stage, kind) in new[] { ("align", "align"), ("train", "train"), ("crossgen", "crossgen"), ("sweeps[0]", "sweep") })
        {
            Assert.Equal(kind, children[stage].GetProperty("kind").GetString());
            Assert.Equal("succeeded", children[stage].GetProperty("status").GetString());
            Assert.True(children[stage].GetProperty("created").GetBoolean());
        }
        long Child(string stage) => children[stage].GetProperty("runId").GetInt64();

        // Stage order and hand-over: the training ran on the dataset the alignment produced, the tests on its weights.
        await using var db = await app.Services.GetRequiredService<IDbContextFactory<PortalDb>>().CreateDbContextAsync();
        long alignId = Child("align"), trainId = Child("train"), crossgenId = Child("crossgen");
        var aligned = await db.Datasets.SingleAsync(d => d.RegistrationRunId == alignId);
        var runs = await db.Runs.AsNoTracking().Where(r => children.Values.Select(c => c.GetProperty("runId").GetInt64()).Contains(r.Id)).ToDictionaryAsync(r => r.Id);
        Assert.Equal(aligned.Id, JsonDocument.Parse(runs[Child("train")].ConfigJson).RootElement.GetProperty("trainDatasetId").GetInt64());
        // With an align stage the train job's own default mode applies (synced pairs).
        Assert.False(JsonDocument.Parse(runs[Child("train")].ConfigJson).RootElement.TryGetProperty("mode", out _));
        Assert.True(runs[Child("align")].FinishedAt <= runs[Child("train")].StartedAt);
        Assert.True(runs[Child("train")].FinishedAt <= runs[Child("crossgen")].StartedAt);
        var weights = await db.Artifacts.SingleAsync(a => a.RunId == trainId && a.Kind == "weights");
        var checkpoint = Path.Combine(tmp.Path, weights.RelativePath);
        var crossgenConfig = JsonDocument.Parse(runs[Child("crossgen")].ConfigJson).RootElement;
        Assert.Equal(checkpoint, crossgenConfig.GetProperty("checkpoint").GetString());
        Assert.Equal("res50nodown", crossgenConfig.GetProperty("arch").GetString());
        Assert.Equal(checkpoint, JsonDocument.Parse(runs[Child("sweeps[0]")].ConfigJson).RootElement.GetProperty("checkpoint").GetString());
        var log = (await client.GetJsonAsync($"/api/runs/{pipelineId}/log")).EnumerateArray().Select(l => l.GetProperty("message").GetString()!).ToList();
        foreach (var stage in children.Keys) Assert.Contains(log, l => l.Contains($"stage {stage}: queued run {Child(stage)}"));

        // The pipeline's crossgen numbers are those of a crossgen run of the trained checkpoint queued by hand.
        var direct = await client.PostJsonAsync("/api/runs", new
        {
            kind = "crossgen", config = new { datasetId = testId, checkpoint, arch = "res50nodown", modes = "fixed,best", split = "val", bootstrap = 0 },
        }, 202);
        var directId = direct.GetProperty("id").GetInt64();
        Assert.Equal("succeeded", (await Wait.RunFinishedAsync(client, directId, TimeSpan.FromSeconds(120))).GetProperty("status").GetString());
        var metrics = await db.RunMetrics.AsNoTracking().Where(m => m.RunId == crossgenId || m.RunId == directId).ToListAsync();
        var fromPipeline = metrics.Where(m => m.RunId == crossgenId).ToDictionary(m => m.Name, m => m.Value);
        var byHand = metrics.Where(m => m.RunId == directId).ToDictionary(m => m.Name, m => m.Value);
        Assert.Contains("acc/imagenet_ai_0419_sdv4", fromPipeline.Keys);
        Assert.Equal(byHand.Keys.Order(), fromPipeline.Keys.Order());
        foreach (var (name, value) in byHand) Assert.Equal(value, fromPipeline[name], 12);
        var headline = await db.RunMetrics.AsNoTracking().Where(m => m.RunId == pipelineId && m.Name == "crossgen_acc").SingleAsync();
        Assert.Equal(fromPipeline["acc/avg"], headline.Value, 12);

        // Queued again: the same cell, the same pipeline run, nothing new.
        var before = (await RunsAsync(app)).Count;
        var again = await client.PostJsonAsync("/api/experiments", request, 202);
        var againCell = again.GetProperty("cells").EnumerateArray().Single();
        Assert.True(againCell.GetProperty("reused").GetBoolean());
        Assert.Equal(pipelineId, againCell.GetProperty("runId").GetInt64());
        Assert.Equal(before, (await RunsAsync(app)).Count);

        // A second pipeline run of the same config (POST /api/runs always makes a run) reuses every stage.
        var rerun = await client.PostJsonAsync("/api/runs", new { kind = "pipeline", config = request.config }, 202);
        var rerunId = rerun.GetProperty("id").GetInt64();
        Assert.Equal("succeeded", (await Wait.RunFinishedAsync(client, rerunId, TimeSpan.FromSeconds(60))).GetProperty("status").GetString());
        Assert.Equal(before + 1, (await RunsAsync(app)).Count);
        var reused = await ChildrenAsync(client, rerunId);
        Assert.Equal(children.Keys.Order(), reused.Keys.Order());
        foreach (var (stage, c) in reused)
        {
            // The crossgen queued by hand has the stage's very config: the newest succeeded run with that hash is reused.
            Assert.Equal(stage == "crossgen" ? directId : Child(stage), c.GetProperty("runId").GetInt64());
            Assert.False(c.GetProperty("created").GetBoolean());
        }

        // The matrix names the trained checkpoint's row after the aligned set it was trained on.
        var matrix = await client.GetJsonAsync("/api/matrix");
        Assert.Equal([aligned.Name], matrix.GetProperty("trained_on").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal(Child("train"), matrix.GetProperty("rows")[0].GetProperty("train_run_id").GetInt64());
    }

    [Fact]
    public async Task A_two_cell_pipeline_grid_queued_twice_runs_each_stage_once()
    {
        using var tmp = new TempDir();
        ImageFolders.GenImage(tmp.Sub("genimage"));
        RealsOnly(tmp.Sub("reals"), 2);
        await using var app = new PortalFactory(tmp.Path);
        var client = app.CreateClient();
        var datasetId = await RegisterAsync(client, "genimage", "genimage");
        var realsId = await RegisterAsync(client, "reals", "reals");
        var request = new
        {
            kind = "pipeline",
            config = new { trainDatasetId = datasetId, train = TinyTrain(), sweeps = new[] { new { axis = "blur", severities = "1", datasetId = realsId, bootstrap = 0 } } },
            axes = new Dictionary<string, object[]> { ["train.seed"] = [1, 2] },
        };
        var first = await client.PostJsonAsync("/api/experiments", request, 202);
        var second = await client.PostJsonAsync("/api/experiments", request, 202);
        Assert.Equal(first.GetProperty("id").GetString(), second.GetProperty("id").GetString());
        Assert.All(second.GetProperty("cells").EnumerateArray(), c => Assert.True(c.GetProperty("reused").GetBoolean()));
        var ids = first.GetProperty("cells").EnumerateArray().Select(c => c.GetProperty("runId").GetInt64()).ToList();
        Assert.Equal(ids, second.GetProperty("cells").EnumerateArray().Select(c => c.GetProperty("runId").GetInt64()));
        foreach (var id in ids)
        {
            var run = await Wait.RunFinishedAsync(client, id, TimeSpan.FromSeconds(240));
            Assert.True(run.GetProperty("status").GetString() == "succeeded", run.GetRawText());
        }

        var runs = await RunsAsync(app);
        Assert.Equal(2, runs.Count(r => r.Kind == "pipeline"));
        Assert.Equal(2, runs.Count(r => r.Kind == "train"));
        Assert.Equal(2, runs.Count(r => r.Kind == "sweep"));
        // Without an align stage the training is the usual one, on the dataset as it is, with the cell's seed.
        var seeds = runs.Where(r => r.Kind == "train").Select(r => JsonDocument.Parse(r.ConfigJson).RootElement)
            .Select(c => (c.GetProperty("seed").GetInt64(), c.GetProperty("mode").GetString(), c.GetProperty("trainDatasetId").GetInt64())).Order();
        Assert.Equal([(1L, "independent", datasetId), (2L, "independent", datasetId)], seeds);

        var third = await client.PostJsonAsync("/api/experiments", request, 202);
        Assert.All(third.GetProperty("cells").EnumerateArray(), c => Assert.Equal("succeeded", c.GetProperty("status").GetString()));
        Assert.Equal(runs.Count, (await RunsAsync(app)).Count);
    }

    [Fact]
    public async Task A_pipeline_taken_up_after_a_restart_finds_its_children_instead_of_duplicating_them()
    {
        using var tmp = new TempDir();
        ImageFolders.GenImage(tmp.Sub("genimage"));
        long pipelineId, trainId;
        var config = new { trainDatasetId = 0L, train = TinyTrain(epochs: 2) };
        await using (var first = new PortalFactory(tmp.Path))
        {
            var client = first.CreateClient();
            var datasetId = await RegisterAsync(client, "genimage", "genimage");
            config = config with { trainDatasetId = datasetId };
            // A device job ahead of the training keeps the train stage queued while the process stops.
            await client.PostJsonAsync("/api/runs", new { kind = "test-device", config = new { steps = 1, stepMs = 5000 } }, 202);
            pipelineId = (await client.PostJsonAsync("/api/runs", new { kind = "pipeline", config }, 202)).GetProperty("id").GetInt64();
            var children = await Wait.UntilAsync(() => ChildrenAsync(client, pipelineId), c => c.ContainsKey("train"), TimeSpan.FromSeconds(30), "the train stage");
            trainId = children["train"].GetProperty("runId").GetInt64();
            Assert.Equal("queued", children["train"].GetProperty("status").GetString());
        }

        await using var second = new PortalFactory(tmp.Path);
        var again = second.CreateClient();
        var pipeline = await Wait.RunFinishedAsync(again, pipelineId, TimeSpan.FromSeconds(240));
        Assert.True(pipeline.GetProperty("status").GetString() == "succeeded", pipeline.GetRawText());
        Assert.Equal(2, pipeline.GetProperty("attempts").GetInt32());
        var runs = await RunsAsync(second);
        Assert.Equal(trainId, Assert.Single(runs, r => r.Kind == "train").Id);
        var stages = await ChildrenAsync(again, pipelineId);
        Assert.Equal(trainId, Assert.Single(stages).Value.GetProperty("runId").GetInt64());
        Assert.True(stages["train"].GetProperty("created").GetBoolean());
        var log = (await again.GetJsonAsync($"/api/runs/{pipelineId}/log")).EnumerateArray().Select(l => l.GetProperty("message").GetString()!).ToList();
        Assert.Contains(log, l => l.Contains($"stage train: taken up again run {trainId}"));
    }

    [Fact]
    public async Task Canceling_a_pipeline_cancels_the_stage_it_queued()
    {
        using var tmp = new TempDir();
        ImageFolders.GenImage(tmp.Sub("genimage"));
        await using var app = new PortalFactory(tmp.Path);
        var client = app.CreateClient();
        var datasetId = await RegisterAsync(client, "genimage", "genimage");
        var blocker = (await client.PostJsonAsync("/api/runs", new { kind = "test-device", config = new { steps = 1, stepMs = 30000 } }, 202)).GetProperty("id").GetInt64();
        var pipelineId = (await client.PostJsonAsync("/api/runs", new { kind = "pipeline", config = new { trainDatasetId = datasetId, train = TinyTrain() } }, 202))
            .GetProperty("id").GetInt64();
        var children = await Wait.UntilAsync(() => ChildrenAsync(client, pipelineId), c => c.ContainsKey("train"), TimeSpan.FromSeconds(30), "the train stage");
        await client.PostJsonAsync($"/api/runs/{pipelineId}/cancel", new { }, 202);
        Assert.Equal("canceled", (await Wait.RunFinishedAsync(client, pipelineId)).GetProperty("status").GetString());
        var train = await Wait.RunFinishedAsync(client, children["train"].GetProperty("runId").GetInt64());
        Assert.Equal("canceled", train.GetProperty("status").GetString());
        await client.PostJsonAsync($"/api/runs/{blocker}/cancel", new { }, 202);
    }

    [Theory]
    [InlineData("{\"train\": {\"epochs\": 0}}", "train.epochs")]
    [InlineData("{\"train\": {\"mode\": \"sideways\"}}", "train.mode")]
    [InlineData("{\"sweeps\": [{\"axis\": \"jpeg\"}, {\"axis\": \"sideways\"}]}", "sweeps[1].axis")]
    [InlineData("{\"evaluate\": {\"datasetId\": 99}}", "evaluate.datasetId")]
    [InlineData("{\"evaluate\": {\"datasetId\": 1, \"modes\": \"fixed,sideways\"}}", "evaluate.modes")]
    [InlineData("{\"align\": {\"vaeWeightsId\": 7}}", "align.vaeWeightsId")]
    [InlineData("{\"trainDatasetId\": 99}", "trainDatasetId")]
    public async Task A_bad_stage_field_is_400_naming_it_with_its_stage_and_nothing_is_queued(string overrides, string field)
    {
        using var tmp = new TempDir();
        ImageFolders.RealFake(tmp.Sub("set"), 2);
        await using var app = new PortalFactory(tmp.Path);
        var client = app.CreateClient();
        var datasetId = await RegisterAsync(client, "set", "set");
        var config = System.Text.Json.Nodes.JsonNode.Parse($"{{\"trainDatasetId\": {datasetId}, \"evaluate\": {{\"datasetId\": {datasetId}}}}}")!.AsObject();
        foreach (var (key, value) in System.Text.Json.Nodes.JsonNode.Parse(overrides)!.AsObject().ToList()) config[key] = value?.DeepClone();

        foreach (var (url, body) in new (string, object)[]
                 {
                     ("/api/experiments", new { kind = "pipeline", config, axes = new Dictionary<string, object[]> { ["train.seed"] = [1, 2] } }),
                     ("/api/runs", new { kind = "pipeline", config }),
                 })
        {
            using var response = await client.PostAsJsonAsync(url, body);
            var text = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{url}: {(int)response.StatusCode} {text}");
            Assert.Contains($"\"{field}\"", text);
        }
        Assert.Empty(await RunsAsync(app));
    }

    [Fact]
    public async Task A_grid_axis_path_that_is_not_a_nested_field_is_400_listing_the_fields()
    {
        using var tmp = new TempDir();
        ImageFolders.RealFake(tmp.Sub("set"), 2);
        await using var app = new PortalFactory(tmp.Path);
        var client = app.CreateClient();
        var datasetId = await RegisterAsync(client, "set", "set");
        using var response = await client.PostAsJsonAsync("/api/experiments",
            new { kind = "pipeline", config = new { trainDatasetId = datasetId }, axes = new Dictionary<string, object[]> { ["train.epoch"] = [1, 2] } });
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var text = await response.Content.ReadAsStringAsync();
        Assert.Contains("\"train.epoch\"", text);
        Assert.Contains("epochs", text);
        Assert.Empty(await RunsAsync(app));
    }
}
