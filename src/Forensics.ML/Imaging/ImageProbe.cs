using System.Runtime.InteropServices;
using SkiaSharp;

namespace Forensics.ML.Imaging;

/// <summary>
/// The outcome of decode-checking one file: its format and size when every pixel decoded, otherwise why not.
/// </summary>
/// <param name="Ok">True when the file decoded completely as PNG, JPEG or WebP.</param>
/// <param name="Format">"png", "jpeg" or "webp" as the content says (not the extension); null when not recognised.</param>
/// <param name="Width">Width in pixels (0 when the header could not be read).</param>
/// <param name="Height">Height in pixels (0 when the header could not be read).</param>
/// <param name="Reason">Why the file is unreadable; null when <paramref name="Ok"/>.</param>
public sealed record ImageProbeResult(bool Ok, string? Format, int Width, int Height, string? Reason);

/// <summary>Decode-checks image files with SkiaSharp: the pixels are really decoded, so truncated and corrupt files are caught.</summary>
public static class ImageProbe
{
    /// <summary>The extensions (lower case, with the dot) of the files a dataset scan treats as images.</summary>
    public static readonly IReadOnlySet<string> ImageExtensions =
        new HashSet<string>(StringComparer.OrdinalIgnoreCase) { ".png", ".jpg", ".jpeg", ".webp" };

    /// <summary>Reason for a file with no content.</summary>
    public const string EmptyFile = "empty file (0 bytes)";

    /// <summary>Reason for a file whose image data stops early.</summary>
    public const string Truncated = "truncated (incomplete image data)";

    /// <summary>Reason for a file whose content is no image format at all.</summary>
    public const string NotAnImage = "not an image (content is not PNG, JPEG or WebP)";

    /// <summary>True when the file name has an image extension (case-insensitive) and is not hidden (dot files such as macOS "._x.png").</summary>
    public static bool IsImageFileName(string path)
    {
        var name = Path.GetFileName(path);
        return !name.StartsWith('.') && ImageExtensions.Contains(Path.GetExtension(name));
    }

    /// <summary>
    /// Reads the file and decode-checks it (see <see cref="Probe(ReadOnlySpan{byte}, long)"/>): only a regular file is
    /// opened, and only one within <paramref name="limits"/> (default <see cref="ImageLimits.Default"/>) is read and decoded.
    /// </summary>
    public static ImageProbeResult Probe(string path, ImageLimits? limits = null)
    {
        limits ??= ImageLimits.Default;
        var (file, reason) = Datasets.ConfinedFile.Open(path, roots: null);
        if (file is null) return Fail(reason!);
        using (file)
        {
            if (file.Length == 0) return Fail(EmptyFile);
            if (file.Length > limits.MaxFileBytes) return Fail(ImageLimits.FileTooLarge(file.Length, limits.MaxFileBytes));
            if (ImageHeader.Read(file.Stream) is { } header && (long)header.Width * header.Height > limits.MaxPixels)
                return Fail(ImageLimits.TooLarge(header.Width, header.Height, limits.MaxPixels), header.Format, header.Width, header.Height);
            using var data = SKData.Create(file.Length);
            unsafe { Datasets.ConfinedFile.ReadExactly(file, new Span<byte>((void*)data.Data, (int)file.Length)); }
            return Probe(data, limits.MaxPixels);
        }
    }

    /// <summary>
    /// Decode-checks encoded image bytes: the content decides the format; an image whose header declares more than
    /// <paramref name="maxPixels"/> pixels is refused before any pixel is decoded; otherwise the full image is decoded into
    /// a pixel buffer (freed at once).
    /// </summary>
    public static ImageProbeResult Probe(ReadOnlySpan<byte> data, long maxPixels = ImageLimits.DefaultMaxPixels)
    {
        if (data.IsEmpty) return Fail(EmptyFile);
        using var skData = SKData.CreateCopy(data);
        return Probe(skData, maxPixels);
    }

