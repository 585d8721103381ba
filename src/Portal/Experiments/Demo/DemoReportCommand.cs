using System.Diagnostics;
using Microsoft.EntityFrameworkCore;
using Portal.Infrastructure;
using Portal.Store;
using Portal.Runs;
using Portal.Datasets;
using Portal.Zoo;

namespace Portal.Experiments;

/// <summary>
/// `Portal demo-report [--data DIR] [--set quick|full]`: runs the demo benchmark in this process (the portal's services and
/// job workers, the web server on a free local port) through the same code as the /demo page's buttons, waits for every
/// run, and prints the claim tables of <see cref="DemoResults"/> as markdown under a header with the date, the commit and
/// the exact command, so the README's table can be checked against it.
/// </summary>
public static class DemoReportCommand
{
    /// <summary>The verb.</summary>
    public const string Verb = "demo-report";

    /// <summary>True when the command line asks for this verb.</summary>
    public static bool Is(string[] args) => args.Length > 0 && args[0] == Verb;

    /// <summary>The options of the verb; a bad option throws <see cref="ArgumentException"/> naming it.</summary>
    /// <param name="Json">--json: also write the machine-readable document (see <see cref="DemoResults.ToJson"/>), to <paramref name="JsonPath"/> or, without a path, after the markdown on stdout between the lines "```json" and "```".</param>
    public sealed record Options(string? DataDir, DemoSet Set, bool Json = false, string? JsonPath = null);

    /// <summary>Parses the verb's options (after the verb).</summary>
    public static Options Parse(string[] args)
    {
        string? data = null, jsonPath = null;
        var set = DemoSet.Full;
        var json = false;
        for (var i = 1; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            switch (args[i])
            {
                case "--data": data = Value(); break;
                case "--json":
                    json = true;
                    if (i + 1 < args.Length && !args[i + 1].StartsWith("--", StringComparison.Ordinal)) jsonPath = args[++i];
                    break;
                case "--set":
                    var text = Value();
                    set = text switch { "quick" => DemoSet.Quick, "full" => DemoSet.Full, _ => throw new ArgumentException($"--set must be quick or full, not '{text}'") };
                    break;
                default: throw new ArgumentException($"unknown option '{args[i]}' (usage: {Verb} [--data DIR] [--set quick|full] [--json [FILE]])");
            }
        }
        return new Options(data, set, json, jsonPath);
    }

    /// <summary>The web host's arguments for the verb: the data folder and a free local port; the verb's own options removed.</summary>
    /// Logs go to stderr at warning level, so stdout holds only the report.
    public static string[] HostArgs(Options o)
    {
        string[] host = ["--urls", "http://127.0.0.1:0", "--Logging:LogLevel:Default=Warning", "--Logging:Console:LogToStandardErrorThreshold=Trace"];
        return o.DataDir is null ? host : [.. host, $"--{PortalOptions.Section}:DataDir={Path.GetFullPath(o.DataDir)}"];
    }

    /// <summary>Starts the app, runs the set to completion, prints the report; returns the exit code.</summary>
    public static async Task<int> RunAsync(WebApplication app, Options o, string[] args)
    {
        await app.StartAsync();
        try
        {
            using var scope = app.Services.CreateScope();
            var demo = scope.ServiceProvider.GetRequiredService<DemoBenchmark>();
            var clock = Stopwatch.StartNew();
            await WaitForMiniGenImageAsync(app, line => Console.Error.WriteLine($"[{clock.Elapsed:mm\\:ss}] {line}"), app.Lifetime.ApplicationStopping);
            // A stop signal (Ctrl+C, SIGTERM) stops the job workers: stop waiting too, instead of polling runs nobody runs.
            await demo.RunToCompletionAsync(o.Set, line => Console.Error.WriteLine($"[{clock.Elapsed:mm\\:ss}] {line}"), app.Lifetime.ApplicationStopping);
            var db = scope.ServiceProvider.GetRequiredService<IDbContextFactory<PortalDb>>();
            var tables = DemoResults.Tables(await DemoResults.LoadAsync(db, scope.ServiceProvider.GetRequiredService<PortalPaths>()),
                await DemoResults.ShortcutAsync(db));
            var cost = await DemoCost.MeasureAsync(scope.ServiceProvider, app.Lifetime.ApplicationStopping);
            var took = clock.Elapsed;
            Console.WriteLine(Header(args, took));
            Console.WriteLine();
            Console.WriteLine(DemoResults.ToMarkdown(tables));
            Console.WriteLine(DemoCost.ToMarkdown(cost));
            if (o.Json)
            {
                var document = DemoResults.ToJson(tables, Runs.RunService.CodeVersion, o.Set.ToString().ToLowerInvariant(), took.TotalMinutes, cost?.ToJson())
                    .ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
                if (o.JsonPath is { } path) await File.WriteAllTextAsync(path, document + Environment.NewLine);
                else Console.WriteLine($"```json{Environment.NewLine}{document}{Environment.NewLine}```");
            }
            return 0;
        }
        catch (DemoNotReadyException e)
        {
            Console.Error.WriteLine($"{Verb}: {e.Message}");
            return 2;
        }
        catch (InvalidOperationException e)
        {
            Console.Error.WriteLine($"{Verb}: {e.Message}");
            return 1;
        }
        catch (OperationCanceledException) when (app.Lifetime.ApplicationStopping.IsCancellationRequested)
        {
            Console.Error.WriteLine($"{Verb}: interrupted by a stop signal; the runs were handed back and the next start takes them up again");
            return 130;
        }
        finally { await app.StopAsync(); }
    }

    /// <summary>
    /// On a fresh data folder the start-up's <see cref="DemoBootstrap"/> queues the MiniGenImage build: wait for it to be
    /// queued, then for the build run to end (a failed build ends the command with its error).
    /// </summary>
    static async Task WaitForMiniGenImageAsync(WebApplication app, Action<string> log, CancellationToken ct)
    {
        await app.Services.GetRequiredService<DemoBootstrap>().Completion.WaitAsync(ct);
        var dbFactory = app.Services.GetRequiredService<IDbContextFactory<PortalDb>>();
        var said = false;
        while (true)
        {
            Run? build;
            await using (var db = await dbFactory.CreateDbContextAsync(ct))
                build = await db.Runs.AsNoTracking().Where(r => r.Kind == MiniGenImageBuildJob.KindName).OrderByDescending(r => r.Id).FirstOrDefaultAsync(ct);
            if (build is null || build.Status == RunStatus.Succeeded) return;
            if (build.Status is RunStatus.Failed or RunStatus.Canceled)
                throw new DemoNotReadyException($"the MiniGenImage build (run {build.Id}) {build.Status.ToString().ToLowerInvariant()}: {build.Error}");
            if (!said) log($"waiting for the MiniGenImage build (run {build.Id})");
            said = true;
            await Task.Delay(TimeSpan.FromSeconds(2), ct);
        }
    }

    /// <summary>"MiniGenImage results, &lt;date&gt;, commit &lt;code version&gt;, `&lt;command&gt;` (&lt;minutes&gt;)".</summary>
    public static string Header(string[] args, TimeSpan took) =>
        $"MiniGenImage results, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, commit {Runs.RunService.CodeVersion}, " +
        $"`dotnet run --project src/Portal -- {string.Join(' ', args)}` ({took.TotalMinutes:0.0} min)";
}
