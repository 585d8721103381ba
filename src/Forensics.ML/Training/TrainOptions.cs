using Forensics.ML.Data;
using Forensics.ML.Models;

namespace Forensics.ML.Training;

/// <summary>Which augmentation chain the training images get before the crop.</summary>
public enum AugmentationChoice
{
    /// <summary>The reference chain (<see cref="Imaging.TransformPipeline.AlignedTraining"/>): resized crop, colour jitter, grayscale, cutout, noise, blur, JPEG, rot90, flip, random crop, ImageNet normalisation.</summary>
    Reference,

    /// <summary>Only the random crop (symmetric padding) and ImageNet normalisation: for tests and ablations.</summary>
    None,
}

/// <summary>What the per-epoch validation feeds the network.</summary>
public enum ValidationInput
{
    /// <summary>
    /// The centre <see cref="TrainOptions.CropSize"/> crop of each image, no augmentation (the default). The reference code
    /// validates on the valid folder through the training transform itself (augmentations and a random 96 crop), which makes
    /// the score noisy from epoch to epoch; the deterministic centre crop keeps the input size of training and makes the
    /// plateau rule reproducible.
    /// </summary>
    CentreCrop,

    /// <summary>The full image, no resize or crop (the test-time protocol); batches group images of equal size.</summary>
    FullImage,
}

/// <summary>
/// Hyper-parameters of detector training. Defaults are the aligned-dataset paper's recipe ("Ours-Sync", read from the
/// authors' training code): res50nodown, BCE-with-logits, Adam lr 1e-4 betas (0.9, 0.999) without weight decay, seed 17,
/// batches of 64 (real, reconstruction) pairs with synced augmentation, validation balanced accuracy with patience 10 /
/// delta 0.001, lr / 10 on a plateau down to 1e-6, 96-pixel crops.
/// </summary>
public sealed record TrainOptions
{
    /// <summary>The network: res50nodown (ResNet-50, stride-1 stem and max-pool, dropout 0.5, one logit, fc ~ N(0, 0.02)).</summary>
    public ResNetOptions Arch { get; init; } = ResNetOptions.Res50NoDown();

    /// <summary>Adam's initial learning rate; reference 1e-4.</summary>
    public double LearningRate { get; init; } = 1e-4;

    /// <summary>Adam's (beta1, beta2); reference (0.9, 0.999). Adam runs without weight decay, as in the reference.</summary>
    public (double Beta1, double Beta2) Betas { get; init; } = (0.9, 0.999);

    /// <summary>Run seed: weight init, dropout masks, batch order and augmentation all follow from it; reference 17.</summary>
    public ulong Seed { get; init; } = 17;

    /// <summary>
    /// N, pairs per batch: a batch holds N reals and N fakes (2N images); the paper used N = 64. For an unpaired
    /// training set (Independent mode over an <see cref="ImageSet"/>) the batch is likewise N reals and N fakes.
    /// </summary>
    public int PairsPerBatch { get; init; } = 64;

    /// <summary>Images per batch: 2 × <see cref="PairsPerBatch"/>.</summary>
    public int BatchSize => 2 * PairsPerBatch;

    /// <summary>
    /// Synced: each real and its reconstruction in one batch with the identical augmentation ("Ours-Sync"). Unsynced: the
    /// pair in one batch, each with its own augmentation. Independent: the usual training, reals and fakes drawn
    /// separately (any 0_real/1_fake or GenImage set).
    /// </summary>
    public PairMode Mode { get; init; } = PairMode.Synced;

    /// <summary>Upper bound on epochs; the reference's is 1000 (training normally ends on the learning-rate floor first).</summary>
    public int MaxEpochs { get; init; } = 1000;

    /// <summary>Epochs without an improvement above <see cref="MinDelta"/> before the lr is divided by 10; reference 10.</summary>
    public int Patience { get; init; } = 10;

    /// <summary>Smallest gain in validation balanced accuracy that counts as an improvement; reference 0.001.</summary>
    public double MinDelta { get; init; } = 0.001;

    /// <summary>Training stops when a plateau would take the lr below this; reference 1e-6 (so 1e-4, 1e-5, 1e-6, then stop).</summary>
    public double MinLearningRate { get; init; } = 1e-6;

    /// <summary>Side of the square training crop (RandomCrop with symmetric padding); reference 96.</summary>
    public int CropSize { get; init; } = 96;

    /// <summary>The reference chain's sizes, ranges and probabilities; the paper's by default (<see cref="AugmentationOptions.ForCrop"/> scales them to a small crop).</summary>
    public AugmentationOptions Augment { get; init; } = AugmentationOptions.Paper;

    /// <summary>Output size of the reference chain's RandomResizedCrop (applied with p 0.2); reference 256. Part of <see cref="Augment"/>.</summary>
    public int ResizeSize { get => Augment.ResizeSize; init => Augment = Augment with { ResizeSize = value }; }

