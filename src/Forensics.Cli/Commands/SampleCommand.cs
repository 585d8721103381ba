using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Forensics.ML.Generators;
using Forensics.ML.Imaging;
using Forensics.ML.Runtime;

namespace Forensics.Cli.Commands;

/// <summary>
/// `forensics sample --generator DIR --count N --seed S --out DIR`: writes images FIRST .. FIRST+N-1 of the seed's
/// stream as OUT/NAME_SSSSSS.png. Images depend only on (seed, index). Exit 0 / 2 (bad input) / 1.
/// </summary>
public static class SampleCommand
{
    /// <summary>Builds the `sample` verb.</summary>
    public static Command Create()
    {
        var generator = new Option<DirectoryInfo>("--generator") { HelpName = "DIR", Required = true, Description = "Generator folder written by train-ldm or train-gan" };
        var count = new Option<int>("--count") { HelpName = "N", Required = true, Description = "Images to write" };
        var seed = new Option<long>("--seed") { HelpName = "S", Description = "Seed of the image stream", DefaultValueFactory = _ => 0 };
        var first = new Option<long>("--first") { HelpName = "I", Description = "Index of the first image", DefaultValueFactory = _ => 0 };
        var batch = new Option<int>("--batch") { HelpName = "N", Description = "Images per call (does not change the images)", DefaultValueFactory = _ => 8 };
        var output = new Option<DirectoryInfo>("--out") { HelpName = "DIR", Required = true, Description = "Folder for the PNGs" };
        var threads = new Option<int>("--threads") { HelpName = "N", Description = "Torch intra-op threads (0: torch's default)" };

        var cmd = new Command("sample", "Sample PNG images from a trained generator folder") { generator, count, seed, first, batch, output, threads };
        cmd.SetAction((parse, ct) =>
        {
            var config = parse.InvocationConfiguration;
            return Task.FromResult(CommonTrainingOptions.Guard("sample", config.Error, () =>
            {
                var n = parse.GetValue(count);
                var perCall = parse.GetValue(batch);
                var start = parse.GetValue(first);
                if (n < 1) throw new ArgumentException($"--count must be at least 1, not {n}");
                if (perCall < 1) throw new ArgumentException($"--batch must be at least 1, not {perCall}");
                if (start < 0) throw new ArgumentException($"--first must be 0 or more, not {start}");
                TorchRuntime.EnsureLoaded(new TorchOptions { Threads = parse.GetValue(threads) });
                var outDir = parse.GetRequiredValue(output).FullName;
                var s = parse.GetValue(seed);
                Directory.CreateDirectory(outDir);
                using var model = GeneratorFolder.Load(parse.GetRequiredValue(generator).FullName);
                var watch = Stopwatch.StartNew();
                for (var done = 0; done < n; done += perCall)
                {
                    ct.ThrowIfCancellationRequested();
                    var k = Math.Min(perCall, n - done);
                    using var images = model.Sample(s, start + done, k);
                    for (var i = 0; i < k; i++)
                    {
                        using var image = images[i];
                        var index = start + done + i;
                        ImageEncoder.SavePng(image, Path.Combine(outDir, string.Create(CultureInfo.InvariantCulture, $"{model.Name}_{index:D6}.png")));
                    }
                }
                var rate = n / Math.Max(watch.Elapsed.TotalSeconds, 1e-9);
                config.Output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"sample: wrote {n} images of {model.Name} ({model.Family}, {model.Resolution}px, seed {s}) to {outDir} ({rate:F2} images/s)"));
            }));
        });
        return cmd;
    }
}
