#if !STORE_POSTGRES // these tests start their own PostgreSQL database in either build; once is enough
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Portal.Tests.Support;
using SkiaSharp;

namespace Portal.Tests.Jobs;

/// <summary>
/// A team deployment from real parts: a PostgreSQL server from Debian's package on loopback, a web node that only
/// queues (Jobs:RunWorkers=false) and two `Portal.dll worker` processes, all on one database and one data folder.
/// </summary>
public class TeamDeploymentTests
{
    /// <summary>The web node, two workers and a client signed in as an admin, over one fresh database.</summary>
    sealed class Deployment : IAsyncDisposable
    {
        public required WorkerProcess Web { get; init; }
        public required List<WorkerProcess> Workers { get; init; }
        public required HttpClient Client { get; init; }
        public required string DataDir { get; init; }

        public static async Task<Deployment> StartAsync(string dataDir, double orphanAfterSeconds)
        {
            var database = PostgresServer.Shared.CreateDatabase();
            var settings = new Dictionary<string, string>
            {
                ["Portal:Store:Provider"] = "postgres",
                ["ConnectionStrings:Portal"] = database,
                ["Portal:Jobs:OrphanAfterSeconds"] = orphanAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture),
                // One torch thread everywhere: the same arithmetic on every worker, and three processes share two cores.
                ["Portal:Torch:Threads"] = "1",
            };
            var port = LoopbackPort.Free();
            var web = WorkerProcess.Start(["--urls", $"http://127.0.0.1:{port}"], dataDir,
                new Dictionary<string, string>(settings) { ["Portal:Jobs:RunWorkers"] = "false" });
            var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
            // Any answer from /api/health means the web node has migrated the database (no job server yet: 503).
            await web.WaitAnsweringAsync(client, jobServersOptional: true);
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", await StoreUsers.AdminTokenAsync(dataDir, postgres: database));
            var workers = new List<WorkerProcess> { WorkerProcess.StartWorker(dataDir, settings), WorkerProcess.StartWorker(dataDir, settings) };
            var deployment = new Deployment { Web = web, Workers = workers, Client = client, DataDir = dataDir };
            await Wait.UntilAsync(async () =>
            {
                foreach (var w in workers) if (w.Process.HasExited) throw new InvalidOperationException($"a worker exited: {w.Output}");
                return (await client.GetJsonAsync("/api/workers")).EnumerateArray().Count(w => w.GetProperty("state").GetString() == "live");
            }, n => n == 2, TimeSpan.FromSeconds(120), "both workers to be live");
            return deployment;
        }

        public async Task<long> RegisterAsync(string name, string path)
        {
            var registered = await Client.PostJsonAsync("/api/datasets", new { name, path }, 202);
            var run = await Wait.RunFinishedAsync(Client, registered.GetProperty("runId").GetInt64(), TimeSpan.FromSeconds(120));
            Assert.True(run.GetProperty("status").GetString() == "succeeded", run.GetRawText());
            return registered.GetProperty("id").GetInt64();
        }

        public async Task<long> QueueTrainingAsync(long datasetId) =>
            (await Client.PostJsonAsync("/api/runs", new
            {
                kind = "train",
                config = new
                {
                    trainDatasetId = datasetId, mode = "synced", epochs = 5, pairsPerBatch = 4, width = 8,
                    layers = new[] { 1, 1, 1, 1 }, crop = 24, augment = "none", seed = 11,
                },
                seed = 11,
            }, 202)).GetProperty("id").GetInt64();

        public string RunFile(long runId, string name) => Path.Combine(DataDir, "runs", runId.ToString(), name);

        public WorkerProcess Holder(JsonElement run) => Workers.Single(w => w.WorkerName == run.GetProperty("worker").GetString());

