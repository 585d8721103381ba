using System.Globalization;

namespace Forensics.ML.Training;

/// <summary>
/// The sizes, ranges and probabilities of the reference augmentation chain (<see cref="Imaging.TransformPipeline.AlignedTraining(AugmentationOptions, int)"/>).
/// The defaults (<see cref="Paper"/>) are the aligned-dataset paper's, made for photographs of 256 px and more with 96 px
/// crops. On small images they erase the signal (a 48 px cutout covers 56% of a 64 px patch, a 256 px resized crop
/// upsamples it 4x): <see cref="ForCrop"/> scales the sizes and ranges to a smaller crop.
/// </summary>
public sealed record AugmentationOptions
{
    /// <summary>The crop the paper's sizes were made for.</summary>
    public const int PaperCrop = 96;

    /// <summary>Output side of RandomResizedCrop; paper 256.</summary>
    public int ResizeSize { get; init; } = 256;
    /// <summary>Smallest area fraction RandomResizedCrop draws; paper 0.08.</summary>
    public double ResizeScaleMin { get; init; } = 0.08;
    /// <summary>Probability of RandomResizedCrop; paper 0.2.</summary>
    public double ResizeProbability { get; init; } = 0.2;
    /// <summary>Probability of ColorJitter(0.4, 0.4, 0.4, 0.1); paper 0.8.</summary>
    public double ColorJitterProbability { get; init; } = 0.8;
    /// <summary>Probability of grayscale; paper 0.2.</summary>
    public double GrayscaleProbability { get; init; } = 0.2;
    /// <summary>Side of the (0 or 1) square cutout hole; paper 48.</summary>
    public int CutoutSize { get; init; } = 48;
    /// <summary>Probability of the cutout; paper 0.2.</summary>
    public double CutoutProbability { get; init; } = 0.2;
    /// <summary>Probability of Gaussian noise (variance 10-50 in 0..255 units); paper 0.2.</summary>
    public double NoiseProbability { get; init; } = 0.2;
    /// <summary>Blur sigma range; paper [0, 3].</summary>
    public double BlurSigmaMin { get; init; }
    /// <summary>Blur sigma range; paper [0, 3].</summary>
    public double BlurSigmaMax { get; init; } = 3;
    /// <summary>Probability of the blur; paper 0.5.</summary>
    public double BlurProbability { get; init; } = 0.5;
    /// <summary>JPEG quality range; paper [30, 100].</summary>
    public int JpegQualityMin { get; init; } = 30;
    /// <summary>JPEG quality range; paper [30, 100].</summary>
    public int JpegQualityMax { get; init; } = 100;
    /// <summary>Probability of the JPEG re-encoding; paper 0.5.</summary>
    public double JpegProbability { get; init; } = 0.5;

    /// <summary>The paper's chain, for full-size data (crops of 96 px and more).</summary>
    public static AugmentationOptions Paper { get; } = new();

    /// <summary>
    /// The defaults for a training crop: the paper's for crops of <see cref="PaperCrop"/> px and more; below, the sizes and
    /// the blur scale with s = crop / 96 (resized crop max(crop, 256 s) from at least 25% of the area, cutout 48 s, blur sigma
    /// up to 3 s) and the lowest JPEG quality rises to 100 - 70 s, probabilities unchanged.
    /// </summary>
    public static AugmentationOptions ForCrop(int crop)
    {
        if (crop < 1) throw new ArgumentOutOfRangeException(nameof(crop), crop, "crop must be at least 1");
        if (crop >= PaperCrop) return Paper;
        var s = (double)crop / PaperCrop;
        return Paper with
        {
            ResizeSize = Math.Max(crop, (int)Math.Round(256 * s)),
            ResizeScaleMin = 0.25,
            CutoutSize = Math.Max(1, (int)Math.Round(48 * s)),
            BlurSigmaMax = Math.Round(3 * s, 3),
            JpegQualityMin = (int)Math.Round(100 - 70 * s),
        };
    }

