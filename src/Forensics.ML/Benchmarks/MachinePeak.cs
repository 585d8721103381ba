using System.Globalization;
using static TorchSharp.torch;

namespace Forensics.ML.Benchmarks;

/// <summary>
/// The machine's fp32 peak as a benchmark's reference: the best matmul rate over several sizes, and the load average when
/// it was taken. A single small matmul under load can read 3x low, so the bench measures this before and after its
/// workloads and prints both with the spread: a noisy run then shows as noisy instead of flattering the ratios.
/// </summary>
public sealed record PeakReference(IReadOnlyList<Rate> Sizes, string LoadAverage)
{
    /// <summary>The best rate over the sizes, GFLOP/s.</summary>
    public double Gflops => Sizes.Count == 0 ? 0 : Sizes.Max(r => r.Gflops);

    /// <summary>"1024: 298.1, 2048: 310.4, ..." for the bench's table.</summary>
    public string Describe() => string.Join(", ", Sizes.Select(r => string.Create(CultureInfo.InvariantCulture, $"{r.Name.Split(' ')[^1]} {r.Gflops:0.0}")));
}

/// <summary>Measures a <see cref="PeakReference"/>; see there.</summary>
public static class MachinePeak
{
    /// <summary>The matrix sizes measured by default (the range quoted for this machine's peak).</summary>
    public static readonly int[] DefaultSizes = [1024, 2048, 3072, 4096];

    /// <summary>Best fp32 matmul GFLOP/s of each size, each measured for about <paramref name="budgetPerSize"/>.</summary>
    public static PeakReference Measure(IEnumerable<int> sizes, TimeSpan budgetPerSize, Device? device = null)
    {
        var load = LoadAverage();
        var rates = sizes.Select(n => Throughput.Matmul(n, budgetPerSize, device)).ToList();
        return new PeakReference(rates, load);
    }

    /// <summary>The 1, 5 and 15 minute load averages from /proc/loadavg, or "unknown" where there is none.</summary>
    public static string LoadAverage()
    {
        try
        {
            var fields = File.ReadAllText("/proc/loadavg").Split(' ', StringSplitOptions.RemoveEmptyEntries);
            return fields.Length >= 3 ? $"{fields[0]} {fields[1]} {fields[2]}" : "unknown";
        }
        catch (IOException) { return "unknown"; }
        catch (UnauthorizedAccessException) { return "unknown"; }
    }

    /// <summary>The relative spread of two references, |a - b| / max(a, b).</summary>
    public static double Spread(PeakReference a, PeakReference b) =>
        Math.Max(a.Gflops, b.Gflops) > 0 ? Math.Abs(a.Gflops - b.Gflops) / Math.Max(a.Gflops, b.Gflops) : 0;
}
