using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Forensics.ML.Datasets;
using Forensics.ML.Evaluation;
using Forensics.ML.Lare2;
using Forensics.ML.Metrics;
using Forensics.ML.Models.Clip;
using Forensics.ML.Runtime;
using Forensics.ML.Training;
using Forensics.ML.Weights;
using Microsoft.AspNetCore.Hosting;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Portal.Experiments;
using Portal.Store;
using Portal.Tests.Support;
using Xunit.Abstractions;
using SkiaSharp;
using static TorchSharp.torch;

namespace Portal.Tests.Jobs;

/// <summary>
/// The "train" job with arch lare2: LaRE² on the maps of a "lare" run, from a tiny CLIP tower, to completion; its checkpoint
/// scored by the evaluate job as by Lare2Evaluator; a run left running by a crash resumes after the restart to the weights of an
/// uninterrupted one; bad fields are 400 naming the field.
/// </summary>
[Collection(Support.TorchThreadsCollection.Name)]
public class Lare2TrainingJobTests(ITestOutputHelper testOutput)
{
    /// <summary>A diffusers SD folder assembled from the small reference components (only the model files).</summary>
    static void SmallStableDiffusion(string target)
    {
        var source = Path.Combine(AppContext.BaseDirectory, "fixtures", "sd");
        foreach (var part in new[] { "unet", "vae", "text_encoder", "tokenizer" })
        {
            Directory.CreateDirectory(Path.Combine(target, part));
            foreach (var file in Directory.GetFiles(Path.Combine(source, part)).Where(f => !Path.GetFileName(f).StartsWith("expected")))
                File.Copy(file, Path.Combine(target, part, Path.GetFileName(file)));
        }
    }

    /// <summary>train/ and val/ splits of 0_real and 1_fake, three 20x20 PNGs each (the crop pads them up).</summary>
    static void SplitSet(string root, int seedBase = 0)
    {
        var seed = seedBase;
        foreach (var split in new[] { "train", "val" })
            foreach (var label in new[] { "0_real", "1_fake" })
                for (var i = 0; i < 3; i++)
                    ImageFolders.Write(Path.Combine(root, split, label, $"img{i}.png"), ImageFolders.Encode(20, 20, SKEncodedImageFormat.Png, seed++));
    }

    /// <summary>
    /// A tiny CLIP ModifiedResNet (width 8, one block per stage, 32x32 input) saved as a CLIP model's image tower
    /// (visual.* names), with seeded weights: what a real RN50.pt is to LaRE², at a size that trains in a second.
    /// </summary>
    static void TinyClipTower(string path)
    {
        TorchRuntime.EnsureLoaded();
        manual_seed(11);
        using var tower = new ModifiedResNet(new ModifiedResNetOptions
        {
            Layers = [1, 1, 1, 1], Width = 8, Heads = ModifiedResNetOptions.HeadsForWidth(8), OutputDim = 32, InputResolution = 32,
        });
        SafeTensors.Save(path, tower.state_dict().Select(p => (ClipVisual.Prefix + p.Key, p.Value)));
    }

    /// <summary>A registered split set and a finished LaRE run of it: (dataset id, LaRE run id).</summary>
    static async Task<(long Dataset, long LareRun)> DatasetWithMapsAsync(HttpClient client, string name)
    {
        var registered = await client.PostJsonAsync("/api/datasets", new { name, path = name }, 202);
        var datasetId = registered.GetProperty("id").GetInt64();
        await Wait.RunFinishedAsync(client, registered.GetProperty("runId").GetInt64());
        var lare = await client.PostJsonAsync("/api/runs", new { kind = "lare", config = new { datasetId, sd = "sd", ensemble = 2, resizeTo = 32, prompt = "a photo" } }, 202);
        var lareRun = lare.GetProperty("id").GetInt64();
        var run = await Wait.RunFinishedAsync(client, lareRun, TimeSpan.FromSeconds(120));
        Assert.True(run.GetProperty("status").GetString() == "succeeded", run.GetRawText());
        return (datasetId, lareRun);
    }

    static object Lare2Config(long datasetId, long lareRun, int epochs) => new
    {
        kind = "train",
        config = new { trainDatasetId = datasetId, arch = "lare2", lareRunId = lareRun, init = "clip.safetensors", epochs, pairsPerBatch = 2, seed = 3 },
    };

