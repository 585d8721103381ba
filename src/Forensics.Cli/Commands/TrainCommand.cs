using System.CommandLine;
using System.Globalization;
using Forensics.ML.Data;
using Forensics.ML.Datasets;
using Forensics.ML.Lare2;
using Forensics.ML.Models;
using Forensics.ML.Models.Clip;
using Forensics.ML.Runtime;
using Forensics.ML.Training;
using TorchSharp;

namespace Forensics.Cli.Commands;

/// <summary>`forensics train`: train the res50nodown detector (or fine-tune a TorchScript one) with the aligned-dataset recipe; resumes from --out's checkpoint.</summary>
public static class TrainCommand
{
    /// <summary>Exit code of bad input (options, folders, data).</summary>
    public const int InputError = 2;

    /// <summary>Builds the `train` verb.</summary>
    public static Command Create()
    {
        var train = new Option<string?>("--train") { HelpName = "DIR", Description = "Training set: 0_real/1_fake (for synced/unsynced, 1_fake holds the reconstructions with the reals' stems) or GenImage; its 'train' split is used when it has one" };
        var val = new Option<string?>("--val") { HelpName = "DIR", Description = "Validation set (0_real/1_fake or GenImage); its 'val'/'valid' split is used when it has one" };
        var output = new Option<string?>("--out") { HelpName = "DIR", Description = "Output folder: best.safetensors and checkpoint.safetensors; a checkpoint there is resumed" };
        var mode = new Option<string>("--mode") { HelpName = "synced|unsynced|independent", Description = "synced: pairs with identical augmentation (Ours-Sync); unsynced: pairs, own augmentation each; independent: the usual training", DefaultValueFactory = _ => "synced" };
        var epochs = new Option<int>("--epochs") { HelpName = "N", Description = "Maximum epochs (the lr floor usually stops training first)", DefaultValueFactory = _ => 1000 };
        var batch = new Option<int>("--batch") { HelpName = "N", Description = "Pairs per batch N: N reals and N fakes (the paper: 64); lare2: images per batch, 48 unless given", DefaultValueFactory = _ => 64 };
        var lr = new Option<double>("--lr") { HelpName = "X", Description = "Adam learning rate", DefaultValueFactory = _ => 1e-4 };
        var seed = new Option<ulong>("--seed") { HelpName = "N", Description = "Run seed", DefaultValueFactory = _ => 17UL };
        var width = new Option<int>("--width") { HelpName = "N", Description = "ResNet base width (64: the full res50nodown)", DefaultValueFactory = _ => 64 };
        var layers = new Option<string>("--layers") { HelpName = "3,4,6,3", Description = "Bottleneck blocks per stage", DefaultValueFactory = _ => "3,4,6,3" };
        var crop = new Option<int>("--crop") { HelpName = "N", Description = "Training crop size (res50nodown: 96; lare2: 224 unless given, the CLIP tower's input resolution)", DefaultValueFactory = _ => 96 };
        var init = new Option<string?>("--init") { HelpName = "FILE", Description = "ImageNet-pretrained torchvision ResNet-50 weights (.pth or .safetensors); fc is re-initialised" };
        var augment = new Option<string>("--augment") { HelpName = "reference|none", Description = "Augmentation chain", DefaultValueFactory = _ => "reference" };
        var aug = new Option<string?>("--aug") { HelpName = "name=value,...", Description = "Reference chain settings over the crop's defaults (the paper's at 96 px and more, scaled below), e.g. cutoutSize=16,blurSigmaMax=1,jpegQualityMin=70,blurProbability=0.2" };
        var patience = new Option<int>("--patience") { HelpName = "N", Description = "Epochs without a validation gain before lr / 10", DefaultValueFactory = _ => 10 };
        var workers = new Option<int>("--workers") { HelpName = "N", Description = "Image loading threads", DefaultValueFactory = _ => Math.Max(1, Environment.ProcessorCount - 1) };
        var device = new Option<string>("--device") { Description = "cpu, cuda or cuda:N", DefaultValueFactory = _ => "cpu" };
        var threads = new Option<int>("--threads") { HelpName = "N", Description = "Torch threads (0: libtorch's default); resume with the same number for identical results", DefaultValueFactory = _ => 0 };
        var arch = new Option<string>("--arch") { HelpName = "res50nodown|torchscript|lare2", Description = "res50nodown (default), torchscript (fine-tune a TorchScript detector: --checkpoint, optional --card) or lare2 (CLIP RN50 + EGRE on precomputed LaRE maps; needs --lare)", DefaultValueFactory = _ => "res50nodown" };
        var checkpoint = new Option<string?>("--checkpoint") { HelpName = "FILE", Description = "torchscript: the detector to fine-tune (.pt from torch.jit.script or torch.jit.trace); best.pt and best.card.json go to --out" };
        var card = new Option<string?>("--card") { HelpName = "FILE", Description = "torchscript: the detector's card (default: MODEL.card.json beside --checkpoint, else the default card)" };
        var lare = new Option<string?>("--lare") { HelpName = "DIR", Description = "lare2: the LaRE maps of the training and validation images, DIR/<relative path without extension>.safetensors (relative to --train or --val)" };
        var valLare = new Option<string?>("--val-lare") { HelpName = "DIR", Description = "lare2: the validation images' LaRE maps when extracted separately from --val (default: --lare)" };
        var ablation = new Option<string>("--ablation") { HelpName = "none|no-spatial|no-channel|zero-lare", Description = "lare2: EGRE ablation trained with", DefaultValueFactory = _ => "none" };
        var cmd = new Command("train", "Train the res50nodown real/fake detector (BCE, Adam, lr / 10 on validation plateaus, best weights kept), or LaRE² with --arch lare2")
        {
            train, val, output, mode, epochs, batch, lr, seed, width, layers, crop, init, augment, aug, patience, workers, device, threads, arch, lare, valLare, ablation,
            checkpoint, card,
        };
        cmd.SetAction((parse, ct) =>
        {
            var config = parse.InvocationConfiguration;
            string? missing = parse.GetValue(train) is null ? "--train" : parse.GetValue(val) is null ? "--val" : parse.GetValue(output) is null ? "--out" : null;
            if (missing is not null)
            {
                config.Error.WriteLine($"forensics train: {missing} DIR is required (usage: forensics train --train DIR --val DIR --out DIR [options]).");
                return Task.FromResult(InputError);
            }
            if (string.Equals(parse.GetValue(arch)?.Trim(), "lare2", StringComparison.OrdinalIgnoreCase))
            {
                // --crop and --batch keep the res50nodown defaults unless given; LaRE²'s are 224 and 48.
                var lareRequest = new Lare2Request(parse.GetValue(train)!, parse.GetValue(val)!, parse.GetValue(output)!, parse.GetValue(lare),
                    parse.GetValue(valLare), parse.GetValue(ablation)!, parse.GetValue(epochs), parse.GetResult(batch) is { Implicit: false } ? parse.GetValue(batch) : 48,
                    parse.GetValue(lr), parse.GetValue(seed), parse.GetValue(width), parse.GetValue(layers)!,
                    parse.GetResult(crop) is { Implicit: false } ? parse.GetValue(crop) : 224, parse.GetValue(init), parse.GetValue(workers),
                    parse.GetValue(device)!, parse.GetValue(threads));
                return Task.FromResult(RunLare2(lareRequest, config.Output, config.Error, ct));
            }
            var torchScript = string.Equals(parse.GetValue(arch)?.Trim(), "torchscript", StringComparison.OrdinalIgnoreCase);
            if (!torchScript && !string.Equals(parse.GetValue(arch)?.Trim(), "res50nodown", StringComparison.OrdinalIgnoreCase))
            {
                config.Error.WriteLine($"forensics train: --arch must be res50nodown, torchscript or lare2, not '{parse.GetValue(arch)}'.");
                return Task.FromResult(InputError);
            }
            if (!torchScript && (parse.GetValue(checkpoint) ?? parse.GetValue(card)) is not null)
            {
                config.Error.WriteLine("forensics train: --checkpoint and --card are only used with --arch torchscript.");
                return Task.FromResult(InputError);
            }
            if (parse.GetValue(lare) is not null)
            {
                config.Error.WriteLine("forensics train: --lare is only used with --arch lare2.");
                return Task.FromResult(InputError);
            }
            var request = new Request(parse.GetValue(train)!, parse.GetValue(val)!, parse.GetValue(output)!,
                parse.GetValue(mode)!, parse.GetValue(epochs), parse.GetValue(batch), parse.GetValue(lr), parse.GetValue(seed),
                parse.GetValue(width), parse.GetValue(layers)!, parse.GetValue(crop), parse.GetValue(init), parse.GetValue(augment)!,
                parse.GetValue(workers), parse.GetValue(device)!, parse.GetValue(threads))
            {
                Aug = parse.GetValue(aug), Patience = parse.GetValue(patience), TorchScript = torchScript,
                Checkpoint = parse.GetValue(checkpoint), Card = parse.GetValue(card),
            };
            return Task.FromResult(Run(request, config.Output, config.Error, ct));
        });
        return cmd;
    }

