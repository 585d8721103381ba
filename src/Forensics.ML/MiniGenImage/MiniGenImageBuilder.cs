using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Forensics.ML.Data;
using Forensics.ML.Generators;
using Forensics.ML.Imaging;

namespace Forensics.ML.MiniGenImage;

/// <summary>How the real ("nature") images of a MiniGenImage build are stored.</summary>
public enum RealImageFormat
{
    /// <summary>Lossless PNG, like the fakes: no format difference a detector could learn (the default).</summary>
    Png,

    /// <summary>
    /// JPEG (quality <see cref="MiniGenImageOptions.JpegQuality"/>) while the fakes stay PNG: reproduces GenImage's own
    /// format bias (ImageNet JPEG reals vs PNG fakes) on purpose, to measure how much a detector learns from it.
    /// </summary>
    Jpeg,
}

/// <summary>Options of a MiniGenImage build.</summary>
public sealed record MiniGenImageOptions
{
    /// <summary>Fakes per generator in the train split; as many reals go beside them.</summary>
    public int Train { get; init; } = 600;

    /// <summary>Fakes per generator in the val split; as many reals go beside them.</summary>
    public int Val { get; init; } = 150;

    /// <summary>Fakes per generator in the test split; as many reals go beside them.</summary>
    public int Test { get; init; } = 300;

    /// <summary>Master seed: the fakes' sampling streams and the real subsets are derived from it.</summary>
    public long Seed { get; init; } = 1;

    /// <summary>Images asked from a generator per <see cref="IImageGenerator.Sample"/> call; also the unit of resumption.</summary>
    public int BatchSize { get; init; } = 50;

    /// <summary>
    /// How many generators sample at once (each on its own thread). Images do not depend on it: each is a function of
    /// (seed, index) only. With more than one, give torch one intra-op thread per worker (two spinning pools on two cores
    /// are many times slower than one each).
    /// </summary>
    public int Parallelism { get; init; } = 1;

    /// <summary>How the reals are stored; <see cref="RealImageFormat.Jpeg"/> builds the explicit format-bias variant.</summary>
    public RealImageFormat RealFormat { get; init; } = RealImageFormat.Png;

    /// <summary>JPEG quality of the reals in the <see cref="RealImageFormat.Jpeg"/> variant.</summary>
    public int JpegQuality { get; init; } = 90;

    /// <summary>SHA-256 of each generator's weights by generator name, recorded in the lineage when the caller knows it.</summary>
    public IReadOnlyDictionary<string, string>? WeightsSha256 { get; init; }

    /// <summary>Progress after every batch of fakes and every block of reals.</summary>
    public IProgress<MiniGenImageProgress>? Progress { get; init; }

    /// <summary>The dataset's name: "minigenimage", or "minigenimage-jpegreal" for the format-bias variant.</summary>
    public string Name => RealFormat == RealImageFormat.Jpeg ? "minigenimage-jpegreal" : "minigenimage";

    /// <summary>The fake count of <paramref name="split"/>.</summary>
    public int CountOf(string split) => split switch
    {
        Splits.Train => Train,
        Splits.Val => Val,
        Splits.Test => Test,
        _ => throw new ArgumentOutOfRangeException(nameof(split), split, "split must be train, val or test"),
    };

    /// <summary>Throws when an option is out of range.</summary>
    public void Validate()
    {
        if (Train < 0 || Val < 0 || Test < 0) throw new ArgumentOutOfRangeException(nameof(Train), "the per-split counts must be >= 0");
        if (Train + Val + Test == 0) throw new ArgumentOutOfRangeException(nameof(Train), "at least one split needs a count above 0");
        if (Parallelism < 1) throw new ArgumentException($"Parallelism must be at least 1, not {Parallelism}");
        if (BatchSize < 1) throw new ArgumentOutOfRangeException(nameof(BatchSize), BatchSize, "must be >= 1");
        if (JpegQuality is < 1 or > 100) throw new ArgumentOutOfRangeException(nameof(JpegQuality), JpegQuality, "must be 1..100");
    }
}

/// <summary>Progress of a build: <paramref name="Done"/> of <paramref name="Total"/> images of one generator's split; <paramref name="Written"/> of them were (re)written in this run.</summary>
public sealed record MiniGenImageProgress(string Generator, string Split, string Label, int Done, int Total, int Written);

