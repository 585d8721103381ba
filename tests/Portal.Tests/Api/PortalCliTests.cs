#if !STORE_POSTGRES // a client of the HTTP API: the store behind it does not matter
using System.Diagnostics;
using System.Net;
using System.Text.Json;
using Portal.Auth;
using Portal.Tests.Support;
using SkiaSharp;

namespace Portal.Tests.Api;

/// <summary>`forensics portal ...` against a real portal process, with API tokens: the CLI side of "tokens serve the CLI and scripts".</summary>
public class PortalCliTests
{
    /// <summary>forensics.dll beside the portal's build output (same configuration).</summary>
    static string CliDll() => Path.Combine(Path.GetDirectoryName(WorkerProcess.Dll())!.Replace(Path.Combine("src", "Portal", "bin"), Path.Combine("src", "Forensics.Cli", "bin")), "forensics.dll");

    static async Task<(int Code, string Out, string Err)> CliAsync(string url, string? token, params string[] args)
    {
        var info = new ProcessStartInfo("dotnet", [CliDll(), "portal", .. args, "--url", url]) { RedirectStandardOutput = true, RedirectStandardError = true };
        info.Environment.Remove("FORENSICS_PORTAL_URL");
        info.Environment.Remove("FORENSICS_PORTAL_TOKEN");
        if (token is not null) info.Environment["FORENSICS_PORTAL_TOKEN"] = token;
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return (process.ExitCode, await stdout, await stderr);
    }


    [Fact]
    public async Task The_cli_submits_scores_and_prints_the_rows_the_portal_refused()
    {
        using var tmp = new TempDir();
        ImageFolders.Aligned(tmp.Sub("aligned"), train: 3, val: 3, side: 20, fakeSeedBase: 1000);
        var url = $"http://127.0.0.1:{LoopbackPort.Free()}";
        using var portal = WorkerProcess.Start(["--urls", url], tmp.Path);
        var http = new HttpClient { BaseAddress = new Uri(url) };
        await portal.WaitAnsweringAsync(http);
        var admin = await StoreUsers.AdminTokenAsync(tmp.Path);
        http.DefaultRequestHeaders.Authorization = new("Bearer", admin);
        var registered = await http.PostJsonAsync("/api/datasets", new { name = "aligned", path = "aligned" }, 202);
        Assert.Equal("succeeded", (await Wait.RunFinishedAsync(http, registered.GetProperty("runId").GetInt64(), TimeSpan.FromSeconds(120))).GetProperty("status").GetString());
        var datasetId = registered.GetProperty("id").GetInt64().ToString(System.Globalization.CultureInfo.InvariantCulture);
        var paths = Directory.GetFiles(tmp.Sub("aligned"), "*.png", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(tmp.Sub("aligned"), f).Replace('\\', '/')).Order(StringComparer.Ordinal).ToList();

        File.WriteAllText(tmp.Sub("scores.csv"), "path,score\n" + string.Join("\n", paths.Select((p, i) => $"{p},{(i % 5) / 5.0}")) + "\n");
        var submitted = await CliAsync(url, admin, "submit", "--dataset", datasetId, "--detector", "external", "--scores", tmp.Sub("scores.csv"));
        Assert.True(submitted.Code == 0, submitted.Err);
        var run = JsonDocument.Parse(submitted.Out).RootElement;
        Assert.Equal("submission", run.GetProperty("kind").GetString());
        Assert.Equal("succeeded", (await Wait.RunFinishedAsync(http, run.GetProperty("id").GetInt64(), TimeSpan.FromSeconds(60))).GetProperty("status").GetString());

        File.WriteAllText(tmp.Sub("short.csv"), "path,score\n" + string.Join("\n", paths.Skip(1).Select(p => $"{p},0.5")) + "\n");
        var refused = await CliAsync(url, admin, "submit", "--dataset", datasetId, "--detector", "external", "--scores", tmp.Sub("short.csv"));
        Assert.Equal(1, refused.Code);
        Assert.Contains("400", refused.Err);
        Assert.Contains("not scored: " + paths[0], refused.Err);
    }

