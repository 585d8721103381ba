using System.Diagnostics;
using System.Security.Cryptography;

namespace Forensics.ML.MiniGenImage;

/// <summary>Where the original photographs' Debian packages come from.</summary>
public interface IDebianPackageSource
{
    /// <summary>Extracts package <paramref name="package"/> at <paramref name="version"/> into a new folder under <paramref name="workDir"/> and returns that folder (the package's file tree is below it).</summary>
    string Extract(string package, string version, string workDir);
}

/// <summary>Gets packages with `apt-get download PACKAGE=VERSION` and unpacks them with `dpkg-deb -x` (needs apt's package lists and network).</summary>
public sealed class AptPackageSource : IDebianPackageSource
{
    /// <inheritdoc />
    public string Extract(string package, string version, string workDir)
    {
        var download = Path.Combine(workDir, "deb", package);
        Directory.CreateDirectory(download);
        Run("apt-get", ["download", $"{package}={version}"], download);
        var deb = Directory.EnumerateFiles(download, "*.deb").Order(StringComparer.Ordinal).FirstOrDefault()
                  ?? throw new IOException($"apt-get download {package}={version} left no .deb in '{download}'");
        var tree = Path.Combine(workDir, "tree", package);
        Directory.CreateDirectory(tree);
        Run("dpkg-deb", ["-x", deb, tree], download);
        return tree;
    }

    private static void Run(string program, IReadOnlyList<string> arguments, string workingDirectory)
    {
        var start = new ProcessStartInfo(program) { WorkingDirectory = workingDirectory, RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in arguments) start.ArgumentList.Add(a);
        Process process;
        try { process = Process.Start(start) ?? throw new IOException($"could not start {program}"); }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new IOException($"could not start '{program}' (is this a Debian system with apt?): {e.Message}", e);
        }
        using (process)
        {
            var stderr = process.StandardError.ReadToEndAsync();
            process.StandardOutput.ReadToEnd();
            process.WaitForExit();
            if (process.ExitCode != 0)
                throw new IOException($"{program} {string.Join(' ', arguments)} failed with exit code {process.ExitCode}: {stderr.Result.Trim()}");
        }
    }
}

/// <summary>One photo reproduced: its reduced size and the PNG written.</summary>
public sealed record ReproducedPhoto(string File, int Width, int Height, string PngSha256);

/// <summary>Re-creates a photos folder (reduced PNGs + README.md) from its catalogue and the Debian packages.</summary>
public static class PhotoReproduction
{
    /// <summary>README file name written beside the photos.</summary>
    public const string ReadmeFileName = "README.md";

    /// <summary>
    /// Extracts each catalogued package once (into a temporary folder that is deleted afterwards), verifies every original's
    /// SHA-256, reduces it and writes <c>&lt;out&gt;/&lt;file&gt;</c> and <c>&lt;out&gt;/README.md</c>.
    /// </summary>
    /// <exception cref="PhotoCatalogueException">An original is missing from its package or its SHA-256 differs from the catalogue's.</exception>
    public static IReadOnlyList<ReproducedPhoto> Reproduce(PhotoCatalogue catalogue, string catalogueFile, string outDir,
        IDebianPackageSource source, IProgress<string>? progress = null, CancellationToken ct = default)
    {
        Directory.CreateDirectory(outDir);
        var work = Path.Combine(Path.GetTempPath(), "forensics-photos-" + Guid.NewGuid().ToString("N"));
        var trees = new Dictionary<(string, string), string>();
        var done = new List<ReproducedPhoto>();
        try
        {
            foreach (var photo in catalogue.Photos)
            {
                ct.ThrowIfCancellationRequested();
                if (!trees.TryGetValue((photo.Package, photo.Version), out var tree))
                {
                    progress?.Report($"extracting {photo.Package} {photo.Version}");
                    tree = source.Extract(photo.Package, photo.Version, work);
                    trees[(photo.Package, photo.Version)] = tree;
                }
                var original = Path.Combine(tree, photo.Path.TrimStart('/'));
                if (!File.Exists(original))
                    throw new PhotoCatalogueException(catalogueFile, photo.File, "path",
                        $"Photo catalogue '{catalogueFile}': '{photo.File}': field 'path' names '{photo.Path}', which package {photo.Package} {photo.Version} does not contain.");
                var bytes = File.ReadAllBytes(original);
                done.Add(Write(photo, bytes, catalogueFile, outDir));
                progress?.Report($"{photo.File}: {done[^1].Width}x{done[^1].Height}");
            }
        }
        finally
        {
            if (Directory.Exists(work)) Directory.Delete(work, recursive: true);
        }
        File.WriteAllText(Path.Combine(outDir, ReadmeFileName), catalogue.ToReadme());
        return done;
    }

    /// <summary>Verifies <paramref name="original"/> against the catalogue's SHA-256, reduces it and writes the PNG into <paramref name="outDir"/>.</summary>
    /// <exception cref="PhotoCatalogueException">The bytes' SHA-256 differs from the catalogue's (the message names the photo and the field).</exception>
    public static ReproducedPhoto Write(CataloguePhoto photo, byte[] original, string catalogueFile, string outDir)
    {
        var sha = Convert.ToHexStringLower(SHA256.HashData(original));
        if (sha != photo.Sha256)
            throw new PhotoCatalogueException(catalogueFile, photo.File, "sha256",
                $"Photo catalogue '{catalogueFile}': '{photo.File}': field 'sha256' is {photo.Sha256}, but {photo.Package} {photo.Version} '{photo.Path}' hashes to {sha}.");
        var reduced = RgbImage.Decode(original, $"{photo.Package}:{photo.Path}").Downscale(photo.Downscale);
        var png = reduced.EncodePng();
        File.WriteAllBytes(Path.Combine(outDir, photo.File), png);
        return new ReproducedPhoto(photo.File, reduced.Width, reduced.Height, Convert.ToHexStringLower(SHA256.HashData(png)));
    }
}
