using System.Text.Json;
using System.Text.Json.Serialization;
using Forensics.ML.Data;

namespace Forensics.ML.MiniGenImage;

/// <summary>How photos are cut into patches.</summary>
public sealed record PatchOptions
{
    /// <summary>Side of the square patches in pixels (the generators' resolution).</summary>
    public int Size { get; init; } = 64;

    /// <summary>
    /// Patches whose luma standard deviation (0..255 scale) is below this are skipped, so flat sky or blurred background does
    /// not dominate the real class; 0 keeps every patch.
    /// </summary>
    public double MinLumaStdDev { get; init; } = 4.0;

    /// <summary>
    /// Patches whose high-frequency energy (<see cref="RgbImage.LaplacianEnergy"/>: mean squared Laplacian of luma, 0..255
    /// scale) is below this are skipped; 0 keeps every patch. A patch with no fine detail (sky, bokeh, a smooth gradient) is
    /// the same picture after an autoencoder's reconstruction, so no detector can tell the two apart; the luma filter above
    /// keeps such patches when they hold a gradient.
    /// </summary>
    public double MinLaplacianEnergy { get; init; }

    /// <summary>At most this many patches per photo (spread evenly over its grid), so no single photo dominates; 0 means no cap.</summary>
    public int MaxPerPhoto { get; init; } = 100;

    /// <summary>Throws when an option is out of range.</summary>
    public void Validate()
    {
        if (Size is < 8 or > 1024) throw new ArgumentOutOfRangeException(nameof(Size), Size, "patch size must be 8..1024");
        if (MinLumaStdDev < 0 || double.IsNaN(MinLumaStdDev)) throw new ArgumentOutOfRangeException(nameof(MinLumaStdDev), MinLumaStdDev, "must be >= 0");
        if (MinLaplacianEnergy < 0 || double.IsNaN(MinLaplacianEnergy)) throw new ArgumentOutOfRangeException(nameof(MinLaplacianEnergy), MinLaplacianEnergy, "must be >= 0");
        if (MaxPerPhoto < 0) throw new ArgumentOutOfRangeException(nameof(MaxPerPhoto), MaxPerPhoto, "must be >= 0");
    }
}

/// <summary>One real patch: the grid cell (<paramref name="Row"/>, <paramref name="Col"/>) of a photo.</summary>
/// <param name="File">File name, "&lt;photo-stem&gt;_&lt;row&gt;_&lt;col&gt;.png".</param>
/// <param name="Photo">The photo's file in the catalogue.</param>
/// <param name="Category">The photo's category.</param>
/// <param name="Split">The photo's split.</param>
/// <param name="Row">Grid row.</param>
/// <param name="Col">Grid column.</param>
public sealed record RealPatch(string File, string Photo, string Category, string Split, int Row, int Col);

/// <summary>The real patches of a photos folder, written to <c>&lt;dir&gt;/&lt;split&gt;/&lt;file&gt;</c>, with <c>patches.json</c> listing them.</summary>
/// <param name="CatalogueSha256">SHA-256 of the photo catalogue they were cut from.</param>
/// <param name="Options">The cutting options.</param>
/// <param name="Patches">Every patch, split then photo (catalogue order) then row and column.</param>
public sealed record PatchSet(string CatalogueSha256, PatchOptions Options, IReadOnlyList<RealPatch> Patches)
{
    /// <summary>The index file's name inside a patch folder.</summary>
    public const string FileName = "patches.json";

    internal static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    /// <summary>The patches of one split, in set order.</summary>
    public IReadOnlyList<RealPatch> InSplit(string split) => Patches.Where(p => p.Split == split).ToList();

    /// <summary>Reads <c>patches.json</c> from a patch folder.</summary>
    /// <exception cref="IOException">The index is missing or unreadable (the message names the file).</exception>
    public static PatchSet Load(string dir)
    {
        var path = Path.Combine(dir, FileName);
        if (!File.Exists(path)) throw new FileNotFoundException($"No patch index '{path}': cut the patches first (PatchCutter.WritePatches).", path);
        try
        {
            return JsonSerializer.Deserialize<PatchSet>(File.ReadAllText(path), Json) ?? throw new IOException($"Patch index '{path}' is empty.");
        }
        catch (JsonException e)
        {
            throw new IOException($"Patch index '{path}' is not valid: {e.Message}", e);
        }
    }

    /// <summary>Writes <c>patches.json</c> into <paramref name="dir"/>.</summary>
    public void Save(string dir) => File.WriteAllText(Path.Combine(dir, FileName), JsonSerializer.Serialize(this, Json));
}

