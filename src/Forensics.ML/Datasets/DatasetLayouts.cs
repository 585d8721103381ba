namespace Forensics.ML.Datasets;

/// <summary>The folder layouts a dataset can be registered from.</summary>
public enum DatasetLayout
{
    /// <summary>GenImage: &lt;generator&gt;/{train,val,test}/{ai,nature}/ (or one generator folder {train,val,test}/{ai,nature}/); ai = fake, nature = real.</summary>
    GenImage,

    /// <summary>0_real/ and 1_fake/ folders: directly under the root, under &lt;split&gt;/, or under &lt;split&gt;/&lt;category&gt;/ (CNNDetection).</summary>
    RealFake,
}

/// <summary>Why a folder could not be read as a dataset.</summary>
public enum DatasetLayoutProblem
{
    /// <summary>The folder does not exist (or is a file).</summary>
    FolderMissing,

    /// <summary>The folder exists but matches no supported layout.</summary>
    UnknownLayout,
}

/// <summary>A dataset folder that is missing or matches no supported layout; the message names the path and what was expected.</summary>
public sealed class DatasetLayoutException(string root, DatasetLayoutProblem problem, string message) : Exception(message)
{
    /// <summary>The folder that was given.</summary>
    public string Root { get; } = root;

    /// <summary>What is wrong with it.</summary>
    public DatasetLayoutProblem Problem { get; } = problem;
}

/// <summary>One labelled folder of a dataset: every image below it (at any depth) belongs to this generator, split and label.</summary>
/// <param name="Generator">The generator (GenImage folder name, RealFake category, or the root folder's name).</param>
/// <param name="Split">The split folder's name as found ("train", "val", "valid", ...), or "all" when there is none.</param>
/// <param name="Label">"real" or "fake".</param>
/// <param name="RelativePath">The folder relative to the dataset root, '/' separators.</param>
public sealed record DatasetPart(string Generator, string Split, string Label, string RelativePath);

/// <summary>A dataset folder's detected layout and its labelled folders (ordinal order).</summary>
public sealed record DatasetStructure(string Root, DatasetLayout Layout, IReadOnlyList<DatasetPart> Parts);

/// <summary>Detects which supported layout a dataset folder has.</summary>
public static class DatasetLayouts
{
    /// <summary>Label of real images.</summary>
    public const string Real = "real";

    /// <summary>Label of generated images.</summary>
    public const string Fake = "fake";

    /// <summary>The split name used when a RealFake folder has no split level.</summary>
    public const string AllSplit = "all";

    // GenImage split folders; "valid" is a common re-distribution alias of "val"; "test" is the held-out split of
    // datasets that keep one apart from validation (MiniGenImage). Names are kept as found.
    private static readonly HashSet<string> GenImageSplits = new(StringComparer.OrdinalIgnoreCase) { "train", "val", "valid", "test" };

    private static readonly Dictionary<string, string> GenImageLabels = new(StringComparer.OrdinalIgnoreCase)
    {
        ["ai"] = Fake,
        ["nature"] = Real,
    };

    private static readonly Dictionary<string, string> RealFakeLabels = new(StringComparer.OrdinalIgnoreCase)
    {
        ["0_real"] = Real,
        ["1_fake"] = Fake,
    };

    private const string Expected =
        "expected GenImage (<generator>/{train,val,test}/{ai,nature}/, or {train,val,test}/{ai,nature}/ for one generator) " +
        "or RealFake (0_real/ and 1_fake/ folders directly in it, under <split>/, or under <split>/<category>/)";

    /// <summary>The layout of the dataset folder <paramref name="root"/>.</summary>
    /// <exception cref="DatasetLayoutException">The folder is missing or matches no supported layout.</exception>
    public static DatasetLayout Detect(string root) => Resolve(root).Layout;

    /// <summary>The layout of the dataset folder <paramref name="root"/> and its labelled folders.</summary>
    /// <exception cref="DatasetLayoutException">The folder is missing or matches no supported layout.</exception>
    public static DatasetStructure Resolve(string root) => Resolve(root, null);

