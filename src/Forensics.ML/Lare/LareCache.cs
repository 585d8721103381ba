using System.Security.Cryptography;
using System.Text;
using Forensics.ML.Weights;
using static TorchSharp.torch;

namespace Forensics.ML.Lare;

/// <summary>
/// Content-addressed store of LaRE maps: one safetensors file per key, named by the SHA-256 of (image SHA-256, model
/// hash, t, E, prompt, seed, posterior, resize), under a folder that several runs (and output folders) may share.
/// Files are written to a temporary name and moved into place, so a crash never leaves a partial entry.
/// </summary>
public sealed class LareCache
{
    /// <summary>A cache in <paramref name="folder"/> (created when missing).</summary>
    public LareCache(string folder)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(folder);
        Folder = Path.GetFullPath(folder);
        Directory.CreateDirectory(Folder);
    }

    /// <summary>The cache folder.</summary>
    public string Folder { get; }

    /// <summary>The key of one map: SHA-256 (hex) over every setting that changes it.</summary>
    public static string Key(string imageSha256, string modelHash, LareOptions options, string prompt)
    {
        var parts = new StringBuilder("lare-v1\n")
            .Append("image=").Append(imageSha256).Append('\n')
            .Append("model=").Append(modelHash).Append('\n')
            .Append("prompt=").Append(prompt).Append('\n');
        foreach (var (k, v) in options.Describe()) parts.Append(k).Append('=').Append(v).Append('\n');
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(parts.ToString())));
    }

    /// <summary>Where the entry of <paramref name="key"/> lives (two-character fan-out keeps folders small).</summary>
    public string PathOf(string key) => Path.Combine(Folder, key[..2], key + ".safetensors");

    /// <summary>The cached map of <paramref name="key"/>, or null when absent or unreadable (then it is recomputed).</summary>
    public Tensor? TryGet(string key)
    {
        var path = PathOf(key);
        if (!File.Exists(path)) return null;
        try
        {
            using var loaded = SafeTensors.Load(path);
            if (!loaded.Remove(LareMaps.TensorName, out var map)) return null;
            return map;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // A damaged entry is recomputed and overwritten, never trusted.
            return null;
        }
    }

    /// <summary>Stores <paramref name="map"/> under <paramref name="key"/> with <paramref name="metadata"/>.</summary>
    public void Put(string key, Tensor map, IDictionary<string, string> metadata)
    {
        var path = PathOf(key);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        LareMaps.WriteAtomically(path, map, metadata);
    }
}
