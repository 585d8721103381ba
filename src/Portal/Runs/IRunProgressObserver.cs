namespace Portal.Runs;

/// <summary>
/// Sees every progress report of every run as the job makes it, before the heartbeat samples it for the store
/// (which keeps only the latest). Registered observers are called on the job's thread; keep them quick.
/// </summary>
public interface IRunProgressObserver
{
    void Reported(long runId, string kind, double fraction, string? phase);
}