    /// <summary>The parsed command line.</summary>
    public sealed record Request(string Train, string Val, string Out, string Mode, int Epochs, int Batch, double Lr, ulong Seed,
        int Width, string Layers, int Crop, string? Init, string Augment, int Workers, string Device, int Threads)
    {
        /// <summary>--aug: reference chain settings over the crop's defaults.</summary>
        public string? Aug { get; init; }
        /// <summary>--patience: epochs without a validation gain before lr / 10.</summary>
        public int Patience { get; init; } = 10;
        /// <summary>--arch torchscript: fine-tune the TorchScript detector <see cref="Checkpoint"/> (card <see cref="Card"/>) instead of res50nodown.</summary>
        public bool TorchScript { get; init; }
        /// <summary>--checkpoint: the TorchScript detector to fine-tune.</summary>
        public string? Checkpoint { get; init; }
        /// <summary>--card: its card.</summary>
        public string? Card { get; init; }
    }

    /// <summary>Runs training; epoch lines and notes go to <paramref name="output"/>, errors to <paramref name="error"/>; returns the exit code.</summary>
    public static int Run(Request request, TextWriter output, TextWriter error, CancellationToken ct = default)
    {
        int Fail(string message)
        {
            error.WriteLine($"forensics train: {message}");
            return InputError;
        }

        if (!SyncedPairs.TryParseMode(request.Mode, out var mode)) return Fail($"--mode must be {SyncedPairs.ModeList}, not '{request.Mode}'.");
        AugmentationChoice augmentation;
        switch (request.Augment.Trim().ToLowerInvariant())
        {
            case "reference": augmentation = AugmentationChoice.Reference; break;
            case "none": augmentation = AugmentationChoice.None; break;
            default: return Fail($"--augment must be reference or none, not '{request.Augment}'.");
        }
        if (ParseLayers(request.Layers, out var blocks) is { } layersError) return Fail(layersError);
        if (request.Init is { } initPath && !File.Exists(initPath)) return Fail($"--init: no file at '{initPath}'.");
        if (request.Threads < 0) return Fail($"--threads must be >= 0, not {request.Threads}.");
        if (request.TorchScript)
        {
            if (request.Init is not null) return Fail("--init is res50nodown's; --arch torchscript fine-tunes the weights of --checkpoint.");
            if (request.Checkpoint is null) return Fail("--arch torchscript needs --checkpoint FILE (the TorchScript detector to fine-tune).");
            if (!File.Exists(request.Checkpoint)) return Fail($"--checkpoint: no file at '{request.Checkpoint}'.");
            if (request.Card is { } cardPath && !File.Exists(cardPath)) return Fail($"--card: no file at '{cardPath}'.");
        }
        AugmentationOptions augmentOptions;
        try { augmentOptions = AugmentationOptions.Parse(request.Aug, AugmentationOptions.ForCrop(Math.Max(1, request.Crop))); }
        catch (ArgumentException e) { return Fail($"--aug: {e.Message}."); }

        var options = new TrainOptions
        {
            Arch = ResNetOptions.Res50NoDown() with { BaseWidth = request.Width, Layers = blocks },
            LearningRate = request.Lr,
            Seed = request.Seed,
            PairsPerBatch = request.Batch,
            Mode = mode,
            MaxEpochs = request.Epochs,
            CropSize = request.Crop,
            Augmentation = augmentation,
            Augment = augmentOptions,
            Patience = request.Patience,
            Workers = request.Workers,
            InitWeights = request.Init,
            Device = request.Device,
        };
        try { options.Validate(); }
        catch (ArgumentException e) { return Fail(e.Message); }

        TrainingData data;
        try { data = LoadData(request, mode, output); }
        catch (Exception e) when (e is DatasetLayoutException or ArgumentException or InvalidDataException) { return Fail(e.Message); }

        if (request.TorchScript)
            return LoadTorchAndTrain(request.Device, request.Threads, request.Out, output, error, Fail,
                (device, threads) => FormattableString.Invariant(
                    $"Training TorchScript detector {request.Checkpoint}, {mode}, {options.PairsPerBatch} pairs per batch, lr {options.LearningRate:G3}, crop {options.CropSize}, augmentation {augmentation}, {threads} torch threads, device {device}."),
                observer =>
                {
                    TrainResult result;
                    try { result = TorchScriptTrainer.Train(options, request.Checkpoint!, request.Card, data, request.Out, observer, ct); }
                    // A card that does not parse or a file libtorch cannot load is bad input like any other.
                    catch (Exception e) when (e is Forensics.ML.Detectors.DetectorCardException or Forensics.ML.Detectors.DetectorCheckpointException)
                    {
                        throw new InvalidDataException(e.Message, e);
                    }
                    return (FormattableString.Invariant(
                        $"Done after {result.EpochsRun} epoch(s) ({result.Reason}): best validation balanced accuracy {result.BestBalancedAcc:F4} at epoch {result.BestEpoch}; final lr {result.FinalLearningRate:G3}."),
                        result.BestWeightsPath, result.CheckpointPath);
                });
        return LoadTorchAndTrain(request.Device, request.Threads, request.Out, output, error, Fail,
            (device, threads) => FormattableString.Invariant(
                $"Training res50nodown width {request.Width} [{string.Join(",", blocks)}], {mode}, {options.PairsPerBatch} pairs per batch, lr {options.LearningRate:G3}, crop {options.CropSize}, augmentation {augmentation}, {threads} torch threads, device {device}."),
            observer =>
            {
                var result = DetectorTrainer.Train(options, data, request.Out, observer, ct);
                return (FormattableString.Invariant(
                    $"Done after {result.EpochsRun} epoch(s) ({result.Reason}): best validation balanced accuracy {result.BestBalancedAcc:F4} at epoch {result.BestEpoch}; final lr {result.FinalLearningRate:G3}."),
                    result.BestWeightsPath, result.CheckpointPath);
            });
    }

