using Forensics.ML.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Forensics.ML.Imaging;

/// <summary>A crop rectangle: rows [Top, Top+Height), columns [Left, Left+Width).</summary>
public sealed record CropBox(int Top, int Left, int Height, int Width);

/// <summary>
/// torchvision's RandomResizedCrop: a crop of random area (scale of the image area) and aspect ratio, resized to
/// Size x Size with an antialiased filter (bilinear by default, the reference's rz_interp). Sampling follows torchvision:
/// up to 10 tries of area ~ U(scale) * H * W and log-uniform ratio, w = round(sqrt(area * ratio)), h = round(sqrt(area /
/// ratio)) (round half to even, as Python), position uniform; then the centre crop of the ratio-clamped whole image.
/// </summary>
public sealed class RandomResizedCrop : ImageTransform<CropBox>
{
    /// <summary>Creates the transform (reference: size 256, scale 0.08-1, ratio 3/4-4/3, p 0.2).</summary>
    public RandomResizedCrop(int size, double probability = 1.0, double scaleMin = 0.08, double scaleMax = 1.0,
        double ratioMin = 3.0 / 4.0, double ratioMax = 4.0 / 3.0, ResizeFilter filter = ResizeFilter.Bilinear) : base(probability)
    {
        if (size <= 0) throw new ArgumentOutOfRangeException(nameof(size), size, "size must be > 0");
        if (scaleMin <= 0 || scaleMin > scaleMax) throw new ArgumentOutOfRangeException(nameof(scaleMin), "need 0 < scaleMin <= scaleMax");
        if (ratioMin <= 0 || ratioMin > ratioMax) throw new ArgumentOutOfRangeException(nameof(ratioMin), "need 0 < ratioMin <= ratioMax");
        (Size, ScaleMin, ScaleMax, RatioMin, RatioMax, Filter) = (size, scaleMin, scaleMax, ratioMin, ratioMax, filter);
    }

    /// <summary>Output side length.</summary>
    public int Size { get; }
    /// <summary>Area fraction range.</summary>
    public double ScaleMin { get; }
    /// <summary>Area fraction range.</summary>
    public double ScaleMax { get; }
    /// <summary>Aspect ratio (width / height) range.</summary>
    public double RatioMin { get; }
    /// <summary>Aspect ratio (width / height) range.</summary>
    public double RatioMax { get; }
    /// <summary>Resampling filter.</summary>
    public ResizeFilter Filter { get; }

    /// <inheritdoc/>
    protected override CropBox Draw(RandomSource rng, ImageSize size)
    {
        double area = (double)size.Height * size.Width;
        double logMin = Math.Log(RatioMin), logMax = Math.Log(RatioMax);
        for (int attempt = 0; attempt < 10; attempt++)
        {
            double target = area * rng.Uniform(ScaleMin, ScaleMax);
            double ratio = Math.Exp(rng.Uniform(logMin, logMax));
            int w = (int)Math.Round(Math.Sqrt(target * ratio), MidpointRounding.ToEven);
            int h = (int)Math.Round(Math.Sqrt(target / ratio), MidpointRounding.ToEven);
            if (w > 0 && h > 0 && w <= size.Width && h <= size.Height)
                return new CropBox(rng.NextInt(0, size.Height - h + 1), rng.NextInt(0, size.Width - w + 1), h, w);
        }
        // Fallback: the whole image, narrowed to the nearest allowed ratio, centred.
        double inRatio = (double)size.Width / size.Height;
        int width = size.Width, height = size.Height;
        if (inRatio < RatioMin) height = (int)Math.Round(width / RatioMin, MidpointRounding.ToEven);
        else if (inRatio > RatioMax) width = (int)Math.Round(height * RatioMax, MidpointRounding.ToEven);
        return new CropBox((size.Height - height) / 2, (size.Width - width) / 2, height, width);
    }

    /// <inheritdoc/>
    protected override Tensor Transform(CropBox box, Tensor image)
    {
        using var crop = ImageOps.Crop(image, box.Top, box.Left, box.Height, box.Width);
        return ImageOps.Resize(crop, Size, Size, Filter);
    }
}

