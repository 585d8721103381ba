using Forensics.ML.Data;
using Forensics.ML.Detectors;
using Forensics.ML.Imaging;
using Forensics.ML.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Forensics.ML.Evaluation;

/// <summary>Settings of <see cref="DetectorEvaluator.Score"/>.</summary>
public sealed record EvalOptions
{
    /// <summary>Applied to every decoded image before normalisation; none by default.</summary>
    public PerturbationSpec Perturbation { get; init; } = PerturbationSpec.None;

    /// <summary>
    /// Batches of equal-size full images (the default: every image is still scored at full size, without resize or crop,
    /// as the reference protocol's batch 1 does, and in eval mode with the same score up to float rounding: bit-identical
    /// logits on this project's CPU, where libtorch's own convolutions run per image; a batched oneDNN kernel may sum in
    /// another order, <c>DetectorEvaluatorTests.Batching_by_size_gives_the_scores_of_batch_1</c>), or one image per batch
    /// (<see cref="EvalBatching.Single"/>: the reference protocol to the letter).
    /// </summary>
    public EvalBatching Batching { get; init; } = EvalBatching.BySize;

    /// <summary>Largest batch with <see cref="EvalBatching.BySize"/>; ignored for Single.</summary>
    public int MaxBatch { get; init; } = 16;

    /// <summary>
    /// Largest batch in scanned pixels with <see cref="EvalBatching.BySize"/> (default: one image at <see cref="MaxPixels"/>'s
    /// default), so batching needs no more memory than the largest image allowed: 16 images of 256 x 256 per batch, but
    /// one of 1024 x 1024.
    /// </summary>
    public long MaxBatchPixels { get; init; } = DefaultMaxPixels;

    /// <summary>Run seed: each image's perturbation seed is <see cref="PerturbationSpec.SeedFor"/>(relative path, Seed).</summary>
    public ulong Seed { get; init; }

    /// <summary>Where the network runs; null: the detector's own device.</summary>
    public Device? Device { get; init; }

    /// <summary>Threads decoding and perturbing images ahead of the network.</summary>
    public int Workers { get; init; } = Math.Clamp(Environment.ProcessorCount - 1, 1, 8);

    /// <summary>
    /// Largest width x height scored at full size. The network's memory grows with the pixels (res50nodown keeps full
    /// resolution through its first stage), so an image over it follows <see cref="Oversize"/>.
    /// </summary>
    public long MaxPixels { get; init; } = DefaultMaxPixels;

    /// <summary>What happens to an image over <see cref="MaxPixels"/>.</summary>
    public OversizePolicy Oversize { get; init; } = OversizePolicy.Refuse;

    /// <summary>
    /// 1024 x 1024 = 1,048,576 pixels: every GenImage generator's output. A full-size res50nodown (stride-1 stem, batch 1,
    /// fp32, no_grad) measured 10-13 KB of peak resident memory per input pixel on CPU, so about 11-13 GB at this limit.
    /// </summary>
    public const long DefaultMaxPixels = 1024L * 1024;
}

/// <summary>What an evaluation does with an image over its pixel limit.</summary>
public enum OversizePolicy
{
    /// <summary>Not scored: listed by name among the skipped images, with its size and the limit. The reference protocol
    /// scores full images (no resize, no crop), so changing the image would change what is measured.</summary>
    Refuse,
}

/// <summary>The score of one image.</summary>
/// <param name="RelativePath">Path relative to the data folder, '/' separators.</param>
/// <param name="Label">0 real, 1 fake.</param>
/// <param name="Generator">The generator the image's folder belongs to.</param>
/// <param name="Logit">The fake-vs-real logit (see <see cref="Detector.FakeLogit"/>).</param>
/// <param name="Score">P(fake) = sigmoid(Logit).</param>
public sealed record ImageScore(string RelativePath, int Label, string Generator, double Logit, double Score);

/// <summary>An image file left out of the evaluation, and why.</summary>
/// <param name="RelativePath">Path relative to the data folder, '/' separators.</param>
/// <param name="Reason">Why it could not be used, e.g. "truncated (incomplete image data)".</param>
public sealed record SkippedImage(string RelativePath, string Reason);

/// <summary>Progress of a scoring run.</summary>
/// <param name="Done">Images finished (scored or skipped).</param>
/// <param name="Total">Images to score.</param>
/// <param name="Skipped">Images that could not be decoded so far.</param>
public sealed record EvalProgress(int Done, int Total, int Skipped);

/// <summary>What <see cref="DetectorEvaluator.Score"/> produced: scores in the set's order, and the images it had to skip.</summary>
public sealed record ScoringResult(IReadOnlyList<ImageScore> Scores, IReadOnlyList<SkippedImage> Skipped);

