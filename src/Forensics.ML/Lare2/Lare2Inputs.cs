using Forensics.ML.Data;
using Forensics.ML.Imaging;
using Forensics.ML.Lare;
using Forensics.ML.Randomness;
using Forensics.ML.Weights;
using TorchSharp;
using static TorchSharp.torch;
using Forensics.ML.Training;
using Forensics.ML.Evaluation;
using Forensics.ML.Models;

namespace Forensics.ML.Lare2;

/// <summary>A LaRE map that cannot be used for an image: missing file, unreadable file, wrong tensor. Never replaced by zeros.</summary>
public sealed class LareMapException : IOException
{
    /// <summary>A map problem; the message names the file.</summary>
    public LareMapException(string message, Exception? inner = null) : base(message, inner) { }
}

/// <summary>
/// The precomputed LaRE maps of a data folder, as <see cref="LareMaps"/> writes them: the map of the image at
/// relative path p is <c>Folder/p-without-extension.safetensors</c> holding one float32 tensor "lare" [C, h, w].
/// </summary>
public sealed class LareMapFolder
{
    /// <summary>A folder of maps with <paramref name="channels"/> channels each (4, the SD latent's).</summary>
    /// <exception cref="DirectoryNotFoundException">No folder at <paramref name="folder"/>.</exception>
    public LareMapFolder(string folder, int channels = 4)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(folder);
        Folder = Path.GetFullPath(folder);
        if (!Directory.Exists(Folder)) throw new DirectoryNotFoundException($"LaRE map folder not found: {Folder}");
        if (channels < 1) throw new ArgumentOutOfRangeException(nameof(channels), channels, "must be positive");
        Channels = channels;
    }

    /// <summary>The folder (full path).</summary>
    public string Folder { get; }

    /// <summary>Channels every map must have.</summary>
    public int Channels { get; }

    /// <summary>The map file of an image at <paramref name="relativePath"/> ('/' or OS separators).</summary>
    public string PathFor(string relativePath)
    {
        ArgumentNullException.ThrowIfNull(relativePath);
        var relative = relativePath.Replace('/', Path.DirectorySeparatorChar);
        return Path.Combine(Folder, Path.ChangeExtension(relative, ".safetensors"));
    }

    /// <summary>The map of <paramref name="relativePath"/>: [C, h, w] float32, owned by the caller, in no dispose scope.</summary>
    /// <exception cref="LareMapException">The map is missing or malformed; the message names the file and the problem.</exception>
    public Tensor Read(string relativePath)
    {
        var path = PathFor(relativePath);
        if (!File.Exists(path)) throw new LareMapException($"no LaRE map at {path}");
        StateDict dict;
        try { dict = SafeTensors.Load(path, upcastHalf: true); }
        catch (Exception e) when (e is IOException or InvalidDataException or FormatException or ArgumentException or System.Text.Json.JsonException)
        {
            throw new LareMapException($"unreadable LaRE map {path}: {e.Message}", e);
        }
        using (dict)
        {
            if (!dict.TryGetValue(LareMaps.TensorName, out var map))
                throw new LareMapException($"LaRE map {path} has no tensor '{LareMaps.TensorName}' (has: {string.Join(", ", dict.Names)})");
            if (map.dim() != 3 || map.shape[0] != Channels || map.shape[1] < 1 || map.shape[2] < 1)
                throw new LareMapException($"LaRE map {path}: '{LareMaps.TensorName}' must be [{Channels}, h, w], got [{string.Join(", ", map.shape)}]");
            if (!map.is_floating_point())
                throw new LareMapException($"LaRE map {path}: '{LareMaps.TensorName}' must be floating point, got {map.dtype}");
            using var scope = NewDisposeScope();
            var result = map.to_type(ScalarType.Float32).clone();
            if (!isfinite(result).all().item<bool>())
                throw new LareMapException($"LaRE map {path} holds NaN or infinite values");
            return result.DetachFromDisposeScope();
        }
    }
}

