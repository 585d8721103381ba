using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Forensics.ML.Datasets;
using Forensics.ML.Imaging;
using Forensics.ML.Lare;
using Forensics.ML.Runtime;

namespace Forensics.Cli.Commands;

/// <summary>
/// `forensics lare`: LaRE maps (latent reconstruction error, Luo et al. CVPR 2024) of every image of a dataset folder,
/// one safetensors file per image, cached; or, with --benchmark N, seconds per image of LaRE against DIRE.
/// </summary>
public static class LareCommand
{
    /// <summary>Exit code when some images got no map (the others were written).</summary>
    public const int SomeFailed = 1;

    /// <summary>Exit code of bad arguments, a missing model part or an unreadable input folder.</summary>
    public const int UsageError = 2;

    /// <summary>Builds the `lare` verb.</summary>
    public static Command Create()
    {
        var sd = new Option<DirectoryInfo>("--sd") { HelpName = "DIR", Description = "diffusers Stable Diffusion folder (unet/, vae/, text_encoder/, tokenizer/, optional scheduler/)", Required = true };
        var input = new Option<DirectoryInfo>("--input") { HelpName = "DIR", Description = "Image folder (GenImage or 0_real/1_fake layout)", Required = true };
        var output = new Option<DirectoryInfo?>("--out") { HelpName = "DIR", Description = "Output folder: <relative path>.safetensors per image (required unless --benchmark)" };
        var t = new Option<int>("--t") { Description = "Diffusion timestep", DefaultValueFactory = _ => 200 };
        var ensemble = new Option<int>("--ensemble") { Description = "Noise draws per image", DefaultValueFactory = _ => 4 };
        var seed = new Option<long>("--seed") { Description = "Seed of each image's generator", DefaultValueFactory = _ => 0 };
        var prompt = new Option<string>("--prompt") { HelpName = "TEMPLATE", Description = "Text condition; [CLS] is replaced by the ImageNet class of the file name", DefaultValueFactory = _ => "a photo of a [CLS]" };
        var fallback = new Option<string>("--fallback-class") { Description = "Class name for file names without an ImageNet class index", DefaultValueFactory = _ => "object" };
        var posterior = new Option<string>("--posterior") { Description = "sample (the authors') or mean", DefaultValueFactory = _ => "sample" };
        posterior.AcceptOnlyFromAmong("sample", "mean");
        var resize = new Option<int>("--resize") { Description = "Images are resized to N x N", DefaultValueFactory = _ => 256 };
        var batch = new Option<int>("--batch") { Description = "Images per UNet pass (results do not depend on it)", DefaultValueFactory = _ => 4 };
        var cache = new Option<DirectoryInfo?>("--cache") { HelpName = "DIR", Description = "Cache folder (default OUT/.cache)" };
        var device = new Option<string>("--device") { Description = "cpu, cuda or cuda:N", DefaultValueFactory = _ => "cpu" };
        var threads = new Option<int>("--threads") { Description = "Torch threads (0: one per core)", DefaultValueFactory = _ => 0 };
        var benchmark = new Option<int>("--benchmark") { HelpName = "N", Description = "Time LaRE and DIRE on the first N images instead of extracting" };
        var steps = new Option<int>("--steps") { Description = "DDIM steps of DIRE's inversion and regeneration (--benchmark)", DefaultValueFactory = _ => 20 };
        var cmd = new Command("lare", "Extract LaRE maps (latent reconstruction error) with a Stable Diffusion model, or benchmark them against DIRE")
        {
            sd, input, output, t, ensemble, seed, prompt, fallback, posterior, resize, batch, cache, device, threads, benchmark, steps,
        };
        cmd.SetAction((parse, ct) =>
        {
            var config = parse.InvocationConfiguration;
            var options = new LareOptions
            {
                Timestep = parse.GetValue(t),
                Ensemble = parse.GetValue(ensemble),
                Seed = parse.GetValue(seed),
                Prompt = parse.GetValue(prompt)!,
                FallbackClassName = parse.GetValue(fallback)!,
                Posterior = parse.GetValue(posterior) == "mean" ? LarePosterior.Mean : LarePosterior.Sample,
                ResizeTo = parse.GetValue(resize),
                BatchSize = parse.GetValue(batch),
            };
            return Task.FromResult(Run(parse.GetRequiredValue(sd).FullName, parse.GetRequiredValue(input).FullName,
                parse.GetValue(output)?.FullName, options, parse.GetValue(cache)?.FullName, parse.GetValue(device)!,
                parse.GetValue(threads), parse.GetValue(benchmark), parse.GetValue(steps), config.Output, config.Error, ct));
        });
        return cmd;
    }

