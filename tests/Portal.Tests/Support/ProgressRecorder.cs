using Microsoft.Extensions.DependencyInjection;
using Portal.Runs;

namespace Portal.Tests.Support;

/// <summary>Records every progress report of every run (not only what the heartbeat sampled), for asserting that progress tracks the work.</summary>
public sealed class ProgressRecorder : IRunProgressObserver
{
    readonly Lock gate = new();
    readonly Dictionary<long, List<(double Fraction, string? Phase)>> reports = [];

    public void Reported(long runId, string kind, double fraction, string? phase)
    {
        lock (gate)
        {
            if (!reports.TryGetValue(runId, out var list)) reports[runId] = list = [];
            list.Add((fraction, phase));
        }
    }

    /// <summary>Registers <paramref name="recorder"/> as an observer; pass as PortalFactory's services.</summary>
    public static Action<IServiceCollection> Into(ProgressRecorder recorder) => s => s.AddSingleton<IRunProgressObserver>(recorder);

    public IReadOnlyList<(double Fraction, string? Phase)> Of(long runId)
    {
        lock (gate) return reports.TryGetValue(runId, out var list) ? [.. list] : [];
    }

    /// <summary>
    /// Asserts that run <paramref name="runId"/>'s reports never go back, end at 1 minus at most <paramref name="finalGap"/>
    /// (the executor writes the outcome), and never jump by more than <paramref name="maxJump"/>; returns the sequence
    /// as text for the test's output.
    /// </summary>
    public string AssertTracksWork(long runId, double maxJump, double finalGap = 0.03)
    {
        var seq = Of(runId);
        var text = string.Join(" ", seq.Select(r => $"{r.Fraction:0.###}"));
        Assert.True(seq.Count >= 2, $"run {runId}: too few progress reports: {text}");
        for (var i = 1; i < seq.Count; i++)
        {
            // Rounding (0.05 * 3 / 3 > 0.05) is not going back.
            Assert.True(seq[i].Fraction >= seq[i - 1].Fraction - 1e-12, $"run {runId}: progress went back at report {i} ({seq[i].Phase}): {text}");
            Assert.True(seq[i].Fraction - seq[i - 1].Fraction <= maxJump,
                $"run {runId}: progress jumped by {seq[i].Fraction - seq[i - 1].Fraction:0.###} at report {i} ({seq[i].Phase}): {text}");
        }
        Assert.True(seq[^1].Fraction >= 1 - finalGap, $"run {runId}: progress ended at {seq[^1].Fraction}: {text}");
        return text;
    }
}
