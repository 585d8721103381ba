using System.Diagnostics;
using Forensics.ML.Datasets;
using Forensics.ML.Imaging;
using Forensics.ML.Models.Diffusion;
using Forensics.ML.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Forensics.ML.Alignment;

/// <summary>
/// Dataset alignment (Rajan et al., "Aligned Datasets Improve Detection of Latent Diffusion-Generated Images"): every
/// real image is encoded and decoded by a latent diffusion model's autoencoder at its native resolution, so real and
/// fake differ only by the autoencoder's artefacts. Only the fakes are written: INPUT/.../0_real/x.jpg becomes
/// OUTPUT/.../1_fake/x.png and GenImage INPUT/gen/split/nature/x.JPEG becomes OUTPUT/gen/split/ai/x.png; training pairs
/// each output with the real image of the same relative folder and file stem.
/// </summary>
public static class Reconstruction
{
    /// <summary>Suffix of the temporary file a PNG is written to before it is moved to its name.</summary>
    public const string PartialSuffix = ".partial";

    static readonly byte[] PngSignature = [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];

    sealed record Planned(ManifestEntry Entry, string Output, SizeAdjustment Size);

    /// <summary>
    /// Reconstructs the real images of the dataset folder <paramref name="inputDir"/> into <paramref name="outputDir"/>
    /// as lossless PNGs and writes OUTPUT/alignment.json (lineage). Resumable: outputs that already exist as valid PNGs
    /// of the expected size are kept, not redone. Unreadable reals are listed as failed, never thrown.
    /// </summary>
    /// <exception cref="DatasetLayoutException">The input folder is missing or matches no dataset layout.</exception>
    /// <exception cref="AlignmentException">No real images; output inside input; or the output holds an alignment made with other settings.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="ct"/> was cancelled (checked between batches); finished outputs stay.</exception>
    public static AlignmentResult Run(AutoencoderKL vae, string inputDir, string outputDir, AlignOptions? options = null,
        IProgress<AlignProgress>? progress = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(vae);
        options ??= new AlignOptions();
        options.Validate();
        var input = Path.TrimEndingDirectorySeparator(Path.GetFullPath(inputDir));
        var output = Path.TrimEndingDirectorySeparator(Path.GetFullPath(outputDir));
        if (string.Equals(input, output, StringComparison.Ordinal) || output.StartsWith(input + Path.DirectorySeparatorChar, StringComparison.Ordinal))
            throw new AlignmentException($"The output folder '{output}' must not be the input folder or inside it (its folders would be read as part of the dataset)");

        var structure = DatasetLayouts.Resolve(input);
        var manifest = DatasetScanner.Scan(input, new ScanOptions(), ct);
        var realParts = structure.Parts.Where(p => p.Label == DatasetLayouts.Real).ToList();
        var reals = manifest.Images.Where(i => i.Label == DatasetLayouts.Real).ToList();
        var unreadable = manifest.Unreadable.Where(u => u.Label == DatasetLayouts.Real).ToList();
        if (reals.Count + unreadable.Count == 0)
            throw new AlignmentException($"'{input}' holds no real images (expected them in 0_real/ or GenImage nature/ folders)");

        var device = options.Device ?? vae.parameters().Select(p => p.device).FirstOrDefault() ?? CPU;
        var weightsPath = options.VaeWeightsPath is null ? null : Path.GetFullPath(options.VaeWeightsPath);
        var started = new AlignmentResult
        {
            InputRoot = input,
            OutputRoot = output,
            Layout = manifest.Layout.ToString(),
            InputContentHash = manifest.ContentHash,
            VaeWeightsPath = weightsPath,
            VaeSha256 = weightsPath is null ? null : Sha256(weightsPath),
            DownsampleFactor = vae.DownsampleFactor,
            Seed = options.Seed,
            Posterior = options.Posterior,
            SizePolicy = options.SizePolicy,
            BatchSize = options.BatchSize,
            Device = device.ToString(),
            Total = reals.Count + unreadable.Count,
            StartedAtUtc = DateTime.UtcNow,
        };
        CheckResumable(output, started);
        started.Write(output);

        var results = new List<AlignedImage>();
        var todo = new List<Planned>();
        var claimed = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        var clock = Stopwatch.StartNew();
        int done = 0, reconstructed = 0, existing = 0, failed = 0;

        void Finish(AlignedImage image)
        {
            results.Add(image);
            done++;
            switch (image.Status)
            {
                case AlignedStatus.Reconstructed: reconstructed++; break;
                case AlignedStatus.Existing: existing++; break;
                default: failed++; break;
            }
        }
        void Report(string? current) => progress?.Report(new AlignProgress(done, started.Total, reconstructed, existing, failed,
            reconstructed == 0 ? 0 : reconstructed / Math.Max(clock.Elapsed.TotalSeconds, 1e-9), current));

        foreach (var u in unreadable)
        {
            var target = OutputPath(u.Path, realParts);
            Finish(new AlignedImage(u.Path, target, AlignedStatus.Failed, 0, 0, 0, 0, false, null, $"unreadable: {u.Reason}"));
        }
        foreach (var entry in reals)
        {
            ct.ThrowIfCancellationRequested();
            var target = OutputPath(entry.Path, realParts);
            AlignedImage Fail(string reason) => new(entry.Path, target, AlignedStatus.Failed, entry.Width, entry.Height, 0, 0, false, null, reason);
            // x.jpg and x.png in one folder would both become x.png: the first in path order wins.
            if (claimed.TryGetValue(target, out var owner))
            {
                Finish(Fail($"output name {target} is already taken by {owner} (same folder and file stem)"));
                continue;
            }
            claimed[target] = entry.Path;
            SizeAdjustment size;
            try { size = SizeAdjustment.For(entry.Height, entry.Width, vae.DownsampleFactor, options.SizePolicy); }
            catch (ArgumentOutOfRangeException e)
            {
                Finish(Fail(e.Message.Split(Environment.NewLine)[0]));
                continue;
            }
            var outputPath = Path.Combine(output, target);
            var partial = outputPath + PartialSuffix;
            // A temporary file left by a crash is never a finished output.
            if (File.Exists(partial)) File.Delete(partial);
            if (ExistingPsnr(Path.Combine(input, entry.Path), outputPath, size) is { } psnr)
                Finish(new AlignedImage(entry.Path, target, AlignedStatus.Existing, entry.Width, entry.Height,
                    size.OutputWidth, size.OutputHeight, size.Applied, psnr, null));
            else
                todo.Add(new Planned(entry, target, size));
        }
        Report(null);
        clock.Restart();

        double vaeSeconds = 0;
        var batches = todo
            .GroupBy(p => (p.Size.ProcessHeight, p.Size.ProcessWidth))
            .SelectMany(g => g.Chunk(options.BatchSize));
        foreach (var batch in batches)
        {
            ct.ThrowIfCancellationRequested();
            var images = new List<(Planned Plan, Tensor Image)>();
            try
            {
                foreach (var plan in batch)
                {
                    var path = Path.Combine(input, plan.Entry.Path);
                    Tensor image;
                    try { image = ImageDecoder.Decode(path); }
                    catch (ImageDecodeException e)
                    {
                        Finish(new AlignedImage(plan.Entry.Path, plan.Output, AlignedStatus.Failed, plan.Entry.Width, plan.Entry.Height,
                            0, 0, false, null, e.Reason));
                        Report(plan.Entry.Path);
                        continue;
                    }
                    if (image.shape[1] != plan.Size.Height || image.shape[2] != plan.Size.Width)
                    {
                        Finish(new AlignedImage(plan.Entry.Path, plan.Output, AlignedStatus.Failed, plan.Entry.Width, plan.Entry.Height,
                            0, 0, false, null, $"decoded as {image.shape[2]}x{image.shape[1]}, scanned as {plan.Size.Width}x{plan.Size.Height} (changed since the scan?)"));
                        image.Dispose();
                        Report(plan.Entry.Path);
                        continue;
                    }
                    images.Add((plan, image));
                }
                if (images.Count == 0) continue;

                var vaeClock = Stopwatch.StartNew();
                var outputs = ReconstructImages(vae, images.Select(i => i.Image).ToList(), options, device);
                vaeSeconds += vaeClock.Elapsed.TotalSeconds;
                for (var i = 0; i < images.Count; i++)
                {
                    var (plan, image) = images[i];
                    using var recon = outputs[i];
                    using var inputArea = CropTopLeft(image, plan.Size.OutputHeight, plan.Size.OutputWidth);
                    using var inputBytes = ImageEncoder.ToBytes(inputArea);
                    using var reconBytes = ImageEncoder.ToBytes(recon);
                    var psnr = Psnr(inputBytes, reconBytes);
                    WriteAtomically(Path.Combine(output, plan.Output), ImageEncoder.EncodePng(recon));
                    Finish(new AlignedImage(plan.Entry.Path, plan.Output, AlignedStatus.Reconstructed, plan.Size.Width, plan.Size.Height,
                        plan.Size.OutputWidth, plan.Size.OutputHeight, plan.Size.Applied, psnr, null));
                    Report(plan.Entry.Path);
                }
            }
            finally
            {
                foreach (var (_, image) in images) image.Dispose();
            }
        }

        var wall = clock.Elapsed.TotalSeconds;
        var aligned = results.Where(r => r.Status != AlignedStatus.Failed).ToList();
        var macs = aligned.Count == 0 ? 0 : aligned.Average(r =>
        {
            var s = SizeAdjustment.For(r.Height, r.Width, vae.DownsampleFactor, options.SizePolicy);
            return (double)vae.MacsPerImage(s.ProcessHeight, s.ProcessWidth);
        });
        var result = started with
        {
            Complete = true,
            Reconstructed = reconstructed,
            SkippedExisting = existing,
            Failed = failed,
            SizeAdjusted = aligned.Count(r => r.SizeAdjusted),
            Psnr = PsnrSummary.From(aligned.Select(r => r.Psnr!.Value).ToList()),
            SecondsPerImage = reconstructed == 0 ? 0 : vaeSeconds / reconstructed,
            WallSecondsPerImage = reconstructed == 0 ? 0 : wall / reconstructed,
            MacsPerImage = macs,
            FinishedAtUtc = DateTime.UtcNow,
            Images = results.OrderBy(r => r.Input, StringComparer.Ordinal).ToList(),
        };
        result.Write(output);
        return result;
    }

