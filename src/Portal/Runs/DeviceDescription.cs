using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;

namespace Portal.Runs;

/// <summary>What a worker advertises about its device: the model name and the memory.</summary>
public static class DeviceDescription
{
    /// <summary>
    /// For cuda: the GPU's name and memory as the NVIDIA driver reports them (TorchSharp exposes neither); for cpu, or
    /// when the driver does not answer: the CPU's model name and the memory this process may use.
    /// </summary>
    public static (string Name, long MemoryBytes) Describe(string torchDevice)
    {
        var ram = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        if (JobQueues.KindOfTorchDevice(torchDevice) == "cuda")
        {
            var index = torchDevice.Contains(':') ? torchDevice[(torchDevice.IndexOf(':') + 1)..] : "0";
            return QueryGpu(index) is { } gpu ? gpu : ($"cuda:{index} (no answer from nvidia-smi)", ram);
        }
        return (CpuModel() ?? $"{RuntimeInformation.ProcessArchitecture} CPU", ram);
    }

    /// <summary>"NVIDIA H100 80GB HBM3, 81559" from nvidia-smi (MiB); null when it is missing or fails.</summary>
    static (string, long)? QueryGpu(string index)
    {
        try
        {
            using var p = Process.Start(new ProcessStartInfo("nvidia-smi", ["--query-gpu=name,memory.total", "--format=csv,noheader,nounits", "-i", index])
                { RedirectStandardOutput = true, RedirectStandardError = true });
            if (p is null) return null;
            var output = p.StandardOutput.ReadToEndAsync();
            if (!p.WaitForExit(5000)) { p.Kill(); return null; }
            var line = output.Result.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault();
            var comma = line?.LastIndexOf(',') ?? -1;
            if (p.ExitCode != 0 || line is null || comma < 0) return null;
            return long.TryParse(line[(comma + 1)..].Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var mib)
                ? (line[..comma].Trim(), mib * 1024 * 1024) : null;
        }
        catch (System.ComponentModel.Win32Exception) { return null; }
    }

    static string? CpuModel()
    {
        try
        {
            if (!File.Exists("/proc/cpuinfo")) return null;
            var line = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal));
            return line?[(line.IndexOf(':') + 1)..].Trim();
        }
        catch (IOException) { return null; }
    }
}
