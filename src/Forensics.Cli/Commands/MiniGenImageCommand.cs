using System.CommandLine;
using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using Forensics.ML.Generators;
using Forensics.ML.Imaging;
using Forensics.ML.MiniGenImage;

namespace Forensics.Cli.Commands;

/// <summary>
/// `forensics minigenimage --photos DIR --generator DIR [--generator DIR ...] --out DIR`: cuts the real photos into patches
/// (<c>&lt;out&gt;/real-patches/{train,val,test}/</c>) and builds the MiniGenImage GenImage layout from the generators.
/// </summary>
public static class MiniGenImageCommand
{
    /// <summary>Exit code of bad input (catalogue, photos, options, generators).</summary>
    public const int InputError = 2;

    /// <summary>The patch folder's name under the output folder.</summary>
    public const string PatchesFolder = "real-patches";

    /// <summary>Loads a trained generator from its folder (a folder written by train-ldm or train-gan); tests set a test double.</summary>
    public static Func<string, IImageGenerator> GeneratorLoader { get; set; } = GeneratorFolder.Load;

    /// <summary>Builds the `minigenimage` verb.</summary>
    public static Command Create()
    {
        var photos = new Option<DirectoryInfo>("--photos") { HelpName = "DIR", Description = "The photos folder with photos.json (models/demo/photos)", Required = true };
        var generator = new Option<DirectoryInfo[]>("--generator") { HelpName = "DIR", Description = "A trained generator's folder; repeat for each generator", AllowMultipleArgumentsPerToken = false };
        var output = new Option<DirectoryInfo>("--out") { HelpName = "DIR", Description = "The dataset folder to build (or resume)", Required = true };
        var train = new Option<int>("--train") { HelpName = "N", Description = "Fakes per generator in train (as many reals)", DefaultValueFactory = _ => 600 };
        var val = new Option<int>("--val") { HelpName = "N", Description = "Fakes per generator in val (as many reals)", DefaultValueFactory = _ => 150 };
        var test = new Option<int>("--test") { HelpName = "N", Description = "Fakes per generator in test (as many reals)", DefaultValueFactory = _ => 300 };
        var seed = new Option<long>("--seed") { HelpName = "S", Description = "Master seed of the fakes' streams and the real subsets", DefaultValueFactory = _ => 1 };
        var batch = new Option<int>("--batch") { HelpName = "N", Description = "Images per generator call (also the unit of resumption)", DefaultValueFactory = _ => 50 };
        var jpegReal = new Option<bool>("--jpeg-real") { Description = "Format-bias variant (minigenimage-jpegreal): store the reals as JPEG, the fakes stay PNG" };
        var jpegQuality = new Option<int>("--jpeg-quality") { HelpName = "Q", Description = "JPEG quality of the reals with --jpeg-real", DefaultValueFactory = _ => 90 };
        var patchSize = new Option<int>("--patch-size") { HelpName = "PX", Description = "Side of the square patches (the generators' resolution)", DefaultValueFactory = _ => 64 };
        var minStd = new Option<double>("--min-std") { HelpName = "X", Description = "Skip patches whose luma standard deviation (0..255) is below this; 0 keeps all", DefaultValueFactory = _ => 4.0 };
        var minLaplacian = new Option<double>("--min-laplacian") { HelpName = "X", Description = "Skip patches whose high-frequency energy (mean squared Laplacian of luma, 0..255) is below this; 0 keeps all (the demo's MiniGenImage: 100, models/demo/demo.json)", DefaultValueFactory = _ => 0 };
        var maxPerPhoto = new Option<int>("--max-per-photo") { HelpName = "N", Description = "At most N patches per photo; 0 means no cap", DefaultValueFactory = _ => 100 };
        var patchesOnly = new Option<bool>("--patches-only") { Description = $"Only cut the real patches into <out>/{PatchesFolder}/{{train,val,test}}/" };
        var cmd = new Command("minigenimage", "Build MiniGenImage: real photo patches and generator samples in the GenImage layout <out>/<generator>/{train,val,test}/{ai,nature}/")
        {
            photos, generator, output, train, val, test, seed, batch, jpegReal, jpegQuality, patchSize, minStd, minLaplacian, maxPerPhoto, patchesOnly,
        };
        cmd.SetAction((parse, ct) =>
        {
            var config = parse.InvocationConfiguration;
            var options = new MiniGenImageOptions
            {
                Train = parse.GetValue(train),
                Val = parse.GetValue(val),
                Test = parse.GetValue(test),
                Seed = parse.GetValue(seed),
                BatchSize = parse.GetValue(batch),
                RealFormat = parse.GetValue(jpegReal) ? RealImageFormat.Jpeg : RealImageFormat.Png,
                JpegQuality = parse.GetValue(jpegQuality),
            };
            var patchOptions = new PatchOptions { Size = parse.GetValue(patchSize), MinLumaStdDev = parse.GetValue(minStd), MinLaplacianEnergy = parse.GetValue(minLaplacian), MaxPerPhoto = parse.GetValue(maxPerPhoto) };
            var generators = (parse.GetValue(generator) ?? []).Select(d => d.FullName).ToList();
            return Task.FromResult(Run(parse.GetRequiredValue(photos).FullName, generators, parse.GetRequiredValue(output).FullName,
                options, patchOptions, parse.GetValue(patchesOnly), config.Output, config.Error, ct));
        });
        return cmd;
    }