/// <summary>One ColorJitter draw: the order of the four operations (0 brightness, 1 contrast, 2 saturation, 3 hue) and
/// their factors (null: that operation is off).</summary>
public sealed record ColorJitterParameters(IReadOnlyList<int> Order, double? Brightness, double? Contrast, double? Saturation, double? Hue);

/// <summary>
/// torchvision's ColorJitter with its tensor semantics: the four operations in a random order; brightness, contrast and
/// saturation factors ~ U[max(0, 1 - x), 1 + x], hue shift ~ U[-h, h] (h &lt;= 0.5). Brightness scales; contrast blends with
/// the mean luma; saturation blends with the luma image; hue shifts H in HSV (mod 1). Results are clamped to [0,1].
/// The reference runs ColorJitter on 8-bit PIL images (ImageEnhance, 8-bit HSV), so its outputs are quantised versions of
/// these float results: expect differences of a few grey levels, not a different operation.
/// </summary>
public sealed class ColorJitter : ImageTransform<ColorJitterParameters>
{
    /// <summary>Creates the transform (reference: 0.4, 0.4, 0.4, 0.1 with p 0.8).</summary>
    public ColorJitter(double brightness, double contrast, double saturation, double hue, double probability = 1.0) : base(probability)
    {
        if (brightness < 0 || contrast < 0 || saturation < 0) throw new ArgumentOutOfRangeException(nameof(brightness), "jitter amounts must be >= 0");
        if (hue is < 0 or > 0.5) throw new ArgumentOutOfRangeException(nameof(hue), hue, "hue must be in [0, 0.5]");
        (Brightness, Contrast, Saturation, Hue) = (brightness, contrast, saturation, hue);
    }

    /// <summary>Jitter amounts.</summary>
    public double Brightness { get; }
    /// <summary>Jitter amounts.</summary>
    public double Contrast { get; }
    /// <summary>Jitter amounts.</summary>
    public double Saturation { get; }
    /// <summary>Jitter amounts.</summary>
    public double Hue { get; }

    /// <inheritdoc/>
    protected override ColorJitterParameters Draw(RandomSource rng, ImageSize size)
    {
        var order = rng.Permutation(4);
        double? Factor(double amount) => amount > 0 ? rng.Uniform(Math.Max(0, 1 - amount), 1 + amount) : null;
        var b = Factor(Brightness);
        var c = Factor(Contrast);
        var s = Factor(Saturation);
        double? h = Hue > 0 ? rng.Uniform(-Hue, Hue) : null;
        return new ColorJitterParameters(order, b, c, s, h);
    }

    /// <inheritdoc/>
    protected override Tensor Transform(ColorJitterParameters p, Tensor image)
    {
        var current = image.clone();
        foreach (var op in p.Order)
        {
            Tensor? next = op switch
            {
                0 when p.Brightness is { } b => AdjustBrightness(current, b),
                1 when p.Contrast is { } c => AdjustContrast(current, c),
                2 when p.Saturation is { } s => AdjustSaturation(current, s),
                3 when p.Hue is { } h => AdjustHue(current, h),
                _ => null,
            };
            if (next is null) continue;
            current.Dispose();
            current = next;
        }
        return current;
    }

    /// <summary>clamp(factor * image).</summary>
    public static Tensor AdjustBrightness(Tensor image, double factor) => image.Times(factor).ClampInPlace(0f, 1f);

    /// <summary>Blend with the mean luma of the image.</summary>
    public static Tensor AdjustContrast(Tensor image, double factor)
    {
        using var luma = ImageOps.Luma(image);
        using var mean = luma.mean();
        return ImageOps.Blend(image, mean, factor);
    }

    /// <summary>Blend with the luma image.</summary>
    public static Tensor AdjustSaturation(Tensor image, double factor)
    {
        using var luma = ImageOps.Luma(image);
        return ImageOps.Blend(image, luma, factor);
    }

    /// <summary>Shift hue by <paramref name="shift"/> (in turns, -0.5..0.5) in HSV.</summary>
    public static Tensor AdjustHue(Tensor image, double shift)
    {
        using var scope = torch.NewDisposeScope();
        var hsv = ImageOps.RgbToHsv(image);
        var hue = torch.remainder(hsv[0] + shift, 1.0);
        var rgb = ImageOps.HsvToRgb(torch.stack([hue, hsv[1], hsv[2]]));
        return rgb.MoveToOuterDisposeScope();
    }
}

