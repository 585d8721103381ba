namespace Portal.Runs;

/// <summary>A kind of job: registration, alignment, training, evaluation... Resolved by <see cref="Kind"/> when a run starts.</summary>
public interface IRunJob
{
    /// <summary>The run kind this job executes, e.g. "register-dataset".</summary>
    string Kind { get; }
    /// <summary>
    /// <see cref="JobQueues.Device"/> for jobs that use torch heavily (the run goes to the queue of its device kind), else
    /// <see cref="JobQueues.Light"/> or <see cref="JobQueues.Orchestration"/>.
    /// </summary>
    string Queue { get; }
    /// <summary>Runs the job. Throw to fail the run; honour <see cref="RunContext.CancellationToken"/>.</summary>
    Task ExecuteAsync(RunContext context);

    /// <summary>
    /// Checks a config before the run is stored and queued: throw <see cref="FieldException"/> naming the field, so bad
    /// input is a 400 (or a message on the form) instead of a failed run.
    /// </summary>
    Task ValidateAsync(string configJson) => Task.CompletedTask;
}