/// <summary>
/// The authors' image transforms (albumentations, read from their train_classifier_wmap.py / test.py): PadIfNeeded
/// (min side = crop; cv2.BORDER_REFLECT_101, padding split floor(d/2) before, the rest after), then RandomCrop at train
/// time or CenterCrop (offset floor((H - crop) / 2)) at test time, then ImageNet normalisation. The LaRE map is not
/// cropped: it was computed on the whole image.
/// </summary>
public static class Lare2Transforms
{
    /// <summary>Pads <paramref name="image"/> [C, H, W] so both sides reach <paramref name="size"/>, reflect-101, centred.</summary>
    public static Tensor PadIfNeeded(Tensor image, int size)
    {
        var (h, w) = (ImageSize.Of(image).Height, ImageSize.Of(image).Width);
        int dh = Math.Max(0, size - h), dw = Math.Max(0, size - w);
        if (dh == 0 && dw == 0) return image.alias();
        using var rows = Reflect101Index(h, dh / 2, dh - dh / 2);
        using var cols = Reflect101Index(w, dw / 2, dw - dw / 2);
        using var padded = image.index_select(-2, rows);
        return padded.index_select(-1, cols);
    }

    /// <summary>Test-time input: pad if needed, centre crop, ImageNet normalisation; [3, size, size] float32.</summary>
    public static Tensor TestInput(Tensor image, int size)
    {
        using var scope = NewDisposeScope();
        var padded = PadIfNeeded(image, size);
        var (h, w) = (ImageSize.Of(padded).Height, ImageSize.Of(padded).Width);
        var crop = ImageOps.Crop(padded, (h - size) / 2, (w - size) / 2, size, size);
        return ImageOps.Normalize(crop, ImageOps.ImageNetMean, ImageOps.ImageNetStd).MoveToOuterDisposeScope();
    }

    /// <summary>Training input: pad if needed, a uniformly drawn crop (albumentations' RandomCrop), ImageNet normalisation.</summary>
    public static Tensor TrainInput(Tensor image, int size, RandomSource rng)
    {
        ArgumentNullException.ThrowIfNull(rng);
        using var scope = NewDisposeScope();
        var padded = PadIfNeeded(image, size);
        var (h, w) = (ImageSize.Of(padded).Height, ImageSize.Of(padded).Width);
        var top = rng.NextInt(0, h - size + 1);
        var left = rng.NextInt(0, w - size + 1);
        var crop = ImageOps.Crop(padded, top, left, size, size);
        return ImageOps.Normalize(crop, ImageOps.ImageNetMean, ImageOps.ImageNetStd).MoveToOuterDisposeScope();
    }

    // cv2's BORDER_REFLECT_101 (gfedcb|abcdefgh|gfedcba), repeated for pads longer than the side as cv2 does.
    private static Tensor Reflect101Index(int n, int before, int after)
    {
        var index = new long[n + before + after];
        var period = 2 * (n - 1);
        for (var i = 0; i < index.Length; i++)
        {
            if (n == 1) { index[i] = 0; continue; }
            var j = ((i - before) % period + period) % period;
            index[i] = j < n ? j : period - j;
        }
        return tensor(index, ScalarType.Int64);
    }
}

/// <summary>One image's network inputs: the transformed image [3, S, S] and its LaRE map [C, h, w].</summary>
public sealed class Lare2Input(Tensor image, Tensor map) : IDisposable
{
    /// <summary>[3, S, S] float32, ImageNet-normalised.</summary>
    public Tensor Image { get; } = image;

    /// <summary>[C, h, w] float32.</summary>
    public Tensor Map { get; } = map;

    /// <inheritdoc/>
    public void Dispose()
    {
        Image.Dispose();
        Map.Dispose();
    }
}

/// <summary>A collated LaRE² batch on the CPU: images [B, 3, S, S], maps [B, C, h, w], labels [B] int64 (0 real, 1 fake).</summary>
public sealed class Lare2Batch : IDisposable
{
    internal Lare2Batch(Tensor images, Tensor maps, Tensor labels, IReadOnlyList<PlannedSample> samples)
    {
        Images = images;
        Maps = maps;
        Labels = labels;
        Samples = samples;
    }

