using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Forensics.ML.Benchmarks;
using Forensics.ML.Detectors;
using Forensics.ML.Lare2;
using Forensics.ML.Models;
using Forensics.ML.Models.Clip;
using Forensics.ML.Models.Diffusion;
using Forensics.ML.Runtime;
using Forensics.ML.Training;

namespace Forensics.Cli.Commands;

/// <summary>
/// `forensics bench`: throughput of the detectors, the data pipeline and the autoencoder as fractions of this machine's
/// fp32 peak, all measured in one run; the peak is measured before and after the workloads with the load average, so a
/// noisy run shows as noisy. `--profile` adds where a training step spends its time.
/// </summary>
public static class BenchCommand
{
    /// <summary>One detector workload of the table: a res50nodown configuration at an input size and batch.</summary>
    sealed record DetectorWorkload(string Name, ResNetOptions Options, int Size, int Batch);

    public static Command Create()
    {
        var workloads = new Option<string>("--workloads") { Description = "standard: res50nodown at 96 and 64 px (batch 16), the demo detector (width 16, 64 px, batch 32), the small autoencoder at 256 px and the data pipeline; custom: one res50nodown of --width/--layers at --size/--batch", DefaultValueFactory = _ => "standard" };
        var size = new Option<int>("--size") { Description = "custom: square input size in pixels", DefaultValueFactory = _ => 96 };
        var batch = new Option<int>("--batch") { Description = "custom: batch size", DefaultValueFactory = _ => 16 };
        var width = new Option<int>("--width") { Description = "custom: ResNet base width (64 is the full res50nodown)", DefaultValueFactory = _ => 64 };
        var layers = new Option<string>("--layers") { Description = "custom: bottleneck blocks per stage", DefaultValueFactory = _ => "3,4,6,3" };
        var seconds = new Option<double>("--seconds") { Description = "Time budget per measurement", DefaultValueFactory = _ => 6 };
        var peakSizes = new Option<string>("--peak-sizes") { Description = "Matrix sizes of the fp32 peak reference, measured before and after the workloads", DefaultValueFactory = _ => string.Join(",", MachinePeak.DefaultSizes) };
        var device = new Option<string>("--device") { Description = "cpu, cuda or cuda:N", DefaultValueFactory = _ => "cpu" };
        var threads = new Option<int>("--threads") { Description = "Torch threads (0: one per core)", DefaultValueFactory = _ => 0 };
        var noTuning = new Option<bool>("--no-tuning") { Description = "Leave glibc's malloc thresholds and libtorch's NNPACK switch as they are (to measure what the tuning brings)" };
        var channelsLast = new Option<bool>("--channels-last") { Description = "Detector inputs and convolution weights in channels-last memory format (NHWC strides)" };
        var json = new Option<bool>("--json") { Description = "Print one JSON object instead of a table" };
        var profile = new Option<bool>("--profile") { Description = "Also profile one training step (res50nodown at 96 and 64 px, the demo detector, LaRE² on the demo's CLIP RN): forward, loss, backward, optimizer, syncs, disposal" };
        var profileSteps = new Option<int>("--profile-steps") { Description = "Steps per profile (after two warm-up steps)", DefaultValueFactory = _ => 6 };
        var pipelineImages = new Option<int>("--pipeline-images") { Description = "Synthetic JPEGs for the data-pipeline line (0: skip it)", DefaultValueFactory = _ => 64 };
        var pipelineSize = new Option<int>("--pipeline-size") { Description = "Side of the synthetic JPEGs", DefaultValueFactory = _ => 256 };
        var workers = new Option<int>("--workers") { Description = "Data-pipeline worker threads", DefaultValueFactory = _ => Environment.ProcessorCount };
        var vaeSize = new Option<int>("--vae-size") { Description = "Side of the reconstruction input (0: skip the reconstruction lines)", DefaultValueFactory = _ => 256 };
        var fullVae = new Option<bool>("--full-vae") { Description = "Also time the full SD autoencoder (83.7M parameters, random weights): minutes on a CPU" };
        var torchscript = new Option<FileInfo?>("--torchscript") { HelpName = "FILE", Description = "Compare detector formats instead: this TorchScript ResNet-50 (.pt) against the native TorchSharp ResNet-50 on the same batch" };
        var onnx = new Option<FileInfo?>("--onnx") { HelpName = "FILE", Description = "Compare detector formats instead: this ONNX ResNet-50 against the native TorchSharp ResNet-50" };
        var nativeWeights = new Option<FileInfo?>("--native-weights") { HelpName = "FILE", Description = "With --torchscript/--onnx: the same network's state dict for the native ResNet-50 (then the logits are compared too); default random weights" };
        var explain = new Option<bool>("--explain") { Description = "With --torchscript/--onnx: also time where the gaps come from (native with oneDNN convolutions when they were switched off as wrong here; the ONNX file without graph optimization and with fusions only)" };
        var cmd = new Command("bench", "Measure, in one run: res50nodown forward and train-step images/s, the data pipeline's images/s, autoencoder reconstructions/s, and the fraction of the machine's fp32 peak (best matmul over several sizes, before and after) they reach")
            { workloads, size, batch, width, layers, seconds, peakSizes, device, threads, noTuning, channelsLast, json, profile, profileSteps, pipelineImages, pipelineSize, workers, vaeSize, fullVae, torchscript, onnx, nativeWeights, explain };
        cmd.SetAction(parse =>
        {
            var status = TorchRuntime.EnsureLoaded(new TorchOptions { Device = parse.GetValue(device)!, Threads = parse.GetValue(threads), Tuning = !parse.GetValue(noTuning) });
            if (!status.Loaded)
            {
                Console.Error.WriteLine($"forensics bench: torch did not load: {status.Error}");
                return 2;
            }
            var dev = TorchRuntime.ResolveDevice(parse.GetValue(device)!);
            var budget = TimeSpan.FromSeconds(parse.GetValue(seconds));
            if (parse.GetValue(torchscript) is not null || parse.GetValue(onnx) is not null)
                return Formats(parse.GetValue(torchscript)?.FullName, parse.GetValue(onnx)?.FullName, parse.GetValue(nativeWeights)?.FullName,
                    parse.GetValue(batch), parse.GetValue(size), budget, dev, status, parse.GetValue(json), parse.GetValue(explain));
            int[] sizes, blocks;
            try
            {
                sizes = parse.GetValue(peakSizes)!.Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
                blocks = parse.GetValue(layers)!.Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
            }
            catch (FormatException) { Console.Error.WriteLine("forensics bench: --peak-sizes and --layers take integers such as 1024,2048 and 3,4,6,3"); return 2; }
            if (sizes.Length == 0 || sizes.Any(s => s < 16)) { Console.Error.WriteLine("forensics bench: --peak-sizes needs sizes of at least 16"); return 2; }
            var detectors = parse.GetValue(workloads) switch
            {
                "standard" => new List<DetectorWorkload>
                {
                    new("res50nodown, 96 px, batch 16", ResNetOptions.Res50NoDown(), 96, 16),
                    new("res50nodown, 64 px, batch 16", ResNetOptions.Res50NoDown(), 64, 16),
                    new("demo detector (width 16), 64 px, batch 32", ResNetOptions.Res50NoDown() with { BaseWidth = 16 }, 64, 32),
                },
                "custom" => [new($"res50nodown width {parse.GetValue(width)} [{string.Join(",", blocks)}], {parse.GetValue(size)} px, batch {parse.GetValue(batch)}",
                    ResNetOptions.Res50NoDown() with { BaseWidth = parse.GetValue(width), Layers = blocks }, parse.GetValue(size), parse.GetValue(batch))],
                var other => null,
            };
            if (detectors is null) { Console.Error.WriteLine($"forensics bench: --workloads must be standard or custom, got '{parse.GetValue(workloads)}'"); return 2; }

            var before = MachinePeak.Measure(sizes, budget / 2, dev);
            var rows = new List<Rate>();
            foreach (var w in detectors)
            {
                using var model = new ResNet(w.Options);
                var (forward, train) = Throughput.Detector(model, w.Batch, w.Size, budget, dev, parse.GetValue(channelsLast));
                rows.Add(forward with { Name = $"{w.Name}, forward" });
                rows.Add(train with { Name = $"{w.Name}, train step" });
            }
            if (parse.GetValue(vaeSize) > 0)
            {
                var configs = new List<(string Name, AutoencoderKLConfig Config)> { ("small autoencoder (test config)", AutoencoderKLConfig.SmallTest) };
                if (parse.GetValue(fullVae)) configs.Add(("SD autoencoder (full size)", AutoencoderKLConfig.StableDiffusion));
                foreach (var (name, config) in configs)
                {
                    using var vae = new AutoencoderKL(config);
                    var r = PipelineThroughput.Reconstruction(vae, parse.GetValue(vaeSize), budget, dev);
                    rows.Add(r with { Name = $"{r.Name}, {name}" });
                }
            }
            if (parse.GetValue(pipelineImages) > 0)
                rows.Add(PipelineThroughput.DataPipeline(parse.GetValue(pipelineImages), parse.GetValue(pipelineSize), 96,
                    16, Math.Max(1, parse.GetValue(workers)), budget));
            var profiles = new List<(string Name, StepProfile Profile)>();
            if (parse.GetValue(profile))
            {
                var steps = Math.Max(1, parse.GetValue(profileSteps));
                foreach (var w in detectors)
                    profiles.Add((w.Name, TrainStepProfiler.Detector(w.Options, w.Batch, w.Size, steps, dev)));
                var backbone = new ModifiedResNetOptions { Width = 16, Layers = [1, 1, 1, 1], Heads = 8, OutputDim = 64, InputResolution = 64 };
                profiles.Add(("LaRE² (EGRE on the demo's CLIP RN, width 16, 64 px), batch 24", TrainStepProfiler.Lare2(Lare2Options.For(backbone), 24, steps, dev)));
            }
            var after = MachinePeak.Measure(sizes, budget / 2, dev);
            var peak = Math.Max(before.Gflops, after.Gflops);
            var spread = MachinePeak.Spread(before, after);

            if (parse.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(new
                {
                    device = status.Device, threads = status.Threads, tuning = !parse.GetValue(noTuning), channels_last = parse.GetValue(channelsLast),
                    peak_gflops = peak, peak_before = new { gflops = before.Gflops, load_average = before.LoadAverage, sizes = before.Sizes.Select(r => new { name = r.Name, gflops = r.Gflops }) },
                    peak_after = new { gflops = after.Gflops, load_average = after.LoadAverage, sizes = after.Sizes.Select(r => new { name = r.Name, gflops = r.Gflops }) },
                    peak_spread = spread,
                    rates = rows.Select(r => new { name = r.Name, images_per_second = r.ItemsPerSecond, gflops = r.Gflops, fraction_of_peak = r.FlopsPerItem > 0 ? r.Gflops / peak : (double?)null }),
                    profiles = profiles.Select(p => new
                    {
                        name = p.Name, steps = p.Profile.Steps, images_per_second = p.Profile.Images / Math.Max(p.Profile.TotalSeconds, 1e-12),
                        phases = p.Profile.Breakdown().ToDictionary(b => StepProfile.Name(b.Phase), b => b.Fraction),
                        gc_pause_ms = p.Profile.GcPause.TotalMilliseconds,
                    }),
                }));
                return 0;
            }
            var inv = CultureInfo.InvariantCulture;
            Console.WriteLine($"device {status.Device}, {status.Threads} threads, tuning {(parse.GetValue(noTuning) ? "off" : "on")} (NNPACK {(TorchRuntime.NnpackEnabled is { } n ? (n ? "enabled" : "disabled") : "unknown")}), {(parse.GetValue(channelsLast) ? "channels-last" : "contiguous NCHW")}");
            Console.WriteLine(string.Create(inv, $"fp32 peak (best matmul): before {before.Gflops:0.0} GFLOP/s ({before.Describe()}; load average {before.LoadAverage}), after {after.Gflops:0.0} ({after.Describe()}; load average {after.LoadAverage})"));
            Console.WriteLine(string.Create(inv, $"reference {peak:0.0} GFLOP/s, spread before/after {100 * spread:0.0} %{(spread > 0.1 ? " (NOISY: another process is using the cores; the ratios below are not reliable)" : "")}"));
            Console.WriteLine();
            Console.WriteLine("| workload | img/s | GFLOP/s | of peak |");
            Console.WriteLine("|---|---:|---:|---:|");
            foreach (var r in rows)
                Console.WriteLine(r.FlopsPerItem > 0
                    ? string.Create(inv, $"| {r.Name} | {r.ItemsPerSecond:0.00} | {r.Gflops:0.0} | {100 * r.Gflops / peak:0} % |")
                    : string.Create(inv, $"| {r.Name} | {r.ItemsPerSecond:0.00} | | |"));
            if (profiles.Count > 0)
            {
                var phases = Enum.GetValues<StepPhase>().Where(p => p != StepPhase.DataWait && p != StepPhase.Logging).ToList();
                Console.WriteLine();
                Console.WriteLine("Training step profile (share of the step's wall time; the batch is ready, so no data wait):");
                Console.WriteLine();
                Console.WriteLine("| model | img/s | ms/step | " + string.Join(" | ", phases.Select(StepProfile.Name)) + " | GC pauses |");
                Console.WriteLine("|---|---:|---:|" + string.Concat(phases.Select(_ => "---:|")) + "---:|");
                foreach (var (name, p) in profiles)
                    Console.WriteLine(string.Create(inv, $"| {name} | {p.Images / p.TotalSeconds:0.00} | {1000 * p.TotalSeconds / p.Steps:0} | ") +
                        string.Join(" | ", phases.Select(ph => string.Create(inv, $"{100 * p.Seconds(ph) / p.TotalSeconds:0.0} %"))) +
                        string.Create(inv, $" | {p.GcPause.TotalMilliseconds:0} ms |"));
            }
            return 0;
        });
        return cmd;
    }

    /// <summary>`bench --torchscript/--onnx`: native TorchSharp ResNet-50 vs the packages, images/s and ratios, in one run.</summary>
    static int Formats(string? torchscript, string? onnx, string? nativeWeights, int batch, int size, TimeSpan budget,
        TorchSharp.torch.Device device, TorchStatus status, bool json, bool explain)
    {
        var packages = new List<Detector>();
        Detector? native = null;
        try
        {
            native = nativeWeights is null
                ? Detector.FromModel(new ResNet(ResNetOptions.ResNet50(1)), DetectorArchitectures.ResNet50, device)
                : DetectorCheckpoint.Load(nativeWeights, DetectorArchitectures.ResNet50.Name, device);
            if (torchscript is not null) packages.Add(DetectorCheckpoint.Load(torchscript, DetectorArchitectures.TorchScript.Name, device, null));
            if (onnx is not null) packages.Add(DetectorCheckpoint.Load(onnx, DetectorArchitectures.Onnx.Name, device, null));
            var rates = DetectorFormats.Compare(native.Model, packages, batch, size, budget, sameWeights: nativeWeights is not null, device, explain);
            if (json)
            {
                Console.WriteLine(JsonSerializer.Serialize(new
                {
                    device = status.Device, threads = status.Threads, size, batch,
                    rates = rates.Select(r => new { format = r.Format, images_per_second = r.ImagesPerSecond, ratio_to_native = r.RatioToNative, max_abs_logit_diff = r.MaxAbsLogitDiff }),
                }));
                return 0;
            }
            Console.WriteLine($"device {status.Device}, {status.Threads} threads; ResNet-50 forward, {size}x{size}, batch {batch}, same batch for every format");
            foreach (var r in rates)
                Console.WriteLine($"  {r.Format,-36} {r.ImagesPerSecond,8:F2} img/s  {r.RatioToNative,6:F2}x native" +
                                  (r.MaxAbsLogitDiff is { } d ? $"  max |logit - native| {d:E2}" : ""));
            return 0;
        }
        catch (Exception e) when (e is IOException or InvalidDataException or ArgumentException or DetectorCardException)
        {
            Console.Error.WriteLine($"forensics bench: {e.Message}");
            return 2;
        }
        finally
        {
            native?.Dispose();
            foreach (var p in packages) p.Dispose();
        }
    }
}
