using System.Diagnostics;

namespace Portal.Runs;

/// <summary>
/// Whether a worker that ran on this host has lost its process. Takeover (<see cref="RunRecovery"/>) and the workers list
/// (<see cref="WorkerDirectory"/>) ask the same question, so a worker whose runs were taken over is never listed live.
/// </summary>
public static class LocalWorkerProcess
{
    /// <summary>
    /// Why the worker process <paramref name="pid"/> on <paramref name="host"/> is gone, or null when it may be alive, is
    /// this very process, or ran on another host (whose processes this one cannot see).
    /// </summary>
    public static string? GoneReason(string host, int pid)
    {
        if (!OnThisHost(host) || pid == Environment.ProcessId) return null;
        try
        {
            using var process = Process.GetProcessById(pid);
            return process.HasExited ? "its process has exited" : null;
        }
        catch (ArgumentException) { return "its process no longer exists"; }
        catch (InvalidOperationException) { return "its process no longer exists"; }
    }

    /// <summary>True when <paramref name="host"/> and <paramref name="pid"/> name this very process.</summary>
    public static bool IsThisProcess(string host, int pid) => pid == Environment.ProcessId && OnThisHost(host);

    static bool OnThisHost(string host) => string.Equals(host, Environment.MachineName, StringComparison.OrdinalIgnoreCase);
}
