using Microsoft.EntityFrameworkCore;
using Portal.Infrastructure;
using Portal.Store;

namespace Portal.Leaderboard;

/// <summary>
/// `Portal leaderboard rebuild [--all] [--Section:Key=value ...]`: indexes the leaderboard rows of the succeeded scored runs
/// that have none (the portal also does this at every start), or with --all drops every row and indexes every run again
/// (after a change to how rows are built). It opens the store the portal would open with the same settings and applies
/// its migrations first; prints the number of rows written.
/// </summary>
public static class LeaderboardCommand
{
    public const string Verb = "leaderboard";
    const string Usage = "usage: Portal leaderboard rebuild [--all] [--Section:Key=value ...]";

    /// <summary>True when the command line asks for this verb.</summary>
    public static bool Is(string[] args) => args.Length > 0 && args[0] == Verb;

    /// <summary>Runs the verb; returns the exit code (0 done, 2 bad usage).</summary>
    public static async Task<int> RunAsync(string[] args, TextWriter? stdout = null, TextWriter? stderr = null)
    {
        stdout ??= Console.Out;
        stderr ??= Console.Error;
        if (args.Length < 2 || args[1] != "rebuild")
        {
            await stderr.WriteLineAsync(Usage);
            return 2;
        }
        var all = args.Skip(2).Contains("--all");
        var builder = Host.CreateApplicationBuilder(args.Skip(2).Where(a => a != "--all").ToArray());
        PortalConfiguration.AddAppSettings(builder.Configuration);
        builder.Logging.ClearProviders();
        builder.Services.AddPortalStore(builder.Configuration);
        builder.Services.AddTransient<LeaderboardIndexer>();
        using var host = builder.Build();
        await using (var db = await host.Services.GetRequiredService<IDbContextFactory<PortalDb>>().CreateDbContextAsync())
            await db.Database.MigrateAsync();
        var rows = await host.Services.GetRequiredService<LeaderboardIndexer>().RebuildAsync(replace: all);
        await stdout.WriteLineAsync($"leaderboard: {rows} row(s) written{(all ? " (every row rebuilt)" : " for runs not indexed yet")}");
        return 0;
    }
}