    [Fact]
    public async Task A_LaRE2_run_trains_stores_curves_joins_the_zoo_and_its_checkpoint_evaluates_as_Lare2Evaluator_scores_it()
    {
        using var tmp = new TempDir();
        SmallStableDiffusion(tmp.Sub("sd"));
        SplitSet(tmp.Sub("set"));
        TinyClipTower(tmp.Sub("clip.safetensors"));
        var recorder = new ProgressRecorder();
        await using var app = new PortalFactory(tmp.Path, ProgressRecorder.Into(recorder));
        var client = app.CreateClient();
        var (datasetId, lareRun) = await DatasetWithMapsAsync(client, "set");
        var tower = await client.PostJsonAsync("/api/models", new { name = "tiny-clip", path = "clip.safetensors", kind = "clip" }, 201);

        var queued = await client.PostJsonAsync("/api/runs", new
        {
            kind = "train",
            config = new { trainDatasetId = datasetId, arch = "lare2", lareRunId = lareRun, initWeightsId = tower.GetProperty("id").GetInt64(), epochs = 2, pairsPerBatch = 2, seed = 3 },
        }, 202);
        var id = queued.GetProperty("id").GetInt64();
        Assert.Equal("device-cpu", queued.GetProperty("queue").GetString());
        var run = await Wait.RunFinishedAsync(client, id, TimeSpan.FromSeconds(180));
        Assert.True(run.GetProperty("status").GetString() == "succeeded", run.GetRawText());
        // Step by step over 2 epochs (the shared training loop), never back; the bar reaches 1 when training is done.
        testOutput.WriteLine("lare2 train: " + recorder.AssertTracksWork(id, maxJump: 0.35, finalGap: 0));
        Assert.Contains(recorder.Of(id), r => r.Phase!.StartsWith("epoch 2/2", StringComparison.Ordinal));

        await using var db = await app.Services.GetRequiredService<IDbContextFactory<PortalDb>>().CreateDbContextAsync();
        var metrics = await db.RunMetrics.Where(m => m.RunId == id).ToListAsync();
        Assert.Equal(new long[] { 1, 2 }, metrics.Where(m => m.Name == "val_balanced_acc").Select(m => m.Step).Order());
        Assert.Equal(2, metrics.Count(m => m.Name == "train_loss"));
        Assert.Equal(2, metrics.Count(m => m.Name == "lr"));
        // 3 reals and 3 fakes in batches of 2 + 2: at least one step per epoch, each with a finite loss.
        var losses = metrics.Where(m => m.Name == "loss").ToList();
        Assert.True(losses.Count >= 2, $"{losses.Count} loss point(s)");
        Assert.All(losses, l => Assert.True(double.IsFinite(l.Value) && l.Value > 0));
        var weights = await db.Weights.SingleAsync(w => w.SourceRunId == id);
        Assert.Equal(("detector", "lare2", $"lare2-run{id}"), (weights.Kind, weights.Architecture, weights.Name));
        Assert.Contains($"maps of run {lareRun}", weights.Card);
        Assert.True(File.Exists(weights.Path));
        Assert.Contains(await db.Artifacts.Where(a => a.RunId == id).Select(a => a.Kind).ToListAsync(), k => k == "weights");

        var evaluation = await client.PostJsonAsync("/api/runs", new
        {
            kind = "evaluate", config = new { datasetId, checkpoint = weights.Path, arch = "lare2", lareRunId = lareRun, split = "val", bootstrap = 0 },
        }, 202);
        var evalRun = await Wait.RunFinishedAsync(client, evaluation.GetProperty("id").GetInt64(), TimeSpan.FromSeconds(120));
        Assert.True(evalRun.GetProperty("status").GetString() == "succeeded", evalRun.GetRawText());
        var portalScores = ScoresCsv.Read(Path.Combine(tmp.Path, "runs", evalRun.GetProperty("id").GetInt64().ToString(), "scores.csv")).Rows
            .ToDictionary(r => r.Path!, r => r.Score);

        // The same checkpoint, maps and images straight through the library, batched as the evaluate job batches by default
        // (equal-size images, up to 16; batch 1 differs by float rounding, about 3e-8).
        var dataset = await db.Datasets.SingleAsync(d => d.Id == datasetId);
        var set = EvaluationSet.FromManifest(DatasetManifest.Load(Path.Combine(tmp.Path, dataset.ManifestPath!)), "val");
        using var model = Lare2Classifier.Load(weights.Path);
        var direct = Lare2Evaluator.Score(model, set.Images, new LareMapFolder(Path.Combine(tmp.Path, "lare", lareRun.ToString()), model.Options.Egre.LareChannels),
            new Lare2EvalOptions { CropSize = model.Options.Backbone.InputResolution, BatchSize = new EvaluationJob.Config(0, "").MaxBatch });
        Assert.Empty(direct.Skipped);
        Assert.Equal(6, direct.Scores.Count);
        Assert.Equal(direct.Scores.Select(s => s.RelativePath).Order(), portalScores.Keys.Order());
        foreach (var s in direct.Scores) Assert.Equal(s.Score, portalScores[s.RelativePath], 12);
        // A trained head does not give every image one score: the comparison above is not between constants.
        Assert.True(direct.Scores.Select(s => s.Score).Distinct().Count() > 1);
    }