    /// <summary>The parsed command line of `forensics train --arch lare2`.</summary>
    public sealed record Lare2Request(string Train, string Val, string Out, string? Lare, string? ValLare, string Ablation, int Epochs, int Batch, double Lr,
        ulong Seed, int Width, string Layers, int Crop, string? Init, int Workers, string Device, int Threads);

    /// <summary>Parses an --ablation value: none, no-spatial, no-channel or zero-lare (case-insensitive).</summary>
    public static bool TryParseAblation(string? text, out EgreAblation ablation)
    {
        switch (text?.Trim().ToLowerInvariant())
        {
            case "none": ablation = EgreAblation.None; return true;
            case "no-spatial": ablation = EgreAblation.NoSpatial; return true;
            case "no-channel": ablation = EgreAblation.NoChannel; return true;
            case "zero-lare": ablation = EgreAblation.ZeroLare; return true;
            default: ablation = default; return false;
        }
    }

    /// <summary>Trains LaRE²; epoch lines to <paramref name="output"/>, errors to <paramref name="error"/>; returns the exit code.</summary>
    public static int RunLare2(Lare2Request request, TextWriter output, TextWriter error, CancellationToken ct = default)
    {
        int Fail(string message)
        {
            error.WriteLine($"forensics train: {message}");
            return InputError;
        }

        if (request.Lare is null) return Fail("--arch lare2 needs --lare DIR (the folder of precomputed LaRE maps, see forensics lare).");
        if (!Directory.Exists(request.Lare)) return Fail($"--lare: no folder at '{request.Lare}'.");
        if (request.ValLare is { } valMaps && !Directory.Exists(valMaps)) return Fail($"--val-lare: no folder at '{valMaps}'.");
        if (!TryParseAblation(request.Ablation, out var ablation)) return Fail($"--ablation must be none, no-spatial, no-channel or zero-lare, not '{request.Ablation}'.");
        if (ParseLayers(request.Layers, out var blocks) is { } layersError) return Fail(layersError);
        if (request.Init is { } initPath && !File.Exists(initPath)) return Fail($"--init: no file at '{initPath}'.");
        if (request.Threads < 0) return Fail($"--threads must be >= 0, not {request.Threads}.");
        if (request.Width < 2 || request.Width % 2 != 0) return Fail($"--width must be even and at least 2, not {request.Width}.");

        Lare2TrainOptions options;
        try
        {
            // CLIP's ResNets: heads = width * 32 / 64, embedding = width * 16 (1024 for RN50).
            var backbone = new ModifiedResNetOptions
            {
                Width = request.Width, Layers = blocks, Heads = ModifiedResNetOptions.HeadsForWidth(request.Width),
                OutputDim = request.Width * 16, InputResolution = request.Crop,
            };
            options = new Lare2TrainOptions
            {
                Model = Lare2Options.For(backbone) with { Ablation = ablation },
                LearningRate = request.Lr,
                BatchSize = request.Batch,
                MaxEpochs = request.Epochs,
                Seed = request.Seed,
                Workers = request.Workers,
                InitWeights = request.Init,
                Device = request.Device,
            };
            options.Validate();
        }
        catch (ArgumentException e) { return Fail(e.Message); }

        Lare2TrainingData data;
        try
        {
            if (Path.GetFullPath(request.Train) == Path.GetFullPath(request.Val))
                throw new ArgumentException($"--train and --val are the same folder '{request.Train}'; give the training and validation splits' folders.");
            var split = TrainingData.FromManifests(DatasetScanner.Scan(request.Train), DatasetScanner.Scan(request.Val), PairMode.Independent, output.WriteLine);
            data = new Lare2TrainingData(split.Train!, split.Validation, request.Lare) { ValidationLareFolder = request.ValLare };
        }
        catch (Exception e) when (e is DatasetLayoutException or ArgumentException or InvalidDataException) { return Fail(e.Message); }

        return LoadTorchAndTrain(request.Device, request.Threads, request.Out, output, error, Fail,
            (device, threads) => FormattableString.Invariant(
                $"Training lare2 (CLIP ResNet width {request.Width} [{string.Join(",", blocks)}], crop {request.Crop}, ablation {ablation}), batch {options.BatchSize}, lr {options.LearningRate:G3}, maps {request.Lare}, {threads} torch threads, device {device}."),
            observer =>
            {
                var result = Lare2Trainer.Train(options, data, request.Out, observer, ct);
                return (FormattableString.Invariant(
                    $"Done after {result.EpochsRun} epoch(s): best validation {options.BestMetric} {result.BestValue:F4} at epoch {result.BestEpoch}; final lr {result.FinalLearningRate:G3}."),
                    result.BestWeightsPath, result.CheckpointPath);
            },
            missingMapsAreInputErrors: true);
    }

