using System.CommandLine;
using System.Diagnostics;
using Forensics.ML.Data;
using Forensics.ML.Datasets;
using Forensics.ML.Detectors;
using Forensics.ML.Evaluation;
using Forensics.ML.Imaging;
using Forensics.ML.Lare2;
using Forensics.ML.Metrics;
using Forensics.ML.Training;
using Forensics.ML.Runtime;

namespace Forensics.Cli.Commands;

/// <summary>
/// `forensics eval --checkpoint FILE --data DIR --out DIR`: scores every image of a data folder with a detector
/// checkpoint (the AlignedForensics test protocol by default: full image, batch 1, P(fake) = sigmoid(logit)), writes
/// scores.csv and metrics.json, and prints a per-generator table. Exit 0 on success, 2 on bad input.
/// </summary>
public static class EvalCommand
{
    /// <summary>Exit code of bad input: missing files or folders, wrong architecture, unknown perturbation.</summary>
    public const int InputError = 2;

    /// <summary>What one evaluation run is asked to do.</summary>
    public sealed record Arguments(string Checkpoint, string Data, string Out)
    {
        public string? Arch { get; init; }
        /// <summary>The card of a torchscript or onnx package (null: MODEL.card.json beside it, else the default card).</summary>
        public string? Card { get; init; }
        public string? Perturb { get; init; }
        public string? Split { get; init; }
        public string Batching { get; init; } = "size";
        public int Batch { get; init; } = 16;
        public int Seed { get; init; }
        public int Bootstrap { get; init; } = 1000;
        public string Device { get; init; } = "cpu";
        public int Threads { get; init; }
        public int Workers { get; init; }
        /// <summary>Folder of precomputed LaRE maps (required with --arch lare2).</summary>
        public string? Lare { get; init; }
        /// <summary>Centre-crop side for --arch lare2 (the network's input resolution).</summary>
        public int Crop { get; init; } = 224;
    }

    /// <summary>Builds the `eval` verb.</summary>
    public static Command Create()
    {
        var checkpoint = new Option<FileInfo>("--checkpoint") { HelpName = "FILE", Required = true, Description = "Detector weights: .pth training checkpoint (state dict under 'model', 'state_dict' or 'net', or plain) or .safetensors; with --arch torchscript a torch.jit .pt, with --arch onnx an .onnx" };
        var data = new Option<DirectoryInfo>("--data") { HelpName = "DIR", Required = true, Description = "Data folder: 0_real/1_fake (optionally under split folders) or GenImage <generator>/{train,val}/{ai,nature}" };
        var output = new Option<DirectoryInfo>("--out") { HelpName = "DIR", Required = true, Description = "Folder for scores.csv and metrics.json (created if needed)" };
        var arch = new Option<string?>("--arch") { HelpName = "NAME", Description = $"Architecture: {DetectorArchitectures.Names} or {Lare2Evaluator.Architecture} (default res50nodown; strides are not stored in the weights)" };
        var card = new Option<FileInfo?>("--card") { HelpName = "FILE", Description = "With --arch torchscript|onnx: the detector card (JSON: input size policy, value range, mean/std, channel order, batching, output kind); default MODEL.card.json beside the model, else full image, [0,1], ImageNet mean/std, RGB, one logit" };
        var lare = new Option<DirectoryInfo?>("--lare") { HelpName = "DIR", Description = "With --arch lare2: precomputed LaRE maps, DIR/<image relative path without extension>.safetensors (forensics lare)" };
        var crop = new Option<int>("--crop") { HelpName = "N", Description = "With --arch lare2: pad-if-needed + centre crop side (the network's input resolution)", DefaultValueFactory = _ => 224 };
        var perturb = new Option<string?>("--perturb") { HelpName = "SPEC", Description = "Perturbation before scoring, e.g. jpeg:75+resize:0.5. " + PerturbationSpec.ValidKinds };
        var split = new Option<string?>("--split") { HelpName = "NAME", Description = "Evaluate one split only (val, train, ...; val/valid/validation alike); default every image" };
        var batching = new Option<string>("--batching") { HelpName = "single|size", Description = "size (default): batches of equal-size full images, at most --batch images and 1024 x 1024 pixels each, with the same scores up to float rounding; single: one full image per batch (the reference protocol to the letter)", DefaultValueFactory = _ => "size" };
        var batch = new Option<int>("--batch") { HelpName = "N", Description = "Largest batch with --batching size", DefaultValueFactory = _ => 16 };
        var seed = new Option<int>("--seed") { HelpName = "N", Description = "Seed of random perturbations (per image, from its relative path) and of the bootstrap", DefaultValueFactory = _ => 0 };
        var bootstrap = new Option<int>("--bootstrap") { HelpName = "N", Description = "Bootstrap resamples for acc_ci and ap_ci (0 = none)", DefaultValueFactory = _ => 1000 };
        var device = new Option<string>("--device") { HelpName = "cpu|cuda[:N]", Description = "Torch device", DefaultValueFactory = _ => "cpu" };
        var threads = new Option<int>("--threads") { HelpName = "N", Description = "Torch intra-op threads (0: torch's default)" };
        var workers = new Option<int>("--workers") { HelpName = "N", Description = "Threads decoding images ahead of the network (0: one less than the processors)" };

        var cmd = new Command("eval", "Score a data folder with a detector checkpoint; write scores.csv and metrics.json and print per-generator metrics")
        {
            checkpoint, data, output, arch, card, perturb, split, batching, batch, seed, bootstrap, device, threads, workers, lare, crop,
        };
        cmd.SetAction((parse, ct) =>
        {
            var config = parse.InvocationConfiguration;
            var args = new Arguments(parse.GetRequiredValue(checkpoint).FullName, parse.GetRequiredValue(data).FullName, parse.GetRequiredValue(output).FullName)
            {
                Arch = parse.GetValue(arch),
                Card = parse.GetValue(card)?.FullName,
                Perturb = parse.GetValue(perturb),
                Split = parse.GetValue(split),
                Batching = parse.GetValue(batching) ?? "size",
                Batch = parse.GetValue(batch),
                Seed = parse.GetValue(seed),
                Bootstrap = parse.GetValue(bootstrap),
                Device = parse.GetValue(device) ?? "cpu",
                Threads = parse.GetValue(threads),
                Workers = parse.GetValue(workers),
                Lare = parse.GetValue(lare)?.FullName,
                Crop = parse.GetValue(crop),
            };
            return Task.FromResult(Run(args, config.Output, config.Error, ct));
        });
        return cmd;
    }

