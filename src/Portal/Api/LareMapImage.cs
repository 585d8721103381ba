using Forensics.ML.Weights;
using SkiaSharp;

namespace Portal.Api;

/// <summary>
/// A LaRE map (the float32 tensor "lare" of shape [C, H, W] that LaRE extraction writes) drawn as a grey image (RGBA): per pixel
/// the L2 norm over the channels, scaled from the map's own minimum (black) to its maximum (white), so where the
/// latent reconstruction error concentrates shows at a glance. Read straight from the file, without torch.
/// </summary>
public static class LareMapImage
{
    /// <summary>The tensor name LaRE extraction writes.</summary>
    public const string TensorName = "lare";

    /// <summary>The map as an 8-bit grey bitmap, or null when the file holds no float32 [C, H, W] tensor "lare".</summary>
    public static SKBitmap? Draw(string path)
    {
        var header = SafeTensors.ReadHeader(path);
        var entry = header.Entries.FirstOrDefault(e => e.Name == TensorName);
        if (entry is not { DType: "F32", Shape.Length: 3 } || entry.Shape.Any(d => d < 1) || entry.End - entry.Begin != 4 * entry.Numel) return null;
        int channels = (int)entry.Shape[0], height = (int)entry.Shape[1], width = (int)entry.Shape[2];
        var bytes = new byte[entry.End - entry.Begin];
        using (var stream = File.OpenRead(path))
        {
            stream.Seek(header.DataStart + entry.Begin, SeekOrigin.Begin);
            stream.ReadExactly(bytes);
        }
        var values = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(bytes);
        var norm = new double[height * width];
        for (var c = 0; c < channels; c++)
            for (var i = 0; i < norm.Length; i++)
            {
                double v = values[c * norm.Length + i];
                norm[i] += v * v;
            }
        for (var i = 0; i < norm.Length; i++) norm[i] = Math.Sqrt(norm[i]);
        var finite = norm.Where(double.IsFinite).DefaultIfEmpty(0).ToList();
        double lo = finite.Min(), hi = finite.Max();
        var bitmap = new SKBitmap(width, height, SKColorType.Rgba8888, SKAlphaType.Premul);
        for (var y = 0; y < height; y++)
            for (var x = 0; x < width; x++)
            {
                var v = norm[y * width + x];
                var g = hi > lo && double.IsFinite(v) ? (byte)Math.Round(255 * (v - lo) / (hi - lo)) : (byte)0;
                bitmap.SetPixel(x, y, new SKColor(g, g, g));
            }
        return bitmap;
    }
}
