using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Portal.Store;
using Portal.Tests.Support;
using Xunit.Abstractions;
using SkiaSharp;

namespace Portal.Tests.Jobs;

/// <summary>The "align" job through the API: reconstructions beside their reals, a new dataset with lineage, resumable, then trainable.</summary>
[Collection(Support.TorchThreadsCollection.Name)]
public class AlignmentJobTests(ITestOutputHelper testOutput)
{
    static string Fixture(params string[] parts) => Path.Combine([AppContext.BaseDirectory, "fixtures", .. parts]);

    /// <summary>The small test VAE (config.json + diffusion_pytorch_model.safetensors) copied into the data directory.</summary>
    static string CopyVae(string to)
    {
        Directory.CreateDirectory(to);
        foreach (var name in new[] { "config.json", "diffusion_pytorch_model.safetensors" }) File.Copy(Fixture("sd", "vae", name), Path.Combine(to, name));
        return to;
    }

    /// <summary>A reals-only source: train/0_real and val/0_real, one odd size (not a multiple of the VAE's factor 2).</summary>
    static void RealsOnly(string root, int perSplit, int side = 16)
    {
        var seed = 0;
        foreach (var split in new[] { "train", "val" })
            for (var i = 0; i < perSplit; i++)
            {
                var w = i == 0 ? side + 1 : side;
                ImageFolders.Write(Path.Combine(root, split, "0_real", $"img{i}.png"), ImageFolders.Encode(w, side, SKEncodedImageFormat.Png, seed++));
            }
    }

    static async Task<long> RegisterAsync(HttpClient client, string name, string path)
    {
        var registered = await client.PostJsonAsync("/api/datasets", new { name, path }, 202);
        var run = await Wait.RunFinishedAsync(client, registered.GetProperty("runId").GetInt64());
        Assert.Equal("succeeded", run.GetProperty("status").GetString());
        return registered.GetProperty("id").GetInt64();
    }

