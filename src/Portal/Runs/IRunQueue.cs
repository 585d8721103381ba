namespace Portal.Runs;

/// <summary>Delivers run ids to workers. The only thing the job layer needs from a queue, so the storage behind it can change.</summary>
public interface IRunQueue
{
    void Enqueue(long runId, string queue);

    /// <summary>
    /// True when what was enqueued survives a restart and is shared between processes (a database-backed storage); false
    /// for an in-process queue, whose queued runs must be enqueued again from the store when a process starts.
    /// </summary>
    bool Durable => false;
}
