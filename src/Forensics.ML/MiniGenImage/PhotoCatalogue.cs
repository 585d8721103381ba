using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Forensics.ML.Data;

namespace Forensics.ML.MiniGenImage;

/// <summary>A photo catalogue that cannot be used; the message names the catalogue file, the photo and the field.</summary>
public sealed class PhotoCatalogueException(string catalogue, string? photo, string field, string message) : Exception(message)
{
    /// <summary>The catalogue file (or the label it was read under).</summary>
    public string Catalogue { get; } = catalogue;

    /// <summary>The photo's file name (or its index, "photos[3]", when the name itself is the problem); null for a top-level field.</summary>
    public string? Photo { get; } = photo;

    /// <summary>The JSON field that is missing or wrong ("sha256", "split", ...).</summary>
    public string Field { get; } = field;
}

/// <summary>One real photograph of the catalogue: where it comes from, its licence, how it is reduced and which split it feeds.</summary>
/// <param name="File">The reduced PNG's file name in the photos folder ("mate_dune.png").</param>
/// <param name="Package">The Debian package that ships the original.</param>
/// <param name="Version">The package version it was taken from (epoch included, "4:5.27.5-2").</param>
/// <param name="Path">The original's absolute path inside the package.</param>
/// <param name="Sha256">SHA-256 of the original file, lower-case hex.</param>
/// <param name="License">Its licence, as the package's copyright file states it (SPDX-style).</param>
/// <param name="Copyright">Year and author, as the package's copyright file or metadata states them.</param>
/// <param name="Downscale">Integer area-averaging factor applied to the original.</param>
/// <param name="Category">Source label: "landscape", "flower", "plant", "animal", "object".</param>
/// <param name="Split">"train", "val" or "test": every patch of this photo goes to this split only.</param>
public sealed record CataloguePhoto(
    string File, string Package, string Version, string Path, string Sha256, string License, string Copyright,
    int Downscale, string Category, string Split)
{
    /// <summary>The file name without ".png": the prefix of the photo's patch names.</summary>
    public string Stem => System.IO.Path.GetFileNameWithoutExtension(File);
}

/// <summary>
/// The list of real photographs MiniGenImage is built from (models/demo/photos/photos.json). The selection lives here;
/// <see cref="PhotoReproduction"/> only re-creates the reduced files from it.
/// </summary>
public sealed record PhotoCatalogue(string Name, string Description, string Distribution, IReadOnlyList<CataloguePhoto> Photos)
{
    /// <summary>The catalogue's file name inside a photos folder.</summary>
    public const string FileName = "photos.json";

    private static readonly string[] PhotoFields =
        ["file", "package", "version", "path", "sha256", "license", "copyright", "downscale", "category", "split"];

