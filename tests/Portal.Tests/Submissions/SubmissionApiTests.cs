using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Forensics.ML.Metrics;
using Portal.Tests.Support;

namespace Portal.Tests.Submissions;

/// <summary>POST /api/submissions: scores checked against the manifest, metrics by the evaluation code, a "submitted" leaderboard row.</summary>
public class SubmissionApiTests
{
    static string Fixture(params string[] parts) => Path.Combine([AppContext.BaseDirectory, "fixtures", "eval", .. parts]);

    /// <summary>The eval fixture's images (0_real/1_fake) registered as a dataset; its relative paths and labels.</summary>
    static async Task<(long DatasetId, List<(string Path, int Label)> Images)> RegisterAsync(HttpClient client, TempDir tmp)
    {
        foreach (var file in Directory.GetFiles(Fixture("data"), "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(tmp.Sub("sub-data"), Path.GetRelativePath(Fixture("data"), file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
        var registered = await client.PostJsonAsync("/api/datasets", new { name = "sub", path = "sub-data" }, 202);
        await Wait.RunFinishedAsync(client, registered.GetProperty("runId").GetInt64());
        var images = Directory.GetFiles(tmp.Sub("sub-data"), "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal)
            .Select(f => Path.GetRelativePath(tmp.Sub("sub-data"), f).Replace('\\', '/'))
            .Select(p => (p, p.StartsWith("1_fake", StringComparison.Ordinal) ? 1 : 0)).ToList();
        return (registered.GetProperty("id").GetInt64(), images);
    }

    [Fact]
    public async Task A_submitted_scores_file_gives_a_submitted_leaderboard_row_with_the_metrics_of_forensics_metrics()
    {
        using var tmp = new TempDir();
        var recorder = new ProgressRecorder();
        await using var app = new PortalFactory(tmp.Path, ProgressRecorder.Into(recorder));
        var client = app.CreateClient();
        var (datasetId, images) = await RegisterAsync(client, tmp);
        // Scores with a label column, so `forensics metrics --scores` reads the very same file.
        var scores = images.Select((im, i) => (im.Path, im.Label, Score: (i * 37 % 11) / 11.0 * 0.98 + 0.01 * im.Label)).ToList();
        var csv = "path,label,score\n" + string.Join("\n", scores.Select(s => $"{s.Path},{s.Label},{s.Score.ToString("R", CultureInfo.InvariantCulture)}")) + "\n";

        var queued = await client.PostJsonAsync("/api/submissions", new { datasetId, detector = "npr-external", scores = csv }, 202);
        Assert.Equal("submission", queued.GetProperty("kind").GetString());
        var run = await Wait.RunFinishedAsync(client, queued.GetProperty("id").GetInt64(), TimeSpan.FromSeconds(60));
        Assert.True(run.GetProperty("status").GetString() == "succeeded", run.GetRawText());
        // Three steps (check, metrics, store), a third each, each named.
        recorder.AssertTracksWork(run.GetProperty("id").GetInt64(), maxJump: 0.34, finalGap: 0);
        Assert.Equal(["checking the scores against the dataset", $"computing the metrics of {scores.Count} scores", "storing the results", "done"],
            recorder.Of(run.GetProperty("id").GetInt64()).Select(r => r.Phase));

        var expected = DetectionMetrics.Compute(scores.Select(s => s.Label).ToArray(), scores.Select(s => s.Score).ToArray(), new MetricsOptions());
        var metrics = JsonDocument.Parse(File.ReadAllText(Path.Combine(tmp.Path, "runs", run.GetProperty("id").GetInt64().ToString(CultureInfo.InvariantCulture), "metrics.json")))
            .RootElement.GetProperty("overall");
        Assert.Equal(expected.Acc, metrics.GetProperty("acc").GetDouble(), 12);
        Assert.Equal(expected.Ap!.Value, metrics.GetProperty("ap").GetDouble(), 12);
        Assert.Equal(expected.Auc!.Value, metrics.GetProperty("auc").GetDouble(), 12);

        var board = await client.GetJsonAsync("/api/leaderboard?arch=submitted");
        var row = Assert.Single(board.GetProperty("rows").EnumerateArray(), r => r.GetProperty("threshold").GetString() == "0.5");
        var sha = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes(csv)));
        Assert.Equal("submitted", row.GetProperty("arch").GetString());
        Assert.Contains("npr-external (submitted by ", row.GetProperty("detector").GetString());
        Assert.Contains(sha[..12], row.GetProperty("detector").GetString());
        Assert.Equal(expected.Acc, row.GetProperty("meanAcc").GetProperty("mean").GetDouble(), 9);
    }

    [Fact]
    public async Task A_file_that_misses_repeats_or_invents_an_image_is_refused_with_its_rows_named()
    {
        using var tmp = new TempDir();
        await using var app = new PortalFactory(tmp.Path);
        var client = app.CreateClient();
        var (datasetId, images) = await RegisterAsync(client, tmp);
        string Csv(IEnumerable<string> paths) => "path,score\n" + string.Join("\n", paths.Select(p => $"{p},0.5")) + "\n";

        async Task<string> RefusedAsync(string csv)
        {
            using var response = await client.PostAsJsonAsync("/api/submissions", new { datasetId, detector = "x", scores = csv });
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            var problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
            Assert.True(problem.GetProperty("errors").TryGetProperty("scores", out var messages), problem.GetRawText());
            return messages.GetRawText();
        }

        var missing = await RefusedAsync(Csv(images.Skip(1).Select(i => i.Path)));
        Assert.Contains("1 image(s) of the dataset not scored: " + images[0].Path, missing);
        var repeated = await RefusedAsync(Csv(images.Select(i => i.Path).Append(images[2].Path)));
        Assert.Contains($"line {images.Count + 2}: '{images[2].Path}' is scored again (first on line 4)", repeated);
        var unknown = await RefusedAsync(Csv(images.Select(i => i.Path).Prepend("0_real/nope.png")));
        Assert.Contains("line 2: '0_real/nope.png' is not an image of the dataset", unknown);
        var nan = await RefusedAsync("path,score\n" + string.Join("\n", images.Select((im, i) => $"{im.Path},{(i == 1 ? "NaN" : "0.5")}")));
        Assert.Contains("line 3: score 'NaN'", nan);
        // Nothing was queued and no file was kept for the refused submissions.
        Assert.Single((await client.GetJsonAsync("/api/runs")).EnumerateArray());
        Assert.Empty(Directory.Exists(tmp.Sub("submissions")) ? Directory.GetFiles(tmp.Sub("submissions")) : []);
    }
}
