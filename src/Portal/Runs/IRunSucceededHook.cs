namespace Portal.Runs;

/// <summary>
/// Builds what derives from a run once it has succeeded (the leaderboard's rows), so that readers never write. Called by
/// <see cref="RunExecutor"/> after the outcome is stored; a hook that throws is logged and leaves the run succeeded (its
/// owner rebuilds at the next start).
/// </summary>
public interface IRunSucceededHook
{
    Task OnSucceededAsync(long runId, string kind, CancellationToken ct = default);
}
