using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Portal.Tests.Support;

/// <summary>
/// A real portal process started from the build output: `Portal.dll worker` (a jobs-only worker) or, with no verb, a
/// web portal. Settings are passed as environment variables ("Portal:Jobs:OrphanAfterSeconds" becomes
/// Portal__Jobs__OrphanAfterSeconds), so a test can point several processes at one store (the SQLite file under the data
/// directory, or a shared server through "ConnectionStrings:Portal"). Stops with SIGTERM (a clean stop) or SIGKILL.
/// </summary>
public sealed class WorkerProcess : IDisposable
{
    readonly ConcurrentQueue<string> output = new();

    WorkerProcess(Process process) => Process = process;

    public Process Process { get; }
    /// <summary>The name the process writes in a run's Worker column and the Workers table.</summary>
    public string WorkerName => $"{Environment.MachineName}:{Process.Id}";
    /// <summary>Everything it printed so far (stdout and stderr), for assertion messages.</summary>
    public string Output => string.Join("\n", output);

    /// <summary>Starts `Portal.dll worker` on <paramref name="dataDir"/> (demo off, heartbeat 0.2 s); <paramref name="settings"/> are applied last.</summary>
    public static WorkerProcess StartWorker(string dataDir, IReadOnlyDictionary<string, string>? settings = null) =>
        Start(["worker"], dataDir, settings);

    /// <summary>Starts Portal.dll with <paramref name="args"/> in <paramref name="dataDir"/> with the given settings.</summary>
    public static WorkerProcess Start(IEnumerable<string> args, string dataDir, IReadOnlyDictionary<string, string>? settings = null)
    {
        var info = new ProcessStartInfo("dotnet", [Dll(), .. args])
        {
            WorkingDirectory = dataDir,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        info.Environment["PORTAL_DATA_DIR"] = dataDir;
        info.Environment["Portal__Jobs__HeartbeatSeconds"] = "0.2";
        info.Environment["Portal__Demo__Enabled"] = "false";
        // The suite's store for this data directory (its PostgreSQL database in the PostgreSQL build), unless settings say otherwise.
        foreach (var (key, value) in PortalFactory.StoreSettings(dataDir)) info.Environment[key.Replace(":", "__")] = value;
        foreach (var (key, value) in settings ?? new Dictionary<string, string>()) info.Environment[key.Replace(":", "__")] = value;
        var worker = new WorkerProcess(Process.Start(info)!);
        worker.Process.OutputDataReceived += (_, e) => { if (e.Data is not null) worker.output.Enqueue(e.Data); };
        worker.Process.ErrorDataReceived += (_, e) => { if (e.Data is not null) worker.output.Enqueue(e.Data); };
        worker.Process.BeginOutputReadLine();
        worker.Process.BeginErrorReadLine();
        return worker;
    }

    /// <summary>SIGTERM (the host stops cleanly: runs handed back, the worker row marked stopped); returns the exit code.</summary>
    public async Task<int> StopAsync(TimeSpan? timeout = null)
    {
        if (!Process.HasExited && Kill(Process.Id, 15) != 0) throw new InvalidOperationException($"kill -TERM {Process.Id} failed: errno {Marshal.GetLastPInvokeError()}");
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(60));
        await Process.WaitForExitAsync(cts.Token);
        return Process.ExitCode;
    }

    /// <summary>SIGKILL: nothing of the process runs after it (a vanished machine, as far as the store can tell).</summary>
    public async Task KillAsync()
    {
        if (!Process.HasExited) Process.Kill(entireProcessTree: true);
        await Process.WaitForExitAsync();
    }

    /// <summary>
    /// Waits until the portal process answers GET /api/health with 200, or with any answer when
    /// <paramref name="jobServersOptional"/> (a web node without workers answers 503 once its store is migrated); fails
    /// at once, with what it printed, if the process exits.
    /// </summary>
    public static async Task WaitAnsweringAsync(HttpClient client, Process process, Func<string> output, bool jobServersOptional = false) =>
        await Wait.UntilAsync(async () =>
        {
            if (process.HasExited) throw new InvalidOperationException($"the portal exited with code {process.ExitCode}: {output()}");
            try { return (int)(await client.GetAsync("/api/health")).StatusCode; }
            catch (HttpRequestException) { return 0; }
        }, s => s == 200 || jobServersOptional && s == 503, TimeSpan.FromSeconds(120), "the portal to answer /api/health");

    /// <summary><see cref="WaitAnsweringAsync(HttpClient, Process, Func{string}, bool)"/> for this process.</summary>
    public Task WaitAnsweringAsync(HttpClient client, bool jobServersOptional = false) => WaitAnsweringAsync(client, Process, () => Output, jobServersOptional);

    /// <summary>The portal's build output, found beside this test's (same configuration).</summary>
    public static string Dll()
    {
        var bin = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd('/'));
        var tfm = bin.Name;
        var configuration = bin.Parent!.Name;
        var dir = bin;
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Portal.sln"))) dir = dir.Parent;
        if (dir is null) throw new InvalidOperationException("Portal.sln not found above " + AppContext.BaseDirectory);
        var dll = Path.Combine(dir.FullName, "src", "Portal", "bin", configuration, tfm, "Portal.dll");
        if (!File.Exists(dll)) throw new FileNotFoundException("build the portal first", dll);
        return dll;
    }

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    static extern int Kill(int pid, int signal);

    public void Dispose()
    {
        try { if (!Process.HasExited) Process.Kill(entireProcessTree: true); }
        catch (InvalidOperationException) { }
        Process.Dispose();
    }
}
