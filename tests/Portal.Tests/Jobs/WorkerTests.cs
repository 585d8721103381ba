using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Portal.Experiments;
using Portal.Datasets;
using Portal.Zoo;
using Portal.Runs;
using Portal.Store;
using Portal.Tests.Support;
using static Portal.Tests.Support.TestJobs;

namespace Portal.Tests.Jobs;

/// <summary>Worker rows and heartbeats, per-device-kind queues, takeover of orphaned runs, a worker process, and queueing load.</summary>
public class WorkerTests
{
    static readonly Dictionary<string, string> QueueOnly = new() { ["Portal:Jobs:RunWorkers"] = "false" };

    static async Task<PortalDb> DbAsync(PortalFactory app) =>
        await app.Services.GetRequiredService<IDbContextFactory<PortalDb>>().CreateDbContextAsync();

    static async Task<Run> GetAsync(PortalFactory app, long id)
    {
        await using var db = await DbAsync(app);
        return await db.Runs.AsNoTracking().Include(r => r.Log).SingleAsync(r => r.Id == id);
    }

    static async Task<WorkerNode?> WorkerRowAsync(PortalFactory app, string name)
    {
        await using var db = await DbAsync(app);
        return await db.Workers.AsNoTracking().Where(w => w.Name == name).OrderByDescending(w => w.Id).FirstOrDefaultAsync();
    }

    static async Task<long> AddRunAsync(PortalFactory app, Run run)
    {
        await using var db = await DbAsync(app);
        db.Runs.Add(run);
        await db.SaveChangesAsync();
        return run.Id;
    }

    /// <summary>A run as a worker elsewhere leaves it while executing: claimed once, with a heartbeat at <paramref name="heartbeat"/>.</summary>
    static Run Running(string worker, DateTime heartbeat, int steps = 2) => new()
    {
        Kind = "test-sleep", Queue = JobQueues.Light, ConfigJson = $"{{\"steps\":{steps},\"stepMs\":10}}", ConfigHash = "x", Status = RunStatus.Running,
        Worker = worker, Attempts = 1, CreatedAt = heartbeat, StartedAt = heartbeat, HeartbeatAt = heartbeat, Progress = 0.5,
    };

    [Fact]
    public async Task A_job_running_portal_writes_its_worker_row_refreshes_it_lists_its_run_and_marks_the_stop()
    {
        using var tmp = new TempDir();
        long runId;
        await using (var app = new PortalFactory(tmp.Path))
        {
            var client = app.CreateClient();
            var row = await Wait.UntilAsync(() => WorkerRowAsync(app, RunExecutor.WorkerName), w => w is not null, what: "the worker row");
            Assert.Equal("embedded", row!.Mode);
            Assert.Equal(Environment.ProcessId, row.ProcessId);
            Assert.Equal(Environment.MachineName, row.Host);
            Assert.Equal("cpu", row.DeviceKind);
            Assert.Equal($"{JobQueues.DeviceCpu},{JobQueues.Light},{JobQueues.Orchestration}", row.Queues);
            Assert.True(row.MemoryBytes > 0 && row.Threads > 0, $"memory {row.MemoryBytes}, threads {row.Threads}");
            Assert.Null(row.StoppedAt);
            await Wait.UntilAsync(() => WorkerRowAsync(app, RunExecutor.WorkerName), w => w!.HeartbeatAt > row.HeartbeatAt, TimeSpan.FromSeconds(10), "a heartbeat");

            runId = (await app.Services.GetRequiredService<RunService>().CreateAsync("test-sleep", new SleepConfig(600, 100))).Id;
            await Wait.UntilAsync(() => GetAsync(app, runId), r => r.Status == RunStatus.Running, what: "the run to start");
            var listed = await Wait.UntilAsync(() => client.GetJsonAsync("/api/workers"),
                a => a.EnumerateArray().Any(w => w.GetProperty("name").GetString() == RunExecutor.WorkerName &&
                                                 w.GetProperty("runs").EnumerateArray().Any(r => r.GetProperty("id").GetInt64() == runId)), what: "the run listed under its worker");
            var me = listed.EnumerateArray().Single(w => w.GetProperty("name").GetString() == RunExecutor.WorkerName);
            Assert.Equal("live", me.GetProperty("state").GetString());
            var page = await client.GetStringAsync("/system");
            Assert.Contains($"data-worker=\"{RunExecutor.WorkerName}\" data-state=\"live\"", page);
            Assert.Contains($"href=\"runs/{runId}\"", page);
            await app.Services.GetRequiredService<RunService>().CancelAsync(runId);
            await Wait.UntilAsync(() => GetAsync(app, runId), r => r.IsFinished, what: "the cancel");
        }
        // The host stopped: its row says so (read by a web node that runs no jobs, so writes no row of its own).
        await using var reader = new PortalFactory(tmp.Path, settings: QueueOnly);
        _ = reader.CreateClient();
        await using var db = await DbAsync(reader);
        var rows = await db.Workers.AsNoTracking().ToListAsync();
        Assert.NotNull(Assert.Single(rows).StoppedAt);
    }

