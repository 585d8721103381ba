using System.Globalization;
using Forensics.ML.Detectors;
using Forensics.ML.Randomness;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Forensics.ML.Training;

/// <summary>What <see cref="TorchScriptTrainer.Check"/> found in a TorchScript detector before training it.</summary>
/// <param name="Card">The card the module is trained and scored under (given, MODEL.card.json beside it, or the default).</param>
/// <param name="CardPath">The card's file; null for the default card.</param>
/// <param name="Parameters">Trainable parameter tensors (those with requires_grad).</param>
/// <param name="Values">Total number of trainable values.</param>
/// <param name="FrozenBatchNorm">True when the module has batch norm that train() does not switch to batch statistics (traced in eval mode).</param>
public sealed record TorchScriptTrainability(DetectorCard Card, string? CardPath, int Parameters, long Values, bool FrozenBatchNorm)
{
    /// <summary>One line for logs and the zoo card.</summary>
    public string Describe() => FormattableString.Invariant(
        $"{Parameters} trainable tensor(s), {Values} value(s); output {DetectorCard.OutputName(Card.Output)}") +
        (Card.Output == OutputKind.TwoClass ? FormattableString.Invariant($" (fake index {Card.FakeIndex})") : "") +
        (FrozenBatchNorm ? "; batch norm frozen (traced in eval mode: running statistics stay as exported)" : "");
}

/// <summary>
/// Fine-tunes a TorchScript detector (a <c>.pt</c> saved by torch.jit.script or torch.jit.trace, with its card) with
/// res50nodown's trainer: the same recipe options (<see cref="TrainOptions"/>: Adam, lr, pairs per batch, synced /
/// unsynced / independent sampling, augmentation chain, crop, validation, plateau rule), the same epoch loop and the
/// same checkpoint and resume contract (<see cref="TrainingCheckpoint"/>). What the card says defines the rest: the
/// augmented crop in [0,1] goes through the card's input (size policy, value range, mean/std, channel order) and the
/// loss is BCE-with-logits on the card's fake-vs-real logit (one logit: itself; two-class: out[fake] - out[other], which
/// makes BCE equal to the two-way softmax cross-entropy). The best epoch's module is written back as TorchScript
/// (<c>best.pt</c>, with <c>best.card.json</c> beside it), which <c>--arch torchscript</c> loads and scores.
/// </summary>
/// <remarks>
/// Refused: a probability output (BCE on a probability saturates; export the logit), a card with single or fixed
/// batching other than the training batch, a module without trainable parameters (e.g. torch.jit.freeze inlines them
/// as constants), a module whose batch norm ignores eval() (traced in train mode: its scores would depend on the
/// batch). A module traced in eval mode trains with its batch norm frozen (logged). Random ops inside the module
/// (dropout) draw from libtorch's global generator, which the trainer seeds at every epoch from (seed, epoch): a run in
/// a process of its own is reproducible and resumes bit for bit; beside other users of that generator it is not.
/// </remarks>
public static class TorchScriptTrainer
{
    /// <summary>The best module's file name in the output folder; its card is <c>best.card.json</c>.</summary>
    public const string BestFileName = "best.pt";

    private const long GlobalSeedStream = 103;

    /// <summary>
    /// Loads <paramref name="modelPath"/> on the CPU under its card and says whether it can be trained, without training.
    /// </summary>
    /// <exception cref="InvalidDataException">It cannot be trained here; the message names the file and says why.</exception>
    /// <exception cref="DetectorCardException">The card is invalid or contradicts the module (names the field).</exception>
    /// <exception cref="DetectorCheckpointException">The file is not loadable TorchScript, or its probe failed.</exception>
    public static TorchScriptTrainability Check(string modelPath, string? cardPath, int batchSize)
    {
        var status = Runtime.TorchRuntime.EnsureLoaded();
        if (!status.Loaded) throw new InvalidOperationException($"Torch did not load: {status.Error}");
        using var detector = DetectorPackage.Load(modelPath, DetectorArchitectures.TorchScript, cardPath, CPU);
        return Inspect(detector, batchSize);
    }

