using System.CommandLine;
using System.Text.Json;
using Forensics.ML.Benchmarks;
using Forensics.ML.Detectors;
using Forensics.ML.Models;
using Forensics.ML.Models.Diffusion;
using Forensics.ML.Runtime;

namespace Forensics.Cli.Commands;

/// <summary>`forensics bench`: throughput of the detector, as fractions of this machine's measured matmul rate, in one run.</summary>
public static class BenchCommand
{
    public static Command Create()
    {
        var size = new Option<int>("--size") { Description = "Square input size in pixels (the recipe's training crop is 96)", DefaultValueFactory = _ => 96 };
        var batch = new Option<int>("--batch") { Description = "Batch size", DefaultValueFactory = _ => 16 };
        var width = new Option<int>("--width") { Description = "ResNet base width (64 is the full res50nodown)", DefaultValueFactory = _ => 64 };
        var layers = new Option<string>("--layers") { Description = "Bottleneck blocks per stage", DefaultValueFactory = _ => "3,4,6,3" };
        var seconds = new Option<double>("--seconds") { Description = "Time budget per measurement", DefaultValueFactory = _ => 6 };
        var matmul = new Option<int>("--matmul") { Description = "Matrix size of the reference matmul", DefaultValueFactory = _ => 1024 };
        var device = new Option<string>("--device") { Description = "cpu, cuda or cuda:N", DefaultValueFactory = _ => "cpu" };
        var threads = new Option<int>("--threads") { Description = "Torch threads (0: one per core)", DefaultValueFactory = _ => 0 };
        var json = new Option<bool>("--json") { Description = "Print one JSON object instead of a table" };
        var pipelineImages = new Option<int>("--pipeline-images") { Description = "Synthetic JPEGs for the data-pipeline line (0: skip it)", DefaultValueFactory = _ => 64 };
        var pipelineSize = new Option<int>("--pipeline-size") { Description = "Side of the synthetic JPEGs", DefaultValueFactory = _ => 256 };
        var workers = new Option<int>("--workers") { Description = "Data-pipeline worker threads", DefaultValueFactory = _ => Environment.ProcessorCount };
        var vaeSize = new Option<int>("--vae-size") { Description = "Side of the reconstruction input (0: skip the reconstruction lines)", DefaultValueFactory = _ => 256 };
        var fullVae = new Option<bool>("--full-vae") { Description = "Also time the full SD autoencoder (83.7M parameters, random weights): minutes on a CPU" };
        var torchscript = new Option<FileInfo?>("--torchscript") { HelpName = "FILE", Description = "Compare detector formats instead: this TorchScript ResNet-50 (.pt) against the native TorchSharp ResNet-50 on the same batch" };
        var onnx = new Option<FileInfo?>("--onnx") { HelpName = "FILE", Description = "Compare detector formats instead: this ONNX ResNet-50 against the native TorchSharp ResNet-50" };
        var nativeWeights = new Option<FileInfo?>("--native-weights") { HelpName = "FILE", Description = "With --torchscript/--onnx: the same network's state dict for the native ResNet-50 (then the logits are compared too); default random weights" };
        var cmd = new Command("bench", "Measure, in one run: the data pipeline's images/s, res50nodown forward and train-step images/s, autoencoder reconstructions/s, and the fraction of the machine's matmul FLOP/s they reach")
            { size, batch, width, layers, seconds, matmul, device, threads, json, pipelineImages, pipelineSize, workers, vaeSize, fullVae, torchscript, onnx, nativeWeights };
        cmd.SetAction(parse =>
        {
            var status = TorchRuntime.EnsureLoaded(new TorchOptions { Device = parse.GetValue(device)!, Threads = parse.GetValue(threads) });
            if (!status.Loaded)
            {
                Console.Error.WriteLine($"forensics bench: torch did not load: {status.Error}");
                return 2;
            }
            var dev = TorchRuntime.ResolveDevice(parse.GetValue(device)!);
            var budget = TimeSpan.FromSeconds(parse.GetValue(seconds));
            if (parse.GetValue(torchscript) is not null || parse.GetValue(onnx) is not null)
                return Formats(parse.GetValue(torchscript)?.FullName, parse.GetValue(onnx)?.FullName, parse.GetValue(nativeWeights)?.FullName,
                    parse.GetValue(batch), parse.GetValue(size), budget, dev, status, parse.GetValue(json));
            int[] blocks;
            try { blocks = parse.GetValue(layers)!.Split(',').Select(int.Parse).ToArray(); }
            catch (FormatException) { Console.Error.WriteLine("forensics bench: --layers must be four integers such as 3,4,6,3"); return 2; }
            var options = ResNetOptions.Res50NoDown() with { BaseWidth = parse.GetValue(width), Layers = blocks };

            var reference = Throughput.Matmul(parse.GetValue(matmul), budget, dev);
            using var model = new ResNet(options);
            var (forward, train) = Throughput.Detector(model, parse.GetValue(batch), parse.GetValue(size), budget, dev);
            var rows = new List<Rate> { forward, train };
            var other = new List<Rate>();
            if (parse.GetValue(pipelineImages) > 0)
                other.Add(PipelineThroughput.DataPipeline(parse.GetValue(pipelineImages), parse.GetValue(pipelineSize), parse.GetValue(size),
                    Math.Max(2, parse.GetValue(batch) / 2 * 2), Math.Max(1, parse.GetValue(workers)), budget));
            if (parse.GetValue(vaeSize) > 0)
            {
                var configs = new List<(string Name, AutoencoderKLConfig Config)> { ("small autoencoder (test config)", AutoencoderKLConfig.SmallTest) };
                if (parse.GetValue(fullVae)) configs.Add(("SD autoencoder (full size)", AutoencoderKLConfig.StableDiffusion));
                foreach (var (name, config) in configs)
                {
                    using var vae = new AutoencoderKL(config);
                    var r = PipelineThroughput.Reconstruction(vae, parse.GetValue(vaeSize), budget, dev);
                    other.Add(r with { Name = $"{r.Name}, {name}" });
                }
            }
            if (parse.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(new
                {
                    device = status.Device, threads = status.Threads,
                    matmul_gflops = reference.Gflops,
                    model = new { arch = "res50nodown", width = options.BaseWidth, layers = options.Layers, size = parse.GetValue(size), batch = parse.GetValue(batch) },
                    rates = rows.Concat(other).Select(r => new { name = r.Name, images_per_second = r.ItemsPerSecond, gflops = r.Gflops, fraction_of_matmul = r.FlopsPerItem > 0 ? r.Gflops / reference.Gflops : (double?)null }),
                }));
                return 0;
            }
            Console.WriteLine($"device {status.Device}, {status.Threads} threads");
            Console.WriteLine($"{reference.Name,-34} {reference.Gflops,8:F1} GFLOP/s  (reference, {reference.Repetitions} reps)");
            Console.WriteLine($"res50nodown width {options.BaseWidth} [{string.Join(",", options.Layers)}], {parse.GetValue(size)}x{parse.GetValue(size)}, batch {parse.GetValue(batch)}:");
            foreach (var r in rows)
                Console.WriteLine($"  {r.Name,-32} {r.ItemsPerSecond,8:F2} img/s  {r.Gflops,8:F1} GFLOP/s  {r.Gflops / reference.Gflops,6:P1} of matmul");
            foreach (var r in other)
                Console.WriteLine(r.FlopsPerItem > 0
                    ? $"{r.Name}: {r.ItemsPerSecond,8:F2} img/s  {r.Gflops,8:F1} GFLOP/s  {r.Gflops / reference.Gflops,6:P1} of matmul"
                    : $"{r.Name}: {r.ItemsPerSecond,8:F2} img/s");
            return 0;
        });
        return cmd;
    }

    /// <summary>`bench --torchscript/--onnx`: native TorchSharp ResNet-50 vs the packages, images/s and ratios, in one run.</summary>
    static int Formats(string? torchscript, string? onnx, string? nativeWeights, int batch, int size, TimeSpan budget,
        TorchSharp.torch.Device device, TorchStatus status, bool json)
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
            var rates = DetectorFormats.Compare(native.Model, packages, batch, size, budget, sameWeights: nativeWeights is not null, device);
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
                Console.WriteLine($"  {r.Format,-12} {r.ImagesPerSecond,8:F2} img/s  {r.RatioToNative,6:F2}x native" +
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