/// <summary>Cuts photos into non-overlapping square patches on a fixed grid: the same inputs always give the same files, byte for byte.</summary>
public static class PatchCutter
{
    /// <summary>
    /// The kept grid cells of <paramref name="photo"/>: a grid of size x size cells centred in the image; cells flatter than
    /// <see cref="PatchOptions.MinLumaStdDev"/> or with less detail than <see cref="PatchOptions.MinLaplacianEnergy"/> are
    /// dropped; when more than <see cref="PatchOptions.MaxPerPhoto"/> remain,
    /// an evenly spaced subset (in row-major order) is kept.
    /// </summary>
    public static IReadOnlyList<(int Row, int Col, RgbImage Patch)> Cut(RgbImage photo, PatchOptions options)
    {
        options.Validate();
        var size = options.Size;
        var (rows, cols) = (photo.Height / size, photo.Width / size);
        var (top, left) = ((photo.Height - rows * size) / 2, (photo.Width - cols * size) / 2);
        var kept = new List<(int, int, RgbImage)>();
        for (var r = 0; r < rows; r++)
            for (var c = 0; c < cols; c++)
            {
                var patch = photo.Crop(top + r * size, left + c * size, size, size);
                if (options.MinLumaStdDev > 0 && patch.LumaStandardDeviation() < options.MinLumaStdDev) continue;
                if (options.MinLaplacianEnergy > 0 && patch.LaplacianEnergy() < options.MinLaplacianEnergy) continue;
                kept.Add((r, c, patch));
            }
        if (options.MaxPerPhoto == 0 || kept.Count <= options.MaxPerPhoto) return kept;
        // Evenly spaced picks keep the whole photo represented instead of only its top rows.
        return Enumerable.Range(0, options.MaxPerPhoto).Select(i => kept[(int)((long)i * kept.Count / options.MaxPerPhoto)]).ToList();
    }

    /// <summary>
    /// Cuts every catalogued photo of <paramref name="photosDir"/> and writes the patches as PNG to
    /// <c>&lt;outDir&gt;/&lt;split&gt;/&lt;photo-stem&gt;_&lt;row&gt;_&lt;col&gt;.png</c> plus <c>patches.json</c>. Existing identical files are left untouched.
    /// </summary>
    /// <exception cref="PhotoCatalogueException">The catalogue is invalid.</exception>
    /// <exception cref="Imaging.ImageDecodeException">A catalogued photo is missing or unreadable.</exception>
    /// <param name="progress">After each photo: photos cut so far of all catalogued photos.</param>
    public static PatchSet WritePatches(string photosDir, string outDir, PatchOptions? options = null, IProgress<PatchProgress>? progress = null, CancellationToken ct = default)
    {
        options ??= new PatchOptions();
        options.Validate();
        var cataloguePath = Path.Combine(photosDir, PhotoCatalogue.FileName);
        var catalogue = PhotoCatalogue.Load(cataloguePath);
        var patches = new List<RealPatch>();
        var photos = Splits.All.Sum(s => catalogue.InSplit(s).Count());
        var done = 0;
        foreach (var split in Splits.All)
        {
            var splitDir = Path.Combine(outDir, split);
            Directory.CreateDirectory(splitDir);
            foreach (var photo in catalogue.InSplit(split))
            {
                ct.ThrowIfCancellationRequested();
                var image = RgbImage.Load(Path.Combine(photosDir, photo.File));
                var cut = Cut(image, options);
                foreach (var (row, col, patch) in cut)
                {
                    var name = $"{photo.Stem}_{row}_{col}.png";
                    FileWrites.WriteIfChanged(Path.Combine(splitDir, name), patch.EncodePng());
                    patches.Add(new RealPatch(name, photo.File, photo.Category, split, row, col));
                }
                progress?.Report(new PatchProgress(++done, photos, $"{split}/{photo.File}", cut.Count));
            }
        }
        var set = new PatchSet(PhotoCatalogue.HashFile(cataloguePath), options, patches);
        set.Save(outDir);
        return set;
    }
}

/// <summary>Progress of <see cref="PatchCutter.WritePatches"/>: <paramref name="Done"/> of <paramref name="Total"/> photos cut, the last one and its patch count.</summary>
public sealed record PatchProgress(int Done, int Total, string Photo, int Patches)
{
    public override string ToString() => $"{Photo}: {Patches} patches ({Done}/{Total} photos)";
}

/// <summary>File writes that leave no half-written file behind and do not touch files that already hold the bytes.</summary>
internal static class FileWrites
{
    /// <summary>Writes <paramref name="bytes"/> through a temporary file and a rename, unless the file already holds exactly them.</summary>
    public static void WriteIfChanged(string path, byte[] bytes)
    {
        if (File.Exists(path) && new FileInfo(path).Length == bytes.Length && File.ReadAllBytes(path).AsSpan().SequenceEqual(bytes)) return;
        Write(path, bytes);
    }

    /// <summary>Writes <paramref name="bytes"/> through a temporary file and a rename.</summary>
    public static void Write(string path, byte[] bytes)
    {
        var temp = path + ".part";
        File.WriteAllBytes(temp, bytes);
        File.Move(temp, path, overwrite: true);
    }
}
