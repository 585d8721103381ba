using System.Net;
using System.Net.Http.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Portal.Store;
using Portal.Tests.Support;
using Xunit.Abstractions;

namespace Portal.Tests.Jobs;

/// <summary>The "lare" job: maps for every image of a dataset, and a re-run served from the cache.</summary>
public class LareExtractionJobTests(ITestOutputHelper testOutput)
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

    [Fact]
    public async Task Maps_are_written_for_every_image_and_a_rerun_comes_from_the_cache()
    {
        using var tmp = new TempDir();
        SmallStableDiffusion(tmp.Sub("sd"));
        ImageFolders.RealFake(tmp.Sub("images"), 2);
        var recorder = new ProgressRecorder();
        await using var app = new PortalFactory(tmp.Path, ProgressRecorder.Into(recorder));
        var client = app.CreateClient();
        var registered = await client.PostJsonAsync("/api/datasets", new { name = "images", path = "images" }, 202);
        await Wait.RunFinishedAsync(client, registered.GetProperty("runId").GetInt64());
        var config = new { datasetId = registered.GetProperty("id").GetInt64(), sd = "sd", ensemble = 2, resizeTo = 32, seed = 3, prompt = "a photo" };

        long[] runs = new long[2];
        for (var i = 0; i < 2; i++)
        {
            var queued = await client.PostJsonAsync("/api/runs", new { kind = "lare", config }, 202);
            runs[i] = queued.GetProperty("id").GetInt64();
            var run = await Wait.RunFinishedAsync(client, runs[i], TimeSpan.FromSeconds(120));
            Assert.True(run.GetProperty("status").GetString() == "succeeded", run.GetRawText());
        }
        await using var db = await app.Services.GetRequiredService<IDbContextFactory<PortalDb>>().CreateDbContextAsync();
        double Metric(long run, string name) => db.RunMetrics.Single(m => m.RunId == run && m.Name == name).Value;
        // 4 images: the bar moves a quarter per map, computed or from the cache.
        foreach (var run in runs) testOutput.WriteLine($"lare run {run}: " + recorder.AssertTracksWork(run, maxJump: 0.26, finalGap: 0));
        Assert.Equal(4, Metric(runs[0], "maps_computed"));
        Assert.Equal(0, Metric(runs[1], "maps_computed"));
        Assert.Equal(4, Metric(runs[1], "maps_from_cache"));
        foreach (var run in runs)
            Assert.Equal(4, Directory.GetFiles(Path.Combine(tmp.Path, "lare", run.ToString()), "*.safetensors", SearchOption.AllDirectories)
                .Count(f => !f.Contains(Path.DirectorySeparatorChar + ".cache")));
        var first = File.ReadAllBytes(Path.Combine(tmp.Path, "lare", runs[0].ToString(), "1_fake", "00000.safetensors"));
        var second = File.ReadAllBytes(Path.Combine(tmp.Path, "lare", runs[1].ToString(), "1_fake", "00000.safetensors"));
        Assert.Equal(first, second);
    }

    [Fact]
    public async Task A_LaRE2_checkpoint_is_evaluated_with_the_maps_of_a_LaRE_run()
    {
        using var tmp = new TempDir();
        SmallStableDiffusion(tmp.Sub("sd"));
        ImageFolders.RealFake(tmp.Sub("images"), 3);
        File.Copy(Path.Combine(AppContext.BaseDirectory, "fixtures", "lare", "lare2_small.pth"), tmp.Sub("lare2.pth"));
        await using var app = new PortalFactory(tmp.Path);
        var client = app.CreateClient();
        var registered = await client.PostJsonAsync("/api/datasets", new { name = "images", path = "images" }, 202);
        var datasetId = registered.GetProperty("id").GetInt64();
        await Wait.RunFinishedAsync(client, registered.GetProperty("runId").GetInt64());
        var lare = await client.PostJsonAsync("/api/runs", new { kind = "lare", config = new { datasetId, sd = "sd", ensemble = 2, resizeTo = 32, prompt = "a photo" } }, 202);
        var lareRun = lare.GetProperty("id").GetInt64();
        await Wait.RunFinishedAsync(client, lareRun, TimeSpan.FromSeconds(120));

        using (var bad = await client.PostAsJsonAsync("/api/runs", new { kind = "evaluate", config = new { datasetId, checkpoint = "lare2.pth", arch = "lare2" } }))
            Assert.Contains("lareRunId", await bad.Content.ReadAsStringAsync());
        var queued = await client.PostJsonAsync("/api/runs", new
        {
            kind = "evaluate", config = new { datasetId, checkpoint = "lare2.pth", arch = "lare2", lareRunId = lareRun, bootstrap = 0 },
        }, 202);
        var run = await Wait.RunFinishedAsync(client, queued.GetProperty("id").GetInt64(), TimeSpan.FromSeconds(120));
        Assert.True(run.GetProperty("status").GetString() == "succeeded", run.GetRawText());
        var scores = File.ReadAllLines(Path.Combine(tmp.Path, "runs", run.GetProperty("id").GetInt64().ToString(), "scores.csv"));
        Assert.Equal(7, scores.Length); // header + 6 images
        Assert.Contains("\"arch\": \"lare2\"", File.ReadAllText(Path.Combine(tmp.Path, "runs", run.GetProperty("id").GetInt64().ToString(), "metrics.json")));
    }

    /// <summary>A LaRE run request on a registered two-image dataset "images" with <paramref name="config"/> added to its id.</summary>
    static async Task<(HttpStatusCode Status, string Body)> PostLareAsync(Func<long, object> config)
    {
        using var tmp = new TempDir();
        Directory.CreateDirectory(tmp.Sub("not-sd"));
        ImageFolders.RealFake(tmp.Sub("images"), 1);
        await using var app = new PortalFactory(tmp.Path);
        var client = app.CreateClient();
        var registered = await client.PostJsonAsync("/api/datasets", new { name = "images", path = "images" }, 202);
        await Wait.RunFinishedAsync(client, registered.GetProperty("runId").GetInt64());
        using var response = await client.PostAsJsonAsync("/api/runs", new { kind = "lare", config = config(registered.GetProperty("id").GetInt64()) });
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task A_folder_that_is_not_a_Stable_Diffusion_checkpoint_is_400_on_sd()
    {
        var (status, body) = await PostLareAsync(id => new { datasetId = id, sd = "not-sd" });
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains("\"sd\"", body);
    }

    [Theory]
    [InlineData("nope/*", "matches no folder of dataset 'images'")]
    [InlineData("test", "is not GENERATOR/SPLIT")]
    public async Task A_subset_that_selects_nothing_is_400_naming_it(string subset, string message)
    {
        var (status, body) = await PostLareAsync(id => new { datasetId = id, sd = "not-sd", subsets = new[] { "*/*", subset } });
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains("subsets[1]", body);
        Assert.Contains(message, body);
    }
}
