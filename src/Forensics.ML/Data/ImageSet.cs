using Forensics.ML.Datasets;

namespace Forensics.ML.Data;

/// <summary>Split names: "val", "valid" and "validation" are one split (a 'val' vs 'valid' mismatch once broke a training run); "train" and "test" are kept as they are.</summary>
public static class Splits
{
    /// <summary>The canonical name of the training split.</summary>
    public const string Train = "train";

    /// <summary>The canonical name of the validation split.</summary>
    public const string Val = "val";

    /// <summary>The canonical name of the held-out test split (GenImage-style datasets that keep one apart from validation).</summary>
    public const string Test = "test";

    /// <summary>The three canonical splits, in the order train, val, test.</summary>
    public static readonly IReadOnlyList<string> All = [Train, Val, Test];

    private static readonly HashSet<string> ValAliases = new(StringComparer.OrdinalIgnoreCase) { "val", "valid", "validation" };

    /// <summary>The canonical, lower-case form of <paramref name="split"/>: every validation alias becomes "val".</summary>
    public static string Canonical(string split) =>
        ValAliases.Contains(split) ? Val : split.ToLowerInvariant();

    /// <summary>Whether two split names denote the same split (case-insensitive, validation aliases equal).</summary>
    public static bool Same(string a, string b) => Canonical(a) == Canonical(b);
}

/// <summary>One image of a training or evaluation set.</summary>
/// <param name="Path">Absolute path of the file.</param>
/// <param name="RelativePath">Path relative to the dataset root, '/' separators.</param>
/// <param name="Label">0 real, 1 fake.</param>
/// <param name="Generator">The generator the image's folder belongs to.</param>
/// <param name="Split">The split folder's name as found ("train", "valid", "all", ...).</param>
public sealed record ImageSample(string Path, string RelativePath, int Label, string Generator, string Split)
{
    /// <summary>Label value of real images.</summary>
    public const int RealLabel = 0;

    /// <summary>Label value of generated images.</summary>
    public const int FakeLabel = 1;

    /// <summary>Width in pixels as scanned; 0 when unknown.</summary>
    public int Width { get; init; }

    /// <summary>Height in pixels as scanned; 0 when unknown.</summary>
    public int Height { get; init; }

    /// <summary>
    /// What a real and its reconstruction share (see <see cref="PairKeys"/>): the folders above the label folder
    /// (split canonicalised), then the sub-folders below it and the file stem. By default the file stem alone.
    /// </summary>
    public string PairKey { get; init; } = System.IO.Path.GetFileNameWithoutExtension(RelativePath);
}

/// <summary>Real and fake counts.</summary>
public sealed record LabelCounts(int Real, int Fake)
{
    /// <summary>Real plus fake.</summary>
    public int Total => Real + Fake;
}

/// <summary>
/// A list of labelled images to train or evaluate on, usually filtered from a <see cref="DatasetManifest"/> by split and
/// generator. Order: the manifest's (path, ordinal), so a set is reproducible from its manifest.
/// </summary>
public sealed class ImageSet : IReadOnlyList<ImageSample>
{
    private readonly IReadOnlyList<ImageSample> samples;

    /// <summary>A set over <paramref name="samples"/> as given; <paramref name="skippedUnreadable"/> only reports.</summary>
    /// <exception cref="ArgumentException">A label is not 0 or 1 (the message names the file).</exception>
    public ImageSet(IEnumerable<ImageSample> samples, int skippedUnreadable = 0)
    {
        this.samples = samples.ToList();
        foreach (var s in this.samples)
            if (s.Label is not (ImageSample.RealLabel or ImageSample.FakeLabel))
                throw new ArgumentException($"Image '{s.RelativePath}' has label {s.Label}; labels are 0 (real) or 1 (fake).", nameof(samples));
        SkippedUnreadable = skippedUnreadable;
        Counts = new LabelCounts(this.samples.Count(s => s.Label == ImageSample.RealLabel), this.samples.Count(s => s.Label == ImageSample.FakeLabel));
        ByGenerator = this.samples
            .GroupBy(s => s.Generator, StringComparer.Ordinal)
            .OrderBy(g => g.Key, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => new LabelCounts(g.Count(s => s.Label == 0), g.Count(s => s.Label == 1)), StringComparer.Ordinal);
    }

    /// <summary>Image files that matched the filters but are listed as unreadable in the manifest, so are left out.</summary>
    public int SkippedUnreadable { get; }

