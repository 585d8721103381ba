using System.Runtime.InteropServices;
using Forensics.ML.Imaging;
using Forensics.ML.Runtime;
using SkiaSharp;
using TorchSharp;
using static TorchSharp.torch;

namespace Forensics.ML.MiniGenImage;

/// <summary>
/// An 8-bit RGB image as packed bytes (row-major, H*W*3): the exact pixels that photos and patches are cut, averaged and
/// encoded from, so every step is integer arithmetic and bit-reproducible.
/// </summary>
public sealed class RgbImage
{
    /// <summary>Wraps <paramref name="pixels"/> (H*W*3 bytes, row-major RGB); the array is not copied.</summary>
    public RgbImage(int width, int height, byte[] pixels)
    {
        if (width <= 0 || height <= 0) throw new ArgumentException($"invalid size {width}x{height}");
        if (pixels.Length != (long)width * height * 3)
            throw new ArgumentException($"expected {(long)width * height * 3} bytes for {width}x{height} RGB, got {pixels.Length}", nameof(pixels));
        (Width, Height, Pixels) = (width, height, pixels);
    }

    /// <summary>Width in pixels.</summary>
    public int Width { get; }

    /// <summary>Height in pixels.</summary>
    public int Height { get; }

    /// <summary>The packed RGB bytes, row-major.</summary>
    public byte[] Pixels { get; }

