using System.Text.Json;
using Portal.Experiments;
using Portal.Datasets;
using Portal.Zoo;
using Portal.Runs;
using Portal.Store;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.EntityFrameworkCore;

namespace Portal.Tests.Demo;

public class DemoBenchmarkTests : DemoBenchmarkTestBase
{
    [Fact]
    public async Task The_one_click_set_queues_one_aligned_pipeline_per_seed_tagged_demo_and_a_second_click_starts_nothing()
    {
        var (first, allQueued) = await Demo.QueueAsync(DemoSet.Quick);
        Assert.False(allQueued); // the sanity evaluations wait for the pipelines' detectors
        Assert.Equal(DemoBenchmark.Seeds.Count, first.Count);
        Assert.True(DemoBenchmark.Seeds.Count >= 3);
        Assert.All(first, r => Assert.True(r.Created));
        Assert.All(first, r => Assert.Equal(PipelineJob.KindName, r.Kind));

        var stored = await RunsAsync();
        Assert.Equal(DemoBenchmark.Seeds.Count, stored.Count);
        Assert.All(stored, r => Assert.Equal(RunStatus.Queued, r.Status));
        Assert.All(stored, r => Assert.Contains(DemoBenchmark.Tag, RunTags.Parse(r.Tags)));
        var configs = stored.Select(r => JsonSerializer.Deserialize<PipelineJob.Config>(r.ConfigJson, JobInputs.Json)!).ToList();
        Assert.Equal(DemoBenchmark.Seeds, configs.Select(c => c.Train!.Seed!.Value));
        var c = configs[0];
        // The aligned training reconstructs ldm_nearest's folder alone, validates on its own val split (the val reals and
        // their reconstructions, as the usual training validates on its own), and tests on all of MiniGenImage.
        Assert.Equal(AlignSourceId, c.TrainDatasetId);
        Assert.Null(c.Train!.ValDatasetId);
        Assert.Equal(DemoBenchmark.AlignBatch, c.Align!.Batch);
        Assert.Null(c.Train!.Generators);
        Assert.Equal(DatasetId, c.Evaluate!.DatasetId);
        Assert.Equal("synced", c.Train.Mode);
        Assert.Equal((DemoBenchmark.Width, DemoBenchmark.Crop, DemoBenchmark.LearningRate, DemoBenchmark.Patience), (c.Train.Width, c.Train.Crop, c.Train.LearningRate, c.Train.Patience));
        Assert.Equal(DemoBenchmark.Layers, c.Train.Layers);
        Assert.Equal(DemoBenchmark.Augmentation, c.Train.Augmentation);
        Assert.Equal("test", c.Evaluate!.Split);
        Assert.Equal("fixed,calibrated", c.Evaluate.Modes);
        // Real curves: several points per axis.
        Assert.Equal(["jpeg", "resize"], c.Sweeps!.Select(s => s.Axis));
        Assert.All(c.Sweeps!, s => Assert.True(s.Severities!.Split(',').Length >= 3));

        var (second, _) = await Demo.QueueAsync(DemoSet.Quick);
        Assert.Equal(first.Select(r => r.RunId), second.Select(r => r.RunId));
        Assert.All(second, r => Assert.False(r.Created));
        Assert.Equal(DemoBenchmark.Seeds.Count, (await RunsAsync()).Count);
        Assert.Equal(DemoBenchmark.Seeds.Count, Queue.Enqueued.Count);
    }

    [Fact]
    public async Task The_reproduction_set_adds_usual_and_ten_percent_pipelines_and_the_lare_maps_and_waits_for_them()
    {
        var (runs, allQueued) = await Demo.QueueAsync(DemoSet.Full);
        Assert.False(allQueued); // LaRE² training waits for its maps
        string[] keys = ["aligned", "usual", "aligned@10%", "usual@10%"];
        Assert.Equal([.. keys.SelectMany(k => DemoBenchmark.Seeds.Select(s => $"{k} seed {s}")), "lare2/maps"], runs.Select(r => r.Key));
        var stored = await RunsAsync();
        Assert.Equal(4 * DemoBenchmark.Seeds.Count + 1, stored.Count);
        Assert.All(stored, r => Assert.Contains(DemoBenchmark.Tag, RunTags.Parse(r.Tags)));
        var configs = stored.Where(r => r.Kind == PipelineJob.KindName).Select(r => JsonSerializer.Deserialize<PipelineJob.Config>(r.ConfigJson, JobInputs.Json)!).ToList();
        // Same detector and recipe in every row; only alignment, the fraction and the seed differ. The 10% rows run ten
        // times the epochs (and the patience) so every row takes the same number of steps.
        Assert.Single(configs.Select(c => (c.Train!.Width, c.Train.Crop, c.Train.PairsPerBatch, c.Train.LearningRate, c.Train.Augmentation)).Distinct());
        Assert.All(configs, c => Assert.Equal(
            c.Train!.Fraction is null ? (DemoBenchmark.Epochs, DemoBenchmark.Patience) : (10 * DemoBenchmark.Epochs, 10 * DemoBenchmark.Patience),
            (c.Train.Epochs, c.Train.Patience)));
        Assert.Equal(DemoBenchmark.Seeds, configs.Select(c => c.Train!.Seed!.Value).Distinct());
        var first = configs.Where((_, i) => i % DemoBenchmark.Seeds.Count == 0).ToList();
        Assert.Equal([null, "independent", null, "independent"], first.Select(c => c.Align is null ? c.Train!.Mode : null));
        Assert.Equal([AlignSourceId, DatasetId, AlignSourceId, DatasetId], first.Select(c => c.TrainDatasetId));
        Assert.All(configs.Where(c => c.Align is null), c => Assert.Equal(["ldm_nearest"], c.Train!.Generators!));
        Assert.Equal([null, null, 0.1, 0.1], first.Select(c => c.Train!.Fraction));
        // The robustness rows sweep; the 10% rows are read clean.
        Assert.Equal([2, 2, 0, 0], first.Select(c => c.Sweeps?.Length ?? 0));
        var lare = JsonDocument.Parse(stored.Single(r => r.Kind == LareExtractionJob.KindName).ConfigJson).RootElement;
        Assert.EndsWith("ldm_nearest", lare.GetProperty("sd").GetString());

        // The one-click pipelines are the reproduction set's aligned rows: no second copy; queueing again creates nothing.
        var (again, _) = await Demo.QueueAsync(DemoSet.Full);
        Assert.All(again, r => Assert.False(r.Created));
        Assert.Equal(4 * DemoBenchmark.Seeds.Count + 1, (await RunsAsync()).Count);
        var (quick, _) = await Demo.QueueAsync(DemoSet.Quick);
        Assert.Equal(runs.Take(DemoBenchmark.Seeds.Count).Select(r => r.RunId), quick.Select(r => r.RunId));
    }

