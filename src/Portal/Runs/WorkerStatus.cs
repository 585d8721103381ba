namespace Portal.Runs;

/// <summary>
/// One job-running process as the System page and GET /api/workers show it. State: "live" (heartbeat fresher than
/// Portal:Jobs:OrphanAfterSeconds), "stopped" (it stopped cleanly) or "gone" (its heartbeat aged without a clean stop, or
/// its process on this host no longer exists: killed or machine lost; its runs are taken over).
/// </summary>
public sealed record WorkerStatus(string Name, string Host, int ProcessId, string Mode, string DeviceKind, string? DeviceName,
    long MemoryBytes, int Threads, IReadOnlyList<string> Queues, DateTime StartedAt, DateTime HeartbeatAt, DateTime? StoppedAt,
    string State, IReadOnlyList<WorkerRun> Runs);
