using System.Net;
using System.Net.Http.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Portal.Store;
using Portal.Tests.Support;
using SkiaSharp;

namespace Portal.Tests.Jobs;

/// <summary>The "train" job: synced aligned-pair training queued through the API, with curves, artifact and zoo entry.</summary>
[Collection(Support.TorchThreadsCollection.Name)]
public class TrainingJobTests
{
    [Fact]
    public async Task A_synced_training_run_stores_curves_its_best_weights_and_a_zoo_entry()
    {
        using var tmp = new TempDir();
        ImageFolders.Aligned(tmp.Sub("aligned"), train: 6, val: 6, side: 20, fakeSeedBase: 1000);
        await using var app = new PortalFactory(tmp.Path);
        var client = app.CreateClient();
        var registered = await client.PostJsonAsync("/api/datasets", new { name = "aligned", path = "aligned" }, 202);
        await Wait.RunFinishedAsync(client, registered.GetProperty("runId").GetInt64());

        var queued = await client.PostJsonAsync("/api/runs", new
        {
            kind = "train",
            config = new
            {
                trainDatasetId = registered.GetProperty("id").GetInt64(), mode = "synced", epochs = 2, pairsPerBatch = 3,
                width = 4, layers = new[] { 1, 1, 1, 1 }, crop = 16, augment = "none", seed = 5,
            },
            seed = 5,
        }, 202);
        var id = queued.GetProperty("id").GetInt64();
        Assert.Equal("device-cpu", queued.GetProperty("queue").GetString());
        var run = await Wait.RunFinishedAsync(client, id, TimeSpan.FromSeconds(180));
        Assert.True(run.GetProperty("status").GetString() == "succeeded", run.GetRawText());

        await using var db = await app.Services.GetRequiredService<IDbContextFactory<PortalDb>>().CreateDbContextAsync();
        var metrics = await db.RunMetrics.Where(m => m.RunId == id).ToListAsync();
        Assert.Equal(2, metrics.Count(m => m.Name == "val_balanced_acc"));
        Assert.True(metrics.Count(m => m.Name == "loss") >= 2);
        // The per-step losses are written in batches: every step once, numbered 1, 2, ... without a gap.
        var steps = metrics.Where(m => m.Name == "loss").Select(m => m.Step).Order().ToList();
        Assert.Equal(Enumerable.Range(1, steps.Count).Select(i => (long)i), steps);
        var weights = await db.Weights.SingleAsync(w => w.SourceRunId == id);
        Assert.Equal("detector", weights.Kind);
        Assert.True(File.Exists(weights.Path));
        Assert.Contains(await db.Artifacts.Where(a => a.RunId == id).Select(a => a.Kind).ToListAsync(), k => k == "weights");
    }

    [Theory]
    [InlineData("{\"trainDatasetId\": 1, \"mode\": \"sideways\"}", "mode")]
    [InlineData("{\"trainDatasetId\": 42}", "trainDatasetId")]
    [InlineData("{\"trainDatasetId\": 1, \"pairsPerBatch\": 0}", "pairsPerBatch")]
    [InlineData("{\"trainDatasetId\": 1, \"init\": \"../../etc/passwd\"}", "init")]
    public async Task An_invalid_training_config_is_400_naming_the_field(string config, string field)
    {
        using var tmp = new TempDir();
        ImageFolders.Aligned(tmp.Sub("aligned"), train: 6, val: 6, side: 20, fakeSeedBase: 1000);
        await using var app = new PortalFactory(tmp.Path);
        var client = app.CreateClient();
        var registered = await client.PostJsonAsync("/api/datasets", new { name = "aligned", path = "aligned" }, 202);
        await Wait.RunFinishedAsync(client, registered.GetProperty("runId").GetInt64());
        using var response = await client.PostAsJsonAsync("/api/runs", new { kind = "train", config = System.Text.Json.JsonDocument.Parse(config).RootElement });
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains($"\"{field}\"", await response.Content.ReadAsStringAsync());
    }
}