    [Fact]
    public async Task A_LaRE2_run_left_running_by_a_crash_resumes_from_its_checkpoint_to_the_weights_of_an_uninterrupted_run()
    {
        using var tmp = new TempDir();
        SmallStableDiffusion(tmp.Sub("sd"));
        SplitSet(tmp.Sub("set"));
        TinyClipTower(tmp.Sub("clip.safetensors"));
        long datasetId, lareRun, oneEpoch, whole, crashed;
        await using (var first = new PortalFactory(tmp.Path))
        {
            var client = first.CreateClient();
            (datasetId, lareRun) = await DatasetWithMapsAsync(client, "set");
            // The trajectory does not depend on the epoch count, so a 1-epoch run leaves the state a 3-epoch run has after epoch 1.
            oneEpoch = (await client.PostJsonAsync("/api/runs", Lare2Config(datasetId, lareRun, epochs: 1), 202)).GetProperty("id").GetInt64();
            whole = (await client.PostJsonAsync("/api/runs", Lare2Config(datasetId, lareRun, epochs: 3), 202)).GetProperty("id").GetInt64();
            foreach (var id in new[] { oneEpoch, whole })
            {
                var run = await Wait.RunFinishedAsync(client, id, TimeSpan.FromSeconds(180));
                Assert.True(run.GetProperty("status").GetString() == "succeeded", run.GetRawText());
            }
        }

        // A process that died in epoch 2: the run is left running, its folder holds the epoch-1 checkpoint (no worker takes it here).
        await using (var crashing = new PortalFactory(tmp.Path, settings: new Dictionary<string, string> { ["Portal:Jobs:RunWorkers"] = "false" }))
        {
            var client = crashing.CreateClient();
            crashed = (await client.PostJsonAsync("/api/runs", Lare2Config(datasetId, lareRun, epochs: 3), 202)).GetProperty("id").GetInt64();
            Directory.CreateDirectory(tmp.Sub("runs", crashed.ToString()));
            foreach (var file in new[] { Lare2Trainer.CheckpointFileName, Lare2Trainer.BestFileName })
                File.Copy(tmp.Sub("runs", oneEpoch.ToString(), file), tmp.Sub("runs", crashed.ToString(), file));
            await using var db = await crashing.Services.GetRequiredService<IDbContextFactory<PortalDb>>().CreateDbContextAsync();
            await db.Runs.Where(r => r.Id == crashed).ExecuteUpdateAsync(u => u.SetProperty(r => r.Status, RunStatus.Running)
                .SetProperty(r => r.Attempts, 1).SetProperty(r => r.Worker, "gone:1"));
        }

        await using var restarted = new PortalFactory(tmp.Path);
        var again = restarted.CreateClient();
        var resumed = await Wait.RunFinishedAsync(again, crashed, TimeSpan.FromSeconds(180));
        var log = (await again.GetJsonAsync($"/api/runs/{crashed}/log?tail=500")).GetRawText();
        Assert.True(resumed.GetProperty("status").GetString() == "succeeded", resumed.GetRawText() + log);
        Assert.Equal(2, resumed.GetProperty("attempts").GetInt32());
        Assert.Contains("resuming from the run's last checkpoint", log);
        Assert.Contains("1 epoch(s) done", log);
        Assert.DoesNotContain("resuming", (await again.GetJsonAsync($"/api/runs/{whole}/log?tail=500")).GetRawText());

        foreach (var file in new[] { Lare2Trainer.CheckpointFileName, Lare2Trainer.BestFileName })
        {
            var a = File.ReadAllBytes(tmp.Sub("runs", crashed.ToString(), file));
            var b = File.ReadAllBytes(tmp.Sub("runs", whole.ToString(), file));
            Assert.True(a.AsSpan().SequenceEqual(b), $"{file} of the resumed run {crashed} differs from that of the uninterrupted run {whole}");
        }
        Assert.Equal(3, Lare2Checkpoint.ReadInfo(tmp.Sub("runs", crashed.ToString(), Lare2Trainer.CheckpointFileName)).Epoch);
        // The resumed run's curves hold the epochs it ran itself, once each.
        await using var check = await restarted.Services.GetRequiredService<IDbContextFactory<PortalDb>>().CreateDbContextAsync();
        Assert.Equal(new long[] { 2, 3 }, await check.RunMetrics.Where(m => m.RunId == crashed && m.Name == "val_balanced_acc").Select(m => m.Step).OrderBy(s => s).ToListAsync());
    }

