using Forensics.ML.Data;
using Forensics.ML.Detectors;
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
    private readonly DetectorCard? card;

    /// <summary>
    /// The work for <paramref name="options"/>' augmentation, crop and validation input. With a detector
    /// <paramref name="card"/> (a TorchScript detector's) the ImageNet normalisation is replaced by the card's input: the
    /// augmented crop in [0,1] goes through <see cref="DetectorCard.Prepare"/> (size policy, value range, mean/std,
    /// channel order), as an evaluation prepares a whole image.
    /// </summary>
    public TrainingSamples(TrainOptions options, DetectorCard? card = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        this.card = card;
        Pipeline = options.Augmentation switch
        {
            AugmentationChoice.Reference => TransformPipeline.AlignedTraining(options.Augment, options.CropSize),
            AugmentationChoice.None => new TransformPipeline(new RandomCrop(options.CropSize, padIfNeeded: true), Normalize.ImageNet()),
            _ => throw new ArgumentException($"Unknown augmentation choice {options.Augmentation}.", nameof(options)),
        };
        validation = options.Validation == ValidationInput.CentreCrop
            ? new TransformPipeline(new CenterCrop(options.CropSize), Normalize.ImageNet())
            : new TransformPipeline(Normalize.ImageNet());
        if (card is not null)
        {
            Pipeline = new TransformPipeline(Pipeline.Steps.Where(s => s is not Normalize));
            validation = new TransformPipeline(validation.Steps.Where(s => s is not Normalize));
        }
    }

    /// <summary>The training chain, ending in the random crop and ImageNet normalisation (without it when a card's input follows).</summary>
    public TransformPipeline Pipeline { get; }

    /// <summary>One training image: [3, crop, crop] float32, normalised (or the card's input). Throws <see cref="ImageDecodeException"/> for unreadable files (the loader skips and counts them).</summary>
    public Tensor LoadTraining(ImageSample sample, SampleContext context)
    {
        using var image = ImageDecoder.Decode(sample.Path);
        return WithCard(Pipeline.Apply(image, new RandomSource(context.AugmentationSeed)));
    }

    /// <summary>One validation image: the centre crop (or the full image), normalised (or the card's input); no randomness.</summary>
    public Tensor LoadValidation(ImageSample sample, SampleContext context)
    {
        using var image = ImageDecoder.Decode(sample.Path);
        return WithCard(validation.Apply(image, new RandomSource(0)));
    }

    private Tensor WithCard(Tensor image)
    {
        if (card is null) return image;
        using (image) return card.Prepare(image);
    }
}