/// <summary>RandomGrayscale: luma (0.299, 0.587, 0.114) copied to three channels, with probability p (reference 0.2).</summary>
public sealed class RandomGrayscale(double probability) : ImageTransform<Applied>(probability)
{
    /// <inheritdoc/>
    protected override Applied Draw(RandomSource rng, ImageSize size) => Applied.Instance;

    /// <inheritdoc/>
    protected override Tensor Transform(Applied parameters, Tensor image) => ImageOps.Grayscale(image);
}

/// <summary>The holes of one cutout draw.</summary>
public sealed record CutoutParameters(IReadOnlyList<CropBox> Holes);

/// <summary>
/// Cutout as albumentations' CoarseDropout in the reference: between MinHoles and MaxHoles square holes of side HoleSize
/// (clipped to the image), each at a uniform position, filled with FillValue (128/255 in the reference). The reference
/// code uses min_holes=0, max_holes=1, so half of its applied draws make no hole: <see cref="Reference"/> reproduces that.
/// </summary>
public sealed class Cutout : ImageTransform<CutoutParameters>
{
    /// <summary>Creates the transform (default one hole of 48x48 filled with 128/255).</summary>
    public Cutout(double probability = 1.0, int holeSize = 48, double fillValue = 128.0 / 255.0, int minHoles = 1, int maxHoles = 1) : base(probability)
    {
        if (holeSize <= 0) throw new ArgumentOutOfRangeException(nameof(holeSize), holeSize, "hole size must be > 0");
        if (minHoles < 0 || maxHoles < minHoles) throw new ArgumentOutOfRangeException(nameof(minHoles), "need 0 <= minHoles <= maxHoles");
        (HoleSize, FillValue, MinHoles, MaxHoles) = (holeSize, fillValue, minHoles, maxHoles);
    }

    /// <summary>The reference's setting: p, 0..1 holes of 48x48, fill 128.</summary>
    public static Cutout Reference(double probability) => new(probability, 48, 128.0 / 255.0, 0, 1);

    /// <summary>Side of the square hole.</summary>
    public int HoleSize { get; }
    /// <summary>Fill value in [0,1].</summary>
    public double FillValue { get; }
    /// <summary>Hole count range (inclusive).</summary>
    public int MinHoles { get; }
    /// <summary>Hole count range (inclusive).</summary>
    public int MaxHoles { get; }

    /// <inheritdoc/>
    protected override CutoutParameters Draw(RandomSource rng, ImageSize size)
    {
        int count = rng.NextIntInclusive(MinHoles, MaxHoles);
        int h = Math.Min(HoleSize, size.Height), w = Math.Min(HoleSize, size.Width);
        var holes = new CropBox[count];
        for (int i = 0; i < count; i++)
            holes[i] = new CropBox(rng.NextIntInclusive(0, size.Height - h), rng.NextIntInclusive(0, size.Width - w), h, w);
        return new CutoutParameters(holes);
    }

    /// <inheritdoc/>
    protected override Tensor Transform(CutoutParameters parameters, Tensor image)
    {
        var result = image.clone();
        var size = ImageSize.Of(image);
        foreach (var hole in parameters.Holes)
        {
            int h = Math.Min(hole.Height, size.Height - hole.Top), w = Math.Min(hole.Width, size.Width - hole.Left);
            if (h <= 0 || w <= 0) continue;
            using var rows = result.narrow(1, hole.Top, h);
            using var block = rows.narrow(2, hole.Left, w);
            block.fill_(FillValue);
        }
        return result;
    }
}

/// <summary>One noise draw: the standard deviation in 0..255 pixel units and the seed of the noise tensor.</summary>
public sealed record NoiseParameters(double StandardDeviation255, ulong Seed);