    /// <summary>As <see cref="Probe(ReadOnlySpan{byte}, long)"/>, on bytes Skia already holds (not copied again).</summary>
    public static ImageProbeResult Probe(SKData skData, long maxPixels = ImageLimits.DefaultMaxPixels)
    {
        ArgumentNullException.ThrowIfNull(skData);
        var data = skData.AsSpan();
        if (data.IsEmpty) return Fail(EmptyFile);

        using var stream = new SKMemoryStream(skData);
        using var codec = SKCodec.Create(stream, out var createResult);
        if (codec is null)
        {
            var sniffed = Sniff(data);
            if (createResult == SKCodecResult.IncompleteInput && sniffed is not null) return Fail(Truncated, sniffed);
            if (sniffed is "png" or "jpeg" or "webp") return Fail($"decode error: header unreadable ({createResult})", sniffed);
            if (sniffed is not null) return Fail($"unsupported format {sniffed}");
            return Fail(NotAnImage);
        }

        var format = FormatName(codec.EncodedFormat);
        var (width, height) = (codec.Info.Width, codec.Info.Height);
        if (format is not ("png" or "jpeg" or "webp")) return Fail($"unsupported format {format}", null, width, height);
        if (width <= 0 || height <= 0) return Fail($"decode error: invalid size {width}x{height}", format, width, height);
        // The header alone decides: a few hundred bytes can declare gigabytes of pixels.
        if ((long)width * height > maxPixels) return Fail(ImageLimits.TooLarge(width, height, maxPixels), format, width, height);

        // Decode to RGBA whatever the source holds, so every codec is asked for the same, always supported, conversion.
        var alpha = codec.Info.AlphaType == SKAlphaType.Opaque ? SKAlphaType.Opaque : SKAlphaType.Premul;
        var info = new SKImageInfo(width, height, SKColorType.Rgba8888, alpha);
        long size = (long)info.RowBytes * height;

        // Native memory, freed when the check ends (a pooled or managed buffer of this size would stay with the process).
        SKCodecResult result;
        unsafe
        {
            var buffer = NativeMemory.Alloc((nuint)size);
            try { result = codec.GetPixels(info, (IntPtr)buffer); }
            finally { NativeMemory.Free(buffer); }
        }

        return result switch
        {
            SKCodecResult.Success => new ImageProbeResult(true, format, width, height, null),
            SKCodecResult.IncompleteInput => Fail(Truncated, format, width, height),
            SKCodecResult.ErrorInInput => Fail("decode error: corrupt image data", format, width, height),
            _ => Fail($"decode error: {result}", format, width, height),
        };
    }

    private static ImageProbeResult Fail(string reason, string? format = null, int width = 0, int height = 0) =>
        new(false, format, width, height, reason);

    private static string FormatName(SKEncodedImageFormat format) => format switch
    {
        SKEncodedImageFormat.Jpeg => "jpeg",
        _ => format.ToString().ToLowerInvariant(),
    };

    // Magic numbers, for files Skia cannot open: tells "truncated PNG" from "not an image" and names formats Skia lacks.
    private static string? Sniff(ReadOnlySpan<byte> d)
    {
        if (d.StartsWith((ReadOnlySpan<byte>)[0x89, 0x50, 0x4E, 0x47])) return "png";
        if (d.StartsWith((ReadOnlySpan<byte>)[0xFF, 0xD8, 0xFF])) return "jpeg";
        if (d.Length >= 12 && d.StartsWith("RIFF"u8) && d.Slice(8, 4).SequenceEqual("WEBP"u8)) return "webp";
        if (d.StartsWith("GIF8"u8)) return "gif";
        if (d.StartsWith("II*\0"u8) || d.StartsWith("MM\0*"u8)) return "tiff";
        if (d.Length >= 12 && d.Slice(4, 4).SequenceEqual("ftyp"u8))
        {
            var brand = d.Slice(8, 4);
            if (brand.SequenceEqual("avif"u8) || brand.SequenceEqual("avis"u8)) return "avif";
            if (brand.SequenceEqual("heic"u8) || brand.SequenceEqual("heix"u8) || brand.SequenceEqual("mif1"u8)) return "heif";
        }
        return null;
    }
}
