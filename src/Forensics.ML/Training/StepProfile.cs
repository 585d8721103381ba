using System.Diagnostics;
using System.Globalization;

namespace Forensics.ML.Training;

/// <summary>The parts of one training step that <see cref="StepProfile"/> times.</summary>
public enum StepPhase
{
    /// <summary>Waiting for the loader's next batch (decode and augmentation run on its workers).</summary>
    DataWait,
    /// <summary>Moving the collated batch onto the device.</summary>
    HostToTensor,
    Forward,
    Loss,
    Backward,
    /// <summary>zero_grad, gradient clipping and the Adam update.</summary>
    Optimizer,
    /// <summary>Host syncs: the loss's <c>.item()</c> read back every step.</summary>
    Sync,
    /// <summary>Disposing the step's tensors (its dispose scope and the batch).</summary>
    Disposal,
    /// <summary>Reporting the step to the observer (the portal writes curves and progress from here).</summary>
    Logging,
}

/// <summary>
/// Wall-clock time per <see cref="StepPhase"/> over the steps of an epoch, plus the garbage collector's pauses in that
/// time: where a training step spends its time. A phase is charged from the previous mark to its own, so the phases add
/// up to the measured total. Not thread-safe: one profile per training loop.
/// </summary>
public sealed class StepProfile
{
    static readonly StepPhase[] Phases = Enum.GetValues<StepPhase>();
    readonly long[] ticks = new long[Phases.Length];
    long last;
    long startTicks;
    TimeSpan gcPauseAtStart;
    int gcCountAtStart;

    /// <summary>Steps counted so far.</summary>
    public int Steps { get; private set; }

    /// <summary>Images trained on so far.</summary>
    public long Images { get; private set; }

    /// <summary>Starts (or restarts) the clock: everything until the next mark is charged to that mark's phase.</summary>
    public void Start()
    {
        Array.Clear(ticks);
        Steps = 0;
        Images = 0;
        gcPauseAtStart = GC.GetTotalPauseDuration();
        gcCountAtStart = GC.CollectionCount(0);
        last = startTicks = Stopwatch.GetTimestamp();
    }

    /// <summary>Charges the time since the previous mark to <paramref name="phase"/>.</summary>
    public void Mark(StepPhase phase)
    {
        var now = Stopwatch.GetTimestamp();
        ticks[(int)phase] += now - last;
        last = now;
    }

    /// <summary>Counts one finished step of <paramref name="images"/> images.</summary>
    public void EndStep(int images)
    {
        Steps++;
        Images += images;
    }

    /// <summary>Seconds charged to <paramref name="phase"/>.</summary>
    public double Seconds(StepPhase phase) => ticks[(int)phase] / (double)Stopwatch.Frequency;

    /// <summary>Seconds from <see cref="Start"/> to the last mark.</summary>
    public double TotalSeconds => (last - startTicks) / (double)Stopwatch.Frequency;

    /// <summary>The garbage collector's pause time since <see cref="Start"/> (inside the phases, not beside them).</summary>
    public TimeSpan GcPause => GC.GetTotalPauseDuration() - gcPauseAtStart;

    /// <summary>Gen-0 collections since <see cref="Start"/>.</summary>
    public int GcCollections => GC.CollectionCount(0) - gcCountAtStart;

    /// <summary>Each phase's share of the total, in phase order.</summary>
    public IReadOnlyList<(StepPhase Phase, double Seconds, double Fraction)> Breakdown()
    {
        var total = Math.Max(TotalSeconds, 1e-12);
        return Phases.Select(p => (p, Seconds(p), Seconds(p) / total)).ToList();
    }

    /// <summary>One line for a run log: steps, images/s, ms per step, and each phase's share.</summary>
    public string Summary()
    {
        var total = TotalSeconds;
        var perStep = Steps > 0 ? 1000 * total / Steps : 0;
        var rate = total > 0 ? Images / total : 0;
        var parts = Breakdown().Select(b => $"{Name(b.Phase)} {100 * b.Fraction:0.0}%");
        return FormattableString.Invariant($"step profile: {Steps} steps, {rate:0.00} img/s, {perStep:0.0} ms/step: ") +
               string.Join(", ", parts) +
               string.Create(CultureInfo.InvariantCulture, $"; GC pauses {GcPause.TotalMilliseconds:0} ms in {GcCollections} gen-0 collections");
    }

    /// <summary>The phase's name as the log and the bench print it.</summary>
    public static string Name(StepPhase phase) => phase switch
    {
        StepPhase.DataWait => "data wait",
        StepPhase.HostToTensor => "to device",
        StepPhase.Forward => "forward",
        StepPhase.Loss => "loss",
        StepPhase.Backward => "backward",
        StepPhase.Optimizer => "optimizer",
        StepPhase.Sync => "item() sync",
        StepPhase.Disposal => "disposal",
        StepPhase.Logging => "logging",
        _ => phase.ToString(),
    };
}
