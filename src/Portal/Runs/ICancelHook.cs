using Portal.Store;

namespace Portal.Runs;

/// <summary>A job that must update its own records when one of its runs is canceled (queued or running), e.g. free a dataset it was making.</summary>
public interface ICancelHook
{
    string Kind { get; }
    Task OnCanceledAsync(Run run);
}
