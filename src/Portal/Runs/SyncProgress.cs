namespace Portal.Runs;

/// <summary>An IProgress that reports on the caller's thread, at once (Progress&lt;T&gt; posts to a context and may reorder or drop).</summary>
public sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}