    /// <summary>The augmentation chain: the reference's, or none (crop and normalisation only).</summary>
    public AugmentationChoice Augmentation { get; init; } = AugmentationChoice.Reference;

    /// <summary>What validation feeds the network (see <see cref="ValidationInput"/>).</summary>
    public ValidationInput Validation { get; init; } = ValidationInput.CentreCrop;

    /// <summary>Images per validation batch (equal-size images only when <see cref="ValidationInput.FullImage"/>).</summary>
    public int ValidationBatchSize { get; init; } = 64;

    /// <summary>Loader threads decoding and augmenting images; results do not depend on it.</summary>
    public int Workers { get; init; } = Math.Max(1, Environment.ProcessorCount - 1);

    /// <summary>
    /// Optional ImageNet-pretrained torchvision ResNet-50 weights (.pth or .safetensors): every key but fc.* is loaded
    /// (they must all match the network), and fc is re-initialised (weight ~ N(0, 0.02)), as the reference does.
    /// Null: train from scratch with torchvision's init.
    /// </summary>
    public string? InitWeights { get; init; }

    /// <summary>Torch device: "cpu", "cuda" or "cuda:N".</summary>
    public string Device { get; init; } = "cpu";

    /// <summary>Throws an <see cref="ArgumentException"/> naming the first invalid field.</summary>
    public void Validate()
    {
        ArgumentNullException.ThrowIfNull(Arch, nameof(Arch));
        Arch.Validate();
        if (Arch.NumClasses != 1) throw new ArgumentException($"TrainOptions.Arch.NumClasses must be 1 (one logit, BCE-with-logits), got {Arch.NumClasses}.");
        if (!(LearningRate > 0)) throw new ArgumentException($"TrainOptions.LearningRate must be positive, got {LearningRate}.");
        if (Betas.Beta1 is < 0 or >= 1 || Betas.Beta2 is < 0 or >= 1) throw new ArgumentException($"TrainOptions.Betas must lie in [0, 1), got {Betas}.");
        if (PairsPerBatch < 1) throw new ArgumentException($"TrainOptions.PairsPerBatch must be at least 1, got {PairsPerBatch}.");
        if (MaxEpochs < 1) throw new ArgumentException($"TrainOptions.MaxEpochs must be at least 1, got {MaxEpochs}.");
        if (Patience < 1) throw new ArgumentException($"TrainOptions.Patience must be at least 1, got {Patience}.");
        if (!(MinDelta >= 0)) throw new ArgumentException($"TrainOptions.MinDelta must be >= 0, got {MinDelta}.");
        if (!(MinLearningRate > 0) || MinLearningRate > LearningRate)
            throw new ArgumentException($"TrainOptions.MinLearningRate must be positive and at most LearningRate ({LearningRate}), got {MinLearningRate}.");
        if (CropSize < 1) throw new ArgumentException($"TrainOptions.CropSize must be at least 1, got {CropSize}.");
        ArgumentNullException.ThrowIfNull(Augment, nameof(Augment));
        Augment.Validate();
        if (ValidationBatchSize < 1) throw new ArgumentException($"TrainOptions.ValidationBatchSize must be at least 1, got {ValidationBatchSize}.");
        if (Workers < 1) throw new ArgumentException($"TrainOptions.Workers must be at least 1, got {Workers}.");
        if (InitWeights is not null && !File.Exists(InitWeights)) throw new ArgumentException($"TrainOptions.InitWeights: no file at '{InitWeights}'.");
    }

    /// <summary>
    /// The settings a checkpoint must share with the options resuming it: anything that changes the trajectory
    /// (not Workers, which never changes results, nor MaxEpochs, which may be raised to train on).
    /// </summary>
    internal string Fingerprint() => FormattableString.Invariant($"{string.Join(";",
        $"layers={string.Join(",", Arch.Layers)}", $"width={Arch.BaseWidth}", $"stem={Arch.StemStride}", $"pool={Arch.MaxPoolStride}",
        $"dropout={Arch.Dropout:R}", $"fcstd={Arch.FcInitStd:R}", $"lr={LearningRate:R}", $"betas={Betas.Beta1:R},{Betas.Beta2:R}",
        $"seed={Seed}", $"pairs={PairsPerBatch}", $"mode={Mode}", $"patience={Patience}", $"delta={MinDelta:R}",
        $"minlr={MinLearningRate:R}", $"crop={CropSize}", $"resize={ResizeSize}", $"aug={Augmentation}", $"val={Validation}",
        $"init={(InitWeights is null ? "none" : Path.GetFileName(InitWeights))}")}") +
        (Augment with { ResizeSize = AugmentationOptions.Paper.ResizeSize } == AugmentationOptions.Paper ? "" : ";augp=" + Augment.Fingerprint());
}
