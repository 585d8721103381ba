using System.Net;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Portal.Store;
using Portal.Tests.Support;

namespace Portal.Tests.Api;

/// <summary>GET /api/matrix: the train-on-X / test-on-Y matrix over succeeded crossgen runs.</summary>
public class MatrixApiTests
{
    [Fact]
    public async Task Two_checkpoints_give_two_rows_one_column_per_generator_and_the_crossgen_runs_numbers()
    {
        using var tmp = new TempDir();
        ImageFolders.GenImage(tmp.Sub("genimage"));
        foreach (var name in new[] { "a.pth", "b.pth" })
            File.Copy(Path.Combine(AppContext.BaseDirectory, "fixtures", "eval", "tiny_res50nodown_ckpt.pth"), tmp.Sub(name));
        await using var app = new PortalFactory(tmp.Path);
        var client = app.CreateClient();
        var registered = await client.PostJsonAsync("/api/datasets", new { name = "genimage", path = "genimage" }, 202);
        var datasetId = registered.GetProperty("id").GetInt64();
        await Wait.RunFinishedAsync(client, registered.GetProperty("runId").GetInt64());
        // b.pth is in the zoo: its row takes the zoo's name (no training run is known for it).
        await client.PostJsonAsync("/api/models", new { name = "detector-b", path = "b.pth" }, 201);

        var empty = await client.GetJsonAsync("/api/matrix");
        Assert.Equal(0, empty.GetProperty("trained_on").GetArrayLength());

        var runs = new Dictionary<string, long>();
        foreach (var (checkpoint, modes) in new[] { ("a.pth", "fixed,calibrated"), ("b.pth", "fixed") })
        {
            var queued = await client.PostJsonAsync("/api/runs", new { kind = "crossgen", config = new { datasetId, checkpoint, split = "val", modes, bootstrap = 0 } }, 202);
            var run = await Wait.RunFinishedAsync(client, queued.GetProperty("id").GetInt64(), TimeSpan.FromSeconds(120));
            Assert.True(run.GetProperty("status").GetString() == "succeeded", run.GetRawText());
            runs[checkpoint] = run.GetProperty("id").GetInt64();
        }

        var matrix = await client.GetJsonAsync("/api/matrix?mode=fixed");
        Assert.Equal("fixed", matrix.GetProperty("threshold_mode").GetString());
        Assert.Equal(["a.pth", "detector-b"], matrix.GetProperty("trained_on").EnumerateArray().Select(e => e.GetString()));
        var generators = new[] { "imagenet_ai_0419_sdv4", "imagenet_ai_0508_adm" }.Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(generators, matrix.GetProperty("tested_on").EnumerateArray().Select(e => e.GetString()));

        await using var db = await app.Services.GetRequiredService<IDbContextFactory<PortalDb>>().CreateDbContextAsync();
        var metrics = await db.RunMetrics.AsNoTracking().Where(m => runs.Values.Contains(m.RunId)).ToListAsync();
        double Metric(long run, string name) => metrics.Single(m => m.RunId == run && m.Name == name).Value;
        var order = new[] { "a.pth", "b.pth" };
        for (var i = 0; i < order.Length; i++)
        {
            var run = runs[order[i]];
            Assert.Equal(run, matrix.GetProperty("rows")[i].GetProperty("crossgen_run_id").GetInt64());
            for (var j = 0; j < generators.Length; j++)
            {
                Assert.Equal(Metric(run, $"acc/{generators[j]}"), matrix.GetProperty("acc")[i][j].GetDouble(), 12);
                Assert.Equal(Metric(run, $"ap/{generators[j]}"), matrix.GetProperty("ap")[i][j].GetDouble(), 12);
            }
            Assert.Equal(Metric(run, "acc/avg"), matrix.GetProperty("row_avg_acc")[i].GetDouble(), 12);
        }

        // Only a.pth was tested with a calibrated threshold; a test dataset filter with no runs gives an empty matrix.
        var calibrated = await client.GetJsonAsync("/api/matrix?mode=calibrated");
        Assert.Equal(["a.pth"], calibrated.GetProperty("trained_on").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal(Metric(runs["a.pth"], $"acc@calibrated/{generators[0]}"), calibrated.GetProperty("acc")[0][0].GetDouble(), 12);
        Assert.Equal(0, (await client.GetJsonAsync($"/api/matrix?datasetId={datasetId + 100}")).GetProperty("trained_on").GetArrayLength());

        using var bad = await client.GetAsync("/api/matrix?mode=sideways");
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Contains("\"mode\"", await bad.Content.ReadAsStringAsync());

        var openApi = await client.GetStringAsync("/openapi/v1.json");
        Assert.Contains("/api/matrix", openApi);
        Assert.Contains("/api/pipelines/{runId}/children", openApi);
    }
}