    [Fact]
    public async Task Workers_are_listed_live_gone_or_stopped_by_their_heartbeat()
    {
        using var tmp = new TempDir();
        await using var app = new PortalFactory(tmp.Path, settings: new Dictionary<string, string>(QueueOnly) { ["Portal:Jobs:OrphanAfterSeconds"] = "2" });
        var client = app.CreateClient();
        var now = DateTime.UtcNow;
        WorkerNode Node(string name, DateTime heartbeat, DateTime? stopped = null) => new()
        {
            Name = name, Host = name.Split(':')[0], ProcessId = int.Parse(name.Split(':')[1]), Mode = "worker", DeviceKind = "cuda", DeviceName = "NVIDIA H100",
            MemoryBytes = 80L << 30, Threads = 16, Queues = JobQueues.DeviceCuda, StartedAt = now.AddHours(-1), HeartbeatAt = heartbeat, StoppedAt = stopped,
        };
        await using (var db = await DbAsync(app))
        {
            db.Workers.AddRange(Node("gpu-a:7", now.AddMinutes(-1)), Node("gpu-b:8", now.AddMinutes(1)), Node("gpu-c:9", now.AddMinutes(-5), now.AddMinutes(-5)),
                Node("gpu-d:10", now.AddDays(-3)));
            await db.SaveChangesAsync();
        }
        var workers = (await client.GetJsonAsync("/api/workers")).EnumerateArray()
            .ToDictionary(w => w.GetProperty("name").GetString()!, w => w.GetProperty("state").GetString());
        Assert.Equal(new Dictionary<string, string?> { ["gpu-a:7"] = "gone", ["gpu-b:8"] = "live", ["gpu-c:9"] = "stopped" }, workers);
        var page = await client.GetStringAsync("/system");
        Assert.Contains("data-worker=\"gpu-a:7\" data-state=\"gone\"", page);
        Assert.Contains("data-worker=\"gpu-b:8\" data-state=\"live\"", page);
        Assert.DoesNotContain("gpu-d:10", page); // ended days ago
    }

    [Fact]
    public async Task A_worker_of_this_host_whose_process_exited_is_gone_at_once_though_its_heartbeat_is_fresh()
    {
        using var tmp = new TempDir();
        await using var app = new PortalFactory(tmp.Path, settings: new Dictionary<string, string>(QueueOnly) { ["Portal:Jobs:OrphanAfterSeconds"] = "600" });
        // A process of this host that has exited (and been reaped): its pid names nobody now.
        using var exited = System.Diagnostics.Process.Start("true")!;
        await exited.WaitForExitAsync();
        var now = DateTime.UtcNow;
        WorkerNode Node(string host, int pid) => new()
        {
            Name = $"{host}:{pid}", Host = host, ProcessId = pid, Mode = "worker", DeviceKind = "cpu", DeviceName = "cpu", MemoryBytes = 1L << 30,
            Threads = 1, Queues = JobQueues.DeviceCpu, StartedAt = now.AddMinutes(-1), HeartbeatAt = now,
        };
        var local = Node(Environment.MachineName, exited.Id);
        var elsewhere = Node("other-host", exited.Id); // the same pid elsewhere says nothing about that machine's process
        await using (var db = await DbAsync(app))
        {
            db.Workers.AddRange(local, elsewhere);
            await db.SaveChangesAsync();
        }
        var workers = (await app.CreateClient().GetJsonAsync("/api/workers")).EnumerateArray()
            .ToDictionary(w => w.GetProperty("name").GetString()!, w => w.GetProperty("state").GetString());
        Assert.Equal("gone", workers[local.Name]);
        Assert.Equal("live", workers[elsewhere.Name]);
    }