    /// <summary>Decodes a PNG/JPEG/WebP file with the library's decoder (PIL's convert('RGB') semantics); errors name the file.</summary>
    /// <exception cref="ImageDecodeException">The file is missing or not a decodable image.</exception>
    public static RgbImage Load(string path)
    {
        byte[] data;
        try { data = File.ReadAllBytes(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ImageDecodeException(path, e.Message, e);
        }
        return Decode(data, path);
    }

    /// <summary>Decodes encoded image bytes; <paramref name="source"/> labels them in errors.</summary>
    public static RgbImage Decode(ReadOnlySpan<byte> data, string source)
    {
        TorchRuntime.EnsureLoaded();
        using var rgb = ImageDecoder.DecodeToBytes(data, source);
        return new RgbImage((int)rgb.shape[1], (int)rgb.shape[0], rgb.bytes.ToArray());
    }

    /// <summary>Quantises one float image [3,H,W] in [0,1] with the library's rounding (floor(255x + 0.5)).</summary>
    public static RgbImage FromTensor(Tensor image)
    {
        using var rgb = ImageEncoder.ToBytes(image);
        return new RgbImage((int)rgb.shape[1], (int)rgb.shape[0], rgb.bytes.ToArray());
    }

    /// <summary>The <paramref name="width"/> x <paramref name="height"/> region whose top-left corner is (<paramref name="left"/>, <paramref name="top"/>).</summary>
    public RgbImage Crop(int top, int left, int height, int width)
    {
        if (top < 0 || left < 0 || height <= 0 || width <= 0 || top + height > Height || left + width > Width)
            throw new ArgumentOutOfRangeException(nameof(top), $"crop {width}x{height} at ({left},{top}) is outside the {Width}x{Height} image");
        var pixels = new byte[width * height * 3];
        for (var y = 0; y < height; y++)
            Pixels.AsSpan(((top + y) * Width + left) * 3, width * 3).CopyTo(pixels.AsSpan(y * width * 3));
        return new RgbImage(width, height, pixels);
    }

    /// <summary>
    /// Area-averaging downscale by the integer <paramref name="factor"/>: each output pixel is the rounded mean of a
    /// factor x factor block (a pure box filter, so the original JPEG 8x8 grid does not survive for factor &gt;= 2);
    /// the trailing rows and columns that do not fill a block are dropped.
    /// </summary>
    public RgbImage Downscale(int factor)
    {
        if (factor < 1) throw new ArgumentOutOfRangeException(nameof(factor), factor, "the downscale factor must be at least 1");
        if (factor == 1) return new RgbImage(Width, Height, (byte[])Pixels.Clone());
        var (width, height) = (Width / factor, Height / factor);
        if (width == 0 || height == 0)
            throw new ArgumentOutOfRangeException(nameof(factor), factor, $"a {Width}x{Height} image is smaller than one {factor}x{factor} block");
        var pixels = new byte[width * height * 3];
        var area = factor * factor;
        var sums = new int[width * 3];
        for (var y = 0; y < height; y++)
        {
            Array.Clear(sums);
            for (var dy = 0; dy < factor; dy++)
            {
                var row = Pixels.AsSpan((y * factor + dy) * Width * 3, width * factor * 3);
                for (var x = 0; x < width * factor; x++)
                {
                    var o = x / factor * 3;
                    sums[o] += row[x * 3];
                    sums[o + 1] += row[x * 3 + 1];
                    sums[o + 2] += row[x * 3 + 2];
                }
            }
            // Round half up in integers: no floating point, so every machine gets the same bytes.
            for (var i = 0; i < sums.Length; i++) pixels[y * width * 3 + i] = (byte)((sums[i] + area / 2) / area);
        }
        return new RgbImage(width, height, pixels);
    }

    /// <summary>
    /// The high-frequency energy: the mean squared 4-neighbour Laplacian of the luma (0..255 scale) over interior pixels, the
    /// measure of <see cref="Evaluation.ShortcutStatistics.LaplacianEnergy"/>.
    /// </summary>
    public double LaplacianEnergy()
    {
        if (Width < 3 || Height < 3) return 0;
        var luma = new float[Height, Width];
        for (var y = 0; y < Height; y++)
            for (var x = 0; x < Width; x++)
            {
                var i = (y * Width + x) * 3;
                luma[y, x] = (float)(0.299 * Pixels[i] + 0.587 * Pixels[i + 1] + 0.114 * Pixels[i + 2]);
            }
        return Evaluation.ShortcutStatistics.OfLuma(luma).LaplacianEnergy;
    }

    /// <summary>Standard deviation of the luma (0.299 R + 0.587 G + 0.114 B, 0..255 scale) over all pixels.</summary>
    public double LumaStandardDeviation()
    {
        double sum = 0, squares = 0;
        var n = Width * Height;
        for (var i = 0; i < n; i++)
        {
            var luma = 0.299 * Pixels[i * 3] + 0.587 * Pixels[i * 3 + 1] + 0.114 * Pixels[i * 3 + 2];
            sum += luma;
            squares += luma * luma;
        }
        var mean = sum / n;
        return Math.Sqrt(Math.Max(0, squares / n - mean * mean));
    }

    /// <summary>Float tensor [3,H,W] = x / 255.</summary>
    public Tensor ToTensor()
    {
        TorchRuntime.EnsureLoaded();
        return ImageEncoder.FromBytes(Pixels, Height, Width);
    }

    /// <summary>Lossless 8-bit RGB PNG (fixed zlib level and filters, so the same pixels give the same bytes).</summary>
    public byte[] EncodePng() => Encode(p => p.Encode(new SKPngEncoderOptions(SKPngEncoderFilterFlags.AllFilters, 6)));

    /// <summary>Baseline JPEG with 4:2:0 chroma subsampling at <paramref name="quality"/> (1..100).</summary>
    public byte[] EncodeJpeg(int quality)
    {
        if (quality is < 1 or > 100) throw new ArgumentOutOfRangeException(nameof(quality), quality, "quality must be 1..100");
        return Encode(p => p.Encode(new SKJpegEncoderOptions(quality, SKJpegEncoderDownsample.Downsample420, SKJpegEncoderAlphaOption.Ignore)));
    }

    private byte[] Encode(Func<SKPixmap, SKData?> encode)
    {
        var n = Width * Height;
        var rgba = new byte[n * 4];
        for (var i = 0; i < n; i++)
        {
            rgba[i * 4] = Pixels[i * 3];
            rgba[i * 4 + 1] = Pixels[i * 3 + 1];
            rgba[i * 4 + 2] = Pixels[i * 3 + 2];
            rgba[i * 4 + 3] = 255;
        }
        var info = new SKImageInfo(Width, Height, SKColorType.Rgba8888, SKAlphaType.Opaque);
        var handle = GCHandle.Alloc(rgba, GCHandleType.Pinned);
        try
        {
            using var pixmap = new SKPixmap(info, handle.AddrOfPinnedObject(), info.RowBytes);
            using var data = encode(pixmap) ?? throw new InvalidOperationException($"Skia could not encode a {Width}x{Height} image");
            return data.ToArray();
        }
        finally
        {
            handle.Free();
        }
    }
}
