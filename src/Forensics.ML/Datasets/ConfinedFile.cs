using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Forensics.ML.Datasets;

/// <summary>What a path names once symbolic links are followed.</summary>
public enum FileKind { Missing, Regular, Directory, Fifo, CharacterDevice, BlockDevice, Socket, Other }

/// <summary>A file opened for reading after <see cref="ConfinedFile.Open"/> checked it; dispose it.</summary>
/// <param name="Stream">The open file (regular, under an allowed root when roots were given).</param>
/// <param name="Length">Its size in bytes when it was opened.</param>
public sealed record OpenedFile(FileStream Stream, long Length) : IDisposable
{
    /// <inheritdoc/>
    public void Dispose() => Stream.Dispose();
}

/// <summary>
/// Opens files that a shared folder's writers do not control: the resolved path (every symbolic link followed) must lie
/// under an allowed root, and only regular files are opened. On Linux a file is opened non-blocking (a FIFO cannot hang
/// the open), and what was opened is checked again through its descriptor, so a file swapped between the check and the
/// open is refused too.
/// </summary>
public static class ConfinedFile
{
    /// <summary>Reason of a file or folder whose resolved path lies outside every allowed root; it is never opened.</summary>
    public const string OutsideRoots = "outside the allowed roots";

    /// <summary>Start of the reason of a FIFO, device or socket; it is never read.</summary>
    public const string NotRegular = "not a regular file";

    /// <summary>The canonical path (every symbolic link resolved, like realpath(3)); null when it does not resolve (a broken link, a missing file).</summary>
    public static string? RealPath(string path) => RealPath(path, out _);