/// <summary>
/// Additive Gaussian noise as albumentations' GaussNoise in the reference: variance ~ U[VarianceMin, VarianceMax] in
/// 0..255 pixel units squared (the recipe's "variance 10-50", so sigma is about 3.2 to 7.1 grey levels), independent per
/// pixel and channel; in [0,1] units the noise sigma is sqrt(variance) / 255; the result is clamped to [0,1]. The noise
/// tensor comes from a torch generator seeded by the draw, so it is reproducible.
/// </summary>
public sealed class GaussianNoise : ImageTransform<NoiseParameters>
{
    /// <summary>Creates the transform (reference: variance 10-50, p 0.2).</summary>
    public GaussianNoise(double probability = 1.0, double varianceMin = 10, double varianceMax = 50) : base(probability)
    {
        if (varianceMin < 0 || varianceMax < varianceMin) throw new ArgumentOutOfRangeException(nameof(varianceMin), "need 0 <= varianceMin <= varianceMax");
        (VarianceMin, VarianceMax) = (varianceMin, varianceMax);
    }

    /// <summary>Variance range in 0..255 units squared.</summary>
    public double VarianceMin { get; }
    /// <summary>Variance range in 0..255 units squared.</summary>
    public double VarianceMax { get; }

    /// <inheritdoc/>
    protected override NoiseParameters Draw(RandomSource rng, ImageSize size) =>
        new(Math.Sqrt(rng.Uniform(VarianceMin, VarianceMax)), rng.NextUInt64() >> 1);

    /// <inheritdoc/>
    protected override Tensor Transform(NoiseParameters parameters, Tensor image) =>
        AddNoise(image, parameters.StandardDeviation255, parameters.Seed);

    /// <summary>image + N(0, (sigma255/255)^2) per pixel and channel, clamped to [0,1]; the noise is a function of the seed.</summary>
    public static Tensor AddNoise(Tensor image, double sigma255, ulong seed)
    {
        using var generator = new torch.Generator(seed & long.MaxValue);
        using var scope = torch.NewDisposeScope();
        var noise = torch.randn(image.shape, dtype: ScalarType.Float32, generator: generator).to_type(image.dtype).to(image.device);
        return image.Plus(noise.MulInPlace(sigma255 / 255.0)).ClampInPlace(0f, 1f).MoveToOuterDisposeScope();
    }
}

/// <summary>One blur draw.</summary>
public sealed record BlurParameters(double Sigma);

/// <summary>
/// Gaussian blur as the reference's data_augment_blur: sigma ~ U[SigmaMin, SigmaMax] (reference 0-3, p 0.5), applied with
/// scipy.ndimage.gaussian_filter's rule (radius int(4 sigma + 0.5), reflected borders); see <see cref="ImageOps.GaussianBlur"/>.
/// </summary>
public sealed class GaussianBlur : ImageTransform<BlurParameters>
{
    /// <summary>Creates the transform.</summary>
    public GaussianBlur(double probability = 1.0, double sigmaMin = 0, double sigmaMax = 3) : base(probability)
    {
        if (sigmaMin < 0 || sigmaMax < sigmaMin) throw new ArgumentOutOfRangeException(nameof(sigmaMin), "need 0 <= sigmaMin <= sigmaMax");
        (SigmaMin, SigmaMax) = (sigmaMin, sigmaMax);
    }

    /// <summary>Sigma range in pixels.</summary>
    public double SigmaMin { get; }
    /// <summary>Sigma range in pixels.</summary>
    public double SigmaMax { get; }

    /// <inheritdoc/>
    protected override BlurParameters Draw(RandomSource rng, ImageSize size) => new(rng.Uniform(SigmaMin, SigmaMax));

    /// <inheritdoc/>
    protected override Tensor Transform(BlurParameters parameters, Tensor image) => ImageOps.GaussianBlur(image, parameters.Sigma);
}

/// <summary>One JPEG draw.</summary>
public sealed record JpegParameters(int Quality);

/// <summary>
/// JPEG re-encoding at quality ~ U{QualityMin..QualityMax} (integers, both ends included; reference 30-100, p 0.5),
/// through Skia's libjpeg-turbo encoder (4:2:0, like the reference's PIL and OpenCV encoders) and decoder.
/// </summary>
public sealed class JpegCompression : ImageTransform<JpegParameters>
{
    /// <summary>Creates the transform.</summary>
    public JpegCompression(double probability = 1.0, int qualityMin = 30, int qualityMax = 100) : base(probability)
    {
        if (qualityMin < 1 || qualityMax > 100 || qualityMax < qualityMin)
            throw new ArgumentOutOfRangeException(nameof(qualityMin), "need 1 <= qualityMin <= qualityMax <= 100");
        (QualityMin, QualityMax) = (qualityMin, qualityMax);
    }

