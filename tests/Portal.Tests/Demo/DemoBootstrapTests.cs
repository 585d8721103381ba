using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Portal.Experiments;
using Portal.Datasets;
using Portal.Zoo;
using Portal.Runs;
using Portal.Store;
using Portal.Tests.Support;

namespace Portal.Tests.Demo;

/// <summary>Collects the portal's log lines (level and message) for the assertions.</summary>
public sealed class CapturedLog : ILoggerProvider
{
    public ConcurrentQueue<(LogLevel Level, string Category, string Message)> Lines { get; } = new();
    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);
    public void Dispose() { }

    public bool Has(LogLevel level, params string[] parts) =>
        Lines.Any(l => l.Level == level && parts.All(p => l.Message.Contains(p, StringComparison.Ordinal)));

    sealed class Logger(CapturedLog log, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => true;
        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            log.Lines.Enqueue((logLevel, category, formatter(state, exception)));
    }
}

/// <summary>The demo on start: MiniGenImage built and registered, the demo models in the zoo, once.</summary>
[Collection(Support.TorchThreadsCollection.Name)]
public sealed class DemoBootstrapTests(DemoModels models) : IClassFixture<DemoModels>
{
    static PortalFactory Portal(string dataDir, string modelsDir, bool enabled = true, CapturedLog? log = null, ProgressRecorder? progress = null) =>
        new(dataDir, s =>
            {
                if (log is not null) s.AddSingleton<ILoggerProvider>(log);
                if (progress is not null) ProgressRecorder.Into(progress)(s);
            },
            new Dictionary<string, string> { ["Portal:Demo:Enabled"] = enabled ? "true" : "false", ["Portal:Demo:ModelsDir"] = modelsDir });

    /// <summary>Starts the portal and waits for the demo's start-up work to finish.</summary>
    static async Task StartAsync(PortalFactory factory)
    {
        using var client = factory.CreateClient();
        (await client.GetAsync("/api/health")).EnsureSuccessStatusCode();
        await factory.Services.GetRequiredService<DemoBootstrap>().Completion.WaitAsync(TimeSpan.FromSeconds(60));
    }

    static async Task<PortalDb> DbAsync(PortalFactory factory) =>
        await factory.Services.GetRequiredService<IDbContextFactory<PortalDb>>().CreateDbContextAsync();

