using Forensics.ML.Data;
using Forensics.ML.Lare2;
using Forensics.ML.Metrics;
using Forensics.ML.Runtime;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Forensics.ML.Training;

/// <summary>The pieces of the epoch loop that <see cref="DetectorTrainer"/> and <see cref="Lare2Trainer"/> share.</summary>
internal static class TrainingLoop
{
    /// <summary>Loads torch (or says why it did not) and resolves the device option.</summary>
    public static Device LoadTorch(string device)
    {
        var status = TorchRuntime.EnsureLoaded();
        if (!status.Loaded) throw new InvalidOperationException($"Torch did not load: {status.Error}");
        return TorchRuntime.ResolveDevice(device);
    }

    /// <summary>Refuses to resume a checkpoint written with other trajectory-defining options.</summary>
    public static void CheckFingerprint(string checkpointPath, string? written, string now)
    {
        if (written is not null && written != now)
            throw new InvalidDataException(
                $"{checkpointPath} was written with other training options and cannot be resumed with these; use another output folder. " +
                $"Checkpoint: {written}; now: {now}.");
    }

    /// <summary>Throws unless the validation set holds reals and fakes.</summary>
    public static void CheckValidationClasses(ImageSet validation)
    {
        if (validation.Counts.Real == 0 || validation.Counts.Fake == 0)
            throw new ArgumentException($"The validation set needs reals and fakes; it has {validation.Counts.Real} real and {validation.Counts.Fake} fake image(s).");
    }

    /// <summary>Sets every parameter group's learning rate.</summary>
    public static void SetLearningRate(Adam optimizer, double lr)
    {
        foreach (var group in optimizer.ParamGroups) group.LearningRate = lr;
    }

    /// <summary>
    /// Runs one training epoch: <paramref name="step"/> (batch, step number, profile) returns the batch's mean loss and
    /// marks its phases in the profile; every step is reported to <paramref name="observer"/>. The time spent waiting
    /// for the loader, disposing the batch and reporting is charged to <paramref name="profile"/> here, and its summary
    /// is logged at the end of the epoch. Returns the image-weighted loss sum and the images trained on.
    /// </summary>
    public static (double LossSum, long Images) TrainEpoch<TBatch>(IEnumerable<TBatch> batches, Func<TBatch, int> count,
        Func<TBatch, int, StepProfile, double> step, ITrainingObserver observer, int epoch, int stepsPerEpoch, int maxEpochs, double learningRate,
        CancellationToken ct, StepProfile? profile = null) where TBatch : IDisposable
    {
        profile ??= new StepProfile();
        double lossSum = 0;
        long images = 0;
        var number = 0;
        profile.Start();
        using var batchEnumerator = batches.GetEnumerator();
        while (batchEnumerator.MoveNext())
        {
            profile.Mark(StepPhase.DataWait);
            var batch = batchEnumerator.Current;
            int n;
            double loss;
            try
            {
                ct.ThrowIfCancellationRequested();
                TorchThreads.Ensure();
                number++;
                n = count(batch);
                loss = step(batch, number, profile);
            }
            finally
            {
                batch.Dispose();
                profile.Mark(StepPhase.Disposal);
            }
            lossSum += loss * n;
            images += n;
            observer.OnStep(epoch, number, loss, learningRate);
            observer.OnProgress(Math.Min(1, (epoch - 1 + (double)number / stepsPerEpoch) / maxEpochs), TrainingPhase.Train);
            profile.Mark(StepPhase.Logging);
            profile.EndStep(n);
        }
        if (profile.Steps > 0) observer.OnLog($"Epoch {epoch} {profile.Summary()}.");
        return (lossSum, images);
    }

    /// <summary>
    /// The optimisation part of a step, its phases marked in <paramref name="profile"/>: zero_grad, backward,
    /// <paramref name="beforeStep"/> (gradient clipping), the optimizer's step, and the loss read back with <c>.item()</c>.
    /// </summary>
    public static float Optimise(Tensor loss, Adam optimizer, StepProfile profile, Action? beforeStep = null)
    {
        optimizer.zero_grad();
        profile.Mark(StepPhase.Optimizer);
        loss.backward();
        profile.Mark(StepPhase.Backward);
        beforeStep?.Invoke();
        optimizer.step();
        profile.Mark(StepPhase.Optimizer);
        var value = loss.item<float>();
        profile.Mark(StepPhase.Sync);
        return value;
    }

    /// <summary>Logs the skipped draws not reported yet (<paramref name="what"/> names them); returns how many are reported now.</summary>
    public static int ReportSkips(ITrainingObserver observer, IReadOnlyList<SkippedSample> train, IReadOnlyList<SkippedSample> validation, int reported, string what)
    {
        var all = train.Concat(validation).ToList();
        if (all.Count <= reported) return reported;
        var fresh = all.Skip(reported).ToList();
        observer.OnLog($"Skipped {fresh.Count} {what} ({all.Count} so far): " +
            string.Join("; ", fresh.Take(5).Select(s => $"{s.Path}: {s.Reason}")) + (fresh.Count > 5 ? "; ..." : ""));
        return all.Count;
    }

    /// <summary>Metrics of one validation pass at <paramref name="threshold"/>; errors name the epoch when nothing or only one class loaded.</summary>
    public static (DetectionReport Report, ValidationMetrics Metrics) Score(List<int> labels, List<double> scores, double threshold, int epoch, int skipped)
    {
        if (labels.Count == 0) throw new InvalidDataException($"Epoch {epoch}: no validation image could be loaded ({skipped} skipped).");
        var report = DetectionMetrics.Compute(labels, scores, new MetricsOptions { Threshold = threshold, BootstrapSamples = 0 });
        if (report.BalancedAcc is not { } balanced || report.RealAcc is not { } real || report.FakeAcc is not { } fake)
            throw new InvalidDataException($"Epoch {epoch}: validation needs reals and fakes that load; {report.UndefinedReason}.");
        return (report, new ValidationMetrics(balanced, report.Acc, real, fake, report.Ap, labels.Count));
    }

    /// <summary>An observer that ignores everything.</summary>
    public sealed class NullObserver : ITrainingObserver
    {
        public static readonly NullObserver Instance = new();
        public void OnProgress(double fraction, TrainingPhase phase) { }
        public void OnStep(int epoch, int step, double loss, double learningRate) { }
        public void OnEpoch(int epoch, double trainLoss, ValidationMetrics validation, double learningRate, bool isBest) { }
        public void OnLog(string message) { }
    }
}