    /// <summary>
    /// Trains the TorchScript detector <paramref name="modelPath"/> (card <paramref name="cardPath"/>, or
    /// MODEL.card.json beside it, or the default card) into <paramref name="outputDir"/>: best.pt + best.card.json (the
    /// best epoch's module) and checkpoint.safetensors (the last epoch's state dict, Adam state, schedule). When the
    /// folder holds a checkpoint of the same options, module and card, training resumes after its epoch.
    /// <see cref="TrainOptions.Arch"/> and <see cref="TrainOptions.InitWeights"/> are res50nodown's and not used: the
    /// module starts from its own weights.
    /// </summary>
    /// <exception cref="ArgumentException">Invalid options or data (the message names the field).</exception>
    /// <exception cref="InvalidDataException">The module cannot be trained (see <see cref="Check"/>), or the checkpoint is unreadable or another run's.</exception>
    public static TrainResult Train(TrainOptions options, string modelPath, string? cardPath, TrainingData data, string outputDir,
        ITrainingObserver? observer = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentException.ThrowIfNullOrWhiteSpace(modelPath);
        ArgumentNullException.ThrowIfNull(data);
        ArgumentException.ThrowIfNullOrWhiteSpace(outputDir);
        options.Validate();
        if (options.InitWeights is not null)
            throw new ArgumentException("TrainOptions.InitWeights is res50nodown's; a TorchScript detector starts from its own weights.");
        var planner = DetectorTrainer.Planner(options, data);
        DetectorTrainer.CheckValidation(data.Validation);
        observer ??= TrainingLoop.NullObserver.Instance;
        var device = TrainingLoop.LoadTorch(options.Device);

        Directory.CreateDirectory(outputDir);
        var checkpointPath = Path.Combine(outputDir, TrainingCheckpoint.FileName);
        observer.OnProgress(0, TrainingPhase.Setup);
        using var detector = DetectorPackage.Load(modelPath, DetectorArchitectures.TorchScript, cardPath, device);
        var found = Inspect(detector, options.BatchSize);
        observer.OnLog($"TorchScript detector {detector.CheckpointPath} (sha256 {detector.CheckpointSha256}), card {detector.CardPath ?? "default"}: {found.Describe()}.");
        if (found.FrozenBatchNorm)
            observer.OnLog($"{detector.CheckpointPath}: its batch norm does not follow train() (the module was traced in eval mode), so it trains " +
                           "with the exported running statistics, frozen; export with torch.jit.script for batch statistics in training.");

        // The module's bytes and the card's input and output define the trajectory as much as the options do.
        var fingerprint = options.Fingerprint() + ";torchscript=" + detector.CheckpointSha256 + ";card=" + CardFingerprint(detector.Card);
        CheckpointInfo? resume = File.Exists(checkpointPath) ? TrainingCheckpoint.ReadInfo(checkpointPath) : null;
        TrainingLoop.CheckFingerprint(checkpointPath, resume?.Fingerprint, fingerprint);
        using var network = new ScriptTrainee(detector, options.Seed);
        return DetectorTrainer.Run(options, network, planner, data.Validation, new TrainingSamples(options, detector.Card), outputDir,
            fingerprint, resume, observer, ct);
    }

    /// <summary>The card file written beside a saved module: <c>best.card.json</c> beside <c>best.pt</c>.</summary>
    public static string CardPathFor(string modelPath) => DetectorPackage.CardPathFor(modelPath);

    private static string CardFingerprint(DetectorCard card) => string.Join(" ", card.ToJson().Split((char[])['\n', '\r'],
        StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));

    private static TorchScriptTrainability Inspect(Detector detector, int batchSize)
    {
        var path = detector.CheckpointPath;
        var card = detector.Card;
        var module = Module(detector);
        if (card.Output == OutputKind.Probability)
            throw new InvalidDataException($"{path}: its card says the output is a probability; training needs logits (BCE-with-logits on a " +
                                           "probability saturates and loses the gradient). Export the network without its final sigmoid/softmax " +
                                           "and say \"one-logit\" or \"two-class\" in the card.");
        if (card.Batching == CardBatching.Single || (card.Batching == CardBatching.Fixed && card.BatchSize != batchSize))
            throw new InvalidDataException(FormattableString.Invariant(
                $"{path}: its card's batching ({card.Batching.ToString().ToLowerInvariant()}{(card.Batching == CardBatching.Fixed ? $" {card.BatchSize}" : "")}) ") +
                FormattableString.Invariant($"does not take a training batch of {batchSize} images (2 x pairs per batch); training needs batching \"any\" or \"fixed\" at {batchSize}."));
        var trainable = module.named_parameters().Where(p => p.parameter.requires_grad).ToList();
        if (trainable.Count == 0)
            throw new InvalidDataException($"{path}: the module has no trainable parameters (torch.jit.freeze inlines the weights as constants, " +
                                           "and parameters with requires_grad=False are not trained); save it with torch.jit.script or torch.jit.trace without freezing.");
        var frozen = BatchNormMode(module, card, path!);
        return new TorchScriptTrainability(card, detector.CardPath, trainable.Count, trainable.Sum(p => p.parameter.numel()), frozen);
    }

