using SkiaSharp;
using TorchSharp;
using static TorchSharp.torch;

namespace Forensics.ML.Imaging;

/// <summary>An image file that could not be decoded; the message names the file and the reason.</summary>
public sealed class ImageDecodeException : IOException
{
    /// <summary>Creates the exception for <paramref name="source"/> (a path, or a label for in-memory bytes).</summary>
    public ImageDecodeException(string source, string reason, Exception? inner = null)
        : base($"Cannot decode image '{source}': {reason}", inner)
    {
        ImagePath = source;
        Reason = reason;
    }

    /// <summary>The path (or label) of the image that failed.</summary>
    public string ImagePath { get; }

    /// <summary>Why it failed, e.g. <see cref="ImageProbe.Truncated"/>.</summary>
    public string Reason { get; }
}

/// <summary>
/// Decodes PNG, JPEG and WebP into float32 tensors [3,H,W] in [0,1], giving the pixels that the reference Python pipeline
/// gets from <c>PIL.Image.open(p).convert('RGB')</c> followed by torchvision's <c>ToTensor()</c> (x/255):
/// <list type="bullet">
/// <item>grayscale is replicated to three channels;</item>
/// <item>alpha is dropped without compositing: the stored (unpremultiplied) RGB is kept, even under alpha 0;</item>
/// <item>16-bit PNG: colour and gray+alpha keep the high byte of each sample (PIL's RGB;16B, RGBA;16B and LA;16B
/// unpackers truncate, v &gt;&gt; 8); 16-bit gray without alpha opens in PIL as a 32-bit integer image and
/// <c>convert('RGB')</c> clips it, so v becomes min(v, 255);</item>
/// <item>EXIF orientation is not applied (PIL's open/convert ignores it);</item>
/// <item>no colour management: embedded ICC profiles and gAMA are ignored, as PIL ignores them.</item>
/// </list>
/// </summary>
public static class ImageDecoder
{
    /// <summary>
    /// Reads and decodes the file at <paramref name="path"/>; errors name the path. Only a regular file within
    /// <paramref name="limits"/> (default <see cref="ImageLimits.Default"/>) is read whole and decoded: its size is
    /// checked first, then the width x height its header declares.
    /// </summary>
    /// <exception cref="ImageDecodeException">The file is missing, unreadable, over a limit, or not a decodable PNG/JPEG/WebP.</exception>
    public static Tensor Decode(string path, ImageLimits? limits = null)
    {
        limits ??= ImageLimits.Default;
        byte[] data;
        try
        {
            var (file, reason) = Datasets.ConfinedFile.Open(path, roots: null);
            if (file is null) throw new ImageDecodeException(path, reason!);
            using (file)
            {
                if (file.Length > limits.MaxFileBytes) throw new ImageDecodeException(path, ImageLimits.FileTooLarge(file.Length, limits.MaxFileBytes));
                if (ImageHeader.Read(file.Stream) is { } header && (long)header.Width * header.Height > limits.MaxPixels)
                    throw new ImageDecodeException(path, ImageLimits.TooLarge(header.Width, header.Height, limits.MaxPixels));
                data = new byte[file.Length];
                Datasets.ConfinedFile.ReadExactly(file, data);
            }
        }
        catch (Exception e) when (e is (IOException or UnauthorizedAccessException) and not ImageDecodeException)
        {
            throw new ImageDecodeException(path, e.Message, e);
        }
        return Decode(data, path, limits.MaxPixels);
    }

    /// <summary>Decodes encoded image bytes; <paramref name="source"/> labels the bytes in error messages.</summary>
    /// <exception cref="ImageDecodeException">The bytes are not a decodable PNG/JPEG/WebP.</exception>
    public static Tensor Decode(ReadOnlySpan<byte> data, string source = "<memory>", long maxPixels = ImageLimits.DefaultMaxPixels)
    {
        using var rgb = DecodeToBytes(data, source, maxPixels);
        return ImageEncoder.FromBytes(rgb);
    }

