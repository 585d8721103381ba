using System.Net;
using System.Net.Http.Json;
using Portal.Tests.Auth;
using Portal.Tests.Support;

namespace Portal.Tests.Jobs;

/// <summary>Every size-like config field of every job kind has a configurable upper bound: over it, a 400 naming the field, and nothing stored.</summary>
public sealed class ConfigLimitsTests(AuthPortal portal) : IClassFixture<AuthPortal>
{
    PortalFactory App => portal.App;

    public static TheoryData<string, string, string> OverTheLimit => new()
    {
        { "train", """{"trainDatasetId": 1, "width": 1000000}""", "width" },
        { "train", """{"trainDatasetId": 1, "layers": [3, 4, 1000000, 3]}""", "layers" },
        { "train", """{"trainDatasetId": 1, "crop": 100000}""", "crop" },
        { "train", """{"trainDatasetId": 1, "pairsPerBatch": 1000000}""", "pairsPerBatch" },
        { "train", """{"trainDatasetId": 1, "epochs": 100000000}""", "epochs" },
        { "train", """{"trainDatasetId": 1, "augmentation": {"resizeSize": 100000}}""", "augmentation.resizeSize" },
        { "train", """{"trainDatasetId": 1, "augmentation": {"cutoutSize": 100000}}""", "augmentation.cutoutSize" },
        { "train", """{"trainDatasetId": 1, "patience": 100000000}""", "patience" },
        { "train", """{"trainDatasetId": 1, "arch": "lare2", "epochs": 100000000}""", "epochs" },
        { "evaluate", """{"datasetId": 1, "checkpoint": "x.pth", "maxBatch": 1000000}""", "maxBatch" },
        { "evaluate", """{"datasetId": 1, "checkpoint": "x.pth", "bootstrap": 100000000}""", "bootstrap" },
        { "crossgen", """{"datasetId": 1, "checkpoint": "x.pth", "bootstrap": 100000000}""", "bootstrap" },
        { "sweep", "{\"datasetId\": 1, \"checkpoint\": \"x.pth\", \"axis\": \"jpeg\", \"severities\": \"" + string.Join(",", Enumerable.Range(1, 100)) + "\"}", "severities" },
        { "sweep", """{"datasetId": 1, "checkpoint": "x.pth", "axis": "jpeg", "bootstrap": 100000000}""", "bootstrap" },
        { "lare", """{"datasetId": 1, "sd": "sd", "ensemble": 100000}""", "ensemble" },
        { "lare", """{"datasetId": 1, "sd": "sd", "resizeTo": 100000}""", "resizeTo" },
        { "lare", """{"datasetId": 1, "sd": "sd", "batch": 100000}""", "batch" },
        { "align", """{"sourceDatasetId": 1, "vae": "vae", "batch": 100000}""", "batch" },
    };

    [Theory]
    [MemberData(nameof(OverTheLimit))]
    public async Task A_size_over_its_limit_is_400_naming_the_field_and_the_setting(string kind, string config, string field)
    {
        var before = await App.RunCountAsync();
        var body = new StringContent($"{{\"kind\": \"{kind}\", \"config\": {config}}}", System.Text.Encoding.UTF8, "application/json");
        var text = await (await App.CreateClient().PostAsync("/api/runs", body)).ExpectAsync(HttpStatusCode.BadRequest);
        var problem = AuthTestSupport.Json(text);
        Assert.True(problem.GetProperty("errors").TryGetProperty(field, out var messages), $"the problem does not name '{field}': {text}");
        Assert.Contains("Portal:Limits:", messages[0].GetString());
        Assert.Equal(before, await App.RunCountAsync());
    }

    [Fact]
    public async Task The_cost_estimate_bounds_its_steps()
    {
        var text = await (await App.CreateClient().GetAsync("/api/models/cost?autoencoder=1&unet=2&steps=1000000")).ExpectAsync(HttpStatusCode.BadRequest);
        Assert.True(AuthTestSupport.Json(text).GetProperty("errors").TryGetProperty("steps", out _), text);
    }

    [Fact]
    public async Task The_limits_are_settings()
    {
        using var tmp = new TempDir();
        await using var app = new PortalFactory(tmp.Path, settings: new Dictionary<string, string> { ["Portal:Limits:Width"] = "32" });
        var text = await (await app.CreateClient().PostAsJsonAsync("/api/runs", new { kind = "train", config = new { trainDatasetId = 1, width = 64 } }))
            .ExpectAsync(HttpStatusCode.BadRequest);
        Assert.Contains("width is 64; this portal accepts at most 32 (Portal:Limits:Width)", text);
    }
}
