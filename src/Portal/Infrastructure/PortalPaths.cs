using System.Runtime.InteropServices;
using Microsoft.Extensions.Options;

namespace Portal.Infrastructure;

/// <summary>
/// The data directory and the allowed roots, resolved once to absolute canonical paths. Every user-supplied path goes
/// through <see cref="ResolveAllowed"/>, so the portal never reads outside the configured roots.
/// </summary>
public sealed class PortalPaths
{
    public string DataDir { get; }
    public IReadOnlyList<string> AllowedRoots { get; }
    /// <summary>The demo's models folder (an allowed root) when the demo is enabled, else null.</summary>
    public string? ModelsDir { get; }

    public PortalPaths(IOptions<PortalOptions> options)
    {
        var o = options.Value;
        var env = Environment.GetEnvironmentVariable("PORTAL_DATA_DIR");
        DataDir = Path.GetFullPath(string.IsNullOrWhiteSpace(env) ? o.DataDir : env);
        Directory.CreateDirectory(DataDir);
        DataDir = Canonical(DataDir);
        var roots = o.AllowedRoots.Where(r => !string.IsNullOrWhiteSpace(r)).Select(r => Canonical(Path.GetFullPath(r, DataDir))).ToList();
        if (roots.Count == 0) roots.Add(DataDir);
        // The demo's models folder is read by the demo build and the zoo registration; appended, so relative paths still resolve under the first root.
        if (o.Demo.Enabled)
        {
            ModelsDir = Canonical(o.Demo.ResolvedModelsDir());
            if (!roots.Contains(ModelsDir)) roots.Add(ModelsDir);
        }
        AllowedRoots = roots;
    }

    /// <summary>A path under the data directory.</summary>
    public string Data(params string[] parts) => Path.Combine([DataDir, .. parts]);

    /// <summary>Relative to the data directory, '/' separated (for artifact rows).</summary>
    public string RelativeToData(string path) => Path.GetRelativePath(DataDir, path).Replace('\\', '/');

    /// <summary>
    /// Resolves a user-supplied path (relative paths are taken under the first allowed root), follows symbolic links,
    /// and checks it lies under an allowed root. Throws <see cref="PathNotAllowedException"/> otherwise.
    /// </summary>
    public string ResolveAllowed(string path)
    {
        if (string.IsNullOrWhiteSpace(path)) throw new PathNotAllowedException("path is empty");
        if (path.Contains('\0')) throw new PathNotAllowedException("path contains a NUL character");
        var full = Path.GetFullPath(path, AllowedRoots[0]);
        var canonical = Canonical(full);
        if (!AllowedRoots.Any(root => IsUnder(canonical, root)))
            throw new PathNotAllowedException(
                $"'{path}' is outside the allowed roots ({string.Join(", ", AllowedRoots)}); set Portal:AllowedRoots to allow it");
        return canonical;
    }

    static bool IsUnder(string path, string root) =>
        path == root || path.StartsWith(root.EndsWith('/') ? root : root + "/", StringComparison.Ordinal);

    /// <summary>The canonical path with symbolic links resolved (realpath) when it exists, else the normalised full path.</summary>
    public static string Canonical(string full)
    {
        full = Path.GetFullPath(full);
        if (!OperatingSystem.IsWindows() && (Directory.Exists(full) || File.Exists(full)))
        {
            var p = RealPath(full, IntPtr.Zero);
            if (p != IntPtr.Zero)
            {
                try { return Marshal.PtrToStringUTF8(p) ?? full; }
                finally { Free(p); }
            }
        }
        return full.Length > 1 ? full.TrimEnd('/') : full;
    }

    [DllImport("libc", EntryPoint = "realpath", CharSet = CharSet.Ansi)]
    static extern IntPtr RealPath(string path, IntPtr resolved);

    [DllImport("libc", EntryPoint = "free")]
    static extern void Free(IntPtr p);
}

/// <summary>A user-supplied path that is empty, malformed or outside the allowed roots (HTTP 400).</summary>
public sealed class PathNotAllowedException(string message) : Exception(message);