    private static jit.ScriptModule Module(Detector detector) => detector.Network is TorchScriptNetwork ts
        ? ts.Module : throw new ArgumentException($"{detector.CheckpointPath} is not a TorchScript detector.");

    /// <summary>
    /// Whether the module's batch norm follows train()/eval(): a forward of a probe batch in each mode, its running
    /// statistics compared before and after (and restored). A trace bakes the mode it was made in into the graph.
    /// Returns true when train() leaves the statistics alone (traced in eval mode: frozen batch norm); throws when eval()
    /// updates them (traced in train mode). False without batch norm or when both modes behave.
    /// </summary>
    private static bool BatchNormMode(jit.ScriptModule module, DetectorCard card, string path)
    {
        using var scope = NewDisposeScope();
        var buffers = module.named_buffers().Select(b => (b.name, b.buffer, Saved: b.buffer.clone())).ToList();
        var stats = buffers.Where(b => b.name.EndsWith("running_mean", StringComparison.Ordinal)).ToList();
        if (stats.Count == 0) return false;
        var device = stats[0].buffer.device;
        var (h, w) = card.Size ?? (32, 32);
        using var generator = new Generator(15, CPU);
        var batch = randn([card.Batching == CardBatching.Fixed ? Math.Max(2, card.BatchSize) : 2, 3, h, w], generator: generator).to(device);
        bool Moves(bool training)
        {
            module.train(training);
            using (no_grad()) module.call(batch);
            var moved = stats.Any(s => !s.buffer.eq(s.Saved).all().item<bool>());
            using (no_grad()) foreach (var (_, buffer, saved) in buffers) buffer.copy_(saved);
            return moved;
        }
        var inEval = Moves(false);
        var inTrain = Moves(true);
        module.eval();
        if (inEval)
            throw new InvalidDataException($"{path}: its batch norm updates its running statistics in eval mode (the module was traced in train mode, " +
                                           "which bakes training=True into the graph): its scores would depend on the batch it is scored in. " +
                                           "Export it with torch.jit.script, or trace it in eval mode (batch norm then trains frozen).");
        return !inTrain;
    }

    /// <summary>A TorchScript detector as the trainer's <see cref="Trainee"/>.</summary>
    private sealed class ScriptTrainee : Trainee
    {
        private readonly Detector detector;
        private readonly jit.ScriptModule module;
        private readonly ulong seed;

        public ScriptTrainee(Detector detector, ulong seed)
        {
            this.detector = detector;
            module = Module(detector);
            this.seed = seed;
            Parameters = module.named_parameters().Where(p => p.parameter.requires_grad).Select(p => (p.name, p.parameter)).ToList();
        }

        public override nn.Module Module => module;
        public override IReadOnlyList<(string Name, Parameter Parameter)> Parameters { get; }
        public override Generator? DropoutRng => null;
        public override Device Device => detector.Device;
        public override string BestFileName => TorchScriptTrainer.BestFileName;

        public override void StartEpoch(int epoch)
        {
            // Dropout inside the module draws from the global generator: seeded per epoch, a resume redraws the same masks.
            manual_seed(unchecked((long)Seeds.Derive(seed, GlobalSeedStream, epoch)));
            module.train();
        }

        public override void Eval() => module.eval();

        public override Tensor TrainingLogits(Tensor images) => Logits(images);

        public override Tensor Logits(Tensor images)
        {
            using var scope = NewDisposeScope();
            var output = detector.Forward(images);
            return detector.FakeLogit(output).MoveToOuterDisposeScope();
        }

        public override void SaveBest(string path, int epoch, ValidationMetrics metrics)
        {
            TrainingCheckpoint.WriteAtomically(path, temp => jit.save(module, temp));
            var card = CardPathFor(path);
            TrainingCheckpoint.WriteAtomically(card, temp => File.WriteAllText(temp, detector.Card.ToJson()));
        }

        public override void Dispose() { }
    }
}
