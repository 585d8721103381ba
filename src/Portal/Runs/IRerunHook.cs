using Portal.Store;

namespace Portal.Runs;

/// <summary>A job that must update its own records when one of its runs is re-run (e.g. point a dataset at the new run).</summary>
public interface IRerunHook
{
    string Kind { get; }
    Task OnRerunAsync(Run old, Run rerun);
}