    /// <summary>Runs the evaluation; results to <paramref name="output"/>, progress and errors to <paramref name="error"/>; returns the exit code.</summary>
    public static int Run(Arguments args, TextWriter output, TextWriter error, CancellationToken ct = default)
    {
        int Fail(string message)
        {
            error.WriteLine($"forensics eval: {message}");
            return InputError;
        }

        // Cheap checks first, so a typo costs no model load or scan.
        if (!PerturbationSpec.TryParse(args.Perturb, out var perturbation, out var perturbError)) return Fail(perturbError!);
        var batching = args.Batching.Trim().ToLowerInvariant() switch
        {
            "single" => EvalBatching.Single,
            "size" or "bysize" => EvalBatching.BySize,
            _ => (EvalBatching?)null,
        };
        if (batching is null) return Fail($"--batching must be 'single' or 'size', not '{args.Batching}'");
        if (args.Batch < 1) return Fail($"--batch must be at least 1, not {args.Batch}");
        if (args.Seed < 0) return Fail($"--seed must not be negative, not {args.Seed}");
        if (args.Bootstrap < 0) return Fail($"--bootstrap must not be negative, not {args.Bootstrap}");
        if (!File.Exists(args.Checkpoint)) return Fail($"checkpoint not found: {args.Checkpoint}");
        if (!Directory.Exists(args.Data)) return Fail($"data folder not found: {args.Data}");
        if (string.Equals(args.Arch?.Trim(), Lare2Evaluator.Architecture, StringComparison.OrdinalIgnoreCase))
            return RunLare2(args, perturbation, batching.Value, output, error, Fail, ct);
        if (args.Lare is not null) return Fail("--lare is only used with --arch lare2");
        DetectorArchitecture architecture;
        try { architecture = args.Arch is null ? DetectorArchitectures.Default : DetectorArchitectures.Get(args.Arch); }
        catch (ArgumentException e) { return Fail(e.Message); }

        var status = TorchRuntime.EnsureLoaded(new TorchOptions { Device = args.Device, Threads = args.Threads });
        if (!status.Loaded) return Fail($"torch could not be loaded: {status.Error}");
        TorchSharp.torch.Device device;
        try { device = TorchRuntime.ResolveDevice(args.Device); }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException) { return Fail(e.Message); }

