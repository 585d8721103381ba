using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Portal.Tests.Support;

namespace Portal.Tests.Jobs;

/// <summary>
/// TorchScript and ONNX detectors (a model file plus a card) in the portal: zoo registration probes them, and the
/// evaluate, crossgen and sweep jobs take <c>arch: torchscript|onnx</c> with an optional <c>card</c>.
/// </summary>
public class DetectorPackageJobTests
{
    static string Fixture(params string[] parts) => Path.Combine([AppContext.BaseDirectory, "fixtures", "detectors", .. parts]);

    /// <summary>The fixture images as a 0_real/1_fake folder, and the two-class TorchScript model with a centre-crop card beside it.</summary>
    static TempDir Files()
    {
        var tmp = new TempDir();
        var images = Directory.GetFiles(Fixture("images"), "*.png").Order(StringComparer.Ordinal).ToList();
        for (var i = 0; i < images.Count; i++)
        {
            var folder = tmp.Sub("pkg-data", i < images.Count / 2 ? "0_real" : "1_fake");
            Directory.CreateDirectory(folder);
            File.Copy(images[i], Path.Combine(folder, Path.GetFileName(images[i])));
        }
        File.Copy(Fixture("tinycnn_scripted.pt"), tmp.Sub("mine.pt"));
        File.Copy(Fixture("cards", "center_crop.two.card.json"), tmp.Sub("mine.card.json"));
        File.Copy(Fixture("tinycnn_dynamic.onnx"), tmp.Sub("dynamic.onnx"));
        File.Copy(Fixture("cards", "resize_bicubic.one.card.json"), tmp.Sub("bicubic.card.json"));
        File.Copy(Fixture("cards", "none.one.card.json"), tmp.Sub("wrong.card.json"));
        return tmp;
    }

    static Dictionary<string, double> Expected(string card) => File.ReadAllLines(Fixture("expected_scores.csv")).Skip(1)
        .Select(l => l.Split(',')).Where(f => f[2] == card).ToDictionary(f => f[3], f => double.Parse(f[5], CultureInfo.InvariantCulture));

    static Dictionary<string, double> Scores(string root, long runId) =>
        File.ReadAllLines(Path.Combine(root, "runs", runId.ToString(CultureInfo.InvariantCulture), "scores.csv")).Skip(1)
            .Select(l => l.Split(',')).ToDictionary(f => Path.GetFileName(f[0]), f => double.Parse(f[2], CultureInfo.InvariantCulture));

    [Fact]
    public async Task TorchScript_and_onnx_detectors_are_evaluated_crossgen_tested_and_swept_with_pytorchs_scores()
    {
        using var tmp = Files();
        await using var app = new PortalFactory(tmp.Path);
        var client = app.CreateClient();
        var registered = await client.PostJsonAsync("/api/datasets", new { name = "pkg", path = "pkg-data" }, 202);
        await Wait.RunFinishedAsync(client, registered.GetProperty("runId").GetInt64());
        var datasetId = registered.GetProperty("id").GetInt64();

        // TorchScript, its card found beside it (mine.card.json).
        var ts = await client.PostJsonAsync("/api/runs", new { kind = "evaluate", config = new { datasetId, checkpoint = "mine.pt", arch = "torchscript", bootstrap = 0 } }, 202);
        var tsRun = await Wait.RunFinishedAsync(client, ts.GetProperty("id").GetInt64(), TimeSpan.FromSeconds(120));
        Assert.True(tsRun.GetProperty("status").GetString() == "succeeded", tsRun.GetRawText());
        var expected = Expected("center_crop.two.card.json");
        var scores = Scores(tmp.Path, tsRun.GetProperty("id").GetInt64());
        Assert.Equal(expected.Keys.Order(), scores.Keys.Order());
        foreach (var (image, score) in expected) Assert.True(Math.Abs(scores[image] - score) < 2e-6, $"{image}: {scores[image]:R} vs {score:R}");

        // ONNX with a named card.
        var onnx = await client.PostJsonAsync("/api/runs", new { kind = "evaluate", config = new { datasetId, checkpoint = "dynamic.onnx", arch = "onnx", card = "bicubic.card.json", bootstrap = 0 } }, 202);
        var onnxRun = await Wait.RunFinishedAsync(client, onnx.GetProperty("id").GetInt64(), TimeSpan.FromSeconds(120));
        Assert.True(onnxRun.GetProperty("status").GetString() == "succeeded", onnxRun.GetRawText());
        var onnxExpected = Expected("resize_bicubic.one.card.json");
        var onnxScores = Scores(tmp.Path, onnxRun.GetProperty("id").GetInt64());
        foreach (var (image, score) in onnxExpected) Assert.True(Math.Abs(onnxScores[image] - score) < 2e-6, $"{image}: {onnxScores[image]:R} vs {score:R}");

        var crossgen = await client.PostJsonAsync("/api/runs", new { kind = "crossgen", config = new { datasetId, checkpoint = "mine.pt", arch = "torchscript", split = (string?)null, bootstrap = 0 } }, 202);
        var crossgenRun = await Wait.RunFinishedAsync(client, crossgen.GetProperty("id").GetInt64(), TimeSpan.FromSeconds(120));
        Assert.True(crossgenRun.GetProperty("status").GetString() == "succeeded", crossgenRun.GetRawText());
        var sweep = await client.PostJsonAsync("/api/runs", new { kind = "sweep", config = new { datasetId, checkpoint = "dynamic.onnx", arch = "onnx", card = "bicubic.card.json", axis = "jpeg", severities = "clean,50", bootstrap = 0 } }, 202);
        var sweepRun = await Wait.RunFinishedAsync(client, sweep.GetProperty("id").GetInt64(), TimeSpan.FromSeconds(120));
        Assert.True(sweepRun.GetProperty("status").GetString() == "succeeded", sweepRun.GetRawText());
    }