    /// <summary>Images [B, 3, S, S].</summary>
    public Tensor Images { get; }
    /// <summary>LaRE maps [B, C, h, w].</summary>
    public Tensor Maps { get; }
    /// <summary>Class indices [B] int64.</summary>
    public Tensor Labels { get; }
    /// <summary>The draws, in row order.</summary>
    public IReadOnlyList<PlannedSample> Samples { get; }
    /// <summary>B.</summary>
    public int Count => Samples.Count;

    /// <inheritdoc/>
    public void Dispose()
    {
        Images.Dispose();
        Maps.Dispose();
        Labels.Dispose();
    }
}

/// <summary>
/// The LaRE² loader: per draw, decode the image, transform it (random crop with the draw's augmentation seed, or the
/// centre crop) and read its map; an unreadable image or a missing/malformed map makes the draw a skipped one, listed
/// with its reason by the loader.
/// </summary>
public sealed class Lare2Loader : DataLoader<Lare2Input, Lare2Batch>
{
    /// <summary>A loader over <paramref name="planner"/>; <paramref name="training"/> picks the random crop.</summary>
    public Lare2Loader(IBatchPlanner planner, LareMapFolder maps, int cropSize, bool training, LoaderOptions? options = null)
        : base(planner, Load(maps, cropSize, training), Collate, options)
    {
    }

    /// <summary>The per-draw work.</summary>
    public static Func<ImageSample, SampleContext, Lare2Input> Load(LareMapFolder maps, int cropSize, bool training)
    {
        ArgumentNullException.ThrowIfNull(maps);
        if (cropSize < 1) throw new ArgumentOutOfRangeException(nameof(cropSize), cropSize, "must be positive");
        return (sample, context) =>
        {
            // The map first: a missing map costs no decode.
            var map = maps.Read(sample.RelativePath);
            try
            {
                using var decoded = ImageDecoder.Decode(sample.Path);
                var image = training
                    ? Lare2Transforms.TrainInput(decoded, cropSize, new RandomSource(context.AugmentationSeed))
                    : Lare2Transforms.TestInput(decoded, cropSize);
                return new Lare2Input(image.DetachFromDisposeScope(), map);
            }
            catch
            {
                map.Dispose();
                throw;
            }
        };
    }

    /// <summary>Stacks images, maps and labels; maps of different sizes within a batch are an error naming both files.</summary>
    public static Lare2Batch Collate(PlannedBatch batch, IReadOnlyList<LoadedSample<Lare2Input>> items, IReadOnlyList<SkippedSample> skipped)
    {
        var first = items[0];
        foreach (var item in items)
            if (!item.Item.Map.shape.SequenceEqual(first.Item.Map.shape))
                throw new InvalidDataException(
                    $"Batch {batch.Number} of epoch {batch.Epoch}: LaRE maps of different sizes: '{first.Planned.Sample.RelativePath}' " +
                    $"[{string.Join(",", first.Item.Map.shape)}] and '{item.Planned.Sample.RelativePath}' [{string.Join(",", item.Item.Map.shape)}].");
        var images = stack(items.Select(i => i.Item.Image).ToArray(), 0);
        var maps = stack(items.Select(i => i.Item.Map).ToArray(), 0);
        var labels = tensor(items.Select(i => (long)i.Planned.Context.Label).ToArray(), ScalarType.Int64);
        return new Lare2Batch(images, maps, labels, items.Select(i => i.Planned).ToList());
    }
}

/// <summary>Every image of a set once, in set order, in chunks of a batch size (inputs are cropped to one size, so no size buckets).</summary>
internal sealed class InOrderPlanner(ImageSet set, int batchSize) : IBatchPlanner
{
    public IReadOnlyList<PlannedBatch> Plan(int epoch)
    {
        var index = 0;
        return set.Chunk(batchSize)
            .Select((chunk, number) => new PlannedBatch(epoch, number,
                chunk.Select(s => new PlannedSample(s, SeedStreams.Context(0, epoch, index++, s.Label))).ToList()))
            .ToList();
    }
}