    // Reads --layers (four comma-separated stage depths); returns the error message, or null when it parsed.
    private static string? ParseLayers(string layers, out int[] blocks)
    {
        try { blocks = layers.Split(',').Select(s => int.Parse(s.Trim(), CultureInfo.InvariantCulture)).ToArray(); }
        catch (FormatException)
        {
            blocks = [];
            return $"--layers must be four integers such as 3,4,6,3, not '{layers}'.";
        }
        return blocks.Length == 4 ? null : $"--layers must list four stages, not '{layers}'.";
    }

    /// <summary>
    /// The tail both architectures share: load torch with the device and thread options, announce a resume and the run
    /// (<paramref name="describe"/> gets the device and the torch thread count), train with console epoch lines, print the
    /// summary and the files; cancellation exits with 130 and bad data with <see cref="InputError"/>.
    /// </summary>
    private static int LoadTorchAndTrain(string device, int threads, string outDir, TextWriter output, TextWriter error, Func<string, int> fail,
        Func<string, int, string> describe, Func<ITrainingObserver, (string Summary, string BestWeights, string Checkpoint)> train,
        bool missingMapsAreInputErrors = false)
    {
        var status = TorchRuntime.EnsureLoaded(new TorchOptions { Device = device, Threads = threads });
        if (!status.Loaded) return fail($"torch did not load: {status.Error}");
        if (threads > 0) TorchThreads.Set(threads);
        try { TorchRuntime.ResolveDevice(device); }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException) { return fail(e.Message); }

