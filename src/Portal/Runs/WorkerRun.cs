namespace Portal.Runs;

/// <summary>A run a worker is executing now.</summary>
public sealed record WorkerRun(long Id, string Kind, double Progress, string? Phase);