/// <summary>What a build wrote: the lineage file and per generator and split the images written anew (the rest were kept from an earlier run).</summary>
public sealed record MiniGenImageResult(string Root, string LineagePath, int FakesWritten, int FakesKept, int RealsWritten, int RealsKept);

/// <summary>
/// Builds MiniGenImage, a miniature GenImage: for each generator <c>&lt;root&gt;/&lt;generator&gt;/{train,val,test}/{ai,nature}/</c>,
/// fakes sampled from the generator (PNG, <c>&lt;generator&gt;_&lt;index&gt;.png</c>) and as many real patches drawn from that split's
/// real patches (hard links to one shared copy; copies where linking fails). Resumable: valid files are kept and
/// missing ones are re-sampled from the same (seed, index), so a resumed build is byte-identical to an uninterrupted one.
/// </summary>
public static class MiniGenImageBuilder
{
    /// <summary>The lineage file at the dataset root.</summary>
    public const string LineageFileName = "minigenimage.json";

    /// <summary>The folder (under the root) that holds the JPEG copies of the real patches in the format-bias variant.</summary>
    public static string JpegRealFolder(int quality) => $"real-patches-jpeg{quality}";

    /// <summary>
    /// Builds (or resumes) the dataset under <paramref name="root"/> from the patch folder <paramref name="patchesDir"/>
    /// (written by <see cref="PatchCutter.WritePatches"/>) and <paramref name="generators"/>.
    /// </summary>
    /// <exception cref="ArgumentException">Two generators share a name, a name is not a usable folder name, a generator's resolution differs from the patch size, or a split has fewer real patches than requested.</exception>
    public static MiniGenImageResult Build(string patchesDir, IReadOnlyList<IImageGenerator> generators, string root,
        MiniGenImageOptions options, CancellationToken ct = default)
    {
        options.Validate();
        if (generators.Count == 0) throw new ArgumentException("at least one generator is needed", nameof(generators));
        var patches = PatchSet.Load(patchesDir);
        CheckGenerators(generators, patches.Options.Size);
        foreach (var split in Splits.All)
        {
            var available = patches.InSplit(split).Count;
            if (options.CountOf(split) > available)
                throw new ArgumentException(
                    $"split '{split}' has {available} real patches in '{patchesDir}', fewer than the {options.CountOf(split)} requested per generator; lower --{split} or add photos to that split");
        }

        Directory.CreateDirectory(root);
        var realSource = RealSource(patchesDir, patches, root, options, ct);
        var (fakesWritten, fakesKept, realsWritten, realsKept) = (0, 0, 0, 0);
        var gate = new object();
        // Fakes: one generator per worker (a generator is not used from two threads at once).
        Parallel.ForEach(generators, new ParallelOptions { MaxDegreeOfParallelism = options.Parallelism, CancellationToken = ct }, generator =>
        {
            foreach (var split in Splits.All)
            {
                var count = options.CountOf(split);
                if (count == 0) continue;
                var (w, k) = WriteFakes(generator, split, count, Path.Combine(root, generator.Name, split, "ai"), options, ct);
                lock (gate) (fakesWritten, fakesKept) = (fakesWritten + w, fakesKept + k);
            }
        });
        foreach (var generator in generators)
            foreach (var split in Splits.All)
            {
                var count = options.CountOf(split);
                if (count == 0) continue;
                var chosen = ChooseReals(patches.InSplit(split), count, options.Seed, generator.Name, split);
                var (w, k) = WriteReals(chosen, realSource, split, Path.Combine(root, generator.Name, split, "nature"), generator.Name, options, ct);
                (realsWritten, realsKept) = (realsWritten + w, realsKept + k);
            }

        var lineagePath = Path.Combine(root, LineageFileName);
        File.WriteAllText(lineagePath, Lineage(patchesDir, patches, generators, root, options));
        return new MiniGenImageResult(Path.GetFullPath(root), lineagePath, fakesWritten, fakesKept, realsWritten, realsKept);
    }

    /// <summary>The sampling stream (seed passed to <see cref="IImageGenerator.Sample"/>) of a split's fakes.</summary>
    public static long FakeSeed(long seed, string split) =>
        (long)(Seeds.Derive((ulong)seed, 0x66616B65 /* "fake" */, SplitIndex(split)) >> 1);

