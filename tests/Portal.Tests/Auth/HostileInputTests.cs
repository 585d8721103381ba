using System.Net;
using System.Net.Http.Json;
using System.Text;
using Portal.Auth;
using Portal.Tests.Support;

namespace Portal.Tests.Auth;

/// <summary>Bad input to the API: always a 4xx problem that names the field, never a 500, and the store unchanged.</summary>
public sealed class HostileInputTests(AuthPortal portal) : IClassFixture<AuthPortal>
{
    PortalFactory App => portal.App;

    static StringContent Json(string text) => new(text, Encoding.UTF8, "application/json");

    [Theory]
    [InlineData("{\"kind\": 5, \"config\": {}}", "kind")]
    [InlineData("{\"kind\": \"test-sleep\", \"config\": {}, \"seed\": \"many\"}", "seed")]
    [InlineData("{\"kind\": \"test-sleep\", \"config\": {}, \"tags\": \"one\"}", "tags")]
    [InlineData("{\"kind\": \"test-sleep\", \"config\": [1, 2]}", "config")]
    [InlineData("{\"kind\": \"no-such-kind\", \"config\": {}}", "kind")]
    [InlineData("{\"kind\": \"test-sleep\"", "body")]
    [InlineData("[]", "body")]
    public async Task WrongJson_OnQueue_Is400_NamingTheField(string body, string field)
    {
        var before = await App.RunCountAsync();
        var response = await App.CreateClient().PostAsync("/api/runs", Json(body));
        var text = await response.ExpectAsync(HttpStatusCode.BadRequest);
        var problem = AuthTestSupport.Json(text);
        Assert.True(problem.GetProperty("errors").TryGetProperty(field, out _), $"the problem does not name '{field}': {text}");
        Assert.Equal(before, await App.RunCountAsync());
    }

    [Theory]
    [InlineData("-1")]
    [InlineData("0")]
    [InlineData("1.5")]
    [InlineData("1180591620717411303424")] // 2^70
    [InlineData("\"x\"")]
    [InlineData("987654")]                 // no such dataset
    public async Task RegisterDataset_WithABadDatasetId_Is400_NamingDatasetId(string datasetId)
    {
        var before = await App.RunCountAsync();
        var response = await App.CreateClient().PostAsync("/api/runs", Json($"{{\"kind\": \"register-dataset\", \"config\": {{\"datasetId\": {datasetId}}}}}"));
        var text = await response.ExpectAsync(HttpStatusCode.BadRequest);
        Assert.True(AuthTestSupport.Json(text).GetProperty("errors").TryGetProperty("datasetId", out _), $"the problem does not name 'datasetId': {text}");
        Assert.Equal(before, await App.RunCountAsync());
    }

    [Fact]
    public async Task HugeBody_Is413_AndNothingIsStored()
    {
        var before = await App.RunCountAsync();
        var huge = "{\"kind\": \"test-sleep\", \"config\": {\"pad\": \"" + new string('a', 2 * 1024 * 1024) + "\"}}";
        var text = await (await App.CreateClient().PostAsync("/api/runs", Json(huge))).ExpectAsync(HttpStatusCode.RequestEntityTooLarge);
        Assert.Contains("limit", text);
        Assert.Equal(before, await App.RunCountAsync());
    }

    [Theory]
    [InlineData("/api/datasets", "../../etc")]
    [InlineData("/api/datasets", "/etc")]
    [InlineData("/api/models", "../outside.pth")]
    [InlineData("/api/models", "/etc/passwd")]
    public async Task PathsOutsideTheRoots_Are400_NamingPath(string url, string path)
    {
        var before = await App.RunCountAsync();
        var text = await (await App.CreateClient().PostAsJsonAsync(url, new { name = "escape", path })).ExpectAsync(HttpStatusCode.BadRequest);
        Assert.True(AuthTestSupport.Json(text).GetProperty("errors").TryGetProperty("path", out _), text);
        Assert.Equal(before, await App.RunCountAsync());
        Assert.Equal(System.Text.Json.JsonValueKind.Array, (await App.CreateClient().GetJsonAsync(url)).ValueKind);
        Assert.DoesNotContain("escape", (await App.CreateClient().GetJsonAsync(url)).GetRawText());
    }

    [Fact]
    public async Task MissingRunIds_Are404_ForEveryVerb()
    {
        var client = App.CreateClient();
        const long missing = 987654;
        await (await client.PostAsync($"/api/runs/{missing}/cancel", null)).ExpectAsync(HttpStatusCode.NotFound);
        await (await client.PostAsync($"/api/runs/{missing}/rerun", null)).ExpectAsync(HttpStatusCode.NotFound);
        await (await client.DeleteAsync($"/api/runs/{missing}")).ExpectAsync(HttpStatusCode.NotFound);
        var text = await (await client.PutAsJsonAsync($"/api/runs/{missing}/tags", new { tags = new[] { "a" } })).ExpectAsync(HttpStatusCode.NotFound);
        Assert.Contains($"{missing}", text);
        await (await client.GetAsync($"/api/runs/{missing}")).ExpectAsync(HttpStatusCode.NotFound);
        await (await client.DeleteAsync($"/api/tokens/{missing}")).ExpectAsync(HttpStatusCode.NotFound);
        // A researcher's request on a missing run is a 404 too (not a 403 that would leak nothing but confuse).
        await (await App.CreateClientFor("rhea", Roles.Researcher).PostAsync($"/api/runs/{missing}/cancel", null)).ExpectAsync(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task BadTags_And_BadTokenNames_Are400_NamingTheField()
    {
        var client = App.CreateClient();
        var id = await client.QueueSleepAsync();
        var text = await (await client.PutAsJsonAsync($"/api/runs/{id}/tags", new { tags = new[] { "no spaces allowed" } })).ExpectAsync(HttpStatusCode.BadRequest);
        Assert.True(AuthTestSupport.Json(text).GetProperty("errors").TryGetProperty("tags", out _), text);
        text = await (await client.PutAsync($"/api/runs/{id}/tags", Json("{\"tags\": 7}"))).ExpectAsync(HttpStatusCode.BadRequest);
        Assert.True(AuthTestSupport.Json(text).GetProperty("errors").TryGetProperty("tags", out _), text);
        text = await (await client.PostAsJsonAsync("/api/tokens", new { name = "" })).ExpectAsync(HttpStatusCode.BadRequest);
        Assert.True(AuthTestSupport.Json(text).GetProperty("errors").TryGetProperty("name", out _), text);
        Assert.Equal("", (await App.RunAsync(id)).Tags);
    }
}
