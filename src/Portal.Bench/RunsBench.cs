using System.Diagnostics;
using System.Text.Json;
using Portal.Experiments;
using Portal.Datasets;
using Portal.Zoo;
using Portal.Runs;
using Portal.Leaderboard;
using Portal.Store;

namespace Portal.Bench;

/// <summary>
/// A team's backlog: N queued runs (evaluations and trainings, on both device queues, as a web node that only queues
/// holds them) on top of the leaderboard's evaluation runs, and the server time of the pages and APIs a user opens then:
/// the runs page, the runs API and the leaderboard. Each median is reported against the target as a ratio.
/// </summary>
public static class RunsBench
{
    public static async Task<int> RunAsync(int queued, int leaderboardRuns, int repeat, double targetMs, bool keep, TextWriter output, CancellationToken ct)
    {
        if (queued < 1) { await output.WriteLineAsync("--queued must be 1 or more"); return 2; }
        if (leaderboardRuns < 0) { await output.WriteLineAsync("--leaderboard-runs must be 0 or more"); return 2; }
        if (repeat < 1) { await output.WriteLineAsync("--repeat must be 1 or more"); return 2; }
        // A web node that only queues: nothing takes the runs, so they stay queued while the pages are timed.
        using var host = new BenchHost { Keep = keep, Settings = new Dictionary<string, string> { ["Portal:Jobs:RunWorkers"] = "false", ["Portal:Demo:Enabled"] = "false" } };
        using var client = host.CreateClient();

        var watch = Stopwatch.StartNew();
        if (leaderboardRuns > 0) await LeaderboardBench.SeedAsync(host, leaderboardRuns);
        var leaderboardSeconds = watch.Elapsed.TotalSeconds;
        watch.Restart();
        await AddQueuedAsync(host, queued);
        await output.WriteLineAsync($"seeded {leaderboardRuns} evaluation runs in {leaderboardSeconds:F1} s and {queued} queued runs in " +
                                    $"{watch.Elapsed.TotalSeconds:F1} s ({host.DataDir})");

        var timings = new List<Timing>
        {
            await host.TimeAsync(client, "runs page (server render)", "/runs", repeat, ct),
            await host.TimeAsync(client, "runs page, queued only", "/runs?status=queued", repeat, ct),
            await host.TimeAsync(client, "API runs (first 100)", "/api/runs", repeat, ct),
            await host.TimeAsync(client, "API queued runs (1000)", "/api/runs?status=queued&take=1000", repeat, ct),
            await host.TimeAsync(client, "API leaderboard first page", "/api/leaderboard?take=50", repeat, ct),
            await host.TimeAsync(client, "leaderboard page (server render)", "/leaderboard", repeat, ct),
        };
        await LeaderboardBench.ReportAsync(timings, targetMs, $"{queued} queued and {leaderboardRuns} evaluation runs", output);
        return 0;
    }

    /// <summary>Queued runs as RunService stores them: evaluations and trainings, a quarter of them for cuda workers.</summary>
    static async Task AddQueuedAsync(BenchHost host, int count)
    {
        var json = new JsonSerializerOptions(JsonSerializerDefaults.Web);
        var dataset = await LeaderboardSeed.AddDatasetAsync(host.Db, "queued-bench");
        await using var db = await host.Db.CreateDbContextAsync();
        var now = DateTime.UtcNow;
        for (var i = 0; i < count; i++)
        {
            var device = i % 4 == 0 ? "cuda" : "cpu";
            var (kind, config) = i % 3 == 0
                ? (TrainingJob.KindName, JsonSerializer.Serialize(new { trainDatasetId = dataset, arch = "resnet50", epochs = 1 + i % 5, device }, json))
                : (EvaluationJob.KindName, JsonSerializer.Serialize(new { datasetId = dataset, checkpoint = $"/models/queued-{i:D5}.pth", seed = i, device }, json));
            db.Runs.Add(new Run
            {
                Kind = kind, Queue = JobQueues.ForDevice(device), ConfigJson = config, ConfigHash = RunService.ConfigHash(kind, config),
                Status = RunStatus.Queued, CreatedAt = now.AddMilliseconds(i), CodeVersion = RunService.CodeVersion, Seed = i,
            });
        }
        await db.SaveChangesAsync();
    }
}
