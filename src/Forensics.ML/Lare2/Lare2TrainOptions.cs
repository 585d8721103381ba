using Forensics.ML.Data;
using Forensics.ML.Training;
using Forensics.ML.Evaluation;
using Forensics.ML.Models;

namespace Forensics.ML.Lare2;

/// <summary>A validation number the LaRE² trainer can watch.</summary>
public enum Lare2Metric
{
    /// <summary>ROC AUC of P(fake) (the authors step their scheduler on the mean AUC of their test sets).</summary>
    Auc,
    /// <summary>Accuracy at P(fake) &gt; 0.5 (the authors' "raw ACC").</summary>
    Accuracy,
    /// <summary>Mean of real and fake accuracy at 0.5.</summary>
    BalancedAccuracy,
    /// <summary>Accuracy at the best threshold on the validation set (the authors keep Val_best.pth on it).</summary>
    BestAccuracy,
}

/// <summary>
/// Hyper-parameters of LaRE² training, defaults from the authors' train_classifier_wmap.py: cross-entropy over 2
/// classes, Adam lr 1e-4 (betas 0.9/0.999, no weight decay), gradient-norm clip 5, ReduceLROnPlateau(max, factor 0.5,
/// patience 4, min_lr 1e-7, threshold 1e-4 rel, cooldown 0), batch 48, pad-if-needed + random 224 crop for training,
/// centre crop for validation, ImageNet normalisation, the LaRE map uncropped.
/// </summary>
public sealed record Lare2TrainOptions
{
    /// <summary>The classifier; its backbone's input resolution is the crop size. Its Ablation is trained with.</summary>
    public Lare2Options Model { get; init; } = Lare2Options.RN50;

    /// <summary>Adam's initial learning rate.</summary>
    public double LearningRate { get; init; } = 1e-4;

    /// <summary>Largest gradient L2 norm (clip_grad_norm_ max_norm); 0 switches clipping off.</summary>
    public double GradientClip { get; init; } = 5.0;

    /// <summary>Images per training batch: half real, half fake (<see cref="BalancedSampler"/>); even.</summary>
    public int BatchSize { get; init; } = 48;

    /// <summary>Images per validation forward.</summary>
    public int ValidationBatchSize { get; init; } = 64;

    /// <summary>Epochs to run (ReduceLROnPlateau never stops training; the authors' default is 9999).</summary>
    public int MaxEpochs { get; init; } = 100;

    /// <summary>What ReduceLROnPlateau watches (mode max).</summary>
    public Lare2Metric ScheduleMetric { get; init; } = Lare2Metric.Auc;

    /// <summary>What selects best.safetensors (a strictly higher value replaces it).</summary>
    public Lare2Metric BestMetric { get; init; } = Lare2Metric.BestAccuracy;

    /// <summary>ReduceLROnPlateau's factor.</summary>
    public double PlateauFactor { get; init; } = 0.5;

    /// <summary>ReduceLROnPlateau's patience.</summary>
    public int PlateauPatience { get; init; } = 4;

    /// <summary>ReduceLROnPlateau's min_lr.</summary>
    public double MinLearningRate { get; init; } = 1e-7;

    /// <summary>Run seed: initial weights, batch order, crops and dropout masks follow from it.</summary>
    public ulong Seed { get; init; } = 17;

    /// <summary>Loader threads; results do not depend on it.</summary>
    public int Workers { get; init; } = Math.Max(1, Environment.ProcessorCount - 1);

    /// <summary>
    /// Optional starting weights: a LaRE² checkpoint (clip_model.visual.*, fc, conv, ...; loaded strictly) or a CLIP
    /// model / image tower (visual.* keys: the backbone only, EGRE and head freshly initialised).
    /// </summary>
    public string? InitWeights { get; init; }

    /// <summary>Torch device: "cpu", "cuda" or "cuda:N".</summary>
    public string Device { get; init; } = "cpu";

    /// <summary>Side of the square crop: the backbone's input resolution.</summary>
    public int CropSize => Model.Backbone.InputResolution;