    /// <summary>Real and fake counts over the whole set.</summary>
    public LabelCounts Counts { get; }

    /// <summary>Real and fake counts per generator (ordinal order).</summary>
    public IReadOnlyDictionary<string, LabelCounts> ByGenerator { get; }

    /// <summary>Number of images.</summary>
    public int Count => samples.Count;

    /// <summary>The image at <paramref name="index"/>.</summary>
    public ImageSample this[int index] => samples[index];

    /// <summary>The images with label <paramref name="label"/>, as a set (same order).</summary>
    public ImageSet WithLabel(int label) =>
        new(samples.Where(s => s.Label == label), 0);

    /// <summary>
    /// The readable images of <paramref name="manifest"/> in split <paramref name="split"/> (null: all splits; "val",
    /// "valid" and "validation" are one split; case-insensitive) and among <paramref name="generators"/> (null: all;
    /// case-insensitive). Files in the manifest's unreadable list never appear; those matching the filters are counted in
    /// <see cref="SkippedUnreadable"/>.
    /// </summary>
    /// <exception cref="ArgumentException">The split or a generator occurs nowhere in the manifest (the message lists what does), or an entry's label is neither "real" nor "fake".</exception>
    public static ImageSet FromManifest(DatasetManifest manifest, string? split = null, IReadOnlySet<string>? generators = null)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        var scanned = manifest.Images.Concat<ScannedFile>(manifest.Unreadable).ToList();
        if (split is not null && !scanned.Any(f => Splits.Same(f.Split, split)))
            throw new ArgumentException(
                $"Split '{split}' is not in the dataset '{manifest.Root}'; its splits are: {List(scanned.Select(f => f.Split))}.", nameof(split));
        HashSet<string>? wanted = null;
        if (generators is not null)
        {
            wanted = new HashSet<string>(generators, StringComparer.OrdinalIgnoreCase);
            var known = new HashSet<string>(scanned.Select(f => f.Generator), StringComparer.OrdinalIgnoreCase);
            var missing = wanted.Where(g => !known.Contains(g)).Order(StringComparer.Ordinal).ToList();
            if (missing.Count > 0)
                throw new ArgumentException(
                    $"Generator(s) {string.Join(", ", missing.Select(g => $"'{g}'"))} not in the dataset '{manifest.Root}'; its generators are: {List(known)}.",
                    nameof(generators));
        }

        bool Selected(ScannedFile f) =>
            (split is null || Splits.Same(f.Split, split)) && (wanted is null || wanted.Contains(f.Generator));

        var unreadable = new HashSet<string>(manifest.Unreadable.Where(Selected).Select(u => u.Path), StringComparer.Ordinal);
        var samples = new List<ImageSample>();
        foreach (var e in manifest.Images.Where(Selected).OrderBy(e => e.Path, StringComparer.Ordinal))
        {
            // A hand-edited or merged manifest may list a file both ways; unreadable wins.
            if (unreadable.Contains(e.Path)) continue;
            samples.Add(new ImageSample(AbsolutePath(manifest.Root, e.Path), e.Path, LabelValue(e), e.Generator, e.Split)
            {
                Width = e.Width,
                Height = e.Height,
                PairKey = PairKeys.For(e.Path, e.Label, e.Generator, e.Split),
            });
        }
        return new ImageSet(samples, unreadable.Count);
    }

    /// <summary>The absolute path of <paramref name="relative"/> ('/' separators) under <paramref name="root"/>.</summary>
    public static string AbsolutePath(string root, string relative) =>
        System.IO.Path.GetFullPath(System.IO.Path.Combine(root, relative.Replace('/', System.IO.Path.DirectorySeparatorChar)));

    private static int LabelValue(ManifestEntry e) => e.Label switch
    {
        DatasetLayouts.Real => ImageSample.RealLabel,
        DatasetLayouts.Fake => ImageSample.FakeLabel,
        _ => throw new ArgumentException($"Manifest entry '{e.Path}' has label '{e.Label}'; expected \"{DatasetLayouts.Real}\" or \"{DatasetLayouts.Fake}\"."),
    };

    private static string List(IEnumerable<string> names)
    {
        var list = names.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        return list.Count == 0 ? "(none: the manifest is empty)" : string.Join(", ", list);
    }

    /// <inheritdoc/>
    public IEnumerator<ImageSample> GetEnumerator() => samples.GetEnumerator();

    System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
}