    [Theory]
    [InlineData("""{"checkpoint": "mine.pt", "arch": "res50nodown", "card": "mine.card.json"}""", "card")]
    [InlineData("""{"checkpoint": "mine.pt", "arch": "torchscript", "card": "missing.card.json"}""", "card")]
    [InlineData("""{"checkpoint": "mine.pt", "arch": "torchscript", "card": "/etc/passwd"}""", "card")]
    [InlineData("""{"checkpoint": "mine.pt", "arch": "torchscript", "card": "bad.card.json"}""", "card")]
    [InlineData("""{"checkpoint": "mine.pt", "arch": "tensorflow"}""", "arch")]
    public async Task An_invalid_package_config_is_400_naming_the_field(string config, string field)
    {
        using var tmp = Files();
        File.WriteAllText(tmp.Sub("bad.card.json"), """{"input": {"sizePolicy": "squash"}}""");
        await using var app = new PortalFactory(tmp.Path);
        var client = app.CreateClient();
        var registered = await client.PostJsonAsync("/api/datasets", new { name = "pkg", path = "pkg-data" }, 202);
        await Wait.RunFinishedAsync(client, registered.GetProperty("runId").GetInt64());
        var node = System.Text.Json.Nodes.JsonNode.Parse(config)!.AsObject();
        node["datasetId"] = registered.GetProperty("id").GetInt64();
        node["split"] = null; // a 0_real/1_fake folder has no "val" (crossgen's default)
        foreach (var kind in new[] { "evaluate", "crossgen" })
        {
            using var response = await client.PostAsJsonAsync("/api/runs", new { kind, config = node });
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            var problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
            Assert.True(problem.GetProperty("errors").TryGetProperty(field, out var messages), problem.GetRawText());
            if (config.Contains("bad.card")) Assert.Contains("input.sizePolicy", messages.GetRawText());
        }
    }

    [Fact]
    public async Task The_zoo_registers_a_torchscript_detector_after_probing_it_and_refuses_one_its_card_contradicts()
    {
        using var tmp = Files();
        await using var app = new PortalFactory(tmp.Path);
        var client = app.CreateClient();
        var model = await client.PostJsonAsync("/api/models", new { name = "tinycnn", path = "mine.pt" }, 201);
        Assert.Equal("detector", model.GetProperty("kind").GetString());
        Assert.Equal("torchscript", model.GetProperty("architecture").GetString());
        var detail = await client.GetJsonAsync($"/api/models/{model.GetProperty("id").GetInt64()}");
        Assert.Contains("probe passed", detail.GetProperty("inspection").GetProperty("config").GetString());
        Assert.Contains("two-class (fake index 0)", detail.GetProperty("inspection").GetProperty("config").GetString());
        var onnx = await client.PostJsonAsync("/api/models", new { name = "tinycnn-onnx", path = "dynamic.onnx" }, 201);
        Assert.Equal("onnx", onnx.GetProperty("architecture").GetString());

        // The same two-class network under a one-logit card beside it: the probe sees 2 outputs and refuses.
        Directory.CreateDirectory(tmp.Sub("other"));
        File.Copy(Fixture("tinycnn_scripted.pt"), tmp.Sub("other", "two.pt"));
        File.Copy(Fixture("cards", "none.one.card.json"), tmp.Sub("other", "two.card.json"));
        using var refused = await client.PostAsJsonAsync("/api/models", new { name = "contradicted", path = "other/two.pt" });
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        var problem = JsonDocument.Parse(await refused.Content.ReadAsStringAsync()).RootElement;
        Assert.True(problem.GetProperty("errors").TryGetProperty("card", out var messages), problem.GetRawText());
        Assert.Contains("output.kind", messages.GetRawText());
        Assert.Equal(2, (await client.GetJsonAsync("/api/models")).GetArrayLength());
    }
}
