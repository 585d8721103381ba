using Portal.Experiments;
using Portal.Datasets;
using Portal.Zoo;
using Portal.Runs;

namespace Portal.Infrastructure;

/// <summary>
/// `Portal worker [--Section:Key=value ...]` (or Portal:Mode=worker): a jobs-only process for a GPU/CPU box. A generic host
/// with the store, the job servers and torch, and no web server: it joins the shared queue, serves the device queue of
/// its Portal:Torch:Device kind plus Portal:Jobs:Queues, advertises itself in the Workers table and takes over orphaned
/// runs. Same configuration sources as the portal (appsettings.json next to the app, environment, command line).
/// </summary>
public static class WorkerHost
{
    /// <summary>The verb.</summary>
    public const string Verb = "worker";

    /// <summary>True when the command line asks for this verb.</summary>
    public static bool Is(string[] args) => args.Length > 0 && args[0] == Verb;

    /// <summary>Runs the worker until SIGTERM/Ctrl+C; <paramref name="args"/> are configuration arguments (the verb, if first, is dropped).</summary>
    public static async Task<int> RunAsync(string[] args)
    {
        var builder = Host.CreateApplicationBuilder(Is(args) ? args[1..] : args);
        PortalConfiguration.AddAppSettings(builder.Configuration);
        // A worker exists to run jobs, whatever a shared settings file says for the web node.
        builder.Configuration.AddInMemoryCollection([
            new($"{PortalOptions.Section}:Mode", PortalModes.Worker),
            new($"{PortalOptions.Section}:Jobs:RunWorkers", "true"),
        ]);
        if (TorchBuildCheck.Refuse(builder.Configuration)) return TorchBuildCheck.ExitCode;
        builder.Services.AddPortalCore(builder.Configuration);   // the same store, runs, torch and leaderboard as the web app
        using var host = builder.Build();
        host.Services.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(WorkerHost))
            .LogInformation("Worker {Name} starting: no web server; queues {Queues}", RunExecutor.WorkerName,
                string.Join(", ", JobQueues.Served(host.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<PortalOptions>>().Value)));
        await host.RunAsync();
        return 0;
    }
}

/// <summary>The configuration sources every mode shares.</summary>
public static class PortalConfiguration
{
    /// <summary>The top-level appsettings.json (copied next to the app) as the base configuration, whatever the working directory.</summary>
    public static void AddAppSettings(IConfigurationManager configuration) =>
        configuration.Sources.Insert(0, new Microsoft.Extensions.Configuration.Json.JsonConfigurationSource
        {
            Path = "appsettings.json", Optional = false, ReloadOnChange = false,
            FileProvider = new Microsoft.Extensions.FileProviders.PhysicalFileProvider(AppContext.BaseDirectory),
        });
}

/// <summary>
/// A job-running process configured for a CUDA device on a build that references only the CPU libtorch stops at start,
/// saying which build it needs, instead of failing its first job.
/// </summary>
public static class TorchBuildCheck
{
    /// <summary>The exit code of a process refused by this check.</summary>
    public const int ExitCode = 3;

    /// <summary>The reason this process may not run jobs from this build, or null.</summary>
    public static string? Problem(IConfiguration configuration)
    {
        var options = configuration.GetSection(PortalOptions.Section).Get<PortalOptions>() ?? new PortalOptions();
        if (!options.Jobs.RunWorkers) return null; // a web node that only queues never runs torch jobs
        return Forensics.ML.Runtime.TorchRuntime.BuildMismatch(options.Torch.Device) is { } why
            ? $"Portal:Torch:Device: {why}; start this worker from that build, or set Portal:Torch:Device=cpu"
            : null;
    }

    /// <summary>Prints the problem on stderr and returns true when there is one.</summary>
    public static bool Refuse(IConfiguration configuration)
    {
        if (Problem(configuration) is not { } problem) return false;
        Console.Error.WriteLine($"Not starting: {problem}");
        return true;
    }
}
