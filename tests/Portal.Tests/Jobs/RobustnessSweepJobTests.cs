using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Portal.Store;
using Portal.Tests.Support;
using Xunit.Abstractions;

namespace Portal.Tests.Jobs;

/// <summary>The "sweep" job: a JPEG sweep whose clean point reuses an evaluation's scores and whose points equal evaluations.</summary>
public class RobustnessSweepJobTests(ITestOutputHelper output)
{
    static string Fixture(params string[] parts) => Path.Combine([AppContext.BaseDirectory, "fixtures", "eval", .. parts]);

    /// <summary>The eval fixture's images under eval-data/ and its tiny res50nodown as detector.pth.</summary>
    static void WriteEvalDataAndDetector(TempDir tmp)
    {
        foreach (var file in Directory.GetFiles(Fixture("data"), "*", SearchOption.AllDirectories))
            ImageFolders.Write(tmp.Sub("eval-data", Path.GetRelativePath(Fixture("data"), file)), File.ReadAllBytes(file));
        File.Copy(Fixture("tiny_res50nodown_ckpt.pth"), tmp.Sub("detector.pth"));
    }

    [Fact]
    public async Task A_jpeg_sweep_reuses_the_clean_scores_and_each_point_equals_an_evaluation_under_that_perturbation()
    {
        using var tmp = new TempDir();
        WriteEvalDataAndDetector(tmp);
        await using var app = new PortalFactory(tmp.Path);
        var client = app.CreateClient();
        var registered = await client.PostJsonAsync("/api/datasets", new { name = "eval", path = "eval-data" }, 202);
        var datasetId = registered.GetProperty("id").GetInt64();
        await Wait.RunFinishedAsync(client, registered.GetProperty("runId").GetInt64());

        async Task<long> Queue(string kind, object config)
        {
            var queued = await client.PostJsonAsync("/api/runs", new { kind, config }, 202);
            var run = await Wait.RunFinishedAsync(client, queued.GetProperty("id").GetInt64(), TimeSpan.FromSeconds(120));
            Assert.True(run.GetProperty("status").GetString() == "succeeded", run.GetRawText());
            return run.GetProperty("id").GetInt64();
        }
        var clean = await Queue("evaluate", new { datasetId, checkpoint = "detector.pth", bootstrap = 0 });
        var jpeg50 = await Queue("evaluate", new { datasetId, checkpoint = "detector.pth", perturbation = "jpeg:50", bootstrap = 0 });
        var sweep = await Queue("sweep", new { datasetId, checkpoint = "detector.pth", axis = "jpeg", severities = "clean,50", bootstrap = 0 });

        await using var db = await app.Services.GetRequiredService<IDbContextFactory<PortalDb>>().CreateDbContextAsync();
        double Metric(long run, string name, long step = 0) => db.RunMetrics.Single(m => m.RunId == run && m.Name == name && m.Step == step).Value;
        Assert.Equal(Metric(clean, "acc"), Metric(sweep, "acc@jpeg", 0));
        Assert.Equal(Metric(clean, "ap"), Metric(sweep, "ap@jpeg", 0));
        Assert.Equal(Metric(jpeg50, "acc"), Metric(sweep, "acc@jpeg", 1));
        Assert.Equal(Metric(jpeg50, "ap"), Metric(sweep, "ap@jpeg", 1));
        Assert.Contains(db.RunLog.Where(l => l.RunId == sweep).Select(l => l.Message), m => m.Contains($"reusing the scores of evaluation run {clean}"));
    }

    [Fact]
    public async Task Sweep_progress_follows_the_images_scored_over_every_point()
    {
        using var tmp = new TempDir();
        WriteEvalDataAndDetector(tmp);
        var recorder = new ProgressRecorder();
        await using var app = new PortalFactory(tmp.Path, ProgressRecorder.Into(recorder));
        var client = app.CreateClient();
        var registered = await client.PostJsonAsync("/api/datasets", new { name = "eval", path = "eval-data" }, 202);
        var datasetId = registered.GetProperty("id").GetInt64();
        await Wait.RunFinishedAsync(client, registered.GetProperty("runId").GetInt64());

        var queued = await client.PostJsonAsync("/api/runs", new
        {
            kind = "sweep", config = new { datasetId, checkpoint = "detector.pth", axis = "jpeg", severities = "clean,70,30", bootstrap = 0 },
        }, 202);
        var id = queued.GetProperty("id").GetInt64();
        var run = await Wait.RunFinishedAsync(client, id, TimeSpan.FromSeconds(120));
        Assert.True(run.GetProperty("status").GetString() == "succeeded", run.GetRawText());

        // 3 points of 7 images, one per batch: each image moves the bar by 0.96/21.
        var sequence = recorder.AssertTracksWork(id, maxJump: 0.1);
        output.WriteLine(sequence);
        var phases = recorder.Of(id).Select(r => r.Phase).ToList();
        Assert.Contains("jpeg clean: scoring 1/21", phases);
        Assert.Contains("jpeg 70: scoring 8/21", phases);
        Assert.Contains("jpeg 30: scoring 21/21", phases);
        Assert.True(recorder.Of(id).Count >= 21, sequence);
    }
}