/// <summary>
/// Scores images with a detector the way the AlignedForensics test code does: decode as PIL's convert('RGB'), optionally
/// perturb, ImageNet-normalise, run the network in eval mode under no_grad on the full image, P(fake) = sigmoid(logit).
/// </summary>
public static class DetectorEvaluator
{
    /// <summary>
    /// Scores every image of <paramref name="images"/>. Images that cannot be decoded are skipped and listed with the
    /// reason; the rest are scored. Scores come back in the set's order whatever the batching.
    /// </summary>
    /// <exception cref="OperationCanceledException"><paramref name="ct"/> was cancelled.</exception>
    public static ScoringResult Score(Detector detector, ImageSet images, EvalOptions? options = null,
        IProgress<EvalProgress>? progress = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(detector);
        ArgumentNullException.ThrowIfNull(images);
        options ??= new EvalOptions();
        if (options.Device is { } device && device.ToString() != detector.Device.ToString()) detector.MoveTo(device);
        var perturbation = options.Perturbation ?? PerturbationSpec.None;
        if (options.MaxPixels < 1) throw new ArgumentException($"MaxPixels must be at least 1; got {options.MaxPixels}.", nameof(options));

        // Images whose scanned size is over the limit are refused before any decoding; a file that grew since its scan is
        // caught by the decoder's own check of the header.
        var refused = images.Where(s => (long)s.Width * s.Height > options.MaxPixels).ToList();
        var all = images;
        if (refused.Count > 0) images = new ImageSet(images.Where(s => (long)s.Width * s.Height <= options.MaxPixels), images.SkippedUnreadable);

        // Position in the set of each sample object, to put the scores back in set order after size bucketing.
        var order = new Dictionary<ImageSample, int>(ReferenceEqualityComparer.Instance);
        var byPath = new Dictionary<string, ImageSample>(StringComparer.Ordinal);
        for (var i = 0; i < images.Count; i++)
        {
            order[images[i]] = i;
            byPath.TryAdd(images[i].Path, images[i]);
        }

        // The card may pin the batch: one image per forward, or exactly N (a short batch is filled up in Detector.Forward).
        var card = detector.Card;
        var batching = card.Batching == CardBatching.Single ? EvalBatching.Single : options.Batching;
        var maxBatch = card.Batching == CardBatching.Fixed ? card.BatchSize : options.MaxBatch;
        var planner = new EvalPlanner(images, batching, batching == EvalBatching.BySize ? maxBatch : 1, options.Seed,
            sameSizeAfterPrepare: card.FixedInputSize, maxBatchPixels: card.Batching == CardBatching.Fixed ? long.MaxValue : options.MaxBatchPixels);
        var scored = new List<(int Index, ImageScore Score)>(images.Count);
        detector.Network.Eval();
        var limits = new ImageLimits { MaxPixels = options.MaxPixels };
        using var loader = new BatchLoader(planner, (sample, _) => Prepare(sample, perturbation, options.Seed, card, limits),
            new LoaderOptions { Workers = Math.Max(1, options.Workers) });
        foreach (var batch in loader.Epoch(0, ct))
        {
            TorchThreads.Ensure();
            using (batch)
            using (NewDisposeScope())
            using (no_grad())
            {
                var input = batch.Images.to(detector.Device);
                // Sigmoid in double of the float32 logit, as the reference's numpy/torch post-processing (see Detector.Score).
                var (logits, scores) = detector.Score(detector.Forward(input));
                for (var row = 0; row < batch.Count; row++)
                {
                    var sample = batch.Samples[row].Sample;
                    scored.Add((order[sample], new ImageScore(sample.RelativePath, sample.Label, sample.Generator, logits[row], scores[row])));
                }
            }
            progress?.Report(new EvalProgress(refused.Count + scored.Count + loader.Skipped.Count, all.Count, refused.Count + loader.Skipped.Count));
        }

        var skipped = loader.Skipped
            .Select(s => (Index: byPath.TryGetValue(s.Path, out var sample) ? order[sample] : int.MaxValue,
                Image: new SkippedImage(byPath.TryGetValue(s.Path, out var known) ? known.RelativePath : s.Path, Reason(s.Reason))))
            .OrderBy(s => s.Index)
            .Select(s => s.Image)
            .ToList();
        skipped.InsertRange(0, refused.Select(s => new SkippedImage(s.RelativePath, Refused(s.Width, s.Height, options.MaxPixels))));
        progress?.Report(new EvalProgress(scored.Count + skipped.Count, all.Count, skipped.Count));
        return new ScoringResult(scored.OrderBy(s => s.Index).Select(s => s.Score).ToList(), skipped);
    }

    /// <summary>
    /// The network input for one image: decode -> perturb (seeded by the relative path) -> ImageNet normalise, [3,H,W]
    /// float32 outside any dispose scope (the loader owns it).
    /// </summary>
    public static Tensor Prepare(ImageSample sample, PerturbationSpec perturbation, ulong runSeed, ImageLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(sample);
        using var scope = NewDisposeScope();
        var image = ImageDecoder.Decode(sample.Path, limits);
        if (!perturbation.IsNone) image = perturbation.Apply(image, PerturbationSpec.SeedFor(sample.RelativePath, runSeed));
        return ImageOps.Normalize(image, ImageOps.ImageNetMean, ImageOps.ImageNetStd).MoveToOuterDisposeScope();
    }

    /// <summary>The reason of an image refused for its size: "image too large (W x H; the limit is N pixels), refused by the evaluation's policy".</summary>
    public static string Refused(int width, int height, long maxPixels) =>
        $"{ImageLimits.TooLarge(width, height, maxPixels)}, refused by the evaluation's policy";

    /// <summary>
    /// The network input for one image as <paramref name="card"/> says: decode -> perturb (seeded by the relative path)
    /// -> size policy, value range, mean/std, channel order (<see cref="DetectorCard.Prepare"/>).
    /// </summary>
    public static Tensor Prepare(ImageSample sample, PerturbationSpec perturbation, ulong runSeed, DetectorCard card, ImageLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(sample);
        ArgumentNullException.ThrowIfNull(card);
        using var scope = NewDisposeScope();
        var image = ImageDecoder.Decode(sample.Path, limits);
        if (!perturbation.IsNone) image = perturbation.Apply(image, PerturbationSpec.SeedFor(sample.RelativePath, runSeed));
        return card.Prepare(image).MoveToOuterDisposeScope();
    }

    // The loader prefixes the exception type; a decode failure's own message already says what is wrong with the file.
    private static string Reason(string loaderReason)
    {
        const string decode = nameof(ImageDecodeException) + ": ";
        return loaderReason.StartsWith(decode, StringComparison.Ordinal) ? loaderReason[decode.Length..] : loaderReason;
    }
}