        Detector detector;
        if (args.Card is not null && !architecture.IsPackage) return Fail($"--card is only used with --arch {DetectorArchitectures.TorchScript.Name} or {DetectorArchitectures.Onnx.Name}");
        try { detector = DetectorCheckpoint.Load(args.Checkpoint, architecture.Name, device, args.Card); }
        catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException or ArgumentException or DetectorCardException)
        {
            return Fail(e.Message);
        }

        using (detector)
        {
            error.WriteLine(ProtocolCli.Describe(detector));
            EvaluationSet set;
            try { set = EvaluationSet.Scan(args.Data, args.Split, new ScanOptions(), ct); }
            catch (DatasetLayoutException e) { return Fail(e.Message); }
            catch (ArgumentException e) { return Fail(e.Message); }
            if (set.Unreadable.Count > 0) error.WriteLine($"{set.Unreadable.Count} unreadable image(s) will be skipped and listed in metrics.json");

            var options = new EvalOptions
            {
                Perturbation = perturbation,
                Batching = batching.Value,
                MaxBatch = args.Batch,
                Seed = (ulong)args.Seed,
                Device = device,
                Workers = args.Workers > 0 ? args.Workers : new EvalOptions().Workers,
            };
            var clock = Stopwatch.StartNew();
            var lastReport = Stopwatch.StartNew();
            var lastDone = -1;
            var progress = new Progress(p =>
            {
                // Once every few seconds is enough for a terminal; the last report is always shown, once.
                if (p.Done == lastDone || (p.Done != p.Total && lastReport.Elapsed < TimeSpan.FromSeconds(5))) return;
                lastReport.Restart();
                lastDone = p.Done;
                error.WriteLine($"scored {p.Done}/{p.Total} images ({p.Skipped} skipped)");
            });
            ScoringResult result;
            try { result = DetectorEvaluator.Score(detector, set.Images, options, progress, ct); }
            catch (OperationCanceledException)
            {
                error.WriteLine("evaluation cancelled");
                return 130;
            }

            EvaluationReport report;
            try
            {
                report = EvaluationReport.Create(detector, set, result, options,
                    new MetricsOptions { BootstrapSamples = args.Bootstrap, Seed = args.Seed });
            }
            catch (InvalidOperationException e) { return Fail(e.Message); }
            report.Write(args.Out);

            output.Write(report.FormatTable());
            var o = report.Overall;
            output.WriteLine($"overall: n={report.NScored} acc={o.Acc:0.0000} real_acc={Format(o.RealAcc)} fake_acc={Format(o.FakeAcc)} " +
                             $"ap={Format(o.Ap)} auc={Format(o.Auc)} perturbation={report.Perturbation} skipped={report.Skipped.Count} " +
                             $"({clock.Elapsed.TotalSeconds:0.0} s)");
            output.WriteLine($"wrote {Path.Combine(args.Out, EvaluationReport.ScoresFileName)} and {Path.Combine(args.Out, EvaluationReport.MetricsFileName)}");
            return 0;
        }
    }

    // LaRE²: pad-if-needed + centre crop, the image's precomputed map, P(fake) = softmax[:, 1]; same report files.
    private static int RunLare2(Arguments args, PerturbationSpec perturbation, EvalBatching batching, TextWriter output, TextWriter error, Func<string, int> fail, CancellationToken ct)
    {
        if (args.Lare is null) return fail("--arch lare2 needs --lare DIR (the folder of precomputed LaRE maps)");
        if (!Directory.Exists(args.Lare)) return fail($"LaRE map folder not found: {args.Lare}");
        if (!perturbation.IsNone)
            return fail("--perturb is not supported with --arch lare2: the LaRE maps were computed on the unperturbed images");
        if (args.Crop < 1) return fail($"--crop must be positive, not {args.Crop}");
        var status = TorchRuntime.EnsureLoaded(new TorchOptions { Device = args.Device, Threads = args.Threads });
        if (!status.Loaded) return fail($"torch could not be loaded: {status.Error}");
        TorchSharp.torch.Device device;
        try { device = TorchRuntime.ResolveDevice(args.Device); }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException) { return fail(e.Message); }

        Lare2Classifier model;
        try { model = Lare2Classifier.Load(args.Checkpoint); }
        catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException or ArgumentException or DetectorCardException)
        {
            return fail($"{e.Message} {DescribeKeys(args.Checkpoint)}");
        }
        using (model)
        {
            var resolution = model.Options.Backbone.InputResolution;
            if (args.Crop != resolution)
                return fail($"--crop {args.Crop} does not fit the checkpoint: its backbone takes {resolution}x{resolution} inputs (give --crop {resolution})");
            error.WriteLine($"loaded lare2 ({model.Options.Backbone}) from {args.Checkpoint}");
            var maps = new LareMapFolder(args.Lare, model.Options.Egre.LareChannels);
            EvaluationSet set;
            try { set = EvaluationSet.Scan(args.Data, args.Split, new ScanOptions(), ct); }
            catch (DatasetLayoutException e) { return fail(e.Message); }
            catch (ArgumentException e) { return fail(e.Message); }
            if (set.Unreadable.Count > 0) error.WriteLine($"{set.Unreadable.Count} unreadable image(s) will be skipped and listed in metrics.json");
            var options = new Lare2EvalOptions
            {
                CropSize = args.Crop,
                BatchSize = batching == EvalBatching.Single ? 1 : args.Batch,
                Device = device,
                Workers = args.Workers > 0 ? args.Workers : new Lare2EvalOptions().Workers,
            };
            var clock = Stopwatch.StartNew();
            ScoringResult result;
            try { result = Lare2Evaluator.Score(model, set.Images, maps, options, null, ct); }
            catch (OperationCanceledException)
            {
                error.WriteLine("evaluation cancelled");
                return 130;
            }
            if (result.Skipped.Count > 0)
                error.WriteLine($"{result.Skipped.Count} image(s) skipped (missing or malformed LaRE map, or unreadable), e.g. {result.Skipped[0].RelativePath}: {result.Skipped[0].Reason}");
            EvaluationReport report;
            try
            {
                report = Lare2Evaluator.CreateReport(model, args.Checkpoint, DetectorCheckpoint.Sha256(args.Checkpoint), maps, set, result, options,
                    new MetricsOptions { BootstrapSamples = args.Bootstrap, Seed = args.Seed });
            }
            catch (InvalidOperationException e) { return fail(e.Message); }
            report.Write(args.Out);
            output.Write(report.FormatTable());
            var o = report.Overall;
            output.WriteLine($"overall: n={report.NScored} acc={o.Acc:0.0000} real_acc={Format(o.RealAcc)} fake_acc={Format(o.FakeAcc)} " +
                             $"ap={Format(o.Ap)} auc={Format(o.Auc)} skipped={report.Skipped.Count} ({clock.Elapsed.TotalSeconds:0.0} s)");
            output.WriteLine($"wrote {Path.Combine(args.Out, EvaluationReport.ScoresFileName)} and {Path.Combine(args.Out, EvaluationReport.MetricsFileName)}");
            return 0;
        }
    }

    // What the file holds instead, so a checkpoint of another architecture is recognisable from the message.
    private static string DescribeKeys(string path)
    {
        try
        {
            using var weights = Forensics.ML.Weights.WeightsFile.Load(path);
            var names = weights.Names;
            return $"The file has {names.Count} tensor(s): {string.Join(", ", names.Take(8))}{(names.Count > 8 ? ", ..." : "")}; " +
                   $"a LaRE² checkpoint has {Lare2Classifier.BackbonePrefix}*, fc.*, conv.*, attn_pool.*, channel_align.*.";
        }
        catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException or ArgumentException or DetectorCardException)
        {
            return "";
        }
    }

    private static string Format(double? v) => v is { } x ? x.ToString("0.0000", System.Globalization.CultureInfo.InvariantCulture) : "-";

    /// <summary>Reports on the calling thread (System.Progress would post to the thread pool and could reorder lines).</summary>
    private sealed class Progress(Action<EvalProgress> report) : IProgress<EvalProgress>
    {
        public void Report(EvalProgress value) => report(value);
    }
}
