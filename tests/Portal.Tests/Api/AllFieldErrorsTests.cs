using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Portal.Tests.Support;

namespace Portal.Tests.Api;

/// <summary>
/// A job config with several bad fields is refused once, naming every one of them (the forms show them all at once),
/// not the first alone; a check that needs an earlier one (a split of a dataset that does not exist) is not reported.
/// </summary>
public class AllFieldErrorsTests
{
    static async Task<HashSet<string>> ErrorFieldsAsync(HttpClient client, string kind, object config)
    {
        using var response = await client.PostAsJsonAsync("/api/runs", new { kind, config });
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.BadRequest, body);
        return JsonDocument.Parse(body).RootElement.GetProperty("errors").EnumerateObject().Select(p => p.Name).ToHashSet();
    }

    [Fact]
    public async Task Evaluate_crossgen_sweep_and_train_configs_name_every_bad_field_at_once()
    {
        using var tmp = new TempDir();
        await using var app = new PortalFactory(tmp.Path);
        var client = app.CreateClient();

        Assert.Equal(["datasetId", "checkpoint", "perturbation", "batching", "maxBatch", "bootstrap"],
            await ErrorFieldsAsync(client, "evaluate", new { datasetId = 999, checkpoint = "missing.pth", perturbation = "sharpen:9", batching = "all", maxBatch = 0, bootstrap = -1, split = "nope" }));
        Assert.Equal(["bootstrap", "datasetId", "modes", "checkpoint"],
            await ErrorFieldsAsync(client, "crossgen", new { datasetId = 999, checkpoint = "missing.pth", modes = "fixed,sometimes", bootstrap = -1 }));
        Assert.Equal(["datasetId", "checkpoint", "axis"],
            await ErrorFieldsAsync(client, "sweep", new { datasetId = 999, checkpoint = "missing.pth", axis = "sharpen" }));
        Assert.Equal(["epochs", "trainDatasetId", "mode", "augment"],
            await ErrorFieldsAsync(client, "train", new { trainDatasetId = 999, epochs = 1_000_000, mode = "paired", augment = "heavy" }));
    }
}