    /// <summary>Quality range (inclusive).</summary>
    public int QualityMin { get; }
    /// <summary>Quality range (inclusive).</summary>
    public int QualityMax { get; }

    /// <inheritdoc/>
    protected override JpegParameters Draw(RandomSource rng, ImageSize size) => new(rng.NextIntInclusive(QualityMin, QualityMax));

    /// <inheritdoc/>
    protected override Tensor Transform(JpegParameters parameters, Tensor image) => Recompress(image, parameters.Quality);

    /// <summary>Encodes as JPEG at <paramref name="quality"/> and decodes again.</summary>
    public static Tensor Recompress(Tensor image, int quality) =>
        ImageDecoder.Decode(ImageEncoder.EncodeJpeg(image, quality), $"jpeg re-encode q{quality}");
}

/// <summary>One rotation draw: counter-clockwise quarter turns, 0..3.</summary>
public sealed record Rotate90Parameters(int QuarterTurns);

/// <summary>
/// Rotation by a random multiple of 90 degrees, counter-clockwise as PIL's rotate(angle, expand=True) in the reference
/// (angle uniform in {0, 90, 180, 270}, p 1).
/// </summary>
public sealed class RandomRotate90(double probability = 1.0) : ImageTransform<Rotate90Parameters>(probability)
{
    /// <inheritdoc/>
    protected override Rotate90Parameters Draw(RandomSource rng, ImageSize size) => new(rng.NextInt(0, 4));

    /// <inheritdoc/>
    protected override Tensor Transform(Rotate90Parameters parameters, Tensor image) =>
        parameters.QuarterTurns % 4 == 0 ? image.clone() : image.rot90(parameters.QuarterTurns, (1, 2)).contiguous();
}

/// <summary>Horizontal flip (mirror left-right) with probability p (torchvision default 0.5).</summary>
public sealed class RandomHorizontalFlip(double probability = 0.5) : ImageTransform<Applied>(probability)
{
    /// <inheritdoc/>
    protected override Applied Draw(RandomSource rng, ImageSize size) => Applied.Instance;

    /// <inheritdoc/>
    protected override Tensor Transform(Applied parameters, Tensor image) => image.flip(2);
}

/// <summary>
/// torchvision's RandomCrop(size, pad_if_needed=True, padding_mode='symmetric'): a side shorter than Size is first padded
/// on BOTH ends by (Size - side) (torchvision's rule, so the padded side is 2*Size - side), then a Size x Size window is
/// drawn uniformly. Parameters are the window's position in the padded image.
/// </summary>
public sealed class RandomCrop : ImageTransform<CropBox>
{
    /// <summary>Creates the transform (reference: 96, always applied).</summary>
    public RandomCrop(int size, bool padIfNeeded = true) : base(1.0)
    {
        if (size <= 0) throw new ArgumentOutOfRangeException(nameof(size), size, "size must be > 0");
        (Size, PadIfNeeded) = (size, padIfNeeded);
    }

    /// <summary>Side of the square crop.</summary>
    public int Size { get; }
    /// <summary>Whether short sides are padded (symmetric) instead of rejected.</summary>
    public bool PadIfNeeded { get; }

    /// <summary>The padded size torchvision crops from.</summary>
    public ImageSize PaddedSize(ImageSize size)
    {
        var (h, w) = (size.Height, size.Width);
        if (PadIfNeeded)
        {
            if (w < Size) w += 2 * (Size - w);
            if (h < Size) h += 2 * (Size - h);
        }
        if (h < Size || w < Size)
            throw new ArgumentException($"RandomCrop({Size}) needs an image of at least {Size}x{Size}, got {size} (padIfNeeded is off)");
        return new ImageSize(h, w);
    }

