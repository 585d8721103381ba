using static TorchSharp.torch;

namespace Forensics.ML.Runtime;

/// <summary>
/// The process's intra-op thread count, held on whatever OS thread the work runs.
/// <para>
/// libtorch keeps its CPU thread count per OS thread (OpenMP's nthreads setting): a thread takes the process value the
/// first time it runs a parallel op and keeps it afterwards. A .NET job moves between pool threads, so a pool thread
/// that first ran torch while the count was lowered for a moment (a parallel generator build, a test fixture) keeps the
/// lower count for good: the same training on another thread then runs with another thread count, at another speed and
/// with other float rounding, and a resumed run is no longer bit-identical to an uninterrupted one. The training and
/// scoring loops call <see cref="Ensure"/> once per batch, so they always run with <see cref="Count"/> threads.
/// </para>
/// </summary>
public static class TorchThreads
{
    static int count;

    /// <summary>The count the loops hold: the one torch had after <see cref="TorchRuntime.EnsureLoaded"/>, or the last <see cref="Set"/>; 0 before.</summary>
    public static int Count => Volatile.Read(ref count);

    /// <summary>Makes <paramref name="threads"/> the process's count (and the calling thread's).</summary>
    public static void Set(int threads)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        set_num_threads(threads);
        Volatile.Write(ref count, threads);
    }

    /// <summary>Called by <see cref="TorchRuntime.EnsureLoaded"/> with the count it configured.</summary>
    internal static void Init(int threads) => Volatile.Write(ref count, Math.Max(0, threads));

    /// <summary>Gives the calling OS thread the process's count when it runs with another (a cheap check otherwise).</summary>
    public static void Ensure()
    {
        var wanted = Count;
        if (wanted > 0 && get_num_threads() != wanted) set_num_threads(wanted);
    }
}