    /// <summary>Throws an <see cref="ArgumentException"/> naming the first invalid field.</summary>
    public void Validate()
    {
        ArgumentNullException.ThrowIfNull(Model, nameof(Model));
        try { Model.Validate(); }
        catch (ArgumentException e) { throw new ArgumentException($"Lare2TrainOptions.Model: {e.Message}", e); }
        if (!(LearningRate > 0)) throw new ArgumentException($"Lare2TrainOptions.LearningRate must be positive, got {LearningRate}.");
        if (!(GradientClip >= 0)) throw new ArgumentException($"Lare2TrainOptions.GradientClip must be >= 0, got {GradientClip}.");
        if (BatchSize < 2 || BatchSize % 2 != 0) throw new ArgumentException($"Lare2TrainOptions.BatchSize must be even and at least 2, got {BatchSize}.");
        if (ValidationBatchSize < 1) throw new ArgumentException($"Lare2TrainOptions.ValidationBatchSize must be at least 1, got {ValidationBatchSize}.");
        if (MaxEpochs < 1) throw new ArgumentException($"Lare2TrainOptions.MaxEpochs must be at least 1, got {MaxEpochs}.");
        if (!(PlateauFactor >= 0 && PlateauFactor < 1)) throw new ArgumentException($"Lare2TrainOptions.PlateauFactor must be in [0, 1), got {PlateauFactor}.");
        if (PlateauPatience < 0) throw new ArgumentException($"Lare2TrainOptions.PlateauPatience must be >= 0, got {PlateauPatience}.");
        if (!(MinLearningRate >= 0)) throw new ArgumentException($"Lare2TrainOptions.MinLearningRate must be >= 0, got {MinLearningRate}.");
        if (Workers < 1) throw new ArgumentException($"Lare2TrainOptions.Workers must be at least 1, got {Workers}.");
        if (InitWeights is not null && !File.Exists(InitWeights)) throw new ArgumentException($"Lare2TrainOptions.InitWeights: no file at '{InitWeights}'.");
    }

    /// <summary>The settings a resumed run must share (not Workers, MaxEpochs or Device).</summary>
    internal string Fingerprint()
    {
        var b = Model.Backbone;
        var e = Model.Egre;
        return FormattableString.Invariant($"{string.Join(";",
            $"backbone={b}", $"egre={e.ModelDim},{e.Heads},{e.KeyDim},{e.ValueDim},{e.LareChannels},{e.Hidden},{e.GridSize},{e.Dropout:R},{e.AttentionDropout:R}",
            $"ablation={Model.Ablation}", $"lr={LearningRate:R}", $"clip={GradientClip:R}", $"batch={BatchSize}",
            $"schedule={ScheduleMetric}", $"best={BestMetric}", $"factor={PlateauFactor:R}", $"patience={PlateauPatience}",
            $"minlr={MinLearningRate:R}", $"seed={Seed}", $"init={(InitWeights is null ? "none" : Path.GetFileName(InitWeights))}")}");
    }
}

/// <summary>What LaRE² trains on: labelled training and validation images and the folder of their precomputed LaRE maps.</summary>
/// <param name="Train">Training images (reals and fakes).</param>
/// <param name="Validation">Validation images (reals and fakes).</param>
/// <param name="LareFolder">Maps of the training images (and of the validation images unless <see cref="ValidationLareFolder"/> is set): LareFolder/&lt;relative path without extension&gt;.safetensors.</param>
public sealed record Lare2TrainingData(ImageSet Train, ImageSet Validation, string LareFolder)
{
    /// <summary>Maps of the validation images when they were extracted separately (their own data root); null: <see cref="LareFolder"/>.</summary>
    public string? ValidationLareFolder { get; init; }
}

/// <summary>Validation of one LaRE² epoch.</summary>
/// <param name="Metrics">Accuracies at P(fake) &gt; 0.5, AP.</param>
/// <param name="Auc">ROC AUC; null when a class is missing.</param>
/// <param name="BestAccuracy">Accuracy at the best threshold on this set.</param>
public sealed record Lare2Validation(ValidationMetrics Metrics, double? Auc, double BestAccuracy)
{
    /// <summary>The value of <paramref name="metric"/>.</summary>
    public double Get(Lare2Metric metric) => metric switch
    {
        Lare2Metric.Auc => Auc ?? double.NaN,
        Lare2Metric.Accuracy => Metrics.Acc,
        Lare2Metric.BalancedAccuracy => Metrics.BalancedAcc,
        Lare2Metric.BestAccuracy => BestAccuracy,
        _ => throw new ArgumentOutOfRangeException(nameof(metric), metric, null),
    };
}

/// <summary>The outcome of <see cref="Lare2Trainer.Train"/>.</summary>
/// <param name="BestEpoch">1-based epoch of best.safetensors.</param>
/// <param name="BestValue">Its value of <see cref="Lare2TrainOptions.BestMetric"/>.</param>
/// <param name="FinalLearningRate">The lr after the last epoch.</param>
/// <param name="EpochsRun">Epochs completed in total.</param>
/// <param name="BestWeightsPath">best.safetensors, authors' key names (<see cref="Lare2Classifier.Load(string)"/> reads it).</param>
/// <param name="CheckpointPath">The last checkpoint (model, Adam state, scheduler).</param>
/// <param name="ResumedFromEpoch">The epoch resumed after; 0 for a fresh start.</param>
/// <param name="SkippedImages">Training and validation draws skipped in this call (unreadable image or map).</param>
public sealed record Lare2TrainResult(int BestEpoch, double BestValue, double FinalLearningRate, int EpochsRun,
    string BestWeightsPath, string CheckpointPath, int ResumedFromEpoch, int SkippedImages);
