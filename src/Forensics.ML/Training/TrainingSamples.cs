using Forensics.ML.Data;
using Forensics.ML.Imaging;
using static TorchSharp.torch;

namespace Forensics.ML.Training;

/// <summary>
/// The per-sample work of training and validation: decode, augment with the draw's augmentation seed (both members of a
/// synced pair get the pair's seed, hence identical crops, JPEG qualities, ...), crop and normalise. Thread-safe: each call
/// makes its own <see cref="RandomSource"/>.
/// </summary>
public sealed class TrainingSamples
{
    private readonly TransformPipeline validation;

    /// <summary>The work for <paramref name="options"/>' augmentation, crop and validation input.</summary>
    public TrainingSamples(TrainOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        Pipeline = options.Augmentation switch
        {
            AugmentationChoice.Reference => TransformPipeline.AlignedTraining(options.Augment, options.CropSize),
            AugmentationChoice.None => new TransformPipeline(new RandomCrop(options.CropSize, padIfNeeded: true), Normalize.ImageNet()),
            _ => throw new ArgumentException($"Unknown augmentation choice {options.Augmentation}.", nameof(options)),
        };
        validation = options.Validation == ValidationInput.CentreCrop
            ? new TransformPipeline(new CenterCrop(options.CropSize), Normalize.ImageNet())
            : new TransformPipeline(Normalize.ImageNet());
    }

    /// <summary>The training chain, ending in the random crop and ImageNet normalisation.</summary>
    public TransformPipeline Pipeline { get; }

    /// <summary>One training image: [3, crop, crop] float32, normalised. Throws <see cref="ImageDecodeException"/> for unreadable files (the loader skips and counts them).</summary>
    public Tensor LoadTraining(ImageSample sample, SampleContext context)
    {
        using var image = ImageDecoder.Decode(sample.Path);
        return Pipeline.Apply(image, new RandomSource(context.AugmentationSeed));
    }

    /// <summary>One validation image: the centre crop (or the full image), normalised; no randomness.</summary>
    public Tensor LoadValidation(ImageSample sample, SampleContext context)
    {
        using var image = ImageDecoder.Decode(sample.Path);
        return validation.Apply(image, new RandomSource(0));
    }
}
