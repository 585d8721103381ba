using Forensics.ML.Imaging;

namespace Forensics.ML.Evaluation;

/// <summary>
/// Low-level image statistics a detector could key on instead of generation traces, pooled over a set of images: the
/// mean luma, the mean per-image luma standard deviation (contrast), and the high-frequency energy, the mean squared
/// 4-neighbour Laplacian of luma over interior pixels. Luma is BT.601 (0.299 R + 0.587 G + 0.114 B) in 0..255 units.
/// </summary>
/// <param name="LumaMean">Mean luma over all pixels of all images.</param>
/// <param name="LumaStd">Mean over the images of each image's luma standard deviation.</param>
/// <param name="LaplacianEnergy">Mean over the images of each image's mean squared Laplacian (0..255 units squared).</param>
/// <param name="Images">Images measured.</param>
public sealed record ShortcutStatistics(double LumaMean, double LumaStd, double LaplacianEnergy, int Images)
{
    /// <summary>The statistics of one image given as luma rows (0..255), height x width, both at least 3.</summary>
    public static ShortcutStatistics OfLuma(float[,] luma)
    {
        ArgumentNullException.ThrowIfNull(luma);
        int h = luma.GetLength(0), w = luma.GetLength(1);
        if (h < 3 || w < 3) throw new ArgumentException($"an image of at least 3 x 3 pixels is needed, got {w} x {h}", nameof(luma));
        double sum = 0, sumSq = 0;
        for (var y = 0; y < h; y++)
            for (var x = 0; x < w; x++) { sum += luma[y, x]; sumSq += (double)luma[y, x] * luma[y, x]; }
        var n = (double)h * w;
        var mean = sum / n;
        var std = Math.Sqrt(Math.Max(0, sumSq / n - mean * mean));
        double energy = 0;
        for (var y = 1; y < h - 1; y++)
            for (var x = 1; x < w - 1; x++)
            {
                var lap = 4.0 * luma[y, x] - luma[y - 1, x] - luma[y + 1, x] - luma[y, x - 1] - luma[y, x + 1];
                energy += lap * lap;
            }
        return new ShortcutStatistics(mean, std, energy / ((h - 2.0) * (w - 2.0)), 1);
    }

    /// <summary>The luma (0..255) of an RGB image tensor [3, H, W] with values in [0, 1].</summary>
    public static float[,] Luma(TorchSharp.torch.Tensor rgb)
    {
        ImageTensors.CheckImage(rgb, nameof(rgb));
        var (h, w) = ((int)rgb.shape[1], (int)rgb.shape[2]);
        var values = rgb.contiguous().data<float>().ToArray();
        var luma = new float[h, w];
        var plane = h * w;
        for (var y = 0; y < h; y++)
            for (var x = 0; x < w; x++)
            {
                var i = y * w + x;
                luma[y, x] = (float)(255.0 * (0.299 * values[i] + 0.587 * values[plane + i] + 0.114 * values[2 * plane + i]));
            }
        return luma;
    }

    /// <summary>Pools per-image statistics: means weighted by image count.</summary>
    public static ShortcutStatistics Pool(IEnumerable<ShortcutStatistics> parts)
    {
        var list = parts.ToList();
        var n = list.Sum(p => p.Images);
        if (n == 0) throw new ArgumentException("no images to pool", nameof(parts));
        return new ShortcutStatistics(list.Sum(p => p.LumaMean * p.Images) / n, list.Sum(p => p.LumaStd * p.Images) / n,
            list.Sum(p => p.LaplacianEnergy * p.Images) / n, n);
    }

    /// <summary>The pooled statistics of image files (decoded as the detectors read them); an unreadable file throws, naming it.</summary>
    public static ShortcutStatistics OfFiles(IEnumerable<string> paths) => Pool(paths.Select(path =>
    {
        using var image = ImageDecoder.Decode(path);
        return OfLuma(Luma(image));
    }));
}
