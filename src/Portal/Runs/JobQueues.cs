using Portal.Infrastructure;

namespace Portal.Runs;

/// <summary>
/// The queues. Device-heavy jobs go to one queue per device kind ("device-cpu", "device-cuda"), each served by one
/// worker per process, so two heavy jobs never share a CPU/GPU and a run only reaches a machine with its device.
/// </summary>
public static class JobQueues
{
    /// <summary>
    /// What a device-heavy job answers as its <see cref="IRunJob.Queue"/>; the run is stored on the queue of its device kind
    /// (<see cref="ForDevice"/>). Also the queue name that runs stored before the per-kind queues carry (read as the default kind).
    /// </summary>
    public const string Device = "device";
    public const string DeviceCpu = "device-cpu";
    public const string DeviceCuda = "device-cuda";
    public const string Light = "light";
    /// <summary>Runs that only queue and wait for other runs (pipelines): their own workers, so waiting never blocks light jobs.</summary>
    public const string Orchestration = "orchestration";

    /// <summary>The device kinds a run's "device" field may name.</summary>
    public static readonly IReadOnlyList<string> DeviceKinds = ["cpu", "cuda"];

    /// <summary>The device queue of a kind: "cpu" -> "device-cpu".</summary>
    public static string ForDevice(string kind) => DeviceKinds.Contains(kind)
        ? $"{Device}-{kind}" : throw new ArgumentException($"device must be one of {string.Join(", ", DeviceKinds)}, not '{kind}'", nameof(kind));

    /// <summary>True for the per-kind device queues and the legacy "device".</summary>
    public static bool IsDevice(string queue) => queue == Device || queue.StartsWith(Device + "-", StringComparison.Ordinal);

    /// <summary>The device kind of a torch device name: "cpu" -> "cpu", "cuda" or "cuda:N" -> "cuda"; anything else names the setting.</summary>
    public static string KindOfTorchDevice(string torchDevice)
    {
        var d = (torchDevice ?? "").Trim().ToLowerInvariant();
        if (d == "cpu") return "cpu";
        if (d == "cuda" || d.StartsWith("cuda:", StringComparison.Ordinal)) return "cuda";
        throw new InvalidOperationException($"Portal:Torch:Device must be 'cpu', 'cuda' or 'cuda:N', not '{torchDevice}'");
    }

    /// <summary>This node's own device kind (from Portal:Torch:Device).</summary>
    public static string OwnDeviceKind(PortalOptions options) => KindOfTorchDevice(options.Torch.Device);

    /// <summary>The kind a device run without a "device" field is queued for: Portal:Jobs:DefaultDevice, else this node's own kind.</summary>
    public static string DefaultDeviceKind(PortalOptions options)
    {
        var configured = options.Jobs.DefaultDevice?.Trim().ToLowerInvariant();
        if (string.IsNullOrEmpty(configured)) return OwnDeviceKind(options);
        return DeviceKinds.Contains(configured) ? configured
            : throw new InvalidOperationException($"Portal:Jobs:DefaultDevice must be one of {string.Join(", ", DeviceKinds)} (or empty), not '{options.Jobs.DefaultDevice}'");
    }

    /// <summary>
    /// The queues this process's job servers listen on: its own device queue, then the light/orchestration queues that
    /// Portal:Jobs:Queues names. Empty when the process runs no jobs.
    /// </summary>
    public static IReadOnlyList<string> Served(PortalOptions options)
    {
        if (!options.Jobs.RunWorkers) return [];
        var served = new List<string> { ForDevice(OwnDeviceKind(options)) };
        foreach (var name in (options.Jobs.Queues ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var queue = name.ToLowerInvariant();
            if (queue == "none") continue;
            if (queue is not (Light or Orchestration))
                throw new InvalidOperationException($"Portal:Jobs:Queues may name '{Light}', '{Orchestration}' or 'none', not '{name}' " +
                                                    "(the device queue follows Portal:Torch:Device)");
            if (!served.Contains(queue)) served.Add(queue);
        }
        return served;
    }
}