    /// <summary>Cuts the patches and (unless <paramref name="patchesOnly"/>) builds the dataset; returns the exit code.</summary>
    public static int Run(string photosDir, IReadOnlyList<string> generatorDirs, string outDir, MiniGenImageOptions options,
        PatchOptions patchOptions, bool patchesOnly, TextWriter output, TextWriter error, CancellationToken ct = default)
    {
        if (!patchesOnly && generatorDirs.Count == 0)
        {
            error.WriteLine("error: give at least one --generator DIR, or --patches-only");
            return InputError;
        }

        var patchesDir = Path.Combine(outDir, PatchesFolder);
        var generators = new List<IImageGenerator>();
        try
        {
            var patches = PatchCutter.WritePatches(photosDir, patchesDir, patchOptions, new SyncProgress<PatchProgress>(p => error.WriteLine(p.ToString())), ct);
            output.WriteLine($"{patches.Patches.Count} real patches in {patchesDir}: " +
                             string.Join(", ", new[] { "train", "val", "test" }.Select(s => $"{s} {patches.InSplit(s).Count}")));
            if (patchesOnly) return 0;

            var hashes = new Dictionary<string, string>();
            foreach (var dir in generatorDirs)
            {
                var g = GeneratorLoader(dir);
                generators.Add(g);
                hashes[g.Name] = FolderSha256(dir);
            }
            var clock = Stopwatch.StartNew();
            var result = MiniGenImageBuilder.Build(patchesDir, generators, outDir, options with
            {
                WeightsSha256 = hashes,
                Progress = new SyncProgress<MiniGenImageProgress>(p =>
                {
                    if (p.Done == p.Total || clock.Elapsed >= TimeSpan.FromSeconds(2))
                    {
                        clock.Restart();
                        error.WriteLine($"{p.Generator} {p.Split}/{p.Label}: {p.Done}/{p.Total} ({p.Written} written)");
                    }
                }),
            }, ct);
            output.WriteLine($"{options.Name} at {result.Root}: fakes {result.FakesWritten} written, {result.FakesKept} kept; " +
                             $"reals {result.RealsWritten} written, {result.RealsKept} kept; lineage {result.LineagePath}");
            return 0;
        }
        catch (Exception e) when (e is PhotoCatalogueException or ImageDecodeException or ArgumentException or IOException)
        {
            error.WriteLine($"error: {e.Message}");
            return InputError;
        }
        catch (OperationCanceledException)
        {
            error.WriteLine("cancelled (run the same command again to resume)");
            return 130;
        }
        finally
        {
            foreach (var g in generators) g.Dispose();
        }
    }

    // The lineage's weights hash: SHA-256 over each file's relative path and content, ordinal order, so a changed or
    // renamed weights file changes it whatever the generator folder's format.
    private static string FolderSha256(string dir)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var file in Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories)
                     .Select(f => Path.GetRelativePath(dir, f).Replace('\\', '/')).Order(StringComparer.Ordinal))
        {
            sha.AppendData(Encoding.UTF8.GetBytes(file + "\n"));
            sha.AppendData(SHA256.HashData(File.ReadAllBytes(Path.Combine(dir, file))));
        }
        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }

    // Reports on the calling thread: Progress<T> would post to the thread pool and lose the order of the lines.
    private sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