    /// <summary>Reads and validates a catalogue file.</summary>
    /// <exception cref="PhotoCatalogueException">The file is missing, not JSON, or a field is missing or invalid (the message names file, photo and field).</exception>
    public static PhotoCatalogue Load(string path)
    {
        string text;
        try { text = File.ReadAllText(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new PhotoCatalogueException(path, null, "", $"Cannot read the photo catalogue '{path}': {e.Message}");
        }
        return Parse(text, path);
    }

    /// <summary>Parses and validates catalogue JSON; <paramref name="source"/> names it in errors.</summary>
    /// <exception cref="PhotoCatalogueException">A field is missing or invalid.</exception>
    public static PhotoCatalogue Parse(string json, string source)
    {
        JsonNode? root;
        try { root = JsonNode.Parse(json); }
        catch (JsonException e)
        {
            throw new PhotoCatalogueException(source, null, "", $"Photo catalogue '{source}' is not valid JSON: {e.Message}");
        }
        if (root is not JsonObject top) throw new PhotoCatalogueException(source, null, "", $"Photo catalogue '{source}': expected a JSON object at the top level.");
        if (top["photos"] is not JsonArray array || array.Count == 0)
            throw new PhotoCatalogueException(source, null, "photos", $"Photo catalogue '{source}': field 'photos' is missing or not a non-empty array.");

        var photos = new List<CataloguePhoto>();
        var files = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        for (var i = 0; i < array.Count; i++)
        {
            var label = $"photos[{i}]";
            if (array[i] is not JsonObject item) throw new PhotoCatalogueException(source, label, "", $"Photo catalogue '{source}': {label} is not an object.");
            var name = item["file"] is JsonValue v && v.TryGetValue<string>(out var f) && f.Length > 0 ? f : null;
            var who = name is null ? label : $"{label} ('{name}')";
            foreach (var field in PhotoFields)
                if (item[field] is null || (item[field] is JsonValue s && s.TryGetValue<string>(out var str) && string.IsNullOrWhiteSpace(str)))
                    throw Bad(source, name ?? label, field, $"{who}: field '{field}' is missing or empty");

            var photo = new CataloguePhoto(
                Text(item, "file", source, who), Text(item, "package", source, who), Text(item, "version", source, who),
                Text(item, "path", source, who), Text(item, "sha256", source, who), Text(item, "license", source, who),
                Text(item, "copyright", source, who), Integer(item, "downscale", source, who),
                Text(item, "category", source, who), Text(item, "split", source, who));

            if (!photo.File.EndsWith(".png", StringComparison.Ordinal) || photo.File.IndexOfAny(['/', '\\']) >= 0 || photo.File.StartsWith('.'))
                throw Bad(source, photo.File, "file", $"{who}: field 'file' must be a plain file name ending in .png");
            if (!files.Add(photo.File)) throw Bad(source, photo.File, "file", $"{who}: file name '{photo.File}' occurs twice");
            if (photo.Sha256.Length != 64 || !photo.Sha256.All(char.IsAsciiHexDigitLower))
                throw Bad(source, photo.File, "sha256", $"{who}: field 'sha256' must be 64 lower-case hex digits, got '{photo.Sha256}'");
            if (photo.Downscale is < 1 or > 64)
                throw Bad(source, photo.File, "downscale", $"{who}: field 'downscale' must be 1..64, got {photo.Downscale}");
            if (!Splits.All.Contains(photo.Split))
                throw Bad(source, photo.File, "split", $"{who}: field 'split' must be one of {string.Join(", ", Splits.All)}, got '{photo.Split}'");
            if (!photo.Path.StartsWith('/'))
                throw Bad(source, photo.File, "path", $"{who}: field 'path' must be the absolute path inside the package, got '{photo.Path}'");
            photos.Add(photo);
        }
        return new PhotoCatalogue(
            top["name"]?.GetValue<string>() ?? "", top["description"]?.GetValue<string>() ?? "",
            top["distribution"]?.GetValue<string>() ?? "", photos);
    }

    /// <summary>SHA-256 (lower-case hex) of a catalogue file's bytes: the lineage of everything built from it.</summary>
    public static string HashFile(string path) => Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(path)));

    /// <summary>The photos of one split, catalogue order.</summary>
    public IEnumerable<CataloguePhoto> InSplit(string split) => Photos.Where(p => p.Split == split);

    /// <summary>The folder's README.md: what the photos are, where they come from, and each one's licence.</summary>
    public string ToReadme()
    {
        var sb = new StringBuilder();
        sb.AppendLine($"# {(Name.Length > 0 ? Name : "Real photographs")}").AppendLine();
        sb.AppendLine("Generated by `forensics photos --catalogue photos.json --out <this folder>` from `photos.json`; do not edit by hand.").AppendLine();
        if (Description.Length > 0) sb.AppendLine(Description).AppendLine();
        sb.AppendLine($"{Photos.Count} photographs from Debian {(Distribution.Length > 0 ? Distribution : "")} packages. Each original is downloaded with " +
                      "`apt-get download PACKAGE=VERSION`, extracted with `dpkg-deb -x`, checked against its SHA-256 below, decoded to 8-bit RGB " +
                      "and reduced by an integer area-averaging (box) factor, then stored as lossless PNG. The reduction leaves no trace of the " +
                      "original's 8x8 JPEG grid, so the real patches cut from these photos carry no compression artefact that the PNG fakes lack.").AppendLine();
        sb.AppendLine("Splits are per photograph: all patches of a photo belong to its split, so no scene is shared between train, val and test.").AppendLine();
        foreach (var split in Splits.All)
        {
            var inSplit = Photos.Where(p => p.Split == split).ToList();
            sb.AppendLine($"- {split}: {inSplit.Count} photos ({string.Join(", ", inSplit.GroupBy(p => p.Category).OrderBy(g => g.Key, StringComparer.Ordinal).Select(g => $"{g.Key} {g.Count()}"))})");
        }
        sb.AppendLine().AppendLine("| file | category | split | package (version) | path in package | licence | copyright | downscale |");
        sb.AppendLine("| --- | --- | --- | --- | --- | --- | --- | --- |");
        foreach (var p in Photos)
            sb.AppendLine($"| {p.File} | {p.Category} | {p.Split} | {p.Package} ({p.Version}) | `{p.Path}` | {Cell(p.License)} | {Cell(p.Copyright)} | 1/{p.Downscale} |");
        sb.AppendLine().AppendLine("The licence texts are in each package's `/usr/share/doc/PACKAGE/copyright`. CC-BY and CC-BY-SA photographs are " +
                                   "adapted (reduced) here; the same licence applies to the reduced files and to the patches cut from them.");
        return sb.ToString();
    }

    private static string Cell(string text) => text.Replace("|", "\\|", StringComparison.Ordinal);

    private static PhotoCatalogueException Bad(string source, string photo, string field, string detail) =>
        new(source, photo, field, $"Photo catalogue '{source}': {detail}.");

    private static string Text(JsonObject item, string field, string source, string who)
    {
        if (item[field] is JsonValue value && value.TryGetValue<string>(out var text)) return text;
        throw Bad(source, who, field, $"{who}: field '{field}' must be a string");
    }

    private static int Integer(JsonObject item, string field, string source, string who)
    {
        if (item[field] is JsonValue value && value.TryGetValue<int>(out var number)) return number;
        throw Bad(source, who, field, $"{who}: field '{field}' must be an integer");
    }
}