    [Fact]
    public async Task The_cost_endpoint_takes_a_zoo_generator_with_its_own_ddim_steps()
    {
        using var data = new TempDir();
        await using var portal = Portal(data.Path, models.ModelsDir);
        await StartAsync(portal);
        long vae, ldm, dcgan;
        await using (var db = await DbAsync(portal))
        {
            vae = (await db.Weights.SingleAsync(w => w.Name == "vae-nearest")).Id;
            ldm = (await db.Weights.SingleAsync(w => w.Name == "ldm_nearest")).Id;
            dcgan = (await db.Weights.SingleAsync(w => w.Name == "dcgan")).Id;
        }
        using var client = portal.CreateClient();
        using var response = await client.GetAsync($"/api/models/cost?autoencoder={vae}&unet={ldm}&size=64");
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == System.Net.HttpStatusCode.OK, body);
        var cost = System.Text.Json.JsonDocument.Parse(body).RootElement;
        // The generator's generator.json samples with 2 DDIM steps (DemoModels), no guidance: one UNet pass per step.
        Assert.Equal(2, cost.GetProperty("steps").GetInt32());
        Assert.Equal(2 * cost.GetProperty("unetMacsPerStep").GetInt64() + cost.GetProperty("decodeMacs").GetInt64(), cost.GetProperty("generationMacs").GetInt64());
        Assert.True(cost.GetProperty("unetMacsPerStep").GetInt64() > 0);
        // The demo page's cost table counts the same pair.
        var page = await portal.Services.GetRequiredService<DemoQuery>().CostMacsAsync();
        Assert.Equal((2, cost.GetProperty("generationMacs").GetInt64(), cost.GetProperty("alignmentMacs").GetInt64()), (page!.Steps, page.GenerationMacs, page.AlignmentMacs));
        // Steps given still win.
        using var fifty = await client.GetAsync($"/api/models/cost?autoencoder={vae}&unet={ldm}&steps=50&size=64");
        Assert.Equal(50, System.Text.Json.JsonDocument.Parse(await fifty.Content.ReadAsStringAsync()).RootElement.GetProperty("steps").GetInt32());
        // A GAN has no UNet: a 400 naming unet.
        using var gan = await client.GetAsync($"/api/models/cost?autoencoder={vae}&unet={dcgan}");
        Assert.Equal(System.Net.HttpStatusCode.BadRequest, gan.StatusCode);
        Assert.Contains("unet", await gan.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task First_start_builds_minigenimage_and_registers_the_demo_models_and_a_restart_adds_nothing()
    {
        using var data = new TempDir();
        long datasetId, runId;
        var recorder = new ProgressRecorder();
        await using (var first = Portal(data.Path, models.ModelsDir, progress: recorder))
        {
            await StartAsync(first);
            await using (var db = await DbAsync(first))
            {
                var builds = await db.Runs.AsNoTracking().Where(r => r.Kind == MiniGenImageBuildJob.KindName).ToListAsync();
                runId = Assert.Single(builds).Id;
                Assert.Equal(JobQueues.DeviceCpu, builds[0].Queue);
            }
            using var client = first.CreateClient();
            var run = await Wait.RunFinishedAsync(client, runId, TimeSpan.FromSeconds(120));
            Assert.True(run.GetProperty("status").GetString() == "succeeded", run.GetRawText());
            Assert.Equal(1.0, run.GetProperty("progress").GetDouble());
            // Progress moves photo by photo while cutting patches, then image by image while sampling (48 images, a few
            // hundredths each); the scan is throttled to one report per 100 ms within its last tenth.
            recorder.AssertTracksWork(runId, maxJump: 0.12, finalGap: 0);
            Assert.Contains(recorder.Of(runId), r => r.Phase!.StartsWith("patches: ", StringComparison.Ordinal) && r.Fraction > 0);

            await using var db2 = await DbAsync(first);
            var dataset = await db2.Datasets.AsNoTracking().Include(d => d.Subsets).SingleAsync(d => d.Name == "minigenimage");
            datasetId = dataset.Id;
            Assert.Equal(DatasetStatus.Ready, dataset.Status);
            Assert.Equal("genimage", dataset.Layout);
            Assert.Equal(Path.Combine(data.Path, "minigenimage"), dataset.Path);
            Assert.Equal(runId, dataset.RegistrationRunId);
            Assert.NotNull(dataset.ContentHash);
            var expected = (from g in DemoModels.Generators
                            from split in new[] { ("train", 4), ("val", 2), ("test", 2) }
                            from label in new[] { "fake", "real" }
                            select $"{g}/{split.Item1}/{label}={split.Item2}").Order().ToList();
            Assert.Equal(expected, dataset.Subsets.Select(s => $"{s.Generator}/{s.Split}/{s.Label}={s.Count}").Order().ToList());
            Assert.Equal(3 * 2 * 8, dataset.Images);

            // The lineage: the builder's minigenimage.json (catalogue hash, weights hashes, seeds, counts) under the run that built it.
            var lineage = JsonNode.Parse(dataset.LineageJson!)!;
            Assert.Equal("minigenimage", (string?)lineage["kind"]);
            Assert.Equal(runId, (long?)lineage["buildRunId"]);
            var build = lineage["build"]!;
            Assert.Equal(11, (long?)build["seed"]);
            Assert.Equal(64, (int?)build["patches"]!["size"]);
            Assert.Equal(64, ((string?)build["photoCatalogueSha256"])!.Length);
            var generators = build["generators"]!.AsArray();
            Assert.Equal(DemoModels.Generators, generators.Select(g => (string?)g!["name"]));
            Assert.All(generators, g => Assert.Equal(MiniGenImageBuildJob.FolderSha256(Path.Combine(models.DemoDir, (string)g!["name"]!)), (string?)g["weightsSha256"]));
            Assert.Equal([4, 2, 2], build["splits"]!.AsArray().Select(s => (int)s!["count"]!));
            var artifacts = await db2.Artifacts.AsNoTracking().Where(a => a.RunId == runId).Select(a => a.Kind).OrderBy(k => k).ToListAsync();
            Assert.Equal(["lineage", "manifest"], artifacts);
            Assert.True(File.Exists(Path.Combine(data.Path, "minigenimage", "minigenimage.json")));

            var zoo = await db2.Weights.AsNoTracking().OrderBy(w => w.Name).ToListAsync();
            Assert.Equal(DemoModels.ZooNames.Order(), zoo.Select(w => w.Name));
            Assert.Equal(("autoencoder", "autoencoder-kl"), zoo.Where(w => w.Name == "vae-nearest").Select(w => (w.Kind, w.Architecture)).Single());
            Assert.Equal(("generator", "ldm"), zoo.Where(w => w.Name == "ldm_transpose").Select(w => (w.Kind, w.Architecture)).Single());
            Assert.Equal(("generator", "dcgan"), zoo.Where(w => w.Name == "dcgan").Select(w => (w.Kind, w.Architecture)).Single());
            // The trainer's card (seed, source, licence) is kept with the zoo's inspection.
            Assert.All(zoo, w => Assert.Contains("licence:", w.Card));
            Assert.All(zoo, w => Assert.Equal(64, w.Sha256?.Length));
        }

        await using (var second = Portal(data.Path, models.ModelsDir))
        {
            await StartAsync(second);
            await using var db = await DbAsync(second);
            Assert.Equal([runId], await db.Runs.AsNoTracking().Where(r => r.Kind == MiniGenImageBuildJob.KindName).Select(r => r.Id).ToListAsync());
            Assert.Equal([datasetId], await db.Datasets.AsNoTracking().Select(d => d.Id).ToListAsync());
            Assert.Equal(DemoModels.ZooNames.Length, await db.Weights.CountAsync());
        }

        // A changed demo.json (here the patches' detail floor) is reported, and the dataset its runs used is kept.
        var changed = DemoModels.DemoManifestJson();
        changed["dataset"]!["minLaplacianEnergy"] = 100;
        models.WriteManifest(changed);
        try
        {
            var log = new CapturedLog();
            await using var third = Portal(data.Path, models.ModelsDir, log: log);
            await StartAsync(third);
            Assert.True(log.Has(LogLevel.Warning, "'minigenimage'", "was built from another version of", "it is kept as it is"),
                string.Join("\n", log.Lines.Where(l => l.Message.StartsWith("Demo", StringComparison.Ordinal)).Select(l => l.Message)));
            await using var db = await DbAsync(third);
            Assert.Equal([runId], await db.Runs.AsNoTracking().Where(r => r.Kind == MiniGenImageBuildJob.KindName).Select(r => r.Id).ToListAsync());
            Assert.Equal([datasetId], await db.Datasets.AsNoTracking().Select(d => d.Id).ToListAsync());
        }
        finally
        {
            models.WriteManifest(DemoModels.DemoManifestJson());
        }
    }

    [Fact]
    public async Task The_zoo_infers_a_generator_folder_and_refuses_the_wrong_generator_architecture()
    {
        using var data = new TempDir();
        await using var portal = new PortalFactory(data.Path, settings: new Dictionary<string, string>
        {
            ["Portal:AllowedRoots:0"] = data.Path, ["Portal:AllowedRoots:1"] = models.ModelsDir,
        });
        using var client = portal.CreateClient();
        var dcgan = Path.Combine(models.DemoDir, "dcgan");
        var wrong = await client.PostJsonAsync("/api/models", new { name = "g1", path = dcgan, kind = "generator", architecture = "ldm" }, 400);
        Assert.Contains("generator.json says kind 'dcgan'", wrong.GetProperty("detail").GetString());
        var inferred = await client.PostJsonAsync("/api/models", new { name = "g2", path = dcgan }, 201);
        Assert.Equal("generator", inferred.GetProperty("kind").GetString());
        Assert.Equal("dcgan", inferred.GetProperty("architecture").GetString());
        // A generator's Stable Diffusion folder still registers as the autoencoder in its vae/.
        var vae = await client.PostJsonAsync("/api/models", new { name = "ae", path = Path.Combine(models.DemoDir, "ldm_nearest"), kind = "autoencoder" }, 201);
        Assert.Equal("autoencoder-kl", vae.GetProperty("architecture").GetString());
    }

    [Fact]
    public async Task Disabled_demo_queues_nothing_and_registers_nothing()
    {
        using var data = new TempDir();
        var log = new CapturedLog();
        await using var portal = Portal(data.Path, models.ModelsDir, enabled: false, log: log);
        await StartAsync(portal);
        await using var db = await DbAsync(portal);
        Assert.Equal(0, await db.Runs.CountAsync());
        Assert.Equal(0, await db.Weights.CountAsync());
        Assert.Equal(0, await db.Datasets.CountAsync());
        Assert.True(log.Has(LogLevel.Information, "Demo: disabled"));
    }

    [Fact]
    public async Task Bad_demo_json_is_logged_with_file_and_field_and_the_portal_still_starts()
    {
        using var data = new TempDir();
        using var bad = new TempDir();
        var manifest = DemoModels.DemoManifestJson();
        manifest["dataset"]!["counts"]!["val"] = "many";
        var file = Path.Combine(bad.Path, "demo", "demo.json");
        Directory.CreateDirectory(Path.GetDirectoryName(file)!);
        File.WriteAllText(file, manifest.ToJsonString());
        var log = new CapturedLog();
        await using var portal = Portal(data.Path, bad.Path, log: log);
        await StartAsync(portal);
        Assert.True(log.Has(LogLevel.Error, file, "'dataset.counts.val'", "must be an integer"),
            string.Join("\n", log.Lines.Where(l => l.Message.StartsWith("Demo", StringComparison.Ordinal)).Select(l => l.Message)));
        using var client = portal.CreateClient();
        (await client.GetAsync("/api/health")).EnsureSuccessStatusCode();
        await using var db = await DbAsync(portal);
        Assert.Equal(0, await db.Runs.CountAsync());
        Assert.Equal(0, await db.Weights.CountAsync());
    }

    [Fact]
    public async Task A_users_dataset_named_minigenimage_is_left_alone()
    {
        using var data = new TempDir();
        ImageFolders.GenImage(Path.Combine(data.Path, "mine"));
        // First a portal without the demo, where the user registers their own "minigenimage".
        await using (var plain = Portal(data.Path, models.ModelsDir, enabled: false))
        {
            using var client = plain.CreateClient();
            var created = await client.PostJsonAsync("/api/datasets", new { name = "minigenimage", path = "mine" }, 202);
            await Wait.RunFinishedAsync(client, created.GetProperty("runId").GetInt64());
        }
        var log = new CapturedLog();
        await using var portal = Portal(data.Path, models.ModelsDir, log: log);
        await StartAsync(portal);
        Assert.True(log.Has(LogLevel.Warning, "'minigenimage'", "not built by the demo"));
        await using var db = await DbAsync(portal);
        Assert.Equal(0, await db.Runs.CountAsync(r => r.Kind == MiniGenImageBuildJob.KindName));
        var dataset = await db.Datasets.AsNoTracking().SingleAsync();
        Assert.Equal(Path.Combine(data.Path, "mine"), dataset.Path);
        Assert.Null(dataset.LineageJson);
    }
}