        public async ValueTask DisposeAsync()
        {
            foreach (var w in Workers) w.Dispose();
            Web.Dispose();
            Client.Dispose();
            await Task.CompletedTask;
        }
    }


    static void AssertSameFile(string expected, string actual)
    {
        Assert.True(File.Exists(actual), actual);
        Assert.True(File.ReadAllBytes(expected).AsSpan().SequenceEqual(File.ReadAllBytes(actual)), $"{actual} differs from {expected}");
    }

    [Fact]
    public async Task A_worker_killed_mid_training_is_replaced_by_the_other_which_finishes_from_the_checkpoint_to_the_uninterrupted_weights()
    {
        using var tmp = new TempDir();
        ImageFolders.Aligned(tmp.Sub("aligned"), train: 120, val: 20, side: 32, fakeSeedBase: 100_000);
        await using var team = await Deployment.StartAsync(tmp.Path, orphanAfterSeconds: 3);
        var datasetId = await team.RegisterAsync("aligned", "aligned");

        var uninterrupted = await team.QueueTrainingAsync(datasetId);
        var reference = await Wait.RunFinishedAsync(team.Client, uninterrupted, TimeSpan.FromSeconds(300));
        Assert.True(reference.GetProperty("status").GetString() == "succeeded", reference.GetRawText());

        var victim = await team.QueueTrainingAsync(datasetId);
        // Killed once the first epoch's checkpoint is on disk, in the middle of the second.
        var running = await Wait.UntilAsync(() => team.Client.GetJsonAsync($"/api/runs/{victim}"),
            r => r.GetProperty("status").GetString() != "queued" && File.Exists(team.RunFile(victim, "checkpoint.safetensors")) || r.GetProperty("status").GetString() is "succeeded" or "failed",
            TimeSpan.FromSeconds(300), "the first checkpoint");
        Assert.True(running.GetProperty("status").GetString() == "running", $"the run ended before the kill: {running.GetRawText()}");
        var killed = team.Holder(running);
        var survivor = team.Workers.Single(w => w != killed);
        await killed.KillAsync(); // SIGKILL: no handover, its heartbeat just stops

        var done = await Wait.RunFinishedAsync(team.Client, victim, TimeSpan.FromSeconds(300));
        var log = (await team.Client.GetJsonAsync($"/api/runs/{victim}/log?tail=500")).GetRawText();
        Assert.True(done.GetProperty("status").GetString() == "succeeded", done.GetRawText() + log + survivor.Output);
        Assert.Equal(2, done.GetProperty("attempts").GetInt32());
        Assert.Equal(survivor.WorkerName, done.GetProperty("worker").GetString());
        Assert.Contains("resuming from the run's last checkpoint", log);
        Assert.Contains($"taken up again (attempt 2) by {survivor.WorkerName}", log);

        // The same final and best weights as the run nobody interrupted.
        AssertSameFile(team.RunFile(uninterrupted, "checkpoint.safetensors"), team.RunFile(victim, "checkpoint.safetensors"));
        AssertSameFile(team.RunFile(uninterrupted, "best.safetensors"), team.RunFile(victim, "best.safetensors"));

        // Exactly one row for the run: the registration and the two trainings, nothing duplicated by the takeover.
        var runs = (await team.Client.GetJsonAsync("/api/runs")).EnumerateArray().ToList();
        Assert.Equal(3, runs.Count);
        Assert.Single(runs, r => r.GetProperty("id").GetInt64() == victim);
        var workers = (await team.Client.GetJsonAsync("/api/workers")).EnumerateArray().ToDictionary(w => w.GetProperty("name").GetString()!);
        Assert.Equal("gone", workers[killed.WorkerName].GetProperty("state").GetString());
        Assert.Equal("live", workers[survivor.WorkerName].GetProperty("state").GetString());
    }

    [Fact]
    public async Task A_database_restart_in_the_middle_of_a_training_run_is_ridden_out_by_the_worker_holding_it()
    {
        using var tmp = new TempDir();
        ImageFolders.Aligned(tmp.Sub("aligned"), train: 120, val: 20, side: 32, fakeSeedBase: 100_000);
        // Takeover only after 60 s without a heartbeat: a short outage must be ridden out, not turned into a takeover.
        await using var team = await Deployment.StartAsync(tmp.Path, orphanAfterSeconds: 60);
        var datasetId = await team.RegisterAsync("aligned", "aligned");
        var uninterrupted = await team.QueueTrainingAsync(datasetId);
        var reference = await Wait.RunFinishedAsync(team.Client, uninterrupted, TimeSpan.FromSeconds(300));
        Assert.True(reference.GetProperty("status").GetString() == "succeeded", reference.GetRawText());

        var run = await team.QueueTrainingAsync(datasetId);
        var running = await Wait.UntilAsync(() => team.Client.GetJsonAsync($"/api/runs/{run}"),
            r => r.GetProperty("status").GetString() != "queued" && File.Exists(team.RunFile(run, "checkpoint.safetensors")) || r.GetProperty("status").GetString() is "succeeded" or "failed",
            TimeSpan.FromSeconds(300), "the first checkpoint");
        Assert.True(running.GetProperty("status").GetString() == "running", $"the run ended before the restart: {running.GetRawText()}");
        PostgresServer.Shared.Stop();
        try { await Task.Delay(TimeSpan.FromSeconds(4)); }
        finally { PostgresServer.Shared.Start(); }

        var done = await Wait.RunFinishedAsync(team.Client, run, TimeSpan.FromSeconds(300));
        var holder = team.Holder(running);
        Assert.True(done.GetProperty("status").GetString() == "succeeded", done.GetRawText() + holder.Output);
        Assert.Equal(1, done.GetProperty("attempts").GetInt32());
        // The outage did hit the worker holding the run: its store calls failed while the server was down, and the run went on.
        Assert.Contains("An error occurred using the connection to database", holder.Output);
        Assert.Equal(running.GetProperty("worker").GetString(), done.GetProperty("worker").GetString());
        AssertSameFile(team.RunFile(uninterrupted, "checkpoint.safetensors"), team.RunFile(run, "checkpoint.safetensors"));
        Assert.Equal(3, (await team.Client.GetJsonAsync("/api/runs")).EnumerateArray().Count());
        // Both workers reconnected: their heartbeats are fresh again.
        Assert.All((await team.Client.GetJsonAsync("/api/workers")).EnumerateArray(), w => Assert.Equal("live", w.GetProperty("state").GetString()));
        // The queue works after the restart too: a registration queued now is taken and finishes.
        await team.RegisterAsync("again", "aligned");
    }
}
#endif
