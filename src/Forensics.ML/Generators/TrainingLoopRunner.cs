using System.Diagnostics;
using System.Globalization;

namespace Forensics.ML.Generators;

/// <summary>
/// The step loop the generator trainers share: resume from the output folder's checkpoint when there is one, run the
/// remaining steps, write a checkpoint every N steps and when stopping, print progress lines.
/// </summary>
internal static class TrainingLoopRunner
{
    /// <summary>
    /// Runs steps [done, <paramref name="steps"/>) of <paramref name="step"/> (which returns the step's loss and a detail
    /// text for the log). <paramref name="stopAfter"/> ends this run early after that many steps (a checkpoint is written).
    /// </summary>
    public static GeneratorTrainingResult Run(string output, IReadOnlyList<TrainedPart> parts, string fingerprint, int steps,
        int checkpointEvery, int? stopAfter, int progressEvery, TextWriter log, string label, Func<int, (double Loss, string Detail)> step,
        CancellationToken ct)
    {
        Directory.CreateDirectory(output);
        var checkpoint = Path.Combine(output, GeneratorCheckpoint.FileName);
        var done = 0;
        var losses = new List<double>();
        if (File.Exists(checkpoint))
        {
            (done, losses) = GeneratorCheckpoint.Load(checkpoint, parts, fingerprint);
            if (done > steps) throw new InvalidDataException($"{checkpoint} has {done} steps done, more than the {steps} asked for");
            log.WriteLine($"{label}: resuming from {checkpoint} at step {done}/{steps}");
        }
        var start = done;
        var watch = Stopwatch.StartNew();
        var last = start;
        while (done < steps && (stopAfter is null || done - start < stopAfter))
        {
            ct.ThrowIfCancellationRequested();
            var (loss, detail) = step(done);
            if (!double.IsFinite(loss)) throw new InvalidOperationException($"{label}: the loss is {loss} at step {done + 1}; lower the learning rate");
            losses.Add(loss);
            done++;
            if (progressEvery > 0 && (done % progressEvery == 0 || done == steps))
            {
                var rate = (done - start) / Math.Max(watch.Elapsed.TotalSeconds, 1e-9);
                log.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{label}: step {done}/{steps} loss {loss:G5} {detail} ({rate:F2} steps/s)"));
            }
            if (checkpointEvery > 0 && done % checkpointEvery == 0 && done < steps)
            {
                GeneratorCheckpoint.Save(checkpoint, parts, done, fingerprint, losses);
                last = done;
            }
        }
        var seconds = watch.Elapsed.TotalSeconds;
        if (last != done || !File.Exists(checkpoint)) GeneratorCheckpoint.Save(checkpoint, parts, done, fingerprint, losses);
        return new GeneratorTrainingResult(Path.GetFullPath(output), start, done, done == steps, losses, seconds);
    }

    /// <summary>The options text a resume must match: "key=value" pairs in the given order.</summary>
    public static string Fingerprint(params (string Key, object? Value)[] fields) =>
        string.Join(";", fields.Select(f => f.Key + "=" + Format(f.Value)));

    private static string Format(object? value) => value switch
    {
        null => "",
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        System.Collections.IEnumerable e and not string => "[" + string.Join(",", e.Cast<object?>().Select(Format)) + "]",
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };
}
