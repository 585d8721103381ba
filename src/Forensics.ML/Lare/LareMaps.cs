using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using Forensics.ML.Datasets;
using Forensics.ML.Imaging;
using Forensics.ML.Weights;
using static TorchSharp.torch;

namespace Forensics.ML.Lare;

/// <summary>Progress of a LaRE run: images finished (computed, cached or failed) out of the readable and unreadable total.</summary>
public sealed record LareProgress(int Done, int Total, string? Current);

/// <summary>An image that got no LaRE map, with the reason.</summary>
public sealed record LareFailure(string Path, string Reason);

/// <summary>What a LaRE run did.</summary>
/// <param name="Total">Image files found in the input and selected (readable or not).</param>
/// <param name="Computed">Maps computed with the models.</param>
/// <param name="FromCache">Maps taken from the cache (no model pass).</param>
/// <param name="Failed">Images without a map (unreadable, undecodable, colliding output path), with reasons.</param>
/// <param name="PromptFallbacks">Images whose file name carried no ImageNet class, conditioned on the fallback class name.</param>
/// <param name="ComputeSeconds">Seconds spent decoding and running the models for the computed maps.</param>
/// <param name="TotalSeconds">Wall time of the run, scan included.</param>
/// <param name="ModelHash">The model hash written in each file.</param>
public sealed record LareRunResult(int Total, int Computed, int FromCache, IReadOnlyList<LareFailure> Failed, int PromptFallbacks,
    double ComputeSeconds, double TotalSeconds, string ModelHash)
{
    /// <summary>Seconds per computed map (0 when none was computed).</summary>
    public double SecondsPerImage => Computed == 0 ? 0 : ComputeSeconds / Computed;
}

/// <summary>
/// The LaRE extraction job: scans an image folder (<see cref="DatasetScanner"/>: GenImage or 0_real/1_fake layout),
/// and writes OUT/&lt;relative path without extension&gt;.safetensors for every readable image, holding one float32
/// tensor "lare" [C, h, w] and metadata (t, ensemble, seed, posterior, resize, prompt, model_hash, image_sha256,
/// source). Maps are cached by <see cref="LareCache"/>, so a re-run reads them back without a model pass. An image
/// that cannot be read is a counted, reported failure and gets no file (never a zero map).
/// </summary>
public static class LareMaps
{
    /// <summary>Name of the map tensor in output and cache files.</summary>
    public const string TensorName = "lare";

    /// <summary>Default cache folder name inside the output folder.</summary>
    public const string DefaultCacheFolder = ".cache";

