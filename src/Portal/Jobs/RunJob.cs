namespace Portal.Jobs;

/// <summary>The queues. Heavy jobs share one "device" queue with a single worker, so two never share the CPU/GPU.</summary>
public static class JobQueues
{
    public const string Device = "device";
    public const string Light = "light";
    /// <summary>Runs that only queue and wait for other runs (pipelines): their own workers, so waiting never blocks light jobs.</summary>
    public const string Orchestration = "orchestration";
}

/// <summary>A kind of job: registration, alignment, training, evaluation... Resolved by <see cref="Kind"/> when a run starts.</summary>
public interface IRunJob
{
    /// <summary>The run kind this job executes, e.g. "register-dataset".</summary>
    string Kind { get; }
    /// <summary><see cref="JobQueues.Device"/> for jobs that use torch heavily, else <see cref="JobQueues.Light"/>.</summary>
    string Queue { get; }
    /// <summary>Runs the job. Throw to fail the run; honour <see cref="RunContext.CancellationToken"/>.</summary>
    Task ExecuteAsync(RunContext context);

    /// <summary>
    /// Checks a config before the run is stored and queued: throw <see cref="FieldException"/> naming the field, so bad
    /// input is a 400 (or a message on the form) instead of a failed run.
    /// </summary>
    Task ValidateAsync(string configJson) => Task.CompletedTask;
}

/// <summary>Delivers run ids to workers. The only thing the job layer needs from a queue, so the storage behind it can change.</summary>
public interface IRunQueue
{
    void Enqueue(long runId, string queue);
}
