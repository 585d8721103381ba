using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Portal.Store;
using Portal.Tests.Support;

namespace Portal.Tests.Auth;

/// <summary>Helpers for the auth tests: run counts, problem bodies, and static-form posts with their antiforgery token.</summary>
public static partial class AuthTestSupport
{
    public static async Task<int> RunCountAsync(this PortalFactory app)
    {
        await using var db = await app.Services.GetRequiredService<IDbContextFactory<PortalDb>>().CreateDbContextAsync();
        return await db.Runs.CountAsync();
    }

    public static async Task<Run> RunAsync(this PortalFactory app, long id)
    {
        await using var db = await app.Services.GetRequiredService<IDbContextFactory<PortalDb>>().CreateDbContextAsync();
        return await db.Runs.AsNoTracking().SingleAsync(r => r.Id == id);
    }

    /// <summary>Queues a test-sleep run as the client's user and returns its id.</summary>
    public static async Task<long> QueueSleepAsync(this HttpClient client, int steps = 1, int stepMs = 10) =>
        (await client.PostJsonAsync("/api/runs", new { kind = "test-sleep", config = new TestJobs.SleepConfig(steps, stepMs) }, 202)).GetProperty("id").GetInt64();

    /// <summary>The status, with the body in the failure message.</summary>
    public static async Task<string> ExpectAsync(this HttpResponseMessage response, HttpStatusCode status)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == status, $"{response.RequestMessage?.Method} {response.RequestMessage?.RequestUri}: expected {(int)status}, got {(int)response.StatusCode}: {body}");
        return body;
    }

    /// <summary>GETs a static form page, then posts its fields (hidden ones, the antiforgery token included) plus <paramref name="fields"/>.</summary>
    public static async Task<(HttpResponseMessage Response, string Body)> PostFormAsync(this HttpClient client, string pageUrl, IDictionary<string, string> fields)
    {
        var page = await client.GetAsync(pageUrl);
        var html = await page.ExpectAsync(HttpStatusCode.OK);
        var form = new Dictionary<string, string>();
        foreach (Match m in HiddenInput().Matches(html)) form[WebUtility.HtmlDecode(m.Groups["name"].Value)] = WebUtility.HtmlDecode(m.Groups["value"].Value);
        Assert.True(form.ContainsKey("__RequestVerificationToken"), "the form has no antiforgery token:\n" + html);
        foreach (var (k, v) in fields) form[k] = v;
        var response = await client.PostAsync(pageUrl, new FormUrlEncodedContent(form));
        return (response, await response.Content.ReadAsStringAsync());
    }

    [GeneratedRegex("<input[^>]*type=\"hidden\"[^>]*name=\"(?<name>[^\"]+)\"[^>]*value=\"(?<value>[^\"]*)\"")]
    private static partial Regex HiddenInput();

    public static JsonElement Json(string body) => JsonDocument.Parse(body).RootElement.Clone();
}
