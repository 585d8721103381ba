using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Portal.Tests.Support;

namespace Portal.Tests.Jobs;

/// <summary>The real portal process, killed with SIGKILL in the middle of a registration, then started again.</summary>
public class ProcessKillTests
{
    [Fact]
    public async Task A_registration_killed_midway_is_taken_up_after_restart_and_finishes_without_duplicates()
    {
        using var tmp = new TempDir();
        var folder = ImageFolders.RealFake(tmp.Sub("large"), 10000);
        var port = LoopbackPort.Free();
        var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };

        long id, runId;
        using (var first = StartPortal(tmp.Path, port))
        {
            await WorkerProcess.WaitAnsweringAsync(client, first, () => "");
            client.DefaultRequestHeaders.Authorization = new("Bearer", await StoreUsers.AdminTokenAsync(tmp.Path));
            var body = await client.PostJsonAsync("/api/datasets", new { name = "large", path = folder }, 202);
            (id, runId) = (body.GetProperty("id").GetInt64(), body.GetProperty("runId").GetInt64());
            // Killed as soon as the scan has been claimed: the 20,000-file scan takes seconds, far longer than one poll.
            var midway = await Wait.UntilAsync(() => client.GetJsonAsync($"/api/runs/{runId}"),
                r => r.GetProperty("status").GetString() != "queued", TimeSpan.FromSeconds(60), "the registration to be under way");
            first.Kill(entireProcessTree: true); // SIGKILL: no shutdown handler runs
            await first.WaitForExitAsync();
            Assert.True(midway.GetProperty("status").GetString() == "running",
                $"the registration had already ended before the kill: {midway.GetRawText()}");
        }

        using var second = StartPortal(tmp.Path, port);
        try
        {
            await WorkerProcess.WaitAnsweringAsync(client, second, () => "");
            var run = await Wait.RunFinishedAsync(client, runId, TimeSpan.FromSeconds(120));
            Assert.Equal("succeeded", run.GetProperty("status").GetString());
            Assert.Equal(2, (await client.GetJsonAsync($"/api/runs/{runId}")).GetProperty("attempts").GetInt32());
            var dataset = await client.GetJsonAsync($"/api/datasets/{id}");
            Assert.Equal(20000, dataset.GetProperty("images").GetInt32());
            Assert.Equal("ready", dataset.GetProperty("status").GetString());
            Assert.Single((await client.GetJsonAsync("/api/datasets")).EnumerateArray());
            Assert.Single((await client.GetJsonAsync("/api/runs")).EnumerateArray());
            var subsets = dataset.GetProperty("subsets").EnumerateArray().ToList();
            Assert.Equal(2, subsets.Count);
            Assert.All(subsets, s => Assert.Equal(10000, s.GetProperty("count").GetInt32()));
        }
        finally
        {
            second.Kill(entireProcessTree: true);
            await second.WaitForExitAsync();
        }
    }


    [Fact]
    public async Task A_registration_whose_portal_is_killed_at_its_last_allowed_attempt_fails_after_restart_instead_of_running_again()
    {
        using var tmp = new TempDir();
        var folder = ImageFolders.RealFake(tmp.Sub("poison"), 3000);
        var port = LoopbackPort.Free();
        var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
        var oneAttempt = new Dictionary<string, string> { ["Portal__Jobs__MaxAttempts"] = "1" };

        long runId;
        using (var first = StartPortal(tmp.Path, port, oneAttempt))
        {
            await WorkerProcess.WaitAnsweringAsync(client, first, () => "");
            client.DefaultRequestHeaders.Authorization = new("Bearer", await StoreUsers.AdminTokenAsync(tmp.Path));
            runId = (await client.PostJsonAsync("/api/datasets", new { name = "poison", path = folder }, 202)).GetProperty("runId").GetInt64();
            var midway = await Wait.UntilAsync(() => client.GetJsonAsync($"/api/runs/{runId}"),
                r => r.GetProperty("status").GetString() != "queued", TimeSpan.FromSeconds(60), "the registration to be under way");
            first.Kill(entireProcessTree: true); // as the OOM killer would
            await first.WaitForExitAsync();
            Assert.True(midway.GetProperty("status").GetString() == "running", $"the registration had already ended before the kill: {midway.GetRawText()}");
        }

        using var second = StartPortal(tmp.Path, port, oneAttempt);
        try
        {
            await WorkerProcess.WaitAnsweringAsync(client, second, () => "");
            var run = await Wait.RunFinishedAsync(client, runId, TimeSpan.FromSeconds(60));
            Assert.Equal("failed", run.GetProperty("status").GetString());
            Assert.StartsWith("its worker died 1 time while running it (last phase: ", run.GetProperty("error").GetString());
            Assert.Equal(1, run.GetProperty("attempts").GetInt32());
        }
        finally
        {
            second.Kill(entireProcessTree: true);
            await second.WaitForExitAsync();
        }
    }

    static Process StartPortal(string dataDir, int port, IReadOnlyDictionary<string, string>? environment = null)
    {
        var info = new ProcessStartInfo("dotnet", [WorkerProcess.Dll(), "--urls", $"http://127.0.0.1:{port}"])
        {
            WorkingDirectory = dataDir,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        info.Environment["PORTAL_DATA_DIR"] = dataDir;
        info.Environment["Portal__Jobs__HeartbeatSeconds"] = "0.1";
        info.Environment["Portal__Demo__Enabled"] = "false";   // no MiniGenImage build beside the registration under test
        // The same store as an in-process PortalFactory over this folder (PostgreSQL in the STORE_POSTGRES build).
        foreach (var (key, value) in PortalFactory.StoreSettings(dataDir)) info.Environment[key.Replace(":", "__")] = value;
        foreach (var (key, value) in environment ?? new Dictionary<string, string>()) info.Environment[key] = value;
        var p = Process.Start(info)!;
        p.OutputDataReceived += (_, _) => { };
        p.ErrorDataReceived += (_, _) => { };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return p;
    }
}