    /// <summary>
    /// As <see cref="Resolve(string)"/>, looking only into sub-folders whose resolved path lies under
    /// <paramref name="allowedRoots"/> (canonical; null: anywhere), so a link to a folder elsewhere is never listed.
    /// </summary>
    public static DatasetStructure Resolve(string root, IReadOnlyList<string>? allowedRoots)
    {
        IEnumerable<string> Subs(string dir) => allowedRoots is null ? SubDirectories(dir)
            : SubDirectories(dir).Where(n => ConfinedFile.RealPath(Path.Combine(dir, n)) is { } real && ConfinedFile.IsUnder(real, allowedRoots));
        var full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(root));
        if (File.Exists(full))
            throw new DatasetLayoutException(root, DatasetLayoutProblem.FolderMissing, $"Dataset folder '{full}' is a file, not a folder.");
        if (!Directory.Exists(full))
            throw new DatasetLayoutException(root, DatasetLayoutProblem.FolderMissing, $"Dataset folder not found: '{full}'.");

        var rootName = Path.GetFileName(full);
        var genImage = GenImageParts(full, rootName, Subs);
        if (genImage.Count > 0) return new DatasetStructure(full, DatasetLayout.GenImage, Sorted(genImage));

        var realFake = RealFakeParts(full, rootName, Subs);
        if (realFake.Count > 0) return new DatasetStructure(full, DatasetLayout.RealFake, Sorted(realFake));

        throw new DatasetLayoutException(root, DatasetLayoutProblem.UnknownLayout, $"Unknown dataset layout in '{full}': {Expected}.");
    }

    private static List<DatasetPart> GenImageParts(string root, string rootName, Func<string, IEnumerable<string>> subs)
    {
        // One generator folder given directly wins over a folder of generators.
        var single = GenImageGenerator(root, "", rootName, subs);
        if (single.Count > 0) return single;

        var parts = new List<DatasetPart>();
        foreach (var generator in subs(root))
            parts.AddRange(GenImageGenerator(Path.Combine(root, generator), generator + "/", generator, subs));
        return parts;
    }

    private static List<DatasetPart> GenImageGenerator(string dir, string relative, string generator, Func<string, IEnumerable<string>> subs)
    {
        var parts = new List<DatasetPart>();
        foreach (var split in subs(dir).Where(GenImageSplits.Contains))
            foreach (var label in subs(Path.Combine(dir, split)))
                if (GenImageLabels.TryGetValue(label, out var value))
                    parts.Add(new DatasetPart(generator, split, value, $"{relative}{split}/{label}"));
        return parts;
    }

    private static List<DatasetPart> RealFakeParts(string root, string rootName, Func<string, IEnumerable<string>> subs)
    {
        var direct = LabelFolders(root, "", rootName, AllSplit, subs);
        if (direct.Count > 0) return direct;

        var parts = new List<DatasetPart>();
        foreach (var split in subs(root))
        {
            var splitDir = Path.Combine(root, split);
            parts.AddRange(LabelFolders(splitDir, split + "/", rootName, split, subs));
            foreach (var category in subs(splitDir))
                parts.AddRange(LabelFolders(Path.Combine(splitDir, category), $"{split}/{category}/", category, split, subs));
        }
        return parts;
    }

    private static List<DatasetPart> LabelFolders(string dir, string relative, string generator, string split, Func<string, IEnumerable<string>> subs)
    {
        var parts = new List<DatasetPart>();
        foreach (var name in subs(dir))
            if (RealFakeLabels.TryGetValue(name, out var label))
                parts.Add(new DatasetPart(generator, split, label, relative + name));
        return parts;
    }

    /// <summary>Names of the non-hidden sub-folders of <paramref name="dir"/>, ordinal order.</summary>
    internal static IEnumerable<string> SubDirectories(string dir) =>
        Directory.EnumerateDirectories(dir)
            .Select(Path.GetFileName)
            .OfType<string>()
            .Where(n => !n.StartsWith('.'))
            .Order(StringComparer.Ordinal);

    private static List<DatasetPart> Sorted(List<DatasetPart> parts) =>
        parts.OrderBy(p => p.RelativePath, StringComparer.Ordinal).ToList();
}