    /// <summary>
    /// Reconstructs images [3,H,W] in [0,1] that share one processed size under <paramref name="options"/>' size policy,
    /// in one batch: pad or crop, map to [-1,1], encode, take the posterior sample (each image's noise drawn by its own
    /// generator seeded with <see cref="AlignOptions.Seed"/>, so equal to a batch-of-one draw) or mean, decode, map back
    /// with (y/2+0.5).clamp(0,1), crop to the output size. Returns one CPU tensor [3,OH,OW] per image (caller disposes).
    /// </summary>
    public static Tensor[] ReconstructImages(AutoencoderKL vae, IReadOnlyList<Tensor> images, AlignOptions options, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(vae);
        options.Validate();
        if (images.Count == 0) return [];
        device ??= options.Device ?? vae.parameters().Select(p => p.device).FirstOrDefault() ?? CPU;
        var sizes = images.Select(i => SizeAdjustment.For((int)i.shape[1], (int)i.shape[2], vae.DownsampleFactor, options.SizePolicy)).ToList();
        if (sizes.Any(s => s.ProcessHeight != sizes[0].ProcessHeight || s.ProcessWidth != sizes[0].ProcessWidth))
            throw new ArgumentException("the images of one batch must share one processed size", nameof(images));

        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var prepared = images.Select((image, i) => Prepare(image, sizes[i])).ToArray();
        // Not in place: with one image, cat and to() may hand back a view of the caller's tensor.
        var x = cat(prepared, 0).to(device).Times(2).SubInPlace(1);
        using var posterior = vae.Encode(x);
        var z = options.Posterior == PosteriorMode.Mean ? posterior.Mode() : SamplePerImage(posterior, options.Seed);
        var y = vae.Decode(z).DivInPlace(2).AddInPlace(0.5).ClampInPlace(0, 1).cpu();
        var outputs = new Tensor[images.Count];
        for (var i = 0; i < images.Count; i++)
        {
            using var one = y[i];
            outputs[i] = CropTopLeft(one, sizes[i].OutputHeight, sizes[i].OutputWidth).MoveToOuterDisposeScope();
        }
        return outputs;
    }

