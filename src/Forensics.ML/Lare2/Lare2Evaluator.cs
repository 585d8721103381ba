using Forensics.ML.Data;
using Forensics.ML.Imaging;
using Forensics.ML.Training;
using Forensics.ML.Runtime;
using TorchSharp;
using static TorchSharp.torch;
using Forensics.ML.Evaluation;
using Forensics.ML.Models;

namespace Forensics.ML.Lare2;

/// <summary>Settings of <see cref="Lare2Evaluator.Score"/>.</summary>
public sealed record Lare2EvalOptions
{
    /// <summary>Side of the centre crop after pad-if-needed; the network's input resolution (224 for RN50).</summary>
    public int CropSize { get; init; } = 224;

    /// <summary>Images per forward (set order, any size: every input is cropped to <see cref="CropSize"/>).</summary>
    public int BatchSize { get; init; } = 1;

    /// <summary>Where the network runs; null: where its weights are.</summary>
    public Device? Device { get; init; }

    /// <summary>Threads decoding images and reading maps ahead of the network.</summary>
    public int Workers { get; init; } = Math.Clamp(Environment.ProcessorCount - 1, 1, 8);
}

/// <summary>
/// Scores images with a LaRE² classifier as the authors' test code does: each image padded if needed (reflect-101) and
/// centre-cropped to the input size, ImageNet-normalised, its precomputed LaRE map read whole (not cropped), eval mode
/// under no_grad, P(fake) = softmax(logits)[:, 1]. An image whose map is missing or malformed is skipped and listed
/// with the reason; it is never scored with a zero map.
/// </summary>
public static class Lare2Evaluator
{
    /// <summary>Scores <paramref name="images"/> in set order; <see cref="ImageScore.Logit"/> is logit_fake - logit_real.</summary>
    /// <exception cref="OperationCanceledException"><paramref name="ct"/> was cancelled.</exception>
    public static ScoringResult Score(Lare2Classifier model, ImageSet images, LareMapFolder maps, Lare2EvalOptions? options = null,
        IProgress<EvalProgress>? progress = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(maps);
        options ??= new Lare2EvalOptions();
        if (options.BatchSize < 1) throw new ArgumentException($"Lare2EvalOptions.BatchSize must be at least 1, got {options.BatchSize}.");
        var device = options.Device ?? model.parameters().First().device;
        model.to(device);
        model.eval();

        var order = new Dictionary<ImageSample, int>(ReferenceEqualityComparer.Instance);
        var byPath = new Dictionary<string, ImageSample>(StringComparer.Ordinal);
        for (var i = 0; i < images.Count; i++)
        {
            order[images[i]] = i;
            byPath.TryAdd(images[i].Path, images[i]);
        }
        var scored = new List<(int Index, ImageScore Score)>(images.Count);
        using var loader = new Lare2Loader(new InOrderPlanner(images, options.BatchSize), maps, options.CropSize, training: false,
            new LoaderOptions { Workers = Math.Max(1, options.Workers) });
        foreach (var batch in loader.Epoch(0, ct))
        {
            TorchThreads.Ensure();
            using (batch)
            using (NewDisposeScope())
            using (no_grad())
            {
                var logits = model.forward(batch.Images.to(device), batch.Maps.to(device));
                var probability = Lare2Classifier.Score(logits).to(ScalarType.Float64).cpu().data<double>().ToArray();
                var pair = logits.to(ScalarType.Float64).cpu().data<double>().ToArray();
                for (var row = 0; row < batch.Count; row++)
                {
                    var sample = batch.Samples[row].Sample;
                    var logit = pair[2 * row + 1] - pair[2 * row];
                    scored.Add((order[sample], new ImageScore(sample.RelativePath, sample.Label, sample.Generator, logit, probability[row])));
                }
            }
            progress?.Report(new EvalProgress(scored.Count + loader.Skipped.Count, images.Count, loader.Skipped.Count));
        }
        var skipped = loader.Skipped
            .Select(s => (Index: byPath.TryGetValue(s.Path, out var sample) ? order[sample] : int.MaxValue,
                Image: new SkippedImage(byPath.TryGetValue(s.Path, out var known) ? known.RelativePath : s.Path, Reason(s.Reason))))
            .OrderBy(s => s.Index)
            .Select(s => s.Image)
            .ToList();
        progress?.Report(new EvalProgress(scored.Count + skipped.Count, images.Count, skipped.Count));
        return new ScoringResult(scored.OrderBy(s => s.Index).Select(s => s.Score).ToList(), skipped);
    }

    /// <summary>
    /// The evaluation report of a LaRE² run: the ResNet path's metrics, scores.csv and metrics.json, with "arch" lare2,
    /// the backbone's width and blocks, and the LaRE folder and crop recorded.
    /// </summary>
    public static EvaluationReport CreateReport(Lare2Classifier model, string? checkpointPath, string? checkpointSha256, LareMapFolder maps,
        EvaluationSet data, ScoringResult result, Lare2EvalOptions options, Metrics.MetricsOptions? metrics = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(maps);
        ArgumentNullException.ThrowIfNull(options);
        var backbone = model.Options.Backbone;
        var report = EvaluationReport.Create(Architecture, (backbone.Width, backbone.Layers, Lare2Options.NumClasses), checkpointPath, checkpointSha256,
            data, result, new EvalOptions { Batching = options.BatchSize == 1 ? EvalBatching.Single : EvalBatching.BySize }, metrics);
        return report with { LareFolder = maps.Folder, InputCrop = options.CropSize };
    }

    /// <summary>The architecture name of LaRE² in reports and on the command line.</summary>
    public const string Architecture = "lare2";

    private static string Reason(string loaderReason)
    {
        foreach (var prefix in new[] { nameof(LareMapException) + ": ", nameof(ImageDecodeException) + ": " })
            if (loaderReason.StartsWith(prefix, StringComparison.Ordinal)) return loaderReason[prefix.Length..];
        return loaderReason;
    }
}