    [Fact]
    public async Task A_runs_device_field_picks_its_queue_and_a_bad_one_is_a_400_naming_device()
    {
        using var tmp = new TempDir();
        await using var app = new PortalFactory(tmp.Path, settings: QueueOnly);
        var client = app.CreateClient();
        async Task<string?> QueueOf(object config, string kind = "test-device") =>
            (await client.PostJsonAsync("/api/runs", new { kind, config }, 202)).GetProperty("queue").GetString();
        Assert.Equal(JobQueues.DeviceCuda, await QueueOf(new { steps = 1, stepMs = 1, device = "cuda" }));
        Assert.Equal(JobQueues.DeviceCpu, await QueueOf(new { steps = 1, stepMs = 1, device = "cpu" }));
        Assert.Equal(JobQueues.DeviceCpu, await QueueOf(new { steps = 1, stepMs = 1 }));
        Assert.Equal(JobQueues.Light, await QueueOf(new { steps = 1, stepMs = 1, device = "cuda" }, "test-sleep"));
        foreach (object bad in new object[] { new { steps = 1, device = "tpu" }, new { steps = 1, device = 3 }, new { steps = 1, device = "CUDA:0" } })
        {
            using var response = await client.PostAsJsonAsync("/api/runs", new { kind = "test-device", config = bad });
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            var problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
            Assert.Contains("device", problem.GetProperty("errors").GetProperty("device")[0].GetString());
        }
        await using var db = await DbAsync(app);
        Assert.Equal(4, await db.Runs.CountAsync());

        // A web node for a GPU team: runs without a device field go to the cuda workers.
        await using var gpuTeam = new PortalFactory(tmp.Path, settings: new Dictionary<string, string>(QueueOnly) { ["Portal:Jobs:DefaultDevice"] = "cuda" });
        var run = await gpuTeam.Services.GetRequiredService<RunService>().CreateAsync("test-device", new SleepConfig(1, 1));
        Assert.Equal(JobQueues.DeviceCuda, run.Queue);
    }

    [Fact]
    public async Task A_cpu_worker_runs_cpu_device_runs_and_leaves_cuda_runs_queued()
    {
        using var tmp = new TempDir();
        await using var app = new PortalFactory(tmp.Path);
        var runs = app.Services.GetRequiredService<RunService>();
        var cuda = await runs.CreateAsync("test-device", new { steps = 1, stepMs = 50, device = "cuda" });
        var cpu = await runs.CreateAsync("test-device", new { steps = 1, stepMs = 50, device = "cpu" });
        var done = await Wait.UntilAsync(() => GetAsync(app, cpu.Id), r => r.IsFinished, what: "the cpu run");
        Assert.Equal(RunStatus.Succeeded, done.Status);
        await Task.Delay(1000);
        var waiting = await GetAsync(app, cuda.Id);
        Assert.Equal(RunStatus.Queued, waiting.Status);
        Assert.Equal(JobQueues.DeviceCuda, waiting.Queue);
        Assert.Equal(0, waiting.Attempts);
    }