    /// <summary>
    /// A posterior sample of a batch [B, latent, h, w] in which image i's noise is drawn by its own CPU generator seeded
    /// with <paramref name="seed"/>: exactly torch.Generator().manual_seed(seed) + randn([1, latent, h, w]), the draw of a
    /// batch of one, whatever B and the image's place in the batch.
    /// </summary>
    public static Tensor SamplePerImage(DiagonalGaussian posterior, long seed)
    {
        using var scope = NewDisposeScope();
        var batch = (int)posterior.Mean.shape[0];
        var samples = new Tensor[batch];
        for (var i = 0; i < batch; i++)
        {
            using var one = new DiagonalGaussian(posterior.Mean.narrow(0, i, 1).clone(), posterior.LogVar.narrow(0, i, 1).clone());
            using var generator = new Generator(unchecked((ulong)seed), CPU);
            samples[i] = one.Sample(generator);
        }
        return cat(samples, 0).MoveToOuterDisposeScope();
    }

    /// <summary>[3,H,W] -> [1,3,PH,PW]: reflect-padded right and bottom (Pad) or cropped to the top-left PH x PW (Crop).</summary>
    static Tensor Prepare(Tensor image, SizeAdjustment size)
    {
        var batch = image.unsqueeze(0);
        if (!size.Applied) return batch;
        if (size.ProcessHeight <= size.Height && size.ProcessWidth <= size.Width)
            return CropTopLeft(batch, size.ProcessHeight, size.ProcessWidth);
        return nn.functional.pad(batch, [0, size.ProcessWidth - size.Width, 0, size.ProcessHeight - size.Height], PaddingModes.Reflect);
    }

