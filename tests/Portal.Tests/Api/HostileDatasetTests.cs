using System.Text.Json;
using Forensics.Testing;
using Portal.Tests.Support;

namespace Portal.Tests.Api;

/// <summary>register-dataset through the API on folders that many people can write to (issue 14, items 1, 2 and 8).</summary>
public class HostileDatasetTests
{
    static async Task<(long Id, long RunId)> RegisterAsync(HttpClient client, string name, string path)
    {
        var body = await client.PostJsonAsync("/api/datasets", new { name, path }, 202);
        return (body.GetProperty("id").GetInt64(), body.GetProperty("runId").GetInt64());
    }

    static Dictionary<string, string> Unreadable(JsonElement dataset) =>
        dataset.GetProperty("unreadable").EnumerateArray().ToDictionary(u => u.GetProperty("path").GetString()!, u => u.GetProperty("reason").GetString()!);

    [Fact]
    public async Task Links_out_of_the_roots_fifos_devices_and_bombs_are_listed_unreadable_and_the_registration_succeeds()
    {
        using var tmp = new TempDir();
        using var elsewhere = new TempDir(); // not an allowed root
        var folder = ImageFolders.RealFake(tmp.Sub("shared"), 3);
        ImageFolders.Write(Path.Combine(elsewhere.Path, "outside.png"), ImageFolders.Encode(8, 8, SkiaSharp.SKEncodedImageFormat.Png, 5));
        File.CreateSymbolicLink(Path.Combine(folder, "0_real", "x.png"), Path.Combine(elsewhere.Path, "outside.png"));
        File.CreateSymbolicLink(Path.Combine(folder, "0_real", "passwd.png"), "/etc/passwd");
        File.CreateSymbolicLink(Path.Combine(folder, "0_real", "shadow.png"), "/etc/shadow");
        Directory.CreateSymbolicLink(Path.Combine(folder, "0_real", "etcdir"), "/etc");
        File.CreateSymbolicLink(Path.Combine(folder, "1_fake", "zero.png"), "/dev/zero");
        HostileFiles.MakeFifo(Path.Combine(folder, "1_fake", "pipe.png"));
        ImageFolders.Write(Path.Combine(folder, "1_fake", "bomb.png"), HostileFiles.PngClaiming(20000, 20000));
        HostileFiles.Sparse(Path.Combine(folder, "1_fake", "huge.png"), HostileFiles.PngClaiming(8, 8), 1L << 30);

        await using var app = new PortalFactory(tmp.Path, settings: new Dictionary<string, string> { ["Portal:Images:MaxFileBytes"] = "1048576" });
        var client = app.CreateClient();
        var (id, runId) = await RegisterAsync(client, "shared", folder);
        var run = await Wait.RunFinishedAsync(client, runId, TimeSpan.FromSeconds(120));
        Assert.Equal("succeeded", run.GetProperty("status").GetString());

        var dataset = await client.GetJsonAsync($"/api/datasets/{id}");
        Assert.Equal("ready", dataset.GetProperty("status").GetString());
        Assert.Equal(6, dataset.GetProperty("images").GetInt32());
        Assert.Equal(new Dictionary<string, string>
        {
            ["0_real/etcdir/"] = "outside the allowed roots",
            ["0_real/passwd.png"] = "outside the allowed roots",
            ["0_real/shadow.png"] = "outside the allowed roots",
            ["0_real/x.png"] = "outside the allowed roots",
            ["1_fake/bomb.png"] = "image too large (20000 x 20000; the limit is 50000000 pixels)",
            ["1_fake/huge.png"] = "file too large (1073741824 bytes; the limit is 1048576 bytes)",
            ["1_fake/pipe.png"] = "not a regular file (fifo)",
            ["1_fake/zero.png"] = "outside the allowed roots",
        }, Unreadable(dataset));
    }

    [Fact]
    public async Task The_pixel_limit_is_a_setting()
    {
        using var tmp = new TempDir();
        var folder = ImageFolders.RealFake(tmp.Sub("small"), 2);
        ImageFolders.Write(Path.Combine(folder, "1_fake", "wide.png"), ImageFolders.Encode(40, 30, SkiaSharp.SKEncodedImageFormat.Png, 7));
        await using var app = new PortalFactory(tmp.Path, settings: new Dictionary<string, string> { ["Portal:Images:MaxPixels"] = "1000" });
        var client = app.CreateClient();
        var (id, runId) = await RegisterAsync(client, "small", folder);
        Assert.Equal("succeeded", (await Wait.RunFinishedAsync(client, runId)).GetProperty("status").GetString());
        Assert.Equal("image too large (40 x 30; the limit is 1000 pixels)", Unreadable(await client.GetJsonAsync($"/api/datasets/{id}"))["1_fake/wide.png"]);
    }

    [Fact]
    public async Task A_first_registration_canceled_while_queued_leaves_a_failed_dataset_that_can_be_scanned_again()
    {
        using var tmp = new TempDir();
        var folder = ImageFolders.RealFake(tmp.Sub("pairs"), 2);
        long id, runId;
        await using (var web = new PortalFactory(tmp.Path, settings: new Dictionary<string, string> { ["Portal:Jobs:RunWorkers"] = "false" }))
        {
            var client = web.CreateClient();
            (id, runId) = await RegisterAsync(client, "pairs", folder);
            await client.PostJsonAsync($"/api/runs/{runId}/cancel", new { }, 202);
            Assert.Equal("canceled", (await client.GetJsonAsync($"/api/runs/{runId}")).GetProperty("status").GetString());
            Assert.Equal("failed", (await client.GetJsonAsync($"/api/datasets/{id}")).GetProperty("status").GetString());
        }
        await using var app = new PortalFactory(tmp.Path);
        var again = app.CreateClient();
        var rescan = await again.PostJsonAsync($"/api/datasets/{id}/rescan", new { }, 202);
        Assert.Contains((await again.GetJsonAsync($"/api/datasets/{id}")).GetProperty("status").GetString(), new[] { "registering", "ready" });
        Assert.Equal("succeeded", (await Wait.RunFinishedAsync(again, rescan.GetProperty("runId").GetInt64())).GetProperty("status").GetString());
        Assert.Equal("ready", (await again.GetJsonAsync($"/api/datasets/{id}")).GetProperty("status").GetString());
    }

    [Fact]
    public async Task A_first_registration_canceled_while_running_leaves_a_failed_dataset()
    {
        using var tmp = new TempDir();
        var folder = tmp.Sub("many");
        var png = ImageFolders.Encode(8, 8, SkiaSharp.SKEncodedImageFormat.Png, 1);
        foreach (var label in new[] { "0_real", "1_fake" })
        {
            Directory.CreateDirectory(Path.Combine(folder, label));
            for (var i = 0; i < 10000; i++) File.WriteAllBytes(Path.Combine(folder, label, $"{i:D5}.png"), png);
        }
        await using var app = new PortalFactory(tmp.Path);
        var client = app.CreateClient();
        var (id, runId) = await RegisterAsync(client, "many", folder);
        await Wait.UntilAsync(() => client.GetJsonAsync($"/api/runs/{runId}"), r => r.GetProperty("status").GetString() != "queued", what: "the scan to start");
        await client.PostJsonAsync($"/api/runs/{runId}/cancel", new { }, 202);
        var run = await Wait.RunFinishedAsync(client, runId);
        Assert.Equal("canceled", run.GetProperty("status").GetString());
        Assert.Equal("failed", (await client.GetJsonAsync($"/api/datasets/{id}")).GetProperty("status").GetString());
    }
}
