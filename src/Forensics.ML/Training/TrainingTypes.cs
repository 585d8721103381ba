using Forensics.ML.Data;
using Forensics.ML.Datasets;

namespace Forensics.ML.Training;

/// <summary>
/// What training runs on: the training images, either paired (a real and its reconstruction: needed by the Synced and
/// Unsynced modes) or a plain labelled set (Independent mode only), and the validation images.
/// </summary>
public sealed record TrainingData
{
    /// <summary>Paired training data; set this or <see cref="Train"/>.</summary>
    public PairedSet? Pairs { get; init; }

    /// <summary>Unpaired training data (Independent mode); set this or <see cref="Pairs"/>.</summary>
    public ImageSet? Train { get; init; }

    /// <summary>Validation images, reals and fakes.</summary>
    public required ImageSet Validation { get; init; }

    /// <summary>Paired training data.</summary>
    public static TrainingData Paired(PairedSet pairs, ImageSet validation) => new() { Pairs = pairs, Validation = validation };

    /// <summary>Unpaired training data.</summary>
    public static TrainingData Unpaired(ImageSet train, ImageSet validation) => new() { Train = train, Validation = validation };

    /// <summary>
    /// Training data from two scanned datasets, as the CLI and the portal's training job build it: the "train" split of
    /// <paramref name="train"/> when it has one (else all of it) and the validation split of <paramref name="validation"/>
    /// when it has one (else all). Synced and Unsynced modes pair each real with its reconstruction by file stem (an
    /// aligned set: 0_real/x.jpg with 1_fake/x.png); Independent mode uses the images as they are.
    /// </summary>
    /// <param name="log">Receives one line describing each part (counts, unmatched pairs, unreadable files left out).</param>
    /// <param name="selection">Only some generators (training and validation) and a per-class subset of the training images; null: everything.</param>
    /// <exception cref="InvalidDataException">Paired mode and no real/fake pair matches.</exception>
    /// <exception cref="ArgumentException">The selection names a generator the data lacks, or leaves a part without reals or fakes.</exception>
    public static TrainingData FromManifests(DatasetManifest train, DatasetManifest validation, PairMode mode, Action<string>? log = null,
        TrainingSelection? selection = null)
    {
        selection?.Validate();
        var generators = selection?.GeneratorSet;
        if (string.Equals(train.Root, validation.Root, StringComparison.Ordinal) && !HasSplit(train, "train"))
            throw new ArgumentException($"the training and validation data are the same folder '{train.Root}' without train/val splits; give separate folders or splits");
        var trainSplit = HasSplit(train, "train") ? "train" : null;
        var valSplit = HasSplit(validation, Splits.Val) ? Splits.Val : null;
        var val = Select(() => ImageSet.FromManifest(validation, valSplit, generators), "validation", generators is not null);
        log?.Invoke($"Validation: {Describe(val)} in {validation.Root}{(valSplit is null ? "" : $" (split {valSplit})")}{Only(selection)}.");
        var images = Select(() => ImageSet.FromManifest(train, trainSplit, generators), "training", generators is not null);
        if (mode == PairMode.Independent)
        {
            var all = images.Counts;
            if (selection is not null) images = selection.Apply(images);
            log?.Invoke($"Training: {Describe(images)} in {train.Root}{(trainSplit is null ? "" : $" (split {trainSplit})")}{Only(selection)}" +
                        (images.Count < all.Total ? $", a seeded subset of {all.Real} real and {all.Fake} fake" : "") + ".");
            return Unpaired(images, val);
        }
        var pairs = PairedSet.Match(images, images);
        if (selection is not null && selection.Keep(pairs.Count) < pairs.Count)
        {
            // Pairs are drawn whole: a kept real always keeps its reconstruction.
            var all = pairs.Count;
            var keys = selection.Take(pairs.Pairs, p => p.Key).Select(p => p.Key).ToHashSet(StringComparer.Ordinal);
            var subset = new ImageSet(images.Where(s => keys.Contains(s.PairKey)), images.SkippedUnreadable);
            pairs = PairedSet.Match(subset, subset);
            log?.Invoke($"Training pairs: a seeded subset of {pairs.Count} of {all} pair(s).");
        }
        log?.Invoke($"Training pairs in {train.Root}{Only(selection)}: {pairs.Describe()}");
        return Paired(pairs, val);
    }

