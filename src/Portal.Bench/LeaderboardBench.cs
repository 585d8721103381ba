using System.Diagnostics;
using Portal.Leaderboard;

namespace Portal.Bench;

/// <summary>
/// The leaderboard with many stored runs: seeds succeeded evaluation runs (detectors x the 8 GenImage generators x 2 seeds x
/// 5 perturbations) and times the requests a user makes, reporting each median against the target as a ratio.
/// </summary>
public static class LeaderboardBench
{
    public static async Task<int> RunAsync(int runs, int repeat, double targetMs, bool keep, TextWriter output, CancellationToken ct)
    {
        if (runs < 1) { await output.WriteLineAsync("--runs must be 1 or more"); return 2; }
        if (repeat < 1) { await output.WriteLineAsync("--repeat must be 1 or more"); return 2; }
        using var host = new BenchHost { Keep = keep };
        using var client = host.CreateClient();

        var seedWatch = Stopwatch.StartNew();
        await SeedAsync(host, runs);
        await output.WriteLineAsync($"seeded {runs} evaluation runs in {seedWatch.Elapsed.TotalSeconds:F1} s ({host.DataDir})");

        var timings = new List<Timing>
        {
            await host.TimeAsync(client, "API first page (mean ACC)", "/api/leaderboard?take=50", repeat, ct),
            await host.TimeAsync(client, "API sort by a generator column", "/api/leaderboard?take=50&sort=acc:imagenet_midjourney", repeat, ct),
            await host.TimeAsync(client, "API filtered (clean, resnet50, text)", "/api/leaderboard?take=50&perturbation=none&arch=resnet50&q=detector-00", repeat, ct),
            await host.TimeAsync(client, "API deep page by detector", $"/api/leaderboard?take=50&sort=detector&skip={runs / 40}", repeat, ct),
            await host.TimeAsync(client, "CSV export of one page", "/api/leaderboard.csv?take=50", repeat, ct),
            await host.TimeAsync(client, "leaderboard page (server render)", "/leaderboard", repeat, ct),
        };
        await ReportAsync(timings, targetMs, $"{runs} runs", output);
        return 0;
    }

    /// <summary>The table of timings, each median as a ratio of the target, and the verdict.</summary>
    internal static async Task ReportAsync(IReadOnlyList<Timing> timings, double targetMs, string what, TextWriter output)
    {
        await output.WriteLineAsync($"{"request",-40} {"median ms",10} {"max ms",8} {"/ target",9}  bytes");
        var worst = 0.0;
        foreach (var t in timings)
        {
            var ratio = t.MedianMs / targetMs;
            worst = Math.Max(worst, ratio);
            await output.WriteLineAsync($"{t.Label,-40} {t.MedianMs,10:F1} {t.MaxMs,8:F1} {ratio,9:F2}  {t.Bytes}");
        }
        await output.WriteLineAsync($"target {targetMs} ms of server time per request with {what}: " +
                                    (worst <= 1 ? $"met (worst median {worst:F2} of the target)" : $"NOT met (worst median {worst:F2}x the target)"));
    }

    /// <summary>The benchmark's runs: 8 GenImage generators, 2 seeds per cell, five perturbations, a third of the detectors resnet50.</summary>
    internal static async Task SeedAsync(BenchHost host, int runs)
    {
        var dataset = await LeaderboardSeed.AddDatasetAsync(host.Db, "genimage-bench");
        string[] perturbations = ["none", "jpeg:75", "jpeg:30", "blur:3", "resize:0.5"];
        var random = new Random(7);
        var evaluations = Enumerable.Range(0, runs).Select(i => new SeededEvaluation(
            $"/models/detector-{i / (2 * perturbations.Length):D5}.pth", i / (2 * perturbations.Length) % 3 == 0 ? "resnet50" : "res50nodown", dataset,
            perturbations[i / 2 % perturbations.Length], i % 2,
            PublishedBaselines.GenImageGenerators.ToDictionary(g => g.Folder, _ => (random.NextDouble(), random.NextDouble())))).ToList();
        await LeaderboardSeed.AddAsync(host.Db, evaluations);
    }
}
