namespace Portal.Experiments;

/// <summary>
/// What a "train" run writes (res50nodown, LaRE² and TorchScript detectors alike), and the one place that names it: the
/// per-step loss, the per-epoch training loss and validation metrics (step = epoch), the learning rate, and its weight
/// artifacts. The run page's curves, the compare page, the pipeline, the matrix and the demo report read them through here.
/// </summary>
public static class TrainingResults
{
    /// <summary>The loss of one optimisation step (step = the step number).</summary>
    public const string Loss = "loss";
    /// <summary>An epoch's image-weighted mean training loss.</summary>
    public const string TrainLoss = "train_loss";
    /// <summary>Validation metrics of an epoch (fractions).</summary>
    public const string ValBalancedAcc = "val_balanced_acc", ValAcc = "val_acc", ValRealAcc = "val_real_acc", ValFakeAcc = "val_fake_acc", ValAp = "val_ap";
    /// <summary>The learning rate the next epoch trains at.</summary>
    public const string LearningRate = "lr";
    /// <summary>The validation series, drawn on one chart.</summary>
    public static readonly IReadOnlyList<string> ValidationSeries = [ValBalancedAcc, ValAcc, ValRealAcc, ValFakeAcc, ValAp];
    /// <summary>The series written once per epoch.</summary>
    public static readonly IReadOnlyList<string> PerEpoch = [TrainLoss, LearningRate, .. ValidationSeries];
    /// <summary>The metric the best epoch (the kept weights) is chosen on.</summary>
    public const string BestEpochMetric = ValBalancedAcc;
    /// <summary>The best weights (the checkpoint every later stage evaluates).</summary>
    public const string WeightsArtifact = "weights";
    /// <summary>The untrained init of the same architecture and seed (res50nodown), the sanity baseline.</summary>
    public const string InitArtifact = "init-weights";
}
