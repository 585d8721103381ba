using Forensics.ML.Alignment;

namespace Portal.Experiments;

/// <summary>
/// What an "align" run writes, and the one place that names it: its step-0 metrics (VAE time, MACs, PSNR, counts), the
/// alignment.json report (artifact "alignment") and the dataset manifest (artifact "manifest"). The result panel reads them
/// through this type.
/// </summary>
public static class AlignmentResults
{
    public const string SecondsPerImage = "seconds_per_image", WallSecondsPerImage = "wall_seconds_per_image", MacsPerImage = "macs_per_image";
    public const string PsnrMean = "psnr_mean", PsnrMin = "psnr_min", ImagesReconstructed = "images_reconstructed", ImagesFailed = "images_failed";
    /// <summary>The report (<see cref="AlignmentResult.FileName"/>) and the aligned dataset's manifest.</summary>
    public const string ReportArtifact = "alignment", ManifestArtifact = "manifest";

    /// <summary>The metrics of one alignment, under their names (non-finite values are not stored).</summary>
    public static IEnumerable<(string Name, double Value)> Values(AlignmentResult r) =>
    [
        (SecondsPerImage, r.SecondsPerImage), (WallSecondsPerImage, r.WallSecondsPerImage),
        (MacsPerImage, r.MacsPerImage), (PsnrMean, r.Psnr!.Mean), (PsnrMin, r.Psnr.Min),
        (ImagesReconstructed, r.Reconstructed), (ImagesFailed, r.Failed),
    ];
}
