using System.CommandLine;

namespace Portal.Bench;

// portal-bench: server-time benchmarks of the portal, each in one run on a seeded store (speed targets live here, not in tests).
/// <summary>The entry point (a class, not top-level statements: the portal's own Program is referenced).</summary>
public static class BenchProgram
{
    public static async Task<int> Main(string[] args)
    {
        var runs = new Option<int>("--runs") { Description = "Evaluation runs to seed", DefaultValueFactory = _ => 10_000 };
        var repeat = new Option<int>("--repeat") { Description = "Timed requests per query (the median is reported)", DefaultValueFactory = _ => 7 };
        var targetMs = new Option<double>("--target-ms") { Description = "Server-time target per request", DefaultValueFactory = _ => 300 };
        var keep = new Option<bool>("--keep") { Description = "Keep the seeded data directory (its path is printed)" };
        var leaderboard = new Command("leaderboard",
            "Seeds N succeeded evaluation runs (detectors x 8 GenImage generators x 2 seeds x 5 perturbations) and times the leaderboard " +
            "API, page and exports against the target")
        {
            runs, repeat, targetMs, keep,
        };
        leaderboard.SetAction(async (parse, ct) =>
            await LeaderboardBench.RunAsync(parse.GetValue(runs), parse.GetValue(repeat), parse.GetValue(targetMs), parse.GetValue(keep), parse.InvocationConfiguration.Output, ct));
        var queued = new Option<int>("--queued") { Description = "Queued runs to store", DefaultValueFactory = _ => 1000 };
        var leaderboardRuns = new Option<int>("--leaderboard-runs") { Description = "Succeeded evaluation runs seeded for the leaderboard", DefaultValueFactory = _ => 2000 };
        var runsVerb = new Command("runs",
            "Stores N queued runs (a web node that only queues) beside the leaderboard's evaluation runs and times the runs page, " +
            "the runs API and the leaderboard against the target")
        {
            queued, leaderboardRuns, repeat, targetMs, keep,
        };
        runsVerb.SetAction(async (parse, ct) =>
            await RunsBench.RunAsync(parse.GetValue(queued), parse.GetValue(leaderboardRuns), parse.GetValue(repeat), parse.GetValue(targetMs),
                parse.GetValue(keep), parse.InvocationConfiguration.Output, ct));
        var root = new RootCommand("portal-bench: server-time benchmarks of the portal on a seeded store") { leaderboard, runsVerb };
        return await root.Parse(args).InvokeAsync();
    }
}
