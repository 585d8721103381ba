using SkiaSharp;
using Forensics.ML.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Forensics.ML.Imaging;

/// <summary>
/// Converts image tensors [3,H,W] float32 in [0,1] to 8-bit pixels and encoded files. Quantisation follows torchvision's
/// <c>save_image</c>: byte = floor(255 * clamp(x, 0, 1) + 0.5), computed in float32 as torchvision does.
/// </summary>
public static class ImageEncoder
{
    /// <summary>Writes the image as a lossless 8-bit RGB PNG.</summary>
    public static void SavePng(Tensor image, string path)
    {
        var png = EncodePng(image);
        var directory = Path.GetDirectoryName(Path.GetFullPath(path));
        if (!string.IsNullOrEmpty(directory)) Directory.CreateDirectory(directory);
        File.WriteAllBytes(path, png);
    }

    /// <summary>Encodes the image as a lossless 8-bit PNG.</summary>
    public static byte[] EncodePng(Tensor image) =>
        Encode(image, (pixmap) => pixmap.Encode(new SKPngEncoderOptions(SKPngEncoderFilterFlags.AllFilters, 6)));

    /// <summary>Encodes the image as a baseline JPEG (4:2:0 chroma subsampling, the PIL and OpenCV default) at quality 1..100.</summary>
    public static byte[] EncodeJpeg(Tensor image, int quality)
    {
        CheckQuality(quality);
        return Encode(image, pixmap => pixmap.Encode(
            new SKJpegEncoderOptions(quality, SKJpegEncoderDownsample.Downsample420, SKJpegEncoderAlphaOption.Ignore)));
    }

    /// <summary>Encodes the image as WebP: lossy at quality 1..100, or lossless when <paramref name="lossless"/>.</summary>
    public static byte[] EncodeWebp(Tensor image, int quality, bool lossless = false)
    {
        CheckQuality(quality);
        var compression = lossless ? SKWebpEncoderCompression.Lossless : SKWebpEncoderCompression.Lossy;
        return Encode(image, pixmap => pixmap.Encode(new SKWebpEncoderOptions(compression, quality)));
    }

    /// <summary>
    /// Quantises [3,H,W] float in [0,1] to uint8 [H,W,3] (HWC) with floor(255 * clamp(x,0,1) + 0.5).
    /// </summary>
    public static Tensor ToBytes(Tensor image)
    {
        ImageTensors.CheckImage(image, nameof(image));
        using var scope = torch.NewDisposeScope();
        var bytes = image.to_type(ScalarType.Float32).Times(255f).AddInPlace(0.5f).ClampInPlace(0f, 255f).to_type(ScalarType.Byte)
            .permute(1, 2, 0).contiguous();
        return bytes.MoveToOuterDisposeScope();
    }

    /// <summary>Converts uint8 pixels [H,W,3] (HWC) to float32 [3,H,W] = x / 255, torchvision's <c>ToTensor()</c>.</summary>
    public static Tensor FromBytes(Tensor rgb)
    {
        if (rgb.dtype != ScalarType.Byte || rgb.dim() != 3 || rgb.shape[2] != 3)
            throw new ArgumentException($"expected a uint8 tensor [H,W,3], got {rgb.dtype} [{string.Join(",", rgb.shape)}]", nameof(rgb));
        using var scope = torch.NewDisposeScope();
        var image = rgb.permute(2, 0, 1).to_type(ScalarType.Float32).DivInPlace(255f).contiguous();
        return image.MoveToOuterDisposeScope();
    }

    /// <summary>Converts packed RGB bytes (row-major, H*W*3) to float32 [3,H,W] = x / 255.</summary>
    public static Tensor FromBytes(ReadOnlySpan<byte> rgb, int height, int width)
    {
        if (height <= 0 || width <= 0) throw new ArgumentException($"invalid size {width}x{height}");
        if (rgb.Length != (long)height * width * 3)
            throw new ArgumentException($"expected {(long)height * width * 3} bytes for {width}x{height} RGB, got {rgb.Length}", nameof(rgb));
        using var bytes = torch.empty([height, width, 3], ScalarType.Byte);
        rgb.CopyTo(bytes.bytes);
        return FromBytes(bytes);
    }

    private static byte[] Encode(Tensor image, Func<SKPixmap, SKData?> encode)
    {
        using var rgb = ToBytes(image);
        var (height, width) = ((int)rgb.shape[0], (int)rgb.shape[1]);
        using var rgba = torch.empty([height, width, 4], ScalarType.Byte);
        rgba.narrow(2, 0, 3).copy_(rgb);
        rgba.narrow(2, 3, 1).fill_(255);

        var info = new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Opaque);
        unsafe
        {
            fixed (byte* pixels = rgba.bytes)
            {
                using var pixmap = new SKPixmap(info, (IntPtr)pixels, info.RowBytes);
                using var data = encode(pixmap) ?? throw new InvalidOperationException($"Skia could not encode a {width}x{height} image");
                return data.ToArray();
            }
        }
    }

    private static void CheckQuality(int quality)
    {
        if (quality is < 1 or > 100) throw new ArgumentOutOfRangeException(nameof(quality), quality, "quality must be 1..100");
    }
}

/// <summary>Shape checks shared by the imaging code.</summary>
internal static class ImageTensors
{
    /// <summary>Throws unless <paramref name="image"/> is a floating tensor [3,H,W] with H,W &gt; 0.</summary>
    public static void CheckImage(Tensor image, string name)
    {
        ArgumentNullException.ThrowIfNull(image, name);
        if (image.dim() != 3 || image.shape[0] != 3 || image.shape[1] <= 0 || image.shape[2] <= 0)
            throw new ArgumentException($"expected an image tensor [3,H,W], got [{string.Join(",", image.shape)}]", name);
        if (!image.is_floating_point())
            throw new ArgumentException($"expected a floating-point image tensor, got {image.dtype}", name);
    }
}
