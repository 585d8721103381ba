namespace Portal.Runs;

/// <summary>
/// Where a queued run stands: its queue, its place among the queued runs there (1 = next to start), how many runs that
/// queue is running now, the first few runs ahead of it, and how many there are in all.
/// </summary>
public sealed record QueuePlace(string Queue, int Position, int Running, IReadOnlyList<QueuedAhead> Ahead, int AheadCount);
