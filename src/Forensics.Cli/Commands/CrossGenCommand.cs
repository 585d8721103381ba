using System.CommandLine;
using Forensics.ML.Datasets;
using Forensics.ML.Detectors;
using Forensics.ML.Evaluation;
using Forensics.ML.Metrics;
using Forensics.ML.Protocols;
using Forensics.ML.Runtime;

namespace Forensics.Cli.Commands;

/// <summary>
/// `forensics crossgen --checkpoint FILE --data DIR [--val DIR] [--threshold fixed|best|calibrated] --out DIR`: GenImage's
/// cross-generator protocol; writes crossgen.json and crossgen.csv (per-generator table + avg) and prints the table.
/// Exit 0 on success, 2 on bad input.
/// </summary>
public static class CrossGenCommand
{
    /// <summary>What one run is asked to do.</summary>
    public sealed record Arguments(string Checkpoint, string Data, string Out)
    {
        public string? Val { get; init; }
        public string? Arch { get; init; }
        public string? Card { get; init; }
        public string Threshold { get; init; } = "fixed";
        public string? Split { get; init; }
        public string? ValSplit { get; init; }
        public string CheckpointChosenOn { get; init; } = "unknown";
        public int Seed { get; init; }
        public int Bootstrap { get; init; } = 1000;
        public string Device { get; init; } = "cpu";
    }

    /// <summary>Builds the `crossgen` verb.</summary>
    public static Command Create()
    {
        var checkpoint = new Option<FileInfo>("--checkpoint") { HelpName = "FILE", Required = true, Description = "Detector weights (.pth or .safetensors; torchscript: .pt, onnx: .onnx)" };
        var data = new Option<DirectoryInfo>("--data") { HelpName = "DIR", Required = true, Description = "Test data: GenImage <generator>/{train,val}/{ai,nature} (each generator with its own reals) or 0_real/1_fake" };
        var val = new Option<DirectoryInfo?>("--val") { HelpName = "DIR", Description = "Validation data that chooses the calibrated threshold" };
        var output = new Option<DirectoryInfo>("--out") { HelpName = "DIR", Required = true, Description = "Folder for crossgen.json and crossgen.csv" };
        var arch = new Option<string?>("--arch") { HelpName = "NAME", Description = $"Architecture: {DetectorArchitectures.Names} (default res50nodown)" };
        var card = new Option<FileInfo?>("--card") { HelpName = "FILE", Description = "With --arch torchscript|onnx: the detector card (JSON: input size policy, value range, mean/std, channel order, batching, output kind); default MODEL.card.json beside the model, else full image, [0,1], ImageNet mean/std, RGB, one logit" };
        var threshold = new Option<string>("--threshold") { HelpName = "fixed|best|calibrated", Description = "Threshold mode(s), comma separated: fixed 0.5, best (chosen on test: flagged), calibrated (max balanced accuracy on --val)", DefaultValueFactory = _ => "fixed" };
        var split = new Option<string?>("--split") { HelpName = "NAME", Description = "Test split of --data (GenImage: val); default every image" };
        var valSplit = new Option<string?>("--val-split") { HelpName = "NAME", Description = "Split of --val to calibrate on; default every image" };
        var chosenOn = new Option<string>("--checkpoint-chosen-on") { HelpName = "SPLIT", Description = "Which split selected the checkpoint (recorded; 'test' or the test split flags the result)", DefaultValueFactory = _ => "unknown" };
        var seed = new Option<int>("--seed") { HelpName = "N", Description = "Seed of the bootstrap", DefaultValueFactory = _ => 0 };
        var bootstrap = new Option<int>("--bootstrap") { HelpName = "N", Description = "Bootstrap resamples for acc_ci and ap_ci (0 = none)", DefaultValueFactory = _ => 1000 };
        var device = new Option<string>("--device") { HelpName = "cpu|cuda[:N]", Description = "Torch device", DefaultValueFactory = _ => "cpu" };
        var cmd = new Command("crossgen", "Cross-generator evaluation (GenImage protocol): per-generator ACC/AP/AUC and their average, per threshold mode")
        {
            checkpoint, data, val, output, arch, card, threshold, split, valSplit, chosenOn, seed, bootstrap, device,
        };
        cmd.SetAction((parse, ct) =>
        {
            var config = parse.InvocationConfiguration;
            var args = new Arguments(parse.GetRequiredValue(checkpoint).FullName, parse.GetRequiredValue(data).FullName, parse.GetRequiredValue(output).FullName)
            {
                Val = parse.GetValue(val)?.FullName,
                Arch = parse.GetValue(arch),
                Card = parse.GetValue(card)?.FullName,
                Threshold = parse.GetValue(threshold) ?? "fixed",
                Split = parse.GetValue(split),
                ValSplit = parse.GetValue(valSplit),
                CheckpointChosenOn = parse.GetValue(chosenOn) ?? "unknown",
                Seed = parse.GetValue(seed),
                Bootstrap = parse.GetValue(bootstrap),
                Device = parse.GetValue(device) ?? "cpu",
            };
            return Task.FromResult(Run(args, config.Output, config.Error, ct));
        });
        return cmd;
    }

