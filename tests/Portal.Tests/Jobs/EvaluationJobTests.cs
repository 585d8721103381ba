using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Portal.Tests.Support;
using Xunit.Abstractions;

namespace Portal.Tests.Jobs;

/// <summary>The "evaluate" job, queued through the API, gives the PyTorch reference's scores (the same code as `forensics eval`).</summary>
public class EvaluationJobTests(ITestOutputHelper output)
{
    static string Fixture(params string[] parts) => Path.Combine([AppContext.BaseDirectory, "fixtures", "eval", .. parts]);

    static void CopyDir(string from, string to)
    {
        foreach (var file in Directory.GetFiles(from, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(to, Path.GetRelativePath(from, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
    }

    [Fact]
    public async Task An_evaluation_queued_through_the_API_reproduces_the_reference_scores_and_stores_its_metrics()
    {
        using var tmp = new TempDir();
        CopyDir(Fixture("data"), tmp.Sub("eval-data"));
        File.Copy(Fixture("tiny_res50nodown_ckpt.pth"), tmp.Sub("detector.pth"));
        var recorder = new ProgressRecorder();
        await using var app = new PortalFactory(tmp.Path, ProgressRecorder.Into(recorder));
        var client = app.CreateClient();
        var registered = await client.PostJsonAsync("/api/datasets", new { name = "eval", path = "eval-data" }, 202);
        await Wait.RunFinishedAsync(client, registered.GetProperty("runId").GetInt64());

        var queued = await client.PostJsonAsync("/api/runs", new
        {
            kind = "evaluate",
            config = new { datasetId = registered.GetProperty("id").GetInt64(), checkpoint = "detector.pth", bootstrap = 0 },
        }, 202);
        var run = await Wait.RunFinishedAsync(client, queued.GetProperty("id").GetInt64(), TimeSpan.FromSeconds(120));
        Assert.True(run.GetProperty("status").GetString() == "succeeded", run.GetRawText());

        var scores = File.ReadAllLines(Path.Combine(tmp.Path, "runs", run.GetProperty("id").GetInt64().ToString(), "scores.csv")).Skip(1)
            .Select(l => l.Split(',')).ToDictionary(f => f[0], f => double.Parse(f[2], CultureInfo.InvariantCulture));
        var expected = File.ReadAllLines(Fixture("expected_scores.csv")).Skip(1)
            .Select(l => l.Split(',')).ToDictionary(f => f[0], f => double.Parse(f[3], CultureInfo.InvariantCulture));
        Assert.Equal(expected.Keys.Order(), scores.Keys.Order());
        foreach (var (path, score) in expected) Assert.True(Math.Abs(scores[path] - score) < 1e-4, $"{path}: {scores[path]} vs {score}");

        // Progress: the registration lists, checks (throttled to one report per 100 ms, so a tiny folder may jump) and
        // saves; the evaluation moves image by image (7 images, one per batch: 0.96/7 each).
        var registration = registered.GetProperty("runId").GetInt64();
        output.WriteLine("register-dataset: " + recorder.AssertTracksWork(registration, maxJump: 1, finalGap: 0.05));
        Assert.Equal("listing the files", recorder.Of(registration)[0].Phase);
        Assert.StartsWith("saving the manifest of ", recorder.Of(registration)[^1].Phase);
        var evaluation = run.GetProperty("id").GetInt64();
        // Equal-size images are scored in one batch (the default batching), so a step of this 7-image set is one batch of 1-2.
        output.WriteLine("evaluate: " + recorder.AssertTracksWork(evaluation, maxJump: 0.3));
        Assert.Contains(recorder.Of(evaluation), r => r.Phase == "scoring 7/7");
        Assert.True(recorder.Of(evaluation).Count(r => r.Phase?.StartsWith("scoring ") == true) >= 4);
    }

    [Theory]
    [InlineData("{\"datasetId\": 99, \"checkpoint\": \"detector.pth\"}", "datasetId")]
    [InlineData("{\"datasetId\": 1, \"checkpoint\": \"/etc/passwd\"}", "checkpoint")]
    [InlineData("{\"datasetId\": 1, \"checkpoint\": \"missing.pth\"}", "checkpoint")]
    [InlineData("{\"datasetId\": 1, \"checkpoint\": \"detector.pth\", \"perturbation\": \"sharpen:2\"}", "perturbation")]
    [InlineData("{\"datasetId\": 1, \"checkpoint\": \"detector.pth\", \"arch\": \"vit\"}", "arch")]
    public async Task An_invalid_evaluation_is_400_naming_the_field_and_queues_nothing(string config, string field)
    {
        using var tmp = new TempDir();
        CopyDir(Fixture("data"), tmp.Sub("eval-data"));
        File.Copy(Fixture("tiny_res50nodown_ckpt.pth"), tmp.Sub("detector.pth"));
        await using var app = new PortalFactory(tmp.Path);
        var client = app.CreateClient();
        var registered = await client.PostJsonAsync("/api/datasets", new { name = "eval", path = "eval-data" }, 202);
        await Wait.RunFinishedAsync(client, registered.GetProperty("runId").GetInt64());

        using var response = await client.PostAsJsonAsync("/api/runs", new { kind = "evaluate", config = JsonDocument.Parse(config).RootElement });
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        Assert.True(problem.GetProperty("errors").TryGetProperty(field, out _), problem.GetRawText());
        Assert.Single((await client.GetJsonAsync("/api/runs")).EnumerateArray()); // only the registration
    }
}