    /// <summary>
    /// Decodes into a uint8 tensor [H,W,3] (HWC, the layout of <c>np.asarray(img.convert('RGB'))</c>): the exact pixel
    /// values that <see cref="Decode(ReadOnlySpan{byte}, string, long)"/> divides by 255.
    /// </summary>
    public static Tensor DecodeToBytes(ReadOnlySpan<byte> data, string source = "<memory>", long maxPixels = ImageLimits.DefaultMaxPixels)
    {
        if (data.IsEmpty) throw new ImageDecodeException(source, ImageProbe.EmptyFile);

        using var skData = SKData.CreateCopy(data);
        using var codec = SKCodec.Create(skData);
        if (codec is null) throw Failure(data, source, "header unreadable");

        var format = codec.EncodedFormat;
        if (format is not (SKEncodedImageFormat.Png or SKEncodedImageFormat.Jpeg or SKEncodedImageFormat.Webp))
            throw new ImageDecodeException(source, $"unsupported format {format.ToString().ToLowerInvariant()} (PNG, JPEG or WebP expected)");
        var (width, height) = (codec.Info.Width, codec.Info.Height);
        if (width <= 0 || height <= 0) throw new ImageDecodeException(source, $"invalid size {width}x{height}");
        if ((long)width * height > maxPixels) throw new ImageDecodeException(source, ImageLimits.TooLarge(width, height, maxPixels));
        if ((long)width * height * 8 > Array.MaxLength) throw new ImageDecodeException(source, ImageLimits.TooLarge(width, height, Array.MaxLength / 8));

        return format == SKEncodedImageFormat.Png && Is16BitPng(data)
            ? Decode16(data, source)
            : Decode8(codec, data, source, width, height);
    }

    private static Tensor Decode8(SKCodec codec, ReadOnlySpan<byte> data, string source, int width, int height)
    {
        // Unpremul keeps the stored colour of translucent pixels (PIL drops alpha without compositing); no colour space
        // in the target info means Skia applies no colour conversion.
        var alpha = codec.Info.AlphaType == SKAlphaType.Opaque ? SKAlphaType.Opaque : SKAlphaType.Unpremul;
        var info = new SKImageInfo(width, height, SKColorType.Rgba8888, alpha);
        using var rgba = torch.empty([height, width, 4], ScalarType.Byte);
        SKCodecResult result;
        unsafe
        {
            // Skia writes straight into the tensor's storage: one copy of the pixels, no per-pixel calls.
            fixed (byte* pixels = rgba.bytes) result = codec.GetPixels(info, (IntPtr)pixels);
        }
        if (result != SKCodecResult.Success) throw Failure(data, source, result.ToString());
        using var rgb = rgba.narrow(2, 0, 3);
        return rgb.contiguous();
    }

    private static Tensor Decode16(ReadOnlySpan<byte> data, string source)
    {
        Png16Reader.Image png;
        try { png = Png16Reader.Read(data); }
        catch (Exception e) when (e is InvalidDataException or OverflowException)
        {
            throw Failure(data, source, e.Message);
        }

        var rgb = torch.empty([png.Height, png.Width, 3], ScalarType.Byte);
        var output = rgb.bytes;
        var samples = png.Samples;
        int channels = png.Channels;
        for (int pixel = 0, n = png.Width * png.Height; pixel < n; pixel++)
        {
            int at = pixel * channels;
            if (channels >= 3)
            {
                // PIL's RGB;16B / RGBA;16B unpackers keep the high byte.
                output[pixel * 3] = (byte)(samples[at] >> 8);
                output[pixel * 3 + 1] = (byte)(samples[at + 1] >> 8);
                output[pixel * 3 + 2] = (byte)(samples[at + 2] >> 8);
            }
            else
            {
                // Gray alone opens as a 32-bit integer image and convert('RGB') clips; gray+alpha unpacks as LA;16B (high byte).
                var v = channels == 1 ? (byte)Math.Min(samples[at], (ushort)255) : (byte)(samples[at] >> 8);
                output[pixel * 3] = output[pixel * 3 + 1] = output[pixel * 3 + 2] = v;
            }
        }
        return rgb;
    }

    // PNG IHDR: signature (8), length (4), "IHDR" (4), width (4), height (4), bit depth (1), colour type (1).
    private static bool Is16BitPng(ReadOnlySpan<byte> data) =>
        data.Length >= 26 && data.Slice(12, 4).SequenceEqual("IHDR"u8) && data[24] == 16;

    private static ImageDecodeException Failure(ReadOnlySpan<byte> data, string source, string detail)
    {
        // The probe tells truncated files from corrupt ones and from non-images; fall back to Skia's own result.
        var probe = ImageProbe.Probe(data, long.MaxValue);
        return new ImageDecodeException(source, probe.Reason ?? $"decode error: {detail}");
    }
}
