using static TorchSharp.torch;

namespace Forensics.ML.Imaging;

/// <summary>
/// Transforms applied in order. <see cref="ApplyPair"/> draws each step's parameters once and applies them to both a
/// real image and its reconstruction (the reference's "synced" augmentation: same crop, same JPEG quality, ...).
/// </summary>
public sealed class TransformPipeline
{
    /// <summary>Composes <paramref name="steps"/> in order.</summary>
    public TransformPipeline(params IEnumerable<IImageTransform> steps)
    {
        Steps = steps.ToArray();
        for (int i = 0; i < Steps.Count; i++)
            if (Steps[i] is null) throw new ArgumentNullException(nameof(steps), $"step {i} is null");
    }

    /// <summary>The steps, in order of application.</summary>
    public IReadOnlyList<IImageTransform> Steps { get; }

    /// <summary>
    /// The reference training chain ("Ours-Sync"): RandomResizedCrop(resize, scale 0.08-1, ratio 3/4-4/3, bilinear) p 0.2;
    /// ColorJitter(0.4, 0.4, 0.4, 0.1) p 0.8; grayscale p 0.2; cutout (0-1 hole of 48x48, fill 128) p 0.2; Gaussian
    /// noise (variance 10-50 in 0..255 units) p 0.2; blur sigma ~ U[0,3] p 0.5; JPEG quality 30-100 p 0.5; rotation by
    /// k*90 degrees p 1; horizontal flip p 0.5; RandomCrop(crop) with symmetric padding; ImageNet normalisation.
    /// </summary>
    public static TransformPipeline AlignedTraining(int resizeSize = 256, int cropSize = 96) =>
        AlignedTraining(Training.AugmentationOptions.Paper with { ResizeSize = resizeSize }, cropSize);

    /// <summary>The reference chain with the sizes, ranges and probabilities of <paramref name="a"/> (see <see cref="Training.AugmentationOptions"/>).</summary>
    public static TransformPipeline AlignedTraining(Training.AugmentationOptions a, int cropSize) => new(
        new RandomResizedCrop(a.ResizeSize, probability: a.ResizeProbability, scaleMin: a.ResizeScaleMin),
        new ColorJitter(0.4, 0.4, 0.4, 0.1, probability: a.ColorJitterProbability),
        new RandomGrayscale(a.GrayscaleProbability),
        new Cutout(a.CutoutProbability, a.CutoutSize, 128.0 / 255.0, 0, 1),
        new GaussianNoise(a.NoiseProbability, 10, 50),
        new GaussianBlur(a.BlurProbability, a.BlurSigmaMin, a.BlurSigmaMax),
        new JpegCompression(a.JpegProbability, a.JpegQualityMin, a.JpegQualityMax),
        new RandomRotate90(1.0),
        new RandomHorizontalFlip(0.5),
        new RandomCrop(cropSize, padIfNeeded: true),
        Normalize.ImageNet());

    /// <summary>Draws and applies every step to one image; returns a new tensor.</summary>
    public Tensor Apply(Tensor image, RandomSource rng) => ApplySynced([image], rng, out _)[0];

    /// <summary>
    /// Applies one draw per step identically to <paramref name="real"/> and <paramref name="fake"/>, which must have the
    /// same size (aligned pairs); returns new tensors.
    /// </summary>
    /// <exception cref="ArgumentException">The two images differ in size.</exception>
    public (Tensor Real, Tensor Fake) ApplyPair(Tensor real, Tensor fake, RandomSource rng) => ApplyPair(real, fake, rng, out _);

    /// <summary>As <see cref="ApplyPair(Tensor, Tensor, RandomSource)"/>, also returning each step's draw (null: skipped).</summary>
    public (Tensor Real, Tensor Fake) ApplyPair(Tensor real, Tensor fake, RandomSource rng, out IReadOnlyList<object?> draws)
    {
        ImageTensors.CheckImage(real, nameof(real));
        ImageTensors.CheckImage(fake, nameof(fake));
        var (realSize, fakeSize) = (ImageSize.Of(real), ImageSize.Of(fake));
        if (realSize != fakeSize)
            throw new ArgumentException(
                $"synced augmentation needs a real image and its reconstruction of the same size, got real {realSize} and fake {fakeSize}");
        var outputs = ApplySynced([real, fake], rng, out draws);
        return (outputs[0], outputs[1]);
    }

    /// <summary>Applies one draw per step identically to every image (all of the same size); returns new tensors.</summary>
    public Tensor[] ApplySynced(IReadOnlyList<Tensor> images, RandomSource rng, out IReadOnlyList<object?> draws)
    {
        ArgumentNullException.ThrowIfNull(rng);
        if (images.Count == 0) throw new ArgumentException("no images", nameof(images));
        foreach (var image in images) ImageTensors.CheckImage(image, nameof(images));
        var size = ImageSize.Of(images[0]);
        if (images.Any(i => ImageSize.Of(i) != size))
            throw new ArgumentException($"synced images must share one size, got {string.Join(", ", images.Select(ImageSize.Of))}", nameof(images));

        var current = images.ToArray();
        var owned = new bool[current.Length]; // false while current[i] is the caller's tensor
        var drawn = new object?[Steps.Count];
        try
        {
            for (int s = 0; s < Steps.Count; s++)
            {
                var parameters = Steps[s].Sample(rng, ImageSize.Of(current[0]));
                drawn[s] = parameters;
                if (parameters is null) continue;
                for (int i = 0; i < current.Length; i++)
                {
                    var next = Steps[s].Apply(parameters, current[i]);
                    if (owned[i]) current[i].Dispose();
                    current[i] = next;
                    owned[i] = true;
                }
            }
            for (int i = 0; i < current.Length; i++)
                if (!owned[i]) current[i] = current[i].clone(); // every result is the caller's to dispose
        }
        catch
        {
            for (int i = 0; i < current.Length; i++) if (owned[i]) current[i].Dispose();
            throw;
        }
        draws = drawn;
        return current;
    }
}
