using System.Security.Cryptography;
using System.Text.Json;
using Forensics.ML.Generators;
using Forensics.ML.MiniGenImage;
using Forensics.ML.Tests.Datasets;
using TorchSharp;
using static TorchSharp.torch;

namespace Forensics.ML.Tests.MiniGenImage;

/// <summary>Tiny synthetic photos and catalogues made at test time.</summary>
internal static class MiniGenImageFixtures
{
    /// <summary>
    /// A textured <paramref name="width"/>x<paramref name="height"/> photo whose left <paramref name="flatColumns"/> columns
    /// are one flat colour (the "sky" that the variance threshold must skip).
    /// </summary>
    public static RgbImage Photo(int width, int height, int seed, int flatColumns = 0)
    {
        var random = new Random(seed);
        var pixels = new byte[width * height * 3];
        for (var y = 0; y < height; y++)
            for (var x = 0; x < width; x++)
                for (var c = 0; c < 3; c++)
                    pixels[(y * width + x) * 3 + c] = x < flatColumns ? (byte)(120 + c * 20) : (byte)random.Next(256);
        return new RgbImage(width, height, pixels);
    }

    /// <summary>A catalogue entry as JSON, with every field set.</summary>
    public static Dictionary<string, object> Entry(string file, string split, string category, string sha256, int downscale = 1,
        string package = "test-photos", string path = "/usr/share/photos/x.png") => new()
    {
        ["file"] = file, ["package"] = package, ["version"] = "1.0-1", ["path"] = path, ["sha256"] = sha256,
        ["license"] = "CC0-1.0", ["copyright"] = "2026, Test", ["downscale"] = downscale, ["category"] = category, ["split"] = split,
    };

    /// <summary>Writes a catalogue with <paramref name="entries"/> to <paramref name="path"/>.</summary>
    public static void WriteCatalogue(string path, IEnumerable<Dictionary<string, object>> entries) =>
        File.WriteAllText(path, JsonSerializer.Serialize(new { name = "test photos", description = "", distribution = "test", photos = entries.ToList() }));

    /// <summary>
    /// A photos folder with three 200x136 photos (one per split, the train one with a flat left band) and its catalogue.
    /// </summary>
    public static string PhotosFolder(TempDir temp)
    {
        var dir = temp["photos"];
        Directory.CreateDirectory(dir);
        var specs = new[] { ("alpha.png", "train", "landscape", 64), ("beta.png", "val", "flower", 0), ("gamma.png", "test", "object", 0) };
        var entries = new List<Dictionary<string, object>>();
        for (var i = 0; i < specs.Length; i++)
        {
            var (file, split, category, flat) = specs[i];
            var png = Photo(200, 136, seed: 10 + i, flatColumns: flat).EncodePng();
            File.WriteAllBytes(Path.Combine(dir, file), png);
            entries.Add(Entry(file, split, category, Convert.ToHexStringLower(SHA256.HashData(png))));
        }
        WriteCatalogue(Path.Combine(dir, PhotoCatalogue.FileName), entries);
        return dir;
    }

    /// <summary>Every file under <paramref name="root"/> (relative path, '/' separators) with its bytes.</summary>
    public static SortedDictionary<string, byte[]> Snapshot(string root) =>
        new(Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories)
            .ToDictionary(f => Path.GetRelativePath(root, f).Replace('\\', '/'), File.ReadAllBytes), StringComparer.Ordinal);
}

/// <summary>A test double of a trained generator: seeded uniform noise, each image a function of (seed, name, index) only.</summary>
internal sealed class NoiseGenerator(string name, int resolution = 64) : IImageGenerator
{
    public string Name => name;

    public string Family => "test-noise";

    public int Resolution => resolution;

    /// <summary>Every call made, for checking that resumption re-samples whole batches.</summary>
    public List<(long Seed, long First, int Count)> Calls { get; } = [];

    public Tensor Sample(long seed, long firstIndex, int count)
    {
        Calls.Add((seed, firstIndex, count));
        var images = new List<Tensor>();
        try
        {
            for (var i = 0; i < count; i++)
            {
                var rng = new RandomSource(Seeds.Derive((ulong)seed, name.Length, name[0], firstIndex + i));
                var values = new float[3 * resolution * resolution];
                for (var k = 0; k < values.Length; k++) values[k] = (float)rng.NextDouble();
                images.Add(torch.tensor(values, [3, resolution, resolution]));
            }
            return torch.stack(images);
        }
        finally
        {
            foreach (var t in images) t.Dispose();
        }
    }

    public void Dispose() { }
}
