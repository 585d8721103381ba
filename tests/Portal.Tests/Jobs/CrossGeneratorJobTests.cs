using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Portal.Store;
using Portal.Tests.Support;
using Xunit.Abstractions;

namespace Portal.Tests.Jobs;

/// <summary>The "crossgen" job: per-generator rows equal the evaluation's per-generator metrics; the average row is their mean.</summary>
public class CrossGeneratorJobTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Cross_generator_rows_equal_the_evaluation_per_generator_and_best_on_test_is_flagged()
    {
        using var tmp = new TempDir();
        ImageFolders.GenImage(tmp.Sub("genimage"));
        File.Copy(Path.Combine(AppContext.BaseDirectory, "fixtures", "eval", "tiny_res50nodown_ckpt.pth"), tmp.Sub("detector.pth"));
        await using var app = new PortalFactory(tmp.Path);
        var client = app.CreateClient();
        var registered = await client.PostJsonAsync("/api/datasets", new { name = "genimage", path = "genimage" }, 202);
        var datasetId = registered.GetProperty("id").GetInt64();
        await Wait.RunFinishedAsync(client, registered.GetProperty("runId").GetInt64());

        async Task<long> Queue(string kind, object config)
        {
            var queued = await client.PostJsonAsync("/api/runs", new { kind, config }, 202);
            var run = await Wait.RunFinishedAsync(client, queued.GetProperty("id").GetInt64(), TimeSpan.FromSeconds(120));
            Assert.True(run.GetProperty("status").GetString() == "succeeded", run.GetRawText());
            return run.GetProperty("id").GetInt64();
        }
        var eval = await Queue("evaluate", new { datasetId, checkpoint = "detector.pth", split = "val", bootstrap = 0 });
        var cross = await Queue("crossgen", new { datasetId, checkpoint = "detector.pth", split = "val", modes = "fixed,best", bootstrap = 0 });

        await using var db = await app.Services.GetRequiredService<IDbContextFactory<PortalDb>>().CreateDbContextAsync();
        var metrics = await db.RunMetrics.Where(m => m.RunId == eval || m.RunId == cross).ToListAsync();
        double Metric(long run, string name) => metrics.Single(m => m.RunId == run && m.Name == name).Value;
        var generators = new[] { "imagenet_ai_0419_sdv4", "imagenet_ai_0508_adm" };
        foreach (var g in generators) Assert.Equal(Metric(eval, $"acc/{g}"), Metric(cross, $"acc/{g}"), 12);
        Assert.Equal(generators.Average(g => Metric(cross, $"acc/{g}")), Metric(cross, "acc/avg"), 12);
        Assert.True(Metric(cross, "acc@best/avg") >= Metric(cross, "acc/avg"));
        Assert.Contains(db.RunLog.Where(l => l.RunId == cross).Select(l => l.Message), m => m.Contains("chosen on the reported data"));
    }

    [Fact]
    public async Task Cross_generator_progress_follows_the_images_scored_over_test_and_validation()
    {
        using var tmp = new TempDir();
        ImageFolders.GenImage(tmp.Sub("genimage"));
        File.Copy(Path.Combine(AppContext.BaseDirectory, "fixtures", "eval", "tiny_res50nodown_ckpt.pth"), tmp.Sub("detector.pth"));
        var recorder = new ProgressRecorder();
        await using var app = new PortalFactory(tmp.Path, ProgressRecorder.Into(recorder));
        var client = app.CreateClient();
        var registered = await client.PostJsonAsync("/api/datasets", new { name = "genimage", path = "genimage" }, 202);
        var datasetId = registered.GetProperty("id").GetInt64();
        await Wait.RunFinishedAsync(client, registered.GetProperty("runId").GetInt64());

        var queued = await client.PostJsonAsync("/api/runs", new
        {
            kind = "crossgen",
            config = new { datasetId, checkpoint = "detector.pth", split = "val", valSplit = "train", modes = "fixed,calibrated", bootstrap = 0 },
        }, 202);
        var id = queued.GetProperty("id").GetInt64();
        var run = await Wait.RunFinishedAsync(client, id, TimeSpan.FromSeconds(120));
        Assert.True(run.GetProperty("status").GetString() == "succeeded", run.GetRawText());

        // 7 test + 7 validation images, batched by size (the default): each batch of up to 4 equal-size images moves the bar
        // by its share of 0.96.
        var sequence = recorder.AssertTracksWork(id, maxJump: 0.3);
        output.WriteLine(sequence);
        var phases = recorder.Of(id).Select(r => r.Phase).ToList();
        Assert.Contains(phases, p => p?.StartsWith("test: scoring ") == true);
        Assert.Contains("validation: scoring 14/14", phases);
        Assert.True(recorder.Of(id).Count(r => r.Phase?.Contains(": scoring ") == true) >= 4, sequence);
    }
}