    /// <summary>Runs the extraction (or the benchmark when <paramref name="benchmark"/> &gt; 0); returns the exit code.</summary>
    public static int Run(string sdDir, string inputDir, string? outDir, LareOptions options, string? cacheDir, string device, int threads,
        int benchmark, int steps, TextWriter output, TextWriter error, CancellationToken ct = default)
    {
        if (benchmark < 0) return Usage(error, "--benchmark must be >= 0");
        if (benchmark == 0 && outDir is null) return Usage(error, "--out is required (or --benchmark N)");
        try { options.Validate(); }
        catch (ArgumentException e) { return Usage(error, e.Message); }

        var status = TorchRuntime.EnsureLoaded(new TorchOptions { Device = device, Threads = threads });
        if (!status.Loaded)
        {
            error.WriteLine($"forensics lare: torch did not load: {status.Error}");
            return UsageError;
        }
        StableDiffusionComponents components;
        try
        {
            components = StableDiffusionComponents.Load(sdDir, TorchRuntime.ResolveDevice(device));
        }
        catch (Exception e) when (e is IOException or InvalidDataException or ArgumentException or InvalidOperationException)
        {
            return Usage(error, e.Message);
        }
        using (components)
        {
            error.WriteLine($"model {components.Folder} (hash {components.ModelHash[..16]}), schedule {(components.ScheduleFromFile ? "scheduler/scheduler_config.json" : "SD 1.5 default")}, device {status.Device}, {status.Threads} threads");
            try
            {
                return benchmark > 0
                    ? Benchmark(components, inputDir, options, benchmark, steps, output, error, ct)
                    : Extract(components, inputDir, outDir!, options, cacheDir, output, error, ct);
            }
            catch (DatasetLayoutException e)
            {
                return Usage(error, e.Message);
            }
            catch (OperationCanceledException)
            {
                error.WriteLine("forensics lare: cancelled");
                return 130;
            }
        }
    }

    private static int Extract(StableDiffusionComponents components, string inputDir, string outDir, LareOptions options, string? cacheDir,
        TextWriter output, TextWriter error, CancellationToken ct)
    {
        var shown = Stopwatch.StartNew();
        var progress = new SyncProgress<LareProgress>(p =>
        {
            // Once a second is enough for a terminal; the last report is always shown.
            if (p.Done != p.Total && shown.Elapsed < TimeSpan.FromSeconds(1)) return;
            shown.Restart();
            error.WriteLine($"lare {p.Done}/{p.Total} images");
        });
        var result = LareMaps.Run(components, inputDir, outDir, options, cacheDir, progress, ct);
        var c = CultureInfo.InvariantCulture;
        output.WriteLine($"LaRE t={options.Timestep} E={options.Ensemble} seed={options.Seed} posterior={options.Describe()["posterior"]} resize={options.ResizeTo} prompt \"{options.Prompt}\"");
        output.WriteLine($"images: {result.Total}, computed {result.Computed}, from cache {result.FromCache}, failed {result.Failed.Count}");
        if (options.IsTemplate)
            output.WriteLine($"prompt fallbacks (no ImageNet class index in the file name, class \"{options.FallbackClassName}\"): {result.PromptFallbacks}");
        output.WriteLine(string.Create(c, $"seconds per computed image: {result.SecondsPerImage:F3} (run {result.TotalSeconds:F1} s)"));
        output.WriteLine($"output: {Path.GetFullPath(outDir)}");
        foreach (var f in result.Failed) output.WriteLine($"  failed {f.Path}: {f.Reason}");
        return result.Failed.Count == 0 ? 0 : SomeFailed;
    }

    private static int Benchmark(StableDiffusionComponents components, string inputDir, LareOptions options, int count, int steps,
        TextWriter output, TextWriter error, CancellationToken ct)
    {
        var manifest = DatasetScanner.Scan(inputDir, new ScanOptions(), ct);
        var images = new List<TorchSharp.torch.Tensor>();
        try
        {
            foreach (var entry in manifest.Images.Take(count))
                images.Add(ImageDecoder.Decode(Path.Combine(manifest.Root, entry.Path)));
            if (images.Count == 0) return Usage(error, $"{inputDir} has no readable image to time");
            if (images.Count < count) error.WriteLine($"forensics lare: only {images.Count} readable images, timing those");
            var cost = LareCost.Measure(components, images, steps, options);
            var c = CultureInfo.InvariantCulture;
            output.WriteLine(string.Create(c, $"images: {cost.Images}, size {options.ResizeTo}x{options.ResizeTo}, LaRE E={options.Ensemble} t={options.Timestep}, DIRE {cost.DireSteps}+{cost.DireSteps} DDIM steps"));
            output.WriteLine(string.Create(c, $"LaRE  {cost.LareSecondsPerImage,9:F4} s/image  ({cost.LareUnetCalls} UNet passes)"));
            output.WriteLine(string.Create(c, $"DIRE  {cost.DireSecondsPerImage,9:F4} s/image  ({cost.DireUnetCalls} UNet passes)"));
            output.WriteLine(string.Create(c, $"ratio DIRE/LaRE: {cost.Ratio:F2}x (the paper claims about 8x)"));
            return 0;
        }
        finally
        {
            foreach (var image in images) image.Dispose();
        }
    }

    private static int Usage(TextWriter error, string message)
    {
        error.WriteLine($"forensics lare: {message}");
        return UsageError;
    }

    // Progress<T> posts to the thread pool; printing in the reporting thread keeps lines in order.
    private sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