    /// <summary>A filtered part, with the selection's own words when it leaves a class empty.</summary>
    static ImageSet Select(Func<ImageSet> load, string part, bool filtered)
    {
        ImageSet set;
        try { set = load(); }
        catch (ArgumentException e) when (e.ParamName == "generators") { throw new ArgumentException($"TrainingSelection.Generators: {e.Message}", e); }
        // Only a generator filter is checked here: unfiltered data keeps its old behaviour.
        if (filtered && (set.Counts.Real == 0 || set.Counts.Fake == 0))
            throw new ArgumentException($"the {part} images hold {set.Counts.Real} real and {set.Counts.Fake} fake image(s) after the split and generator filter; both classes are needed");
        return set;
    }

    static string Only(TrainingSelection? s) => s?.Generators is { } g ? $" (generators {string.Join(", ", g)})" : "";

    static bool HasSplit(DatasetManifest manifest, string split) => manifest.Images.Any(e => Splits.Same(e.Split, split));

    static string Describe(ImageSet set) => $"{set.Counts.Real} real, {set.Counts.Fake} fake image(s)" +
        (set.SkippedUnreadable > 0 ? $" ({set.SkippedUnreadable} unreadable left out)" : "");
}

/// <summary>Validation results of one epoch (decision: logit &gt; 0, i.e. sigmoid(logit) &gt; 0.5).</summary>
/// <param name="BalancedAcc">Mean of real and fake accuracy: the score the plateau rule watches.</param>
/// <param name="Acc">Accuracy over all validation images.</param>
/// <param name="RealAcc">Accuracy on reals.</param>
/// <param name="FakeAcc">Accuracy on fakes.</param>
/// <param name="Ap">Average precision (fake = positive); null when a class is missing.</param>
/// <param name="Images">Images scored (skipped unreadable ones excluded).</param>
public sealed record ValidationMetrics(double BalancedAcc, double Acc, double RealAcc, double FakeAcc, double? Ap, int Images);

/// <summary>Training phases reported through <see cref="ITrainingObserver.OnProgress"/>.</summary>
public enum TrainingPhase
{
    /// <summary>Building the network, loading weights or the checkpoint.</summary>
    Setup,
    /// <summary>Optimisation steps.</summary>
    Train,
    /// <summary>Scoring the validation set.</summary>
    Validate,
    /// <summary>Finished.</summary>
    Done,
}

/// <summary>Hears what training does. Calls come from the training thread; keep them short.</summary>
public interface ITrainingObserver
{
    /// <summary>Overall progress in [0, 1] (epochs done out of MaxEpochs, within-epoch steps included) and the phase.</summary>
    void OnProgress(double fraction, TrainingPhase phase);

    /// <summary>After every optimisation step: 1-based epoch and step, the batch's loss, the learning rate.</summary>
    void OnStep(int epoch, int step, double loss, double learningRate);

    /// <summary>After each epoch's checkpoint is written: mean train loss, validation metrics, the lr of the next epoch, whether this epoch is the new best.</summary>
    void OnEpoch(int epoch, double trainLoss, ValidationMetrics validation, double learningRate, bool isBest);

    /// <summary>A line of information (resume, lr drops, skipped images, stop reason).</summary>
    void OnLog(string message);
}

/// <summary>Why training ended.</summary>
public enum StopReason
{
    /// <summary>The plateau rule would have taken the learning rate below its minimum.</summary>
    LearningRateFloor,
    /// <summary><see cref="TrainOptions.MaxEpochs"/> epochs were run.</summary>
    MaxEpochs,
}

/// <summary>The outcome of <see cref="DetectorTrainer.Train"/>.</summary>
/// <param name="BestEpoch">1-based epoch with the best validation balanced accuracy.</param>
/// <param name="BestBalancedAcc">That accuracy.</param>
/// <param name="FinalLearningRate">The learning rate at the end.</param>
/// <param name="EpochsRun">Epochs completed in total (resumed runs included).</param>
/// <param name="Reason">Why training ended.</param>
/// <param name="BestWeightsPath">best.safetensors: the best epoch's model state dict, torchvision key names.</param>
/// <param name="CheckpointPath">The last checkpoint (model, Adam state, schedule, RNG).</param>
/// <param name="ResumedFromEpoch">The epoch the run resumed after; 0 for a fresh start.</param>
/// <param name="SkippedImages">Training and validation draws skipped as unreadable in this call.</param>
public sealed record TrainResult(int BestEpoch, double BestBalancedAcc, double FinalLearningRate, int EpochsRun, StopReason Reason,
    string BestWeightsPath, string CheckpointPath, int ResumedFromEpoch, int SkippedImages);
