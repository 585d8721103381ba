using System.CommandLine;
using Forensics.ML.MiniGenImage;

namespace Forensics.Cli.Commands;

/// <summary>
/// `forensics photos --catalogue FILE --out DIR`: re-creates MiniGenImage's real photographs (reduced PNGs + README.md) from
/// the Debian packages named in the catalogue. Needs apt and network; the portal never runs it.
/// </summary>
public static class PhotosCommand
{
    /// <summary>Exit code of an invalid catalogue, a missing original or a SHA-256 mismatch.</summary>
    public const int CatalogueError = 2;

    /// <summary>Exit code of a failed download or extraction.</summary>
    public const int PackageError = 3;

    /// <summary>Builds the `photos` verb.</summary>
    public static Command Create()
    {
        var catalogue = new Option<FileInfo>("--catalogue") { HelpName = "FILE", Description = "The photo catalogue (e.g. models/demo/photos/photos.json)", Required = true };
        var output = new Option<DirectoryInfo>("--out") { HelpName = "DIR", Description = "Folder for the reduced PNGs and README.md (e.g. models/demo/photos)", Required = true };
        var cmd = new Command("photos", "Reproduce the catalogued real photographs from Debian packages (apt-get download + dpkg-deb -x, SHA-256 check, integer box downscale, PNG)")
        {
            catalogue, output,
        };
        cmd.SetAction((parse, ct) =>
        {
            var config = parse.InvocationConfiguration;
            return Task.FromResult(Run(parse.GetRequiredValue(catalogue).FullName, parse.GetRequiredValue(output).FullName,
                new AptPackageSource(), config.Output, config.Error, ct));
        });
        return cmd;
    }

    /// <summary>Reproduces the photos of <paramref name="cataloguePath"/> into <paramref name="outDir"/> from <paramref name="source"/>; returns the exit code.</summary>
    public static int Run(string cataloguePath, string outDir, IDebianPackageSource source, TextWriter output, TextWriter error, CancellationToken ct = default)
    {
        try
        {
            var catalogue = PhotoCatalogue.Load(cataloguePath);
            var done = PhotoReproduction.Reproduce(catalogue, cataloguePath, outDir, source, new SyncProgress<string>(error.WriteLine), ct);
            output.WriteLine($"{done.Count} photos written to {outDir} (+ {PhotoReproduction.ReadmeFileName})");
            return 0;
        }
        catch (PhotoCatalogueException e)
        {
            error.WriteLine($"error: {e.Message}");
            return CatalogueError;
        }
        catch (IOException e)
        {
            error.WriteLine($"error: {e.Message}");
            return PackageError;
        }
        catch (OperationCanceledException)
        {
            error.WriteLine("cancelled");
            return 130;
        }
    }

    // Reports on the calling thread: Progress<T> would post to the thread pool and lose the order of the lines.
    private sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