    /// <summary>The top-left <paramref name="height"/> x <paramref name="width"/> of the last two dimensions, as a new contiguous tensor.</summary>
    static Tensor CropTopLeft(Tensor image, int height, int width)
    {
        using var rows = image.narrow(-2, 0, height);
        using var block = rows.narrow(-1, 0, width);
        return block.clone();
    }

    /// <summary>
    /// The output path (relative, '/' separators) of a real image: its label folder (0_real, nature) becomes the fake one
    /// (1_fake, ai), sub-folders below it are kept, and the extension becomes .png.
    /// </summary>
    public static string OutputPath(string realPath, IReadOnlyList<DatasetPart> realParts)
    {
        var part = realParts
            .Where(p => realPath.StartsWith(p.RelativePath + "/", StringComparison.Ordinal))
            .MaxBy(p => p.RelativePath.Length)
            ?? throw new ArgumentException($"{realPath} lies in no real folder of the dataset", nameof(realPath));
        var slash = part.RelativePath.LastIndexOf('/');
        var parent = slash < 0 ? "" : part.RelativePath[..(slash + 1)];
        var label = part.RelativePath[(slash + 1)..];
        var fake = label.Equals("nature", StringComparison.OrdinalIgnoreCase) ? "ai"
            : label.Equals("0_real", StringComparison.OrdinalIgnoreCase) ? "1_fake"
            : throw new ArgumentException($"unknown real folder name '{label}'", nameof(realParts));
        var rest = realPath[(part.RelativePath.Length + 1)..];
        return parent + fake + "/" + Path.ChangeExtension(rest, ".png");
    }