    /// <summary>
    /// The <paramref name="count"/> real patches a generator's split gets: a seeded permutation of the split's patches
    /// (seeded by the master seed, the generator's name and the split), its first <paramref name="count"/>, in patch order.
    /// </summary>
    public static IReadOnlyList<RealPatch> ChooseReals(IReadOnlyList<RealPatch> splitPatches, int count, long seed, string generator, string split)
    {
        var rng = new RandomSource(Seeds.Derive((ulong)seed, 0x7265616C /* "real" */, StableHash(generator), SplitIndex(split)));
        var order = rng.Permutation(splitPatches.Count);
        return order.Take(count).Order().Select(i => splitPatches[i]).ToList();
    }

    private static int SplitIndex(string split) => split switch
    {
        Splits.Train => 0,
        Splits.Val => 1,
        Splits.Test => 2,
        _ => throw new ArgumentOutOfRangeException(nameof(split), split, "split must be train, val or test"),
    };

    // A name's hash that does not change between processes (string.GetHashCode does).
    private static long StableHash(string text) => BitConverter.ToInt64(SHA256.HashData(Encoding.UTF8.GetBytes(text)), 0);

    private static void CheckGenerators(IReadOnlyList<IImageGenerator> generators, int patchSize)
    {
        var names = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var g in generators)
        {
            if (string.IsNullOrWhiteSpace(g.Name) || g.Name.IndexOfAny(['/', '\\', ':']) >= 0 || g.Name.StartsWith('.') ||
                g.Name.IndexOfAny(Path.GetInvalidFileNameChars()) >= 0 || g.Name.StartsWith("real-patches", StringComparison.OrdinalIgnoreCase))
                throw new ArgumentException($"generator name '{g.Name}' cannot be a dataset folder name", nameof(generators));
            if (!names.Add(g.Name)) throw new ArgumentException($"two generators are named '{g.Name}' (names are folder names: they must differ)", nameof(generators));
            if (g.Resolution != patchSize)
                throw new ArgumentException($"generator '{g.Name}' makes {g.Resolution}x{g.Resolution} images but the real patches are {patchSize}x{patchSize}: both sides must match", nameof(generators));
        }
    }

    private static (int Written, int Kept) WriteFakes(IImageGenerator generator, string split, int count, string dir,
        MiniGenImageOptions options, CancellationToken ct)
    {
        Directory.CreateDirectory(dir);
        var seed = FakeSeed(options.Seed, split);
        var (written, kept) = (0, 0);
        for (var first = 0; first < count; first += options.BatchSize)
        {
            ct.ThrowIfCancellationRequested();
            var n = Math.Min(options.BatchSize, count - first);
            var missing = Enumerable.Range(first, n).Where(i => !IsValidImage(FakePath(dir, generator.Name, i), generator.Resolution)).ToList();
            kept += n - missing.Count;
            if (missing.Count > 0)
            {
                // Always the whole batch from its first index: the generator's stream is cut the same way on every run.
                using var images = generator.Sample(seed, first, n);
                if (images.dim() != 4 || images.shape[0] != n || images.shape[1] != 3 || images.shape[2] != generator.Resolution || images.shape[3] != generator.Resolution)
                    throw new InvalidOperationException(
                        $"generator '{generator.Name}' returned [{string.Join(",", images.shape)}] for {n} images; expected [{n},3,{generator.Resolution},{generator.Resolution}]");
                foreach (var i in missing)
                {
                    using var image = images[i - first];
                    FileWrites.Write(FakePath(dir, generator.Name, i), RgbImage.FromTensor(image).EncodePng());
                    written++;
                }
            }
            options.Progress?.Report(new MiniGenImageProgress(generator.Name, split, "ai", first + n, count, written));
        }
        return (written, kept);
    }

    private static string FakePath(string dir, string generator, int index) => Path.Combine(dir, $"{generator}_{index:D5}.png");

    private static bool IsValidImage(string path, int size)
    {
        if (!File.Exists(path)) return false;
        try
        {
            var image = RgbImage.Load(path);
            return image.Width == size && image.Height == size;
        }
        catch (ImageDecodeException)
        {
            return false;
        }
    }

    // The shared files the nature folders link to: the PNG patches themselves, or their JPEG copies for the variant.
    private static Func<RealPatch, string> RealSource(string patchesDir, PatchSet patches, string root, MiniGenImageOptions options, CancellationToken ct)
    {
        if (options.RealFormat == RealImageFormat.Png)
            return p => Path.Combine(patchesDir, p.Split, p.File);
        var jpegDir = Path.Combine(root, JpegRealFolder(options.JpegQuality));
        foreach (var patch in patches.Patches)
        {
            ct.ThrowIfCancellationRequested();
            var target = Path.Combine(jpegDir, patch.Split, Path.ChangeExtension(patch.File, ".jpg"));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            var jpeg = RgbImage.Load(Path.Combine(patchesDir, patch.Split, patch.File)).EncodeJpeg(options.JpegQuality);
            FileWrites.WriteIfChanged(target, jpeg);
        }
        return p => Path.Combine(jpegDir, p.Split, Path.ChangeExtension(p.File, ".jpg"));
    }

    private static (int Written, int Kept) WriteReals(IReadOnlyList<RealPatch> chosen, Func<RealPatch, string> source, string split,
        string dir, string generator, MiniGenImageOptions options, CancellationToken ct)
    {
        Directory.CreateDirectory(dir);
        var (written, kept) = (0, 0);
        foreach (var patch in chosen)
        {
            ct.ThrowIfCancellationRequested();
            var from = source(patch);
            if (!File.Exists(from)) throw new FileNotFoundException($"Real patch '{from}' listed in {PatchSet.FileName} is missing: cut the patches again.", from);
            var to = Path.Combine(dir, Path.GetFileName(from));
            if (File.Exists(to) && SameBytes(from, to)) { kept++; continue; }
            FileLinks.LinkOrCopy(from, to);
            written++;
        }
        options.Progress?.Report(new MiniGenImageProgress(generator, split, "nature", chosen.Count, chosen.Count, written));
        return (written, kept);
    }

    private static bool SameBytes(string a, string b)
    {
        var (fa, fb) = (new FileInfo(a), new FileInfo(b));
        return fa.Length == fb.Length && File.ReadAllBytes(a).AsSpan().SequenceEqual(File.ReadAllBytes(b));
    }

    private static string Lineage(string patchesDir, PatchSet patches, IReadOnlyList<IImageGenerator> generators, string root, MiniGenImageOptions options)
    {
        var lineage = new
        {
            name = options.Name,
            layout = "genimage",
            description = options.RealFormat == RealImageFormat.Png
                ? "Miniature GenImage: real 64x64 patches of Debian-packaged photographs and fakes of miniature generators, both lossless PNG of the same size (no format bias)."
                : $"Format-bias variant of MiniGenImage: the reals are JPEG quality {options.JpegQuality}, the fakes PNG (GenImage's own JPEG-real / PNG-fake shortcut, on purpose).",
            photoCatalogueSha256 = patches.CatalogueSha256,
            patches = new
            {
                folder = Path.GetRelativePath(Path.GetFullPath(root), Path.GetFullPath(patchesDir)).Replace('\\', '/'),
                size = patches.Options.Size,
                minLumaStdDev = patches.Options.MinLumaStdDev,
                maxPerPhoto = patches.Options.MaxPerPhoto,
                counts = Splits.All.ToDictionary(s => s, s => patches.InSplit(s).Count),
            },
            real = new
            {
                format = options.RealFormat == RealImageFormat.Png ? "png" : "jpeg",
                jpegQuality = options.RealFormat == RealImageFormat.Jpeg ? options.JpegQuality : (int?)null,
                selection = "per generator and split: the first N of a permutation of the split's patches seeded by (seed, generator name, split)",
            },
            seed = options.Seed,
            batchSize = options.BatchSize,
            splits = Splits.All.Select(s => new { split = s, count = options.CountOf(s), fakeSeed = FakeSeed(options.Seed, s) }).ToList(),
            generators = generators.Select(g => new
            {
                name = g.Name,
                family = g.Family,
                resolution = g.Resolution,
                weightsSha256 = options.WeightsSha256 is not null && options.WeightsSha256.TryGetValue(g.Name, out var h) ? h : null,
            }).ToList(),
        };
        return JsonSerializer.Serialize(lineage, PatchSet.Json);
    }
}

/// <summary>Hard links, with a copy where the file system or platform refuses one.</summary>
internal static partial class FileLinks
{
    /// <summary>Makes <paramref name="to"/> a hard link to <paramref name="from"/> (replacing what is there), or a copy where linking fails.</summary>
    public static void LinkOrCopy(string from, string to)
    {
        if (File.Exists(to)) File.Delete(to);
        if (!OperatingSystem.IsWindows())
        {
            try
            {
                if (link(from, to) == 0) return;
            }
            catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
            {
                // No libc link(): fall through to a copy.
            }
        }
        File.Copy(from, to, overwrite: true);
    }

    [LibraryImport("libc", EntryPoint = "link", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int link(string oldPath, string newPath);
}
