using System.Buffers.Binary;

namespace Forensics.ML.Imaging;

/// <summary>
/// Bounds on what an image file may cost before it is decoded: a file is read whole only up to <see cref="MaxFileBytes"/>,
/// and decoded only when its header's width x height is at most <see cref="MaxPixels"/> (a 300-byte PNG can claim
/// 20000 x 20000 pixels, 1.6 GB once decoded).
/// </summary>
public sealed record ImageLimits
{
    /// <summary>50 megapixels: above the camera photographs of GenImage and ImageNet; 200 MB once decoded to RGBA.</summary>
    public const long DefaultMaxPixels = 50_000_000;

    /// <summary>256 MiB: far above any image at <see cref="DefaultMaxPixels"/> in PNG, JPEG or WebP.</summary>
    public const long DefaultMaxFileBytes = 256L << 20;

    /// <summary>The defaults.</summary>
    public static ImageLimits Default { get; } = new();

    /// <summary>Largest width x height decoded.</summary>
    public long MaxPixels { get; init; } = DefaultMaxPixels;

    /// <summary>Largest file read whole.</summary>
    public long MaxFileBytes { get; init; } = DefaultMaxFileBytes;

    /// <summary>Start of the reason of an image over <see cref="MaxPixels"/>.</summary>
    public const string TooLargePrefix = "image too large";

    /// <summary>"image too large (W x H; the limit is N pixels)".</summary>
    public static string TooLarge(long width, long height, long maxPixels) =>
        $"{TooLargePrefix} ({width} x {height}; the limit is {maxPixels} pixels)";

    /// <summary>"file too large (N bytes; the limit is M bytes)".</summary>
    public static string FileTooLarge(long bytes, long maxBytes) => $"file too large ({bytes} bytes; the limit is {maxBytes} bytes)";

    /// <summary>Throws for a limit below 1 (the message names the setting).</summary>
    public void Validate()
    {
        if (MaxPixels < 1) throw new ArgumentException($"MaxPixels must be at least 1; got {MaxPixels}.");
        if (MaxFileBytes < 1) throw new ArgumentException($"MaxFileBytes must be at least 1; got {MaxFileBytes}.");
    }
}

/// <summary>
/// Width and height from an image file's header without decoding it: PNG's IHDR, JPEG's SOFn (found by walking the marker
/// segments), WebP's VP8/VP8L/VP8X chunk. A few reads and seeks, whatever the file's size.
/// </summary>
public static class ImageHeader
{
    /// <summary>The format ("png", "jpeg", "webp") and size the header declares; null when it is none of them or cut short.</summary>
    public static (string Format, int Width, int Height)? Read(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        stream.Position = 0;
        Span<byte> head = stackalloc byte[30];
        var n = Fill(stream, head);
        head = head[..n];
        if (n >= 24 && head.StartsWith((ReadOnlySpan<byte>)[0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) && head.Slice(12, 4).SequenceEqual("IHDR"u8))
            return ("png", (int)Math.Min(BinaryPrimitives.ReadUInt32BigEndian(head[16..]), int.MaxValue),
                (int)Math.Min(BinaryPrimitives.ReadUInt32BigEndian(head[20..]), int.MaxValue));
        if (n >= 30 && head.StartsWith("RIFF"u8) && head.Slice(8, 4).SequenceEqual("WEBP"u8))
        {
            var chunk = head.Slice(12, 4);
            if (chunk.SequenceEqual("VP8 "u8) && head[23] == 0x9D && head[24] == 0x01 && head[25] == 0x2A)
                return ("webp", BinaryPrimitives.ReadUInt16LittleEndian(head[26..]) & 0x3FFF, BinaryPrimitives.ReadUInt16LittleEndian(head[28..]) & 0x3FFF);
            if (chunk.SequenceEqual("VP8L"u8) && head[20] == 0x2F)
            {
                var bits = BinaryPrimitives.ReadUInt32LittleEndian(head[21..]);
                return ("webp", (int)(bits & 0x3FFF) + 1, (int)((bits >> 14) & 0x3FFF) + 1);
            }
            if (chunk.SequenceEqual("VP8X"u8))
                return ("webp", (head[24] | head[25] << 8 | head[26] << 16) + 1, (head[27] | head[28] << 8 | head[29] << 16) + 1);
            return null;
        }
        if (n >= 4 && head[0] == 0xFF && head[1] == 0xD8) return ReadJpeg(stream);
        return null;
    }

    // Segments after SOI: FF, marker, and (except for standalone markers) a big-endian length that counts itself.
    private static (string, int, int)? ReadJpeg(Stream stream)
    {
        stream.Position = 2;
        Span<byte> seg = stackalloc byte[7];
        while (true)
        {
            int b;
            do { b = stream.ReadByte(); } while (b is not (0xFF or -1));
            do { b = stream.ReadByte(); } while (b == 0xFF); // fill bytes
            if (b == -1) return null;
            if (b is 0x01 or (>= 0xD0 and <= 0xD8)) continue; // TEM, RSTn, SOI: no length
            if (b is 0xD9 or 0xDA) return null;               // end of image, or scan data, before any frame header
            if (Fill(stream, seg[..2]) < 2) return null;
            var length = BinaryPrimitives.ReadUInt16BigEndian(seg);
            if (length < 2) return null;
            // SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC): precision, height, width.
            if (b is >= 0xC0 and <= 0xCF and not (0xC4 or 0xC8 or 0xCC))
            {
                if (Fill(stream, seg[..5]) < 5) return null;
                return ("jpeg", BinaryPrimitives.ReadUInt16BigEndian(seg[3..]), BinaryPrimitives.ReadUInt16BigEndian(seg[1..]));
            }
            var next = stream.Position + length - 2;
            if (next > stream.Length) return null;
            stream.Position = next;
        }
    }

    private static int Fill(Stream stream, Span<byte> buffer)
    {
        var at = 0;
        while (at < buffer.Length)
        {
            var n = stream.Read(buffer[at..]);
            if (n == 0) break;
            at += n;
        }
        return at;
    }
}
