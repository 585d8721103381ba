namespace Portal.Tests.Support;

/// <summary>
/// Test classes that change torch's process-wide thread count (the demo fixtures and the MiniGenImage build train their
/// tiny models on one thread), and those that compare a resumed or repeated run's weights or files bit for bit, which
/// holds only at one thread count. xUnit runs the classes of one collection one after another, so a thread-count change
/// can no longer land in the middle of a run that must reproduce another.
/// </summary>
[CollectionDefinition(Name)]
public sealed class TorchThreadsCollection
{
    public const string Name = "torch thread count";
}