    [Fact]
    public async Task Before_aligning_the_demo_registers_ldm_nearests_folder_and_queues_the_aligned_pipeline_once_it_is_ready()
    {
        await using (var db = Db())
        {
            db.Datasets.Remove((await db.Datasets.FindAsync(AlignSourceId))!);
            await db.SaveChangesAsync();
        }
        var (first, allQueued) = await Demo.QueueAsync(DemoSet.Quick);
        Assert.False(allQueued);
        var registering = Assert.Single(first);
        Assert.Equal("register-dataset", registering.Kind);
        await using (var db = Db())
        {
            var source = await db.Datasets.SingleAsync(d => d.Name == DemoBenchmark.AlignSourceName);
            Assert.Equal(Path.Combine(DataDir, "minigenimage", "ldm_nearest"), source.Path);
            Assert.Equal(DatasetStatus.Registering, source.Status);
            // Asked again while it registers: the same run, nothing new.
            Assert.Equal(registering.RunId, Assert.Single((await Demo.QueueAsync(DemoSet.Quick)).Runs).RunId);
            (source.Status, source.ManifestPath) = (DatasetStatus.Ready, "datasets/3/manifest.json.gz");
            await db.SaveChangesAsync();
        }
        var (second, done) = await Demo.QueueAsync(DemoSet.Quick);
        Assert.False(done); // the sanity evaluations wait for the pipelines
        Assert.Equal(DemoBenchmark.Seeds.Count, second.Count);
        Assert.All(second, r => Assert.Equal(PipelineJob.KindName, r.Kind));
    }

    [Fact]
    public async Task Without_minigenimage_the_demo_says_what_is_missing()
    {
        await using (var db = Db())
        {
            var d = await db.Datasets.FindAsync(DatasetId);
            d!.Name = "other";
            await db.SaveChangesAsync();
        }
        var e = await Assert.ThrowsAsync<DemoNotReadyException>(() => Demo.QueueAsync(DemoSet.Quick));
        Assert.Contains("'minigenimage' is not registered", e.Message);
        Assert.Empty(await RunsAsync());
    }

    [Fact]
    public async Task Training_validation_names_the_generators_maxImages_and_fraction_fields()
    {
        var runs = Services.GetRequiredService<RunService>();
        async Task<FieldException> Bad(object config) => await Assert.ThrowsAsync<FieldException>(() => runs.CreateAsync(TrainingJob.KindName, config));
        Assert.Equal("generators", (await Bad(new { trainDatasetId = DatasetId, mode = "independent", generators = new[] { "sdv4" } })).Field);
        Assert.Contains("'sdv4'", (await Bad(new { trainDatasetId = DatasetId, mode = "independent", generators = new[] { "sdv4" } })).Message);
        Assert.Equal("generators", (await Bad(new { trainDatasetId = DatasetId, mode = "independent", generators = Array.Empty<string>() })).Field);
        Assert.Equal("maxImages", (await Bad(new { trainDatasetId = DatasetId, mode = "independent", maxImages = 0 })).Field);
        Assert.Equal("fraction", (await Bad(new { trainDatasetId = DatasetId, mode = "independent", fraction = 1.5 })).Field);
        Assert.Equal("maxImages", (await Bad(new { trainDatasetId = DatasetId, mode = "independent", maxImages = 3, fraction = 0.5 })).Field);
        var ok = await runs.CreateAsync(TrainingJob.KindName, new { trainDatasetId = DatasetId, mode = "independent", generators = new[] { "LDM_NEAREST" }, maxImages = 1 });
        Assert.Equal(RunStatus.Queued, ok.Status);
    }
}