    [Fact]
    public async Task Invalid_LaRE2_training_configs_are_400_naming_the_field()
    {
        using var tmp = new TempDir();
        SmallStableDiffusion(tmp.Sub("sd"));
        SplitSet(tmp.Sub("set"));
        SplitSet(tmp.Sub("other"), seedBase: 100);
        TinyClipTower(tmp.Sub("clip.safetensors"));
        File.WriteAllText(tmp.Sub("notes.safetensors"), "not weights");
        await using var app = new PortalFactory(tmp.Path);
        var client = app.CreateClient();
        var (set, lareRun) = await DatasetWithMapsAsync(client, "set");
        var otherRegistered = await client.PostJsonAsync("/api/datasets", new { name = "other", path = "other" }, 202);
        var other = otherRegistered.GetProperty("id").GetInt64();
        var registration = otherRegistered.GetProperty("runId").GetInt64();
        await Wait.RunFinishedAsync(client, registration);

        var good = $"\"trainDatasetId\": {set}, \"arch\": \"lare2\", \"lareRunId\": {lareRun}, \"init\": \"clip.safetensors\"";
        var cases = new (string Config, string Field)[]
        {
            ($"{{\"trainDatasetId\": {set}, \"arch\": \"vit\"}}", "arch"),
            ($"{{\"trainDatasetId\": {set}, \"arch\": \"lare2\", \"init\": \"clip.safetensors\"}}", "lareRunId"),
            ($"{{{good.Replace($"\"lareRunId\": {lareRun}", $"\"lareRunId\": {registration}")}}}", "lareRunId"),
            ($"{{{good.Replace($"\"lareRunId\": {lareRun}", "\"lareRunId\": 999")}}}", "lareRunId"),
            ($"{{{good.Replace($"\"trainDatasetId\": {set}", $"\"trainDatasetId\": {other}")}}}", "lareRunId"),
            ($"{{{good}, \"valDatasetId\": {other}}}", "valLareRunId"),
            ($"{{{good}, \"valDatasetId\": {other}, \"valLareRunId\": {lareRun}}}", "valLareRunId"),
            ($"{{\"trainDatasetId\": {set}, \"arch\": \"lare2\", \"lareRunId\": {lareRun}}}", "init"),
            ($"{{{good.Replace("clip.safetensors", "notes.safetensors")}}}", "init"),
            ($"{{{good.Replace("clip.safetensors", "missing.safetensors")}}}", "init"),
            ($"{{{good}, \"initWeightsId\": 999}}", "initWeightsId"),
            ($"{{{good}, \"width\": 8}}", "width"),
            ($"{{{good}, \"crop\": 64}}", "crop"),
            ($"{{{good}, \"mode\": \"synced\"}}", "mode"),
            ($"{{{good}, \"ablation\": \"sideways\"}}", "ablation"),
            ($"{{{good}, \"pairsPerBatch\": 0}}", "pairsPerBatch"),
            ($"{{{good}, \"learningRate\": -1}}", "learningRate"),
            ($"{{{good}, \"epochs\": 0}}", "epochs"),
            ($"{{\"trainDatasetId\": {set}, \"lareRunId\": {lareRun}}}", "lareRunId"),
            ($"{{\"trainDatasetId\": {set}, \"ablation\": \"no-spatial\"}}", "ablation"),
        };
        var wrong = new List<string>();
        foreach (var (config, field) in cases)
        {
            using var response = await client.PostAsJsonAsync("/api/runs", new { kind = "train", config = JsonDocument.Parse(config).RootElement });
            var text = await response.Content.ReadAsStringAsync();
            if (response.StatusCode != HttpStatusCode.BadRequest || !text.Contains($"\"{field}\""))
                wrong.Add($"{config} -> {(int)response.StatusCode} {text} (expected 400 naming {field})");
        }
        Assert.True(wrong.Count == 0, string.Join("\n", wrong));

        // The valid config is accepted: the cases above fail for their field, not for something they share.
        using var accepted = await client.PostAsJsonAsync("/api/runs", new { kind = "train", config = JsonDocument.Parse($"{{{good}, \"epochs\": 1, \"pairsPerBatch\": 1}}").RootElement });
        Assert.Equal(HttpStatusCode.Accepted, accepted.StatusCode);
        var run = await Wait.RunFinishedAsync(client, (await accepted.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetInt64(), TimeSpan.FromSeconds(120));
        Assert.True(run.GetProperty("status").GetString() == "succeeded", run.GetRawText());
    }
}
