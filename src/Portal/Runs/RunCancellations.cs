using System.Collections.Concurrent;

namespace Portal.Runs;

/// <summary>
/// The cancellation sources of the runs executing in this process, so a cancel from the UI or the API reaches the job's
/// token at once. Runs on other workers see the request through the store at their next heartbeat.
/// </summary>
public sealed class RunCancellations
{
    readonly ConcurrentDictionary<long, CancellationTokenSource> running = new();

    internal void Register(long runId, CancellationTokenSource source) => running[runId] = source;
    internal void Unregister(long runId) => running.TryRemove(runId, out _);

    /// <summary>Cancels the run's token if it executes here; false otherwise.</summary>
    public bool TryCancel(long runId)
    {
        if (!running.TryGetValue(runId, out var source)) return false;
        try { source.Cancel(); } catch (ObjectDisposedException) { return false; }
        return true;
    }

    /// <summary>Ids of the runs executing in this process.</summary>
    public IReadOnlyCollection<long> RunningHere => running.Keys.ToList();
}