        var checkpoint = Path.Combine(outDir, TrainingCheckpoint.FileName);
        if (File.Exists(checkpoint)) output.WriteLine($"Found {checkpoint}: resuming.");
        output.WriteLine(describe(status.Device, torch.get_num_threads()));
        try
        {
            var (summary, best, last) = train(new ConsoleObserver(output));
            output.WriteLine(summary);
            output.WriteLine($"Best weights: {best}");
            output.WriteLine($"Checkpoint: {last}");
            return 0;
        }
        catch (OperationCanceledException)
        {
            error.WriteLine("forensics train: cancelled; run the same command again to resume from the last checkpoint.");
            return 130;
        }
        // LaRE² reads its maps during training: a missing maps folder is bad input too.
        catch (Exception e) when (e is ArgumentException or InvalidDataException || (missingMapsAreInputErrors && e is DirectoryNotFoundException))
        {
            return fail(e.Message);
        }
    }

    private static TrainingData LoadData(Request request, PairMode mode, TextWriter output)
    {
        if (Path.GetFullPath(request.Train) == Path.GetFullPath(request.Val))
            throw new ArgumentException($"--train and --val are the same folder '{request.Train}'; give the training and validation splits' folders.");
        return TrainingData.FromManifests(DatasetScanner.Scan(request.Train), DatasetScanner.Scan(request.Val), mode, output.WriteLine);
    }

    private sealed class ConsoleObserver(TextWriter output) : ITrainingObserver
    {
        public void OnProgress(double fraction, TrainingPhase phase) { }

        public void OnStep(int epoch, int step, double loss, double learningRate) { }

        public void OnEpoch(int epoch, double trainLoss, ValidationMetrics v, double learningRate, bool isBest) =>
            output.WriteLine(FormattableString.Invariant(
                $"epoch {epoch}: train loss {trainLoss:F4}, val balanced acc {v.BalancedAcc:F4} (real {v.RealAcc:F4}, fake {v.FakeAcc:F4}), acc {v.Acc:F4}, AP {(v.Ap is { } ap ? ap.ToString("F4", CultureInfo.InvariantCulture) : "n/a")}, next lr {learningRate:G3}{(isBest ? ", best" : "")}"));

        public void OnLog(string message) => output.WriteLine(message);
    }
}
