using Hangfire;
using Hangfire.States;

namespace Portal.Runs;

/// <summary>Delivers run ids through Hangfire, on the run's queue. Works with any Hangfire storage.</summary>
public sealed class HangfireRunQueue(IBackgroundJobClient client, JobStorage storage) : IRunQueue
{
    public void Enqueue(long runId, string queue) =>
        client.Create<RunExecutor>(x => x.ExecuteAsync(runId, CancellationToken.None), new EnqueuedState(queue));

    /// <summary>Every storage but the in-memory one keeps its queues in a database that outlives the process.</summary>
    public bool Durable => storage is not Hangfire.InMemory.InMemoryStorage;
}