    /// <summary>
    /// Runs the extraction of <paramref name="inputDir"/> into <paramref name="outDir"/> with cache folder
    /// <paramref name="cacheDir"/> (default OUT/.cache). Cancellation is checked between batches.
    /// </summary>
    /// <param name="include">Which of the folder's images get maps (every one when null), e.g. <see cref="SubsetSelector.AnyOf"/>.</param>
    /// <exception cref="DatasetLayoutException">The input folder is missing or has no supported layout.</exception>
    public static LareRunResult Run(StableDiffusionComponents components, string inputDir, string outDir, LareOptions options,
        string? cacheDir = null, IProgress<LareProgress>? progress = null, CancellationToken ct = default, Func<ScannedFile, bool>? include = null)
    {
        ArgumentNullException.ThrowIfNull(components);
        ArgumentNullException.ThrowIfNull(options);
        var wall = Stopwatch.StartNew();
        var extractor = new LareExtractor(components, options);
        var manifest = DatasetScanner.Scan(inputDir, new ScanOptions(), ct);
        if (include is not null) manifest = manifest with { Images = manifest.Images.Where(e => include(e)).ToList(), Unreadable = manifest.Unreadable.Where(e => include(e)).ToList() };
        outDir = Path.GetFullPath(outDir);
        Directory.CreateDirectory(outDir);
        var cache = new LareCache(cacheDir ?? Path.Combine(outDir, DefaultCacheFolder));

        var total = manifest.ImageCount + manifest.UnreadableCount;
        var failed = new List<LareFailure>();
        int done = 0, computed = 0, fromCache = 0, fallbacks = 0;
        void Done(string path)
        {
            done++;
            progress?.Report(new LareProgress(done, total, path));
        }
        foreach (var bad in manifest.Unreadable)
        {
            failed.Add(new LareFailure(bad.Path, bad.Reason));
            Done(bad.Path);
        }

        var outputs = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        var pending = new List<Job>();
        foreach (var image in manifest.Images)
        {
            ct.ThrowIfCancellationRequested();
            var output = Path.Combine(outDir, Path.ChangeExtension(image.Path, ".safetensors"));
            if (outputs.TryGetValue(output, out var other))
            {
                failed.Add(new LareFailure(image.Path, $"its output {output} is also that of {other}"));
                Done(image.Path);
                continue;
            }
            outputs[output] = image.Path;
            var (prompt, fellBack) = options.PromptFor(image.Path);
            if (fellBack) fallbacks++;
            var job = new Job(image.Path, Path.Combine(manifest.Root, image.Path), output, prompt, image.Sha256);
            using var cached = cache.TryGet(LareCache.Key(image.Sha256, components.ModelHash, options, prompt));
            if (cached is not null)
            {
                WriteAtomically(output, cached, Metadata(job, components, options));
                fromCache++;
                Done(image.Path);
            }
            else pending.Add(job);
        }

        var compute = Stopwatch.StartNew();
        foreach (var batch in pending.Chunk(options.BatchSize))
        {
            ct.ThrowIfCancellationRequested();
            var ready = new List<(Job Job, Tensor Image)>();
            try
            {
                foreach (var job in batch)
                {
                    // Hash the bytes that are decoded, so the key always describes the pixels the map came from.
                    try
                    {
                        var bytes = File.ReadAllBytes(job.Source);
                        var image = ImageDecoder.Decode(bytes, job.Source);
                        ready.Add((job with { Sha256 = Convert.ToHexStringLower(SHA256.HashData(bytes)) }, image));
                    }
                    catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                    {
                        failed.Add(new LareFailure(job.Path, e is ImageDecodeException d ? d.Reason : e.Message));
                        Done(job.Path);
                    }
                }
                foreach (var (job, map) in ExtractOrIsolate(extractor, ready, failed, Done))
                {
                    using (map)
                    {
                        var metadata = Metadata(job, components, options);
                        cache.Put(LareCache.Key(job.Sha256, components.ModelHash, options, job.Prompt), map, metadata);
                        WriteAtomically(job.Output, map, metadata);
                    }
                    computed++;
                    Done(job.Path);
                }
            }
            finally
            {
                foreach (var (_, image) in ready) image.Dispose();
            }
        }
        compute.Stop();
        return new LareRunResult(total, computed, fromCache, failed, fallbacks, compute.Elapsed.TotalSeconds, wall.Elapsed.TotalSeconds,
            components.ModelHash);
    }

    /// <summary>Runs a batch; when it fails, each image alone, so one bad image costs only itself.</summary>
    private static List<(Job Job, Tensor Map)> ExtractOrIsolate(LareExtractor extractor, List<(Job Job, Tensor Image)> ready,
        List<LareFailure> failed, Action<string> done)
    {
        if (ready.Count == 0) return [];
        try
        {
            var maps = extractor.ExtractBatch(ready.Select(r => new LareInput(r.Image, r.Job.Prompt)).ToList());
            return ready.Select((r, i) => (r.Job, maps[i])).ToList();
        }
        catch (Exception) when (ready.Count > 1)
        {
            var maps = new List<(Job, Tensor)>();
            foreach (var r in ready)
            {
                try { maps.Add((r.Job, extractor.Extract(r.Image, r.Job.Prompt))); }
                catch (Exception e) when (e is not OperationCanceledException and not OutOfMemoryException)
                {
                    failed.Add(new LareFailure(r.Job.Path, e.Message));
                    done(r.Job.Path);
                }
            }
            return maps;
        }
        catch (Exception e) when (e is not OperationCanceledException and not OutOfMemoryException)
        {
            failed.Add(new LareFailure(ready[0].Job.Path, e.Message));
            done(ready[0].Job.Path);
            return [];
        }
    }

    private static Dictionary<string, string> Metadata(Job job, StableDiffusionComponents components, LareOptions options)
    {
        var metadata = new Dictionary<string, string>(options.Describe(), StringComparer.Ordinal)
        {
            ["prompt"] = job.Prompt,
            ["model_hash"] = components.ModelHash,
            ["image_sha256"] = job.Sha256,
            ["source"] = job.Path,
            ["feature"] = "LaRE: mean over the ensemble of (unet prediction - target)^2",
        };
        return metadata;
    }

    /// <summary>Writes <paramref name="map"/> as the tensor "lare" to <paramref name="path"/> via a temporary file.</summary>
    internal static void WriteAtomically(string path, Tensor map, IDictionary<string, string> metadata)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var temp = path + "." + Guid.NewGuid().ToString("N", CultureInfo.InvariantCulture) + ".tmp";
        try
        {
            SafeTensors.Save(temp, [(TensorName, map)], metadata);
            File.Move(temp, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }

    private sealed record Job(string Path, string Source, string Output, string Prompt, string Sha256);
}
