using System.Buffers.Binary;
using System.IO.Compression;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Forensics.Testing;

/// <summary>
/// Real hostile files for scan tests (also compiled into the portal tests): PNG, JPEG and WebP headers that claim huge
/// sizes in a few hundred bytes, FIFOs, sockets, and the peak memory of a process.
/// </summary>
public static class HostileFiles
{
    /// <summary>A valid-CRC PNG whose IHDR declares <paramref name="width"/> x <paramref name="height"/> RGBA, with a little real pixel data (a decompression bomb's header).</summary>
    public static byte[] PngClaiming(int width, int height)
    {
        var ihdr = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, width);
        BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), height);
        ihdr[8] = 8;  // bit depth
        ihdr[9] = 6;  // RGBA
        using var zlib = new MemoryStream();
        using (var z = new ZLibStream(zlib, CompressionLevel.SmallestSize, leaveOpen: true)) z.Write(new byte[64 * 1024]);
        using var png = new MemoryStream();
        png.Write([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]);
        Chunk(png, "IHDR", ihdr);
        Chunk(png, "IDAT", zlib.ToArray());
        Chunk(png, "IEND", []);
        return png.ToArray();
    }

    /// <summary>A JPEG whose baseline frame header (SOF0, after an APP0 segment) declares <paramref name="width"/> x <paramref name="height"/>.</summary>
    public static byte[] JpegClaiming(int width, int height)
    {
        var bytes = new List<byte> { 0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10 };
        bytes.AddRange("JFIF\0"u8.ToArray());
        bytes.AddRange(new byte[] { 1, 1, 0, 0, 1, 0, 1, 0, 0 });
        bytes.AddRange(new byte[] { 0xFF, 0xC0, 0x00, 0x11, 8, (byte)(height >> 8), (byte)height, (byte)(width >> 8), (byte)width, 3 });
        for (byte c = 1; c <= 3; c++) bytes.AddRange(new byte[] { c, 0x11, 0 });
        bytes.AddRange(new byte[] { 0xFF, 0xD9 });
        return [.. bytes];
    }

    /// <summary>A WebP (VP8X extended header) whose canvas is <paramref name="width"/> x <paramref name="height"/>.</summary>
    public static byte[] WebpClaiming(int width, int height)
    {
        var b = new byte[30];
        "RIFF"u8.CopyTo(b);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(4), 22);
        "WEBP"u8.CopyTo(b.AsSpan(8));
        "VP8X"u8.CopyTo(b.AsSpan(12));
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(16), 10);
        int w = width - 1, h = height - 1;
        (b[24], b[25], b[26]) = ((byte)w, (byte)(w >> 8), (byte)(w >> 16));
        (b[27], b[28], b[29]) = ((byte)h, (byte)(h >> 8), (byte)(h >> 16));
        return b;
    }

    private static void Chunk(Stream s, string type, byte[] data)
    {
        Span<byte> be = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(be, data.Length);
        s.Write(be);
        var typed = System.Text.Encoding.ASCII.GetBytes(type).Concat(data).ToArray();
        s.Write(typed);
        BinaryPrimitives.WriteUInt32BigEndian(be, Crc32(typed));
        s.Write(be);
    }

    /// <summary>PNG's CRC-32 (ISO-HDLC polynomial, reflected).</summary>
    public static uint Crc32(ReadOnlySpan<byte> data)
    {
        var crc = 0xFFFFFFFFu;
        foreach (var b in data)
        {
            crc ^= b;
            for (var k = 0; k < 8; k++) crc = (crc & 1) != 0 ? 0xEDB88320u ^ (crc >> 1) : crc >> 1;
        }
        return ~crc;
    }

    /// <summary>Makes a named pipe at <paramref name="path"/> (mkfifo(3)).</summary>
    public static void MakeFifo(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        if (mkfifo(path, Convert.ToUInt32("644", 8)) != 0)
            throw new IOException($"mkfifo {path}: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");
    }

    /// <summary>A Unix socket bound at <paramref name="path"/> (the file stays while the socket lives).</summary>
    public static Socket BindSocket(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        socket.Bind(new UnixDomainSocketEndPoint(path));
        return socket;
    }

    /// <summary>A sparse file of <paramref name="bytes"/> bytes starting with <paramref name="head"/> (no disk used for the rest).</summary>
    public static void Sparse(string path, byte[] head, long bytes)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using var f = new FileStream(path, FileMode.Create, FileAccess.Write);
        f.Write(head);
        f.SetLength(bytes);
    }

    /// <summary>"peak resident memory: N MiB": the line `forensics scan --peak-memory` prints; N parsed back.</summary>
    public static long? PeakMiB(string text)
    {
        var m = System.Text.RegularExpressions.Regex.Match(text, @"peak resident memory: (\d+) MiB");
        return m.Success ? long.Parse(m.Groups[1].Value) : null;
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int mkfifo(string path, uint mode);
}