    /// <summary>Runs the protocol; tables to <paramref name="output"/>, errors to <paramref name="error"/>; returns the exit code.</summary>
    public static int Run(Arguments args, TextWriter output, TextWriter error, CancellationToken ct = default)
    {
        int Fail(string message)
        {
            error.WriteLine($"forensics crossgen: {message}");
            return ProtocolCli.InputError;
        }

        List<ThresholdMode> modes;
        try { modes = args.Threshold.Split(',').Select(ThresholdModes.Parse).Distinct().ToList(); }
        catch (ArgumentException e) { return Fail($"--threshold: {e.Message}"); }
        if (modes.Contains(ThresholdMode.CalibratedOnValidation) && args.Val is null)
            return Fail("--threshold calibrated needs --val DIR (the validation data the threshold is chosen on)");
        if (args.Bootstrap < 0) return Fail($"--bootstrap must not be negative, not {args.Bootstrap}");
        if (args.Val is not null && !Directory.Exists(args.Val)) return Fail($"validation folder not found: {args.Val}");
        if (!ProtocolCli.TryLoad(args.Checkpoint, args.Data, args.Arch, args.Card, args.Device, error, Fail, out var detector, out var device, out var exit)) return exit;

        using (detector)
        {
            EvaluationSet test;
            EvaluationSet? validation = null;
            try
            {
                test = EvaluationSet.Scan(args.Data, args.Split, new ScanOptions(), ct);
                if (args.Val is not null) validation = EvaluationSet.Scan(args.Val, args.ValSplit, new ScanOptions(), ct);
            }
            catch (Exception e) when (e is DatasetLayoutException or ArgumentException) { return Fail(e.Message); }

            var options = new CrossGenOptions
            {
                Eval = new EvalOptions { Seed = (ulong)args.Seed, Device = device },
                Metrics = new MetricsOptions { BootstrapSamples = args.Bootstrap, Seed = args.Seed },
                Modes = modes,
                CheckpointChosenOn = args.CheckpointChosenOn,
            };
            CrossGeneratorResult result;
            try { result = CrossGeneratorEvaluation.Run(detector!, test, validation, options, null, ct); }
            catch (OperationCanceledException) { error.WriteLine("evaluation cancelled"); return 130; }
            catch (ArgumentException e) { return Fail(e.Message); }

            Directory.CreateDirectory(args.Out);
            File.WriteAllText(Path.Combine(args.Out, CrossGeneratorResult.JsonFileName), result.ToJson().ToJsonString(ProtocolCli.Indented));
            File.WriteAllText(Path.Combine(args.Out, CrossGeneratorResult.CsvFileName), result.ToCsv());
            if (result.Skipped.Count > 0) error.WriteLine($"{result.Skipped.Count} image(s) skipped, listed in {CrossGeneratorResult.JsonFileName}");
            output.Write(result.FormatTable());
            output.WriteLine($"wrote {Path.Combine(args.Out, CrossGeneratorResult.JsonFileName)} and {Path.Combine(args.Out, CrossGeneratorResult.CsvFileName)}");
            return 0;
        }
    }
}

/// <summary>What the protocol verbs (crossgen, sweep) share: input checks and detector loading.</summary>
internal static class ProtocolCli
{
    /// <summary>Exit code of bad input.</summary>
    public const int InputError = 2;

    public static System.Text.Json.JsonSerializerOptions Indented => Forensics.ML.Metrics.ReportJson.Options;

    /// <summary>Checks the files, loads torch and the detector; on failure <paramref name="exit"/> holds the code to return.</summary>
    public static bool TryLoad(string checkpoint, string data, string? arch, string? card, string deviceName, TextWriter error, Func<string, int> fail,
        out Detector? detector, out TorchSharp.torch.Device? device, out int exit)
    {
        detector = null;
        device = null;
        exit = 0;
        if (!File.Exists(checkpoint)) { exit = fail($"checkpoint not found: {checkpoint}"); return false; }
        if (!Directory.Exists(data)) { exit = fail($"data folder not found: {data}"); return false; }
        DetectorArchitecture architecture;
        try { architecture = arch is null ? DetectorArchitectures.Default : DetectorArchitectures.Get(arch); }
        catch (ArgumentException e) { exit = fail(e.Message); return false; }
        var status = TorchRuntime.EnsureLoaded(new TorchOptions { Device = deviceName });
        if (!status.Loaded) { exit = fail($"torch could not be loaded: {status.Error}"); return false; }
        try { device = TorchRuntime.ResolveDevice(deviceName); }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException) { exit = fail(e.Message); return false; }
        if (card is not null && !architecture.IsPackage) { exit = fail($"--card is only used with --arch {DetectorArchitectures.TorchScript.Name} or {DetectorArchitectures.Onnx.Name}"); return false; }
        try { detector = DetectorCheckpoint.Load(checkpoint, architecture.Name, device, card); }
        catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException or ArgumentException or DetectorCardException)
        {
            exit = fail(e.Message);
            return false;
        }
        error.WriteLine(Describe(detector));
        return true;
    }

    /// <summary>One line on stderr: what was loaded, from where (and for packages, the card).</summary>
    public static string Describe(Detector detector) => detector.IsNative
        ? $"loaded {detector.Architecture.Name} (width {detector.Options.BaseWidth}, layers [{string.Join(",", detector.Options.Layers)}], " +
          $"{detector.Options.NumClasses} logit(s)) from {detector.CheckpointPath}"
        : $"loaded {detector.Architecture.Name} from {detector.CheckpointPath} (card {detector.CardPath ?? "default"}: " +
          $"{DetectorCard.PolicyName(detector.Card.SizePolicy)}{(detector.Card.Size is { } s ? $" {s.Height}x{s.Width}" : "")}, " +
          $"{DetectorCard.OutputName(detector.Card.Output)}, batching {detector.Card.Batching.ToString().ToLowerInvariant()})";
}