    /// <inheritdoc/>
    protected override CropBox Draw(RandomSource rng, ImageSize size)
    {
        var padded = PaddedSize(size);
        if (padded.Height == Size && padded.Width == Size) return new CropBox(0, 0, Size, Size);
        return new CropBox(rng.NextInt(0, padded.Height - Size + 1), rng.NextInt(0, padded.Width - Size + 1), Size, Size);
    }

    /// <inheritdoc/>
    protected override Tensor Transform(CropBox box, Tensor image)
    {
        var size = ImageSize.Of(image);
        var padded = PaddedSize(size);
        int padW = (padded.Width - size.Width) / 2, padH = (padded.Height - size.Height) / 2;
        if (padW == 0 && padH == 0) return ImageOps.Crop(image, box.Top, box.Left, box.Height, box.Width);
        using var paddedImage = ImageOps.PadSymmetric(image, padH, padH, padW, padW);
        return ImageOps.Crop(paddedImage, box.Top, box.Left, box.Height, box.Width);
    }
}

/// <summary>
/// torchvision's CenterCrop: the window starts at round((H - h) / 2), round((W - w) / 2) (half to even); images smaller
/// than the crop are first zero-padded, (d // 2) before and ((d + 1) // 2) after.
/// </summary>
public sealed class CenterCrop : ImageTransform<Applied>
{
    /// <summary>Creates a square centre crop.</summary>
    public CenterCrop(int size) : this(size, size) { }

    /// <summary>Creates a centre crop of <paramref name="height"/> x <paramref name="width"/>.</summary>
    public CenterCrop(int height, int width) : base(1.0)
    {
        if (height <= 0 || width <= 0) throw new ArgumentOutOfRangeException(nameof(height), $"invalid crop size {width}x{height}");
        (Height, Width) = (height, width);
    }

    /// <summary>Crop height.</summary>
    public int Height { get; }
    /// <summary>Crop width.</summary>
    public int Width { get; }

    /// <inheritdoc/>
    protected override Applied Draw(RandomSource rng, ImageSize size) => Applied.Instance;

    /// <inheritdoc/>
    protected override Tensor Transform(Applied parameters, Tensor image) => Crop(image, Height, Width);

    /// <summary>The centre crop of <paramref name="image"/> (zero-padded first when smaller).</summary>
    public static Tensor Crop(Tensor image, int height, int width)
    {
        var size = ImageSize.Of(image);
        if (size.Height < height || size.Width < width)
        {
            int dh = Math.Max(0, height - size.Height), dw = Math.Max(0, width - size.Width);
            using var padded = ImageOps.PadConstant(image, dh / 2, (dh + 1) / 2, dw / 2, (dw + 1) / 2);
            return Crop(padded, height, width);
        }
        int top = (int)Math.Round((size.Height - height) / 2.0, MidpointRounding.ToEven);
        int left = (int)Math.Round((size.Width - width) / 2.0, MidpointRounding.ToEven);
        return ImageOps.Crop(image, top, left, height, width);
    }
}

/// <summary>Per-channel normalisation (x - mean) / std; <see cref="ImageNet"/> is the reference's ("resnet").</summary>
public sealed class Normalize : ImageTransform<Applied>
{
    /// <summary>Creates the transform with per-channel statistics.</summary>
    public Normalize(IReadOnlyList<float> mean, IReadOnlyList<float> std) : base(1.0)
    {
        if (mean.Count != 3 || std.Count != 3) throw new ArgumentException("mean and std need 3 values each");
        if (std.Any(s => s <= 0)) throw new ArgumentException("std values must be > 0", nameof(std));
        (Mean, Std) = (mean.ToArray(), std.ToArray());
    }

    /// <summary>ImageNet mean (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225).</summary>
    public static Normalize ImageNet() => new(ImageOps.ImageNetMean, ImageOps.ImageNetStd);

    /// <summary>Channel means.</summary>
    public IReadOnlyList<float> Mean { get; }
    /// <summary>Channel standard deviations.</summary>
    public IReadOnlyList<float> Std { get; }

    /// <inheritdoc/>
    protected override Applied Draw(RandomSource rng, ImageSize size) => Applied.Instance;

    /// <inheritdoc/>
    protected override Tensor Transform(Applied parameters, Tensor image) => ImageOps.Normalize(image, Mean, Std);
}