    [Fact]
    public async Task An_alignment_makes_a_new_paired_dataset_with_lineage_and_metrics_and_trains_synced_or_unsynced()
    {
        using var tmp = new TempDir();
        RealsOnly(tmp.Sub("reals"), 4);
        CopyVae(tmp.Sub("models", "tiny-vae"));
        var recorder = new ProgressRecorder();
        await using var app = new PortalFactory(tmp.Path, ProgressRecorder.Into(recorder));
        var client = app.CreateClient();
        var sourceId = await RegisterAsync(client, "reals", "reals");
        var source = await client.GetJsonAsync($"/api/datasets/{sourceId}");

        var queued = await client.PostJsonAsync("/api/runs", new { kind = "align", config = new { sourceDatasetId = sourceId, vae = "models/tiny-vae" } }, 202);
        Assert.Equal("device-cpu", queued.GetProperty("queue").GetString());
        var runId = queued.GetProperty("id").GetInt64();
        var run = await Wait.RunFinishedAsync(client, runId, TimeSpan.FromSeconds(120));
        Assert.True(run.GetProperty("status").GetString() == "succeeded", run.GetRawText());
        // Reconstruction moves the bar image by image up to 0.9; linking and scanning the new dataset take the rest.
        testOutput.WriteLine("align: " + recorder.AssertTracksWork(runId, maxJump: 0.35, finalGap: 0));

        // One PNG per real, same stem and size, beside the real itself.
        var output = Path.Combine(tmp.Path, "aligned", runId.ToString());
        foreach (var real in Directory.GetFiles(tmp.Sub("reals"), "*.png", SearchOption.AllDirectories))
        {
            var relative = Path.GetRelativePath(tmp.Sub("reals"), real);
            var fake = Path.Combine(output, relative.Replace("0_real", "1_fake"));
            Assert.True(File.Exists(fake), fake);
            using (var a = SKBitmap.Decode(real))
            using (var b = SKBitmap.Decode(fake))
                Assert.Equal((a.Width, a.Height), (b.Width, b.Height));
            Assert.Equal(File.ReadAllBytes(real), File.ReadAllBytes(Path.Combine(output, relative)));
        }
        Assert.Equal(8, Directory.GetFiles(output, "*.png", SearchOption.AllDirectories).Count(f => f.Contains("1_fake")));

        await using var db = await app.Services.GetRequiredService<IDbContextFactory<PortalDb>>().CreateDbContextAsync();
        var aligned = await db.Datasets.Include(d => d.Subsets).SingleAsync(d => d.Name == "reals-aligned-tiny-vae");
        Assert.Equal(DatasetStatus.Ready, aligned.Status);
        Assert.Equal(16, aligned.Images);
        Assert.Equal(8, aligned.Subsets.Where(s => s.Label == "fake").Sum(s => s.Count));
        using var lineage = JsonDocument.Parse(aligned.LineageJson!);
        var l = lineage.RootElement;
        Assert.Equal(source.GetProperty("contentHash").GetString(), l.GetProperty("source").GetProperty("contentHash").GetString());
        Assert.Equal(sourceId, l.GetProperty("source").GetProperty("datasetId").GetInt64());
        var vaeSha = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(tmp.Sub("models", "tiny-vae", "diffusion_pytorch_model.safetensors"))));
        Assert.Equal(vaeSha, l.GetProperty("vae").GetProperty("sha256").GetString());
        Assert.Equal(42, l.GetProperty("seed").GetInt64());
        Assert.Equal("sample", l.GetProperty("posterior").GetString());
        Assert.Equal("pad", l.GetProperty("sizePolicy").GetString());
        Assert.Equal("hardlink", l.GetProperty("reals").GetProperty("mode").GetString());
        Assert.True(l.GetProperty("psnr").GetProperty("mean").GetDouble() > 0);

        var metrics = await db.RunMetrics.Where(m => m.RunId == runId).ToDictionaryAsync(m => m.Name, m => m.Value);
        foreach (var name in new[] { "seconds_per_image", "macs_per_image", "psnr_mean", "psnr_min" }) Assert.True(metrics.ContainsKey(name), name);
        Assert.True(metrics["macs_per_image"] > 0);
        Assert.Contains(await db.Artifacts.Where(a => a.RunId == runId).Select(a => a.Kind).ToListAsync(), k => k == "alignment");

        // The ablation is one switch: the same aligned set trains synced and unsynced.
        var trainRuns = new List<long>();
        foreach (var mode in new[] { "synced", "unsynced" })
        {
            var train = await client.PostJsonAsync("/api/runs", new
            {
                kind = "train",
                config = new { trainDatasetId = aligned.Id, mode, epochs = 1, pairsPerBatch = 2, width = 4, layers = new[] { 1, 1, 1, 1 }, crop = 8, augment = "none", seed = 3 },
            }, 202);
            trainRuns.Add(train.GetProperty("id").GetInt64());
        }
        foreach (var id in trainRuns)
        {
            var done = await Wait.RunFinishedAsync(client, id, TimeSpan.FromSeconds(180));
            Assert.True(done.GetProperty("status").GetString() == "succeeded", done.GetRawText());
        }
        var log = await client.GetJsonAsync($"/api/runs/{trainRuns[0]}/log");
        Assert.Contains(log.EnumerateArray(), line => line.GetProperty("message").GetString()!.Contains("pairs"));
    }

    [Fact]
    public async Task An_alignment_left_running_by_a_crash_resumes_without_duplicating_files_or_rows()
    {
        using var tmp = new TempDir();
        RealsOnly(tmp.Sub("reals"), 30, side: 48);
        CopyVae(tmp.Sub("vae"));
        long sourceId, whole, crashed;
        await using (var first = new PortalFactory(tmp.Path))
        {
            var client = first.CreateClient();
            sourceId = await RegisterAsync(client, "reals", "reals");
            whole = (await client.PostJsonAsync("/api/runs", new { kind = "align", config = new { sourceDatasetId = sourceId, vae = "vae", name = "whole" } }, 202))
                .GetProperty("id").GetInt64();
            var done = await Wait.RunFinishedAsync(client, whole, TimeSpan.FromSeconds(180));
            Assert.True(done.GetProperty("status").GetString() == "succeeded", done.GetRawText());
        }
        var wholeOutput = Path.Combine(tmp.Path, "aligned", whole.ToString());
        var fakes = Directory.GetFiles(wholeOutput, "*.png", SearchOption.AllDirectories).Where(f => f.Contains("1_fake"))
            .Select(f => Path.GetRelativePath(wholeOutput, f)).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(60, fakes.Count);

        // A process that died mid-alignment (the crash is staged, so it happens at the same point on any machine): the run
        // is left running, its folder holds the first 10 reconstructions and a half-written 11th.
        string output;
        await using (var crashing = new PortalFactory(tmp.Path, settings: new Dictionary<string, string> { ["Portal:Jobs:RunWorkers"] = "false" }))
        {
            var client = crashing.CreateClient();
            crashed = (await client.PostJsonAsync("/api/runs", new { kind = "align", config = new { sourceDatasetId = sourceId, vae = "vae", name = "resumed" } }, 202))
                .GetProperty("id").GetInt64();
            output = Path.Combine(tmp.Path, "aligned", crashed.ToString());
            foreach (var fake in fakes.Take(10))
            {
                Directory.CreateDirectory(Path.GetDirectoryName(Path.Combine(output, fake))!);
                File.Copy(Path.Combine(wholeOutput, fake), Path.Combine(output, fake));
            }
            File.WriteAllBytes(Path.Combine(output, fakes[10] + ".partial"), [1, 2, 3]);
            await using var db = await crashing.Services.GetRequiredService<IDbContextFactory<PortalDb>>().CreateDbContextAsync();
            await db.Runs.Where(r => r.Id == crashed).ExecuteUpdateAsync(u => u.SetProperty(r => r.Status, RunStatus.Running)
                .SetProperty(r => r.Attempts, 1).SetProperty(r => r.Worker, "gone:1"));
        }

        await using var second = new PortalFactory(tmp.Path);
        var again = second.CreateClient();
        var run = await Wait.RunFinishedAsync(again, crashed, TimeSpan.FromSeconds(180));
        Assert.True(run.GetProperty("status").GetString() == "succeeded", run.GetRawText());
        Assert.Equal(2, run.GetProperty("attempts").GetInt32());

        var files = Directory.GetFiles(output, "*", SearchOption.AllDirectories);
        Assert.Equal(60, files.Count(f => f.Contains("1_fake") && f.EndsWith(".png")));
        Assert.Equal(60, files.Count(f => f.Contains("0_real")));
        Assert.DoesNotContain(files, f => f.EndsWith(".partial"));
        var record = JsonDocument.Parse(File.ReadAllText(Path.Combine(output, "alignment.json"))).RootElement;
        var log = (await again.GetJsonAsync($"/api/runs/{crashed}/log?tail=500")).GetRawText();
        Assert.True(record.GetProperty("skippedExisting").GetInt32() == 10, $"skipped {record.GetProperty("skippedExisting")}, not the 10 left by the crash: {log}");
        // Kept and new reconstructions alike equal the uninterrupted run's (one seeded draw per image, whatever the order).
        foreach (var fake in fakes)
            Assert.True(File.ReadAllBytes(Path.Combine(output, fake)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(wholeOutput, fake))), fake);

        await using var check = await second.Services.GetRequiredService<IDbContextFactory<PortalDb>>().CreateDbContextAsync();
        var dataset = await check.Datasets.SingleAsync(d => d.Name == "resumed");
        Assert.Equal(120, dataset.Images);
        Assert.Equal(3, await check.Datasets.CountAsync());
        Assert.Single(await check.Artifacts.Where(a => a.RunId == crashed && a.Kind == "alignment").ToListAsync());
        Assert.Single(await check.RunMetrics.Where(m => m.RunId == crashed && m.Name == "psnr_mean").ToListAsync());
    }

    [Theory]
    [InlineData("{\"sourceDatasetId\": 99, \"vae\": \"vae\"}", "sourceDatasetId", 400)]
    [InlineData("{\"sourceDatasetId\": 1}", "vae", 400)]
    [InlineData("{\"sourceDatasetId\": 1, \"vae\": \"/etc\"}", "vae", 400)]
    [InlineData("{\"sourceDatasetId\": 1, \"vae\": \"reals\"}", "vae", 400)]
    [InlineData("{\"sourceDatasetId\": 1, \"vae\": \"novae\"}", "vae", 400)]
    [InlineData("{\"sourceDatasetId\": 1, \"vaeWeightsId\": 7}", "vaeWeightsId", 400)]
    [InlineData("{\"sourceDatasetId\": 1, \"vae\": \"vae\", \"posterior\": \"median\"}", "posterior", 400)]
    [InlineData("{\"sourceDatasetId\": 1, \"vae\": \"vae\", \"sizePolicy\": \"stretch\"}", "sizePolicy", 400)]
    [InlineData("{\"sourceDatasetId\": 1, \"vae\": \"vae\", \"batch\": 0}", "batch", 400)]
    [InlineData("{\"sourceDatasetId\": 1, \"vae\": \"vae\", \"name\": \"reals\"}", "name", 409)]
    public async Task An_invalid_alignment_config_names_the_field_and_queues_nothing(string config, string field, int status)
    {
        using var tmp = new TempDir();
        RealsOnly(tmp.Sub("reals"), 1);
        CopyVae(tmp.Sub("vae"));
        Directory.CreateDirectory(tmp.Sub("novae"));
        File.WriteAllText(tmp.Sub("novae", "config.json"), "{}");
        await using var app = new PortalFactory(tmp.Path);
        var client = app.CreateClient();
        await RegisterAsync(client, "reals", "reals");
        using var response = await client.PostAsJsonAsync("/api/runs", new { kind = "align", config = JsonDocument.Parse(config).RootElement });
        Assert.Equal((HttpStatusCode)status, response.StatusCode);
        var problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        Assert.True(problem.GetProperty("errors").TryGetProperty(field, out _), problem.GetRawText());
        Assert.Single((await client.GetJsonAsync("/api/runs")).EnumerateArray()); // only the registration
    }
}
