using System.CommandLine;
using Forensics.ML.Datasets;
using Forensics.ML.Detectors;
using Forensics.ML.Evaluation;
using Forensics.ML.Metrics;
using Forensics.ML.Protocols;

namespace Forensics.Cli.Commands;

/// <summary>
/// `forensics sweep --checkpoint FILE --data DIR --axis jpeg|webp|resize|blur|noise [--severities clean,100,90,...] --out DIR`:
/// a robustness curve; writes sweep.json and sweep.csv (axis,severity,generator,metric,value) and prints a table.
/// Exit 0 on success, 2 on bad input.
/// </summary>
public static class SweepCommand
{
    /// <summary>What one run is asked to do.</summary>
    public sealed record Arguments(string Checkpoint, string Data, string Axis, string Out)
    {
        public string? Severities { get; init; }
        public string? Arch { get; init; }
        public string? Card { get; init; }
        public string? Split { get; init; }
        public int Seed { get; init; }
        public int Bootstrap { get; init; } = 200;
        public string Device { get; init; } = "cpu";
    }

    /// <summary>Builds the `sweep` verb.</summary>
    public static Command Create()
    {
        var checkpoint = new Option<FileInfo>("--checkpoint") { HelpName = "FILE", Required = true, Description = "Detector weights (.pth or .safetensors; torchscript: .pt, onnx: .onnx)" };
        var data = new Option<DirectoryInfo>("--data") { HelpName = "DIR", Required = true, Description = "Data folder (GenImage or 0_real/1_fake)" };
        var axis = new Option<string>("--axis") { HelpName = string.Join('|', SweepAxes.All), Required = true, Description = "Perturbation axis" };
        var severities = new Option<string?>("--severities") { HelpName = "LIST", Description = "Comma list, 'clean' = none; default per axis: jpeg/webp clean,100..30 step 10; resize clean,0.25..2.0; blur clean,1..5; noise clean,5,10,15,20" };
        var output = new Option<DirectoryInfo>("--out") { HelpName = "DIR", Required = true, Description = "Folder for sweep.json and sweep.csv" };
        var arch = new Option<string?>("--arch") { HelpName = "NAME", Description = $"Architecture: {DetectorArchitectures.Names} (default res50nodown)" };
        var card = new Option<FileInfo?>("--card") { HelpName = "FILE", Description = "With --arch torchscript|onnx: the detector card (JSON: input size policy, value range, mean/std, channel order, batching, output kind); default MODEL.card.json beside the model, else full image, [0,1], ImageNet mean/std, RGB, one logit" };
        var split = new Option<string?>("--split") { HelpName = "NAME", Description = "Split of --data; default every image" };
        var seed = new Option<int>("--seed") { HelpName = "N", Description = "Seed of noise perturbations and of the bootstrap", DefaultValueFactory = _ => 0 };
        var bootstrap = new Option<int>("--bootstrap") { HelpName = "N", Description = "Bootstrap resamples per cell (0 = none)", DefaultValueFactory = _ => 200 };
        var device = new Option<string>("--device") { HelpName = "cpu|cuda[:N]", Description = "Torch device", DefaultValueFactory = _ => "cpu" };
        var cmd = new Command("sweep", "Robustness sweep along one perturbation axis: metrics and mean P(fake) per severity")
        {
            checkpoint, data, axis, severities, output, arch, card, split, seed, bootstrap, device,
        };
        cmd.SetAction((parse, ct) =>
        {
            var config = parse.InvocationConfiguration;
            var args = new Arguments(parse.GetRequiredValue(checkpoint).FullName, parse.GetRequiredValue(data).FullName,
                parse.GetRequiredValue(axis), parse.GetRequiredValue(output).FullName)
            {
                Severities = parse.GetValue(severities),
                Arch = parse.GetValue(arch),
                Card = parse.GetValue(card)?.FullName,
                Split = parse.GetValue(split),
                Seed = parse.GetValue(seed),
                Bootstrap = parse.GetValue(bootstrap),
                Device = parse.GetValue(device) ?? "cpu",
            };
            return Task.FromResult(Run(args, config.Output, config.Error, ct));
        });
        return cmd;
    }

    /// <summary>Runs the sweep; table to <paramref name="output"/>, progress and errors to <paramref name="error"/>; returns the exit code.</summary>
    public static int Run(Arguments args, TextWriter output, TextWriter error, CancellationToken ct = default)
    {
        int Fail(string message)
        {
            error.WriteLine($"forensics sweep: {message}");
            return ProtocolCli.InputError;
        }

        string axis;
        IReadOnlyList<double?> severities;
        try
        {
            axis = SweepAxes.Check(args.Axis);
            severities = args.Severities is null ? SweepAxes.DefaultSeverities(axis) : SweepAxes.ParseSeverities(axis, args.Severities);
        }
        catch (ArgumentException e) { return Fail(e.Message); }
        if (args.Bootstrap < 0) return Fail($"--bootstrap must not be negative, not {args.Bootstrap}");
        if (args.Seed < 0) return Fail($"--seed must not be negative, not {args.Seed}");
        if (!ProtocolCli.TryLoad(args.Checkpoint, args.Data, args.Arch, args.Card, args.Device, error, Fail, out var detector, out var device, out var exit)) return exit;

        using (detector)
        {
            EvaluationSet set;
            try { set = EvaluationSet.Scan(args.Data, args.Split, new ScanOptions(), ct); }
            catch (Exception e) when (e is DatasetLayoutException or ArgumentException) { return Fail(e.Message); }
            var options = new SweepOptions
            {
                Eval = new EvalOptions { Seed = (ulong)args.Seed, Device = device },
                Metrics = new MetricsOptions { BootstrapSamples = args.Bootstrap, Seed = args.Seed },
            };
            SweepResult result;
            try { result = RobustnessSweep.Run(detector!, set, axis, severities, options, null, null, ct); }
            catch (OperationCanceledException) { error.WriteLine("sweep cancelled"); return 130; }
            catch (InvalidOperationException e) { return Fail(e.Message); }

            Directory.CreateDirectory(args.Out);
            File.WriteAllText(Path.Combine(args.Out, SweepResult.JsonFileName), result.ToJson().ToJsonString(ProtocolCli.Indented));
            File.WriteAllText(Path.Combine(args.Out, SweepResult.CsvFileName), result.ToCsv());
            output.Write(result.FormatTable());
            output.WriteLine($"wrote {Path.Combine(args.Out, SweepResult.JsonFileName)} and {Path.Combine(args.Out, SweepResult.CsvFileName)}");
            return 0;
        }
    }
}
