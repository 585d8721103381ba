using Portal.Store;

namespace Portal.Runs;

/// <summary>A run ahead of a queued one: running now, or queued before it.</summary>
public sealed record QueuedAhead(long Id, string Kind, RunStatus Status, double Progress, DateTime? StartedAt);