    [Fact]
    public async Task The_cli_queues_lists_shows_and_cancels_runs_with_a_token_and_prints_the_portals_refusals()
    {
        using var tmp = new TempDir();
        ImageFolders.Aligned(tmp.Sub("aligned"), train: 6, val: 6, side: 20, fakeSeedBase: 1000);
        var url = $"http://127.0.0.1:{LoopbackPort.Free()}";
        using var portal = WorkerProcess.Start(["--urls", url], tmp.Path);
        var http = new HttpClient { BaseAddress = new Uri(url) };
        await portal.WaitAnsweringAsync(http);
        var admin = await StoreUsers.AdminTokenAsync(tmp.Path);
        var viewer = await StoreUsers.TokenAsync(tmp.Path, "vera", Roles.Viewer);
        http.DefaultRequestHeaders.Authorization = new("Bearer", admin);
        var registered = await http.PostJsonAsync("/api/datasets", new { name = "aligned", path = "aligned" }, 202);
        Assert.Equal("succeeded", (await Wait.RunFinishedAsync(http, registered.GetProperty("runId").GetInt64(), TimeSpan.FromSeconds(120))).GetProperty("status").GetString());
        var datasetId = registered.GetProperty("id").GetInt64();

        // Queue a long training run (a config file), list it, show it.
        var configFile = tmp.Sub("train.json");
        File.WriteAllText(configFile, JsonSerializer.Serialize(new
        {
            trainDatasetId = datasetId, mode = "synced", epochs = 500, pairsPerBatch = 2, width = 4, layers = new[] { 1, 1, 1, 1 }, crop = 16, augment = "none", seed = 1,
        }));
        var queued = await CliAsync(url, admin, "queue", "--kind", "train", "--config-file", configFile, "--seed", "1", "--tag", "cli");
        Assert.True(queued.Code == 0, queued.Err);
        var run = JsonDocument.Parse(queued.Out).RootElement;
        var id = run.GetProperty("id").GetInt64();
        Assert.Equal("queued", run.GetProperty("status").GetString());
        Assert.Equal(["cli"], run.GetProperty("tags").EnumerateArray().Select(t => t.GetString()));
        Assert.Equal("process-admin", run.GetProperty("owner").GetString());
        var listed = await CliAsync(url, admin, "runs", "--kind", "train");
        Assert.True(listed.Code == 0, listed.Err);
        Assert.Contains(JsonDocument.Parse(listed.Out).RootElement.EnumerateArray(), r => r.GetProperty("id").GetInt64() == id);

        // Refusals come back with the portal's words: a bad field (400), a viewer (403), no token (2, nothing sent).
        var bad = await CliAsync(url, admin, "queue", "--kind", "train", "--config", "{\"trainDatasetId\": 999}");
        Assert.Equal(1, bad.Code);
        Assert.Contains("400", bad.Err);
        Assert.Contains("trainDatasetId", bad.Err);
        var refused = await CliAsync(url, viewer, "cancel", id.ToString());
        Assert.Equal(1, refused.Code);
        Assert.Contains("403", refused.Err);
        var anonymous = await CliAsync(url, null, "runs");
        Assert.Equal(2, anonymous.Code);
        Assert.Contains("--token", anonymous.Err);
        var notJson = await CliAsync(url, admin, "queue", "--kind", "train", "--config", "{oops");
        Assert.Equal(2, notJson.Code);
        Assert.Contains("--config", notJson.Err);
        Assert.False((await http.GetJsonAsync($"/api/runs/{id}")).GetProperty("status").GetString() == "canceled");

        // The owner cancels it.
        var canceled = await CliAsync(url, admin, "cancel", id.ToString());
        Assert.True(canceled.Code == 0, canceled.Err);
        var final = await Wait.RunFinishedAsync(http, id, TimeSpan.FromSeconds(120));
        Assert.Equal("canceled", final.GetProperty("status").GetString());
        var shown = await CliAsync(url, admin, "show", id.ToString());
        Assert.True(shown.Code == 0, shown.Err);
        Assert.Equal("canceled", JsonDocument.Parse(shown.Out).RootElement.GetProperty("status").GetString());
    }
}
#endif