    /// <summary>PSNR in dB of two uint8 images of one shape (peak 255); +inf when equal.</summary>
    public static double Psnr(Tensor a, Tensor b)
    {
        if (!a.shape.SequenceEqual(b.shape))
            throw new ArgumentException($"shapes differ: [{string.Join(",", a.shape)}] and [{string.Join(",", b.shape)}]");
        using var scope = NewDisposeScope();
        var mse = a.to_type(ScalarType.Float64).sub(b.to_type(ScalarType.Float64)).square().mean().item<double>();
        return mse == 0 ? double.PositiveInfinity : 10 * Math.Log10(255.0 * 255.0 / mse);
    }

    /// <summary>SHA-256 (lowercase hex) of a file's content.</summary>
    public static string Sha256(string path) => Weights.FileDigest.Sha256(path);

    /// <summary>The PSNR of a finished output, or null when the output is missing, not a complete PNG, or of another size.</summary>
    static double? ExistingPsnr(string inputPath, string outputPath, SizeAdjustment size)
    {
        if (!File.Exists(outputPath)) return null;
        byte[] data;
        try { data = File.ReadAllBytes(outputPath); }
        catch (IOException) { return null; }
        if (!data.AsSpan().StartsWith(PngSignature)) return null;
        Tensor pixels;
        try { pixels = ImageDecoder.DecodeToBytes(data, outputPath); }
        catch (ImageDecodeException) { return null; }
        using (pixels)
        {
            if (pixels.shape[0] != size.OutputHeight || pixels.shape[1] != size.OutputWidth) return null;
            Tensor original;
            try { original = ImageDecoder.Decode(inputPath); }
            catch (ImageDecodeException) { return null; }
            using (original)
            {
                if (original.shape[1] != size.Height || original.shape[2] != size.Width) return null;
                using var area = CropTopLeft(original, size.OutputHeight, size.OutputWidth);
                using var bytes = ImageEncoder.ToBytes(area);
                return Psnr(bytes, pixels);
            }
        }
    }

    /// <summary>Writes to NAME.partial, flushes to disk, then renames: a crash never leaves a half file under the final name.</summary>
    static void WriteAtomically(string path, byte[] content)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var partial = path + PartialSuffix;
        using (var stream = new FileStream(partial, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            stream.Write(content);
            stream.Flush(flushToDisk: true);
        }
        File.Move(partial, path, overwrite: true);
    }

    /// <summary>Refuses to mix outputs of different settings in one folder: an earlier record there must agree.</summary>
    static void CheckResumable(string output, AlignmentResult now)
    {
        var path = Path.Combine(output, AlignmentResult.FileName);
        if (!File.Exists(path)) return;
        AlignmentResult before;
        try { before = AlignmentResult.Read(path); }
        catch (InvalidDataException e) { throw new AlignmentException($"{e.Message}; remove it or use a new output folder"); }
        var differences = new List<string>();
        if (before.Seed != now.Seed) differences.Add($"seed {before.Seed} vs {now.Seed}");
        if (before.Posterior != now.Posterior) differences.Add($"posterior {before.Posterior} vs {now.Posterior}");
        if (before.SizePolicy != now.SizePolicy) differences.Add($"size policy {before.SizePolicy} vs {now.SizePolicy}");
        if (before.DownsampleFactor != now.DownsampleFactor) differences.Add($"downsample factor {before.DownsampleFactor} vs {now.DownsampleFactor}");
        if (before.VaeSha256 is not null && now.VaeSha256 is not null && before.VaeSha256 != now.VaeSha256)
            differences.Add($"VAE weights sha256 {before.VaeSha256} vs {now.VaeSha256}");
        if (differences.Count > 0)
            throw new AlignmentException($"'{output}' holds an alignment made with other settings ({string.Join("; ", differences)}): " +
                                         "use a new output folder, or the same settings to resume");
    }
}