    private static string? RealPath(string path, out string? error)
    {
        error = null;
        if (OperatingSystem.IsWindows())
        {
            try
            {
                var info = new FileInfo(path);
                var target = info.ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? Path.GetFullPath(path);
                if (File.Exists(target) || Directory.Exists(target)) return Path.TrimEndingDirectorySeparator(target);
                error = "no such file";
                return null;
            }
            catch (IOException e) { error = e.Message; return null; }
        }
        var p = Native.realpath(path, IntPtr.Zero);
        if (p == IntPtr.Zero)
        {
            error = Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError());
            return null;
        }
        try { return Marshal.PtrToStringUTF8(p); }
        finally { Native.free(p); }
    }

    /// <summary>True when <paramref name="path"/> (canonical) is one of <paramref name="roots"/> (canonical) or lies below one.</summary>
    public static bool IsUnder(string path, IReadOnlyList<string> roots)
    {
        foreach (var root in roots)
        {
            if (path == root) return true;
            var prefix = root.EndsWith('/') ? root : root + "/";
            if (path.StartsWith(prefix, StringComparison.Ordinal)) return true;
        }
        return false;
    }

    /// <summary>The canonical forms of <paramref name="roots"/> (a root that does not exist is kept as its full path).</summary>
    public static IReadOnlyList<string> CanonicalRoots(IEnumerable<string> roots) =>
        roots.Where(r => !string.IsNullOrWhiteSpace(r))
            .Select(r => RealPath(r) ?? Path.TrimEndingDirectorySeparator(Path.GetFullPath(r)))
            .Distinct(StringComparer.Ordinal).ToList();

    /// <summary>What <paramref name="path"/> names, links followed (Linux: statx; elsewhere regular, directory or missing).</summary>
    public static FileKind KindOf(string path)
    {
        if (!OperatingSystem.IsLinux())
            return Directory.Exists(path) ? FileKind.Directory : File.Exists(path) ? FileKind.Regular : FileKind.Missing;
        return Native.Stat(Native.AtFdCwd, path, 0, out var mode, out _) == 0 ? KindOf(mode) : FileKind.Missing;
    }

    /// <summary>"fifo", "character device", ...: the words used in <see cref="NotRegular"/> reasons.</summary>
    public static string Describe(FileKind kind) => kind switch
    {
        FileKind.Fifo => "fifo",
        FileKind.CharacterDevice => "character device",
        FileKind.BlockDevice => "block device",
        FileKind.Socket => "socket",
        FileKind.Directory => "directory",
        FileKind.Missing => "missing",
        FileKind.Regular => "regular file",
        _ => "special file",
    };

    /// <summary>
    /// Opens <paramref name="path"/> for reading when its resolved path lies under one of <paramref name="roots"/>
    /// (canonical, see <see cref="CanonicalRoots"/>; null: anywhere) and it is a regular file; otherwise returns why not:
    /// <see cref="OutsideRoots"/>, <see cref="NotRegular"/> (fifo, device, socket, directory), or the system's error.
    /// Never blocks on a FIFO.
    /// </summary>
    public static (OpenedFile? File, string? Reason) Open(string path, IReadOnlyList<string>? roots)
    {
        var (real, reason) = Check(path, roots);
        if (real is null) return (null, reason);

        if (!OperatingSystem.IsLinux())
        {
            try
            {
                var managed = new FileStream(real, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1);
                return (new OpenedFile(managed, managed.Length), null);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return (null, e.Message); }
        }

        var fd = Native.open(real, Native.ORdOnly | Native.ONonBlock | Native.OCloExec);
        if (fd < 0) return (null, Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError()));
        var handle = new SafeFileHandle(fd, ownsHandle: true);
        try
        {
            // What was opened, through the descriptor: a path swapped for a FIFO or a link after the checks is caught here.
            if (Native.Stat(fd, "", Native.AtEmptyPath, out var mode, out var size) != 0)
                return Refuse(handle, Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError()));
            if (KindOf(mode) is var opened and not FileKind.Regular) return Refuse(handle, $"{NotRegular} ({Describe(opened)})");
            if (roots is not null && (RealPath($"/proc/self/fd/{fd}") is not { } at || !IsUnder(at, roots))) return Refuse(handle, OutsideRoots);
            return (new OpenedFile(new FileStream(handle, FileAccess.Read, bufferSize: 1), size), null);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The checks of <see cref="Open"/> without opening: the resolved path when it lies under <paramref name="roots"/>
    /// (null: anywhere) and names a regular file (Linux; elsewhere any file), else null and why not.
    /// </summary>
    public static (string? RealPath, string? Reason) Check(string path, IReadOnlyList<string>? roots)
    {
        var real = RealPath(path, out var error);
        if (real is null) return (null, error ?? "does not resolve");
        if (roots is not null && !IsUnder(real, roots)) return (null, OutsideRoots);
        if (!OperatingSystem.IsLinux()) return (real, null);
        // Looked at before opening: opening a device can have effects of its own.
        if (Native.Stat(Native.AtFdCwd, real, 0, out var mode, out _) != 0)
            return (null, Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError()));
        if (KindOf(mode) is var kind and not FileKind.Regular) return (null, $"{NotRegular} ({Describe(kind)})");
        return (real, null);
    }

    /// <summary>True for the reasons of <see cref="Check"/> that are about what the path is (outside the roots, not a regular file), not a passing error.</summary>
    public static bool IsRefusal(string reason) =>
        reason == OutsideRoots || reason.StartsWith(NotRegular, StringComparison.Ordinal);

    private static (OpenedFile?, string?) Refuse(SafeFileHandle handle, string reason)
    {
        handle.Dispose();
        return (null, reason);
    }

    private static FileKind KindOf(int mode) => (mode & 0xF000) switch
    {
        0x8000 => FileKind.Regular,
        0x4000 => FileKind.Directory,
        0x1000 => FileKind.Fifo,
        0x2000 => FileKind.CharacterDevice,
        0x6000 => FileKind.BlockDevice,
        0xC000 => FileKind.Socket,
        _ => FileKind.Other,
    };

    /// <summary>Fills <paramref name="into"/> from the file's start (its size when opened: a file that grows is cut there).</summary>
    public static void ReadExactly(OpenedFile file, Span<byte> into)
    {
        file.Stream.Position = 0;
        var at = 0;
        while (at < into.Length)
        {
            var n = file.Stream.Read(into[at..]);
            if (n == 0) throw new EndOfStreamException($"the file ended after {at} of {into.Length} bytes (changed while read)");
            at += n;
        }
    }

    // libc calls; statx (glibc 2.28+) has one layout on every Linux architecture, unlike struct stat.
    private static class Native
    {
        public const int AtFdCwd = -100;
        public const int AtEmptyPath = 0x1000;
        public const int ORdOnly = 0, ONonBlock = 0x800, OCloExec = 0x80000; // the same on x86-64 and arm64
        private const uint StatxBasicStats = 0x7ff;

        [DllImport("libc", SetLastError = true)]
        public static extern IntPtr realpath(string path, IntPtr resolved);

        [DllImport("libc")]
        public static extern void free(IntPtr p);

        [DllImport("libc", SetLastError = true)]
        public static extern int open(string path, int flags);

        [DllImport("libc", SetLastError = true)]
        private static extern unsafe int statx(int dirfd, string path, int flags, uint mask, byte* buffer);

        /// <summary>statx: stx_mode is the u16 at offset 28, stx_size the u64 at offset 40 of the 256-byte struct.</summary>
        public static unsafe int Stat(int dirfd, string path, int flags, out int mode, out long size)
        {
            var buffer = stackalloc byte[256];
            var rc = statx(dirfd, path, flags, StatxBasicStats, buffer);
            mode = rc == 0 ? *(ushort*)(buffer + 28) : 0;
            size = rc == 0 ? *(long*)(buffer + 40) : 0;
            return rc;
        }
    }
}