    /// <summary>
    /// <paramref name="baseline"/> with the fields of a "name=value,name=value" spec replaced (names as the properties,
    /// case-insensitive: "cutoutSize=16,blurSigmaMax=1,jpegQualityMin=70"); an empty spec gives the baseline.
    /// </summary>
    /// <exception cref="ArgumentException">An unknown name or a value that is not a number, naming it.</exception>
    public static AugmentationOptions Parse(string? spec, AugmentationOptions baseline)
    {
        var a = baseline;
        foreach (var part in (spec ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var eq = part.IndexOf('=');
            if (eq <= 0) throw new ArgumentException($"augmentation setting '{part}' is not name=value");
            var (name, text) = (part[..eq].Trim(), part[(eq + 1)..].Trim());
            if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var v))
                throw new ArgumentException($"augmentation setting '{name}': '{text}' is not a number");
            int I() => v == Math.Floor(v) ? (int)v : throw new ArgumentException($"augmentation setting '{name}' must be a whole number, got {text}");
            a = name.ToLowerInvariant() switch
            {
                "resizesize" => a with { ResizeSize = I() },
                "resizescalemin" => a with { ResizeScaleMin = v },
                "resizeprobability" => a with { ResizeProbability = v },
                "colorjitterprobability" => a with { ColorJitterProbability = v },
                "grayscaleprobability" => a with { GrayscaleProbability = v },
                "cutoutsize" => a with { CutoutSize = I() },
                "cutoutprobability" => a with { CutoutProbability = v },
                "noiseprobability" => a with { NoiseProbability = v },
                "blursigmamin" => a with { BlurSigmaMin = v },
                "blursigmamax" => a with { BlurSigmaMax = v },
                "blurprobability" => a with { BlurProbability = v },
                "jpegqualitymin" => a with { JpegQualityMin = I() },
                "jpegqualitymax" => a with { JpegQualityMax = I() },
                "jpegprobability" => a with { JpegProbability = v },
                _ => throw new ArgumentException($"unknown augmentation setting '{name}'"),
            };
        }
        return a;
    }

    /// <summary>Throws an <see cref="ArgumentException"/> naming the first invalid field (as "AugmentationOptions.Field").</summary>
    public void Validate()
    {
        static void Probability(double p, string name)
        {
            if (!(p >= 0 && p <= 1)) throw new ArgumentException($"AugmentationOptions.{name} must lie in [0, 1], got {p.ToString(CultureInfo.InvariantCulture)}.");
        }
        if (ResizeSize < 1) throw new ArgumentException($"AugmentationOptions.ResizeSize must be at least 1, got {ResizeSize}.");
        if (!(ResizeScaleMin > 0 && ResizeScaleMin <= 1)) throw new ArgumentException($"AugmentationOptions.ResizeScaleMin must lie in (0, 1], got {ResizeScaleMin.ToString(CultureInfo.InvariantCulture)}.");
        if (CutoutSize < 1) throw new ArgumentException($"AugmentationOptions.CutoutSize must be at least 1, got {CutoutSize}.");
        if (!(BlurSigmaMin >= 0) || !(BlurSigmaMax >= BlurSigmaMin))
            throw new ArgumentException($"AugmentationOptions.BlurSigmaMax must be >= BlurSigmaMin >= 0, got [{BlurSigmaMin.ToString(CultureInfo.InvariantCulture)}, {BlurSigmaMax.ToString(CultureInfo.InvariantCulture)}].");
        if (JpegQualityMin is < 1 or > 100 || JpegQualityMax is < 1 or > 100 || JpegQualityMax < JpegQualityMin)
            throw new ArgumentException($"AugmentationOptions.JpegQualityMin must be 1..100 and at most JpegQualityMax (1..100), got [{JpegQualityMin}, {JpegQualityMax}].");
        Probability(ResizeProbability, nameof(ResizeProbability));
        Probability(ColorJitterProbability, nameof(ColorJitterProbability));
        Probability(GrayscaleProbability, nameof(GrayscaleProbability));
        Probability(CutoutProbability, nameof(CutoutProbability));
        Probability(NoiseProbability, nameof(NoiseProbability));
        Probability(BlurProbability, nameof(BlurProbability));
        Probability(JpegProbability, nameof(JpegProbability));
    }

    /// <summary>Every field, for a checkpoint's fingerprint.</summary>
    internal string Fingerprint() => FormattableString.Invariant(
        $"rrc={ResizeSize}/{ResizeScaleMin:R}/{ResizeProbability:R},cj={ColorJitterProbability:R},gray={GrayscaleProbability:R},cut={CutoutSize}/{CutoutProbability:R},noise={NoiseProbability:R},blur={BlurSigmaMin:R}-{BlurSigmaMax:R}/{BlurProbability:R},jpeg={JpegQualityMin}-{JpegQualityMax}/{JpegProbability:R}");
}
