using System.Security.Cryptography;
using System.Text;
using Forensics.ML.Imaging;
using Forensics.ML.Randomness;
using static TorchSharp.torch;

namespace Forensics.ML.Generators;

/// <summary>
/// The training images of a generator: every PNG or JPEG under a folder (recursively, in ordinal order of the relative
/// path), decoded once into memory as uint8 [3, H, W]. Every image must be at least <see cref="Resolution"/> on each
/// side; training takes <see cref="Resolution"/>-square crops. <see cref="ContentHash"/> identifies the data for the card.
/// </summary>
public sealed class TrainingImages : IDisposable
{
    /// <summary>File extensions read (case-insensitive).</summary>
    public static IReadOnlyList<string> Extensions { get; } = [".png", ".jpg", ".jpeg"];

    private readonly List<Tensor> images;

    private TrainingImages(string folder, int resolution, List<string> files, List<Tensor> images, string hash)
    {
        Folder = folder;
        Resolution = resolution;
        Files = files;
        this.images = images;
        ContentHash = hash;
    }

    /// <summary>The folder scanned (full path).</summary>
    public string Folder { get; }

    /// <summary>Side of the square crops.</summary>
    public int Resolution { get; }

    /// <summary>The image files, relative to <see cref="Folder"/> with '/' separators, in load order.</summary>
    public IReadOnlyList<string> Files { get; }

    /// <summary>Number of images.</summary>
    public int Count => images.Count;

    /// <summary>
    /// SHA-256 (hex) over "relative path \t SHA-256 of the file's bytes \n" for every file in order: the same files with
    /// the same bytes give the same hash wherever the folder lies.
    /// </summary>
    public string ContentHash { get; }

    /// <summary>
    /// Loads every PNG/JPEG under <paramref name="folder"/>. Errors name the folder (missing, no images) or the file
    /// (undecodable, smaller than <paramref name="resolution"/>).
    /// </summary>
    public static TrainingImages Load(string folder, int resolution)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(folder);
        if (resolution < 8) throw new ArgumentOutOfRangeException(nameof(resolution), resolution, "The training resolution must be at least 8.");
        var root = Path.GetFullPath(folder);
        if (!Directory.Exists(root)) throw new DirectoryNotFoundException($"No training image folder at {root}");
        var files = Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories)
            .Where(f => Extensions.Contains(Path.GetExtension(f).ToLowerInvariant()))
            .Select(f => Path.GetRelativePath(root, f).Replace('\\', '/'))
            .OrderBy(f => f, StringComparer.Ordinal)
            .ToList();
        if (files.Count == 0)
            throw new InvalidDataException($"{root} holds no training images ({string.Join(", ", Extensions)}, searched recursively)");
        var loaded = new List<Tensor>(files.Count);
        var lines = new StringBuilder();
        try
        {
            foreach (var rel in files)
            {
                var path = Path.Combine(root, rel);
                var bytes = File.ReadAllBytes(path);
                lines.Append(rel).Append('\t').Append(Convert.ToHexStringLower(SHA256.HashData(bytes))).Append('\n');
                var rgb = ImageDecoder.DecodeToBytes(bytes, path); // [H, W, 3] uint8
                using (rgb)
                {
                    var (h, w) = (rgb.shape[0], rgb.shape[1]);
                    if (h < resolution || w < resolution)
                        throw new InvalidDataException($"{path} is {w}x{h}, smaller than the training resolution {resolution}x{resolution}");
                    loaded.Add(rgb.permute(2, 0, 1).contiguous());
                }
            }
        }
        catch
        {
            foreach (var t in loaded) t.Dispose();
            throw;
        }
        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(lines.ToString())));
        return new TrainingImages(root, resolution, files, loaded, hash);
    }

    /// <summary>
    /// A batch [B, 3, R, R] float32 in [-1, 1] of the images <paramref name="indices"/>, each cropped at a position drawn
    /// from <paramref name="random"/> (or centred when null) and, when <paramref name="flip"/>, mirrored with probability 1/2.
    /// </summary>
    public Tensor Batch(IReadOnlyList<int> indices, RandomSource? random, bool flip)
    {
        using var scope = NewDisposeScope();
        var crops = new Tensor[indices.Count];
        for (var i = 0; i < indices.Count; i++)
        {
            var image = images[indices[i]];
            var (h, w) = ((int)image.shape[1], (int)image.shape[2]);
            var top = random is null ? (h - Resolution) / 2 : random.NextIntInclusive(0, h - Resolution);
            var left = random is null ? (w - Resolution) / 2 : random.NextIntInclusive(0, w - Resolution);
            var crop = image.narrow(1, top, Resolution).narrow(2, left, Resolution);
            if (flip && random is not null && random.Bernoulli(0.5)) crop = crop.flip(2);
            crops[i] = crop;
        }
        return stack(crops).to(ScalarType.Float32).div_(127.5).sub_(1.0).MoveToOuterDisposeScope();
    }

    /// <summary>Disposes the decoded images.</summary>
    public void Dispose()
    {
        foreach (var t in images) t.Dispose();
        images.Clear();
    }
}
