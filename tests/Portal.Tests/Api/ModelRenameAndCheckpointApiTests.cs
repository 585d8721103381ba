using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Portal.Tests.Support;

namespace Portal.Tests.Api;

/// <summary>
/// PUT /api/models/{id}/name renames a zoo entry (400 naming the field, 409 when taken); POST /api/runs refuses, with a
/// 400 on "checkpoint", a checkpoint whose weights do not load into the chosen architecture.
/// </summary>
public class ModelRenameAndCheckpointApiTests
{
    static string Fixture(params string[] parts) => Path.Combine([AppContext.BaseDirectory, "fixtures", .. parts]);

    static async Task<JsonElement> ProblemAsync(HttpResponseMessage response) =>
        JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;

    [Fact]
    public async Task A_model_is_renamed_and_blank_or_taken_names_are_refused_naming_the_field()
    {
        using var tmp = new TempDir();
        File.Copy(Fixture("eval", "tiny_res50nodown_ckpt.pth"), tmp.Sub("a.pth"));
        File.Copy(Fixture("eval", "tiny_res50nodown_ckpt.pth"), tmp.Sub("b.pth"));
        await using var app = new PortalFactory(tmp.Path);
        var client = app.CreateClient();
        var a = (await client.PostJsonAsync("/api/models", new { name = "res50nodown-run7", path = "a.pth" }, 201)).GetProperty("id").GetInt64();
        await client.PostJsonAsync("/api/models", new { name = "other", path = "b.pth" }, 201);

        using var renamed = await client.PutAsJsonAsync($"/api/models/{a}/name", new { name = "  ResNet-50 (MiniGenImage)  " });
        Assert.Equal(HttpStatusCode.OK, renamed.StatusCode);
        Assert.Equal("ResNet-50 (MiniGenImage)", (await client.GetJsonAsync($"/api/models/{a}")).GetProperty("name").GetString());

        using var taken = await client.PutAsJsonAsync($"/api/models/{a}/name", new { name = "other" });
        Assert.Equal(HttpStatusCode.Conflict, taken.StatusCode);
        Assert.True((await ProblemAsync(taken)).GetProperty("errors").TryGetProperty("name", out _));

        using var blank = await client.PutAsJsonAsync($"/api/models/{a}/name", new { name = " " });
        Assert.Equal(HttpStatusCode.BadRequest, blank.StatusCode);
        Assert.True((await ProblemAsync(blank)).GetProperty("errors").TryGetProperty("name", out _));

        using var missing = await client.PutAsJsonAsync("/api/models/999/name", new { name = "x" });
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.Equal("ResNet-50 (MiniGenImage)", (await client.GetJsonAsync($"/api/models/{a}")).GetProperty("name").GetString());
    }

    [Fact]
    public async Task A_dataset_registration_names_every_bad_field_at_once()
    {
        using var tmp = new TempDir();
        await using var app = new PortalFactory(tmp.Path);
        var client = app.CreateClient();
        using var response = await client.PostAsJsonAsync("/api/datasets", new { name = "", path = "no-such-folder" });
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var errors = (await ProblemAsync(response)).GetProperty("errors");
        Assert.Equal("name is required", errors.GetProperty("name")[0].GetString());
        Assert.Contains("does not exist", errors.GetProperty("path")[0].GetString());
    }

    [Fact]
    public async Task A_checkpoint_that_does_not_load_into_the_architecture_is_refused_with_400_on_checkpoint()
    {
        using var tmp = new TempDir();
        ImageFolders.GenImage(tmp.Sub("genimage"));
        File.Copy(Fixture("sd", "vae", "diffusion_pytorch_model.safetensors"), tmp.Sub("vae.safetensors"));
        File.Copy(Fixture("eval", "tiny_res50nodown_ckpt.pth"), tmp.Sub("detector.pth"));
        await using var app = new PortalFactory(tmp.Path);
        var client = app.CreateClient();
        var registered = await client.PostJsonAsync("/api/datasets", new { name = "genimage", path = "genimage" }, 202);
        var datasetId = registered.GetProperty("id").GetInt64();
        await Wait.RunFinishedAsync(client, registered.GetProperty("runId").GetInt64());

        foreach (var kind in new[] { "evaluate", "crossgen", "sweep" })
        {
            object config = kind == "sweep"
                ? new { datasetId, checkpoint = "vae.safetensors", axis = "jpeg" }
                : new { datasetId, checkpoint = "vae.safetensors" };
            using var refused = await client.PostAsJsonAsync("/api/runs", new { kind, config });
            Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
            var problem = await ProblemAsync(refused);
            var message = problem.GetProperty("errors").GetProperty("checkpoint")[0].GetString();
            Assert.Contains("does not load into res50nodown", message);
        }
        Assert.Equal(1, (await client.GetJsonAsync("/api/runs")).GetArrayLength());   // only the registration

        await client.PostJsonAsync("/api/runs", new { kind = "evaluate", config = new { datasetId, checkpoint = "detector.pth" } }, 202);
    }
}