    [Fact]
    public async Task A_run_whose_worker_vanished_on_another_host_is_taken_over_and_a_live_one_is_not()
    {
        using var tmp = new TempDir();
        await using var app = new PortalFactory(tmp.Path, settings: new Dictionary<string, string> { ["Portal:Jobs:OrphanAfterSeconds"] = "2" });
        _ = app.CreateClient();
        var orphan = await AddRunAsync(app, Running("other-host:123", DateTime.UtcNow.AddMinutes(-1)));
        var live = await AddRunAsync(app, Running("other-host:456", DateTime.UtcNow));
        // The live run's worker keeps beating, as a healthy machine does.
        using var stop = new CancellationTokenSource();
        var beating = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                await using (var db = await DbAsync(app))
                {
                    var now = DateTime.UtcNow;
                    await db.Runs.Where(r => r.Id == live).ExecuteUpdateAsync(s => s.SetProperty(r => r.HeartbeatAt, now));
                }
                await Task.Delay(200);
            }
        });
        var taken = await Wait.UntilAsync(() => GetAsync(app, orphan), r => r.IsFinished, TimeSpan.FromSeconds(30), "the orphan to be taken over");
        Assert.Equal(RunStatus.Succeeded, taken.Status);
        Assert.Equal(2, taken.Attempts);
        Assert.Equal(RunExecutor.WorkerName, taken.Worker);
        Assert.Contains(taken.Log, l => l.Message.Contains("worker other-host:123 is gone") && l.Message.Contains("taken over by"));
        await Task.Delay(3000); // longer than the orphan age, with the live worker beating
        var untouched = await GetAsync(app, live);
        await stop.CancelAsync();
        await beating;
        Assert.Equal(RunStatus.Running, untouched.Status);
        Assert.Equal("other-host:456", untouched.Worker);
        Assert.Equal(1, untouched.Attempts);
        await using var check = await DbAsync(app);
        Assert.Equal(2, await check.Runs.CountAsync());
    }

    /// <summary>Records deliveries instead of running them.</summary>
    sealed class RecordingQueue : IRunQueue
    {
        public readonly ConcurrentQueue<(long RunId, string Queue)> Enqueued = new();
        public void Enqueue(long runId, string queue) => Enqueued.Enqueue((runId, queue));
    }

    [Fact]
    public async Task Concurrent_sweepers_take_each_orphan_once_and_leave_live_runs_alone()
    {
        using var tmp = new TempDir();
        var queue = new RecordingQueue();
        await using var app = new PortalFactory(tmp.Path, s => s.AddSingleton<IRunQueue>(queue),
            new Dictionary<string, string> { ["Portal:Jobs:OrphanAfterSeconds"] = "30" });
        _ = app.CreateClient();
        using (var exited = Process.Start(new ProcessStartInfo("true"))!) // a process of this host that has ended
        {
            await exited.WaitForExitAsync();
            var stale = await AddRunAsync(app, Running("other-host:123", DateTime.UtcNow.AddMinutes(-10)));
            var deadHere = await AddRunAsync(app, Running($"{Environment.MachineName}:{exited.Id}", DateTime.UtcNow));
            var liveElsewhere = await AddRunAsync(app, Running("other-host:456", DateTime.UtcNow));
            var liveHere = await AddRunAsync(app, Running(RunExecutor.WorkerName, DateTime.UtcNow));
            var sweeps = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Task.Run(async () =>
            {
                using var scope = app.Services.CreateScope();
                return await scope.ServiceProvider.GetRequiredService<RunRecovery>().SweepAsync(atStart: false);
            })));
            Assert.InRange(sweeps.Sum(), 0, 2); // the hosted sweeper may have taken some first
            var delivered = queue.Enqueued.Select(e => e.RunId).Order().ToList();
            Assert.Equal([stale, deadHere], delivered);
            foreach (var id in delivered)
            {
                var run = await GetAsync(app, id);
                Assert.Equal(RunStatus.Queued, run.Status);
                Assert.Null(run.Worker);
                Assert.Single(run.Log, l => l.Message.Contains("taken over"));
            }
            Assert.Equal(RunStatus.Running, (await GetAsync(app, liveElsewhere)).Status);
            Assert.Equal(RunStatus.Running, (await GetAsync(app, liveHere)).Status);
        }
    }

    [Fact]
    public async Task A_worker_process_registers_itself_runs_a_queued_job_and_stops_cleanly_on_SIGTERM()
    {
        using var tmp = new TempDir();
        var folder = ImageFolders.RealFake(tmp.Sub("small"), 3);
        // The web node only queues; the worker process shares its SQLite store (not its in-process queue: the worker
        // delivers the queued runs again from the store when it starts).
        await using var web = new PortalFactory(tmp.Path, settings: QueueOnly);
        var client = web.CreateClient();
        var runId = (await client.PostJsonAsync("/api/datasets", new { name = "small", path = folder }, 202)).GetProperty("runId").GetInt64();
        Assert.Equal("queued", (await client.GetJsonAsync($"/api/runs/{runId}")).GetProperty("status").GetString());

        using var worker = WorkerProcess.StartWorker(tmp.Path, new Dictionary<string, string> { ["Portal:Jobs:OrphanAfterSeconds"] = "5" });
        var row = await Wait.UntilAsync(async () =>
        {
            if (worker.Process.HasExited) throw new InvalidOperationException($"the worker exited with {worker.Process.ExitCode}:\n{worker.Output}");
            return await WorkerRowAsync(web, worker.WorkerName);
        }, w => w is not null, TimeSpan.FromSeconds(90), "the worker's row");
        Assert.Equal("worker", row!.Mode);
        Assert.Equal(worker.Process.Id, row.ProcessId);
        Assert.Null(row.StoppedAt);
        await Wait.UntilAsync(() => WorkerRowAsync(web, worker.WorkerName), w => w!.HeartbeatAt > row.HeartbeatAt, TimeSpan.FromSeconds(10), "a heartbeat");
        var run = await Wait.RunFinishedAsync(client, runId, TimeSpan.FromSeconds(60));
        Assert.Equal("succeeded", run.GetProperty("status").GetString());
        Assert.Equal(worker.WorkerName, run.GetProperty("worker").GetString());
        var listed = (await client.GetJsonAsync("/api/workers")).EnumerateArray().Single(w => w.GetProperty("name").GetString() == worker.WorkerName);
        Assert.Equal("live", listed.GetProperty("state").GetString());
        Assert.DoesNotContain("Now listening on", worker.Output); // no web server in a worker

        Assert.Equal(0, await worker.StopAsync());
        var stopped = await WorkerRowAsync(web, worker.WorkerName);
        Assert.NotNull(stopped!.StoppedAt);
        Assert.Equal("stopped", (await client.GetJsonAsync("/api/workers")).EnumerateArray()
            .Single(w => w.GetProperty("name").GetString() == worker.WorkerName).GetProperty("state").GetString());
    }

    [Fact]
    public async Task A_thousand_runs_queued_through_the_API_at_once_are_all_accepted_and_stored_once()
    {
        using var tmp = new TempDir();
        await using var app = new PortalFactory(tmp.Path, settings: QueueOnly);
        var client = app.CreateClient();
        var ids = new ConcurrentBag<long>();
        await Parallel.ForEachAsync(Enumerable.Range(0, 1000), new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (i, ct) =>
        {
            using var response = await client.PostAsJsonAsync("/api/runs", new { kind = "test-sleep", config = new { steps = 1, stepMs = 1, tag = $"load-{i}" } }, ct);
            var text = await response.Content.ReadAsStringAsync(ct);
            Assert.True(response.StatusCode == HttpStatusCode.Accepted, $"run {i}: {(int)response.StatusCode} {text}");
            ids.Add(JsonDocument.Parse(text).RootElement.GetProperty("id").GetInt64());
        });
        Assert.Equal(1000, ids.Distinct().Count());
        await using var db = await DbAsync(app);
        Assert.Equal(1000, await db.Runs.CountAsync());
        Assert.Equal(1000, await db.Runs.CountAsync(r => r.Status == RunStatus.Queued && ids.Contains(r.Id)));
    }
}
