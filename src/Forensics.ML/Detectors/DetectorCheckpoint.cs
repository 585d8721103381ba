using Forensics.ML.Models;
using Forensics.ML.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace Forensics.ML.Detectors;

/// <summary>A checkpoint that cannot be used as the named detector; the message names the file and the keys at fault.</summary>
public sealed class DetectorCheckpointException : IOException
{
    /// <summary>Creates the exception for <paramref name="path"/>.</summary>
    public DetectorCheckpointException(string path, string message, LoadReport? report = null, Exception? inner = null)
        : base(message, inner)
    {
        Path = path;
        Report = report;
    }

    /// <summary>The checkpoint file.</summary>
    public string Path { get; }

    /// <summary>Missing, unexpected and mis-shaped keys, when the state dict did not fit the network.</summary>
    public LoadReport? Report { get; }
}

/// <summary>
/// A detector ready for evaluation: the network in eval mode on its device, its card (how an image becomes its input and
/// what its output means), how it was loaded. The network is one of our ResNets or a package's TorchScript module or ONNX
/// session (<see cref="IDetectorNetwork"/>). Dispose it to free the weights.
/// </summary>
public sealed class Detector : IDisposable
{
    private readonly ResNet? model;

    internal Detector(ResNet model, DetectorArchitecture architecture, Device device, LoadReport report, string? path, string? sha256)
    {
        this.model = model;
        Network = new NativeNetwork(model, device);
        Architecture = architecture;
        Card = DetectorCard.Native(model.Options.NumClasses);
        LoadReport = report;
        CheckpointPath = path;
        CheckpointSha256 = sha256;
    }

    internal Detector(IDetectorNetwork network, DetectorArchitecture architecture, DetectorCard card, string path, string sha256, string? cardPath)
    {
        Network = network;
        Architecture = architecture;
        Card = card;
        LoadReport = new LoadReport([], [], [], 0);
        CheckpointPath = path;
        CheckpointSha256 = sha256;
        CardPath = cardPath;
    }

    /// <summary>Wraps a network built in code (e.g. a test's), switching it to eval mode.</summary>
    /// <exception cref="ArgumentException">The network has neither 1 nor 2 outputs.</exception>
    public static Detector FromModel(ResNet model, DetectorArchitecture architecture, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(architecture);
        if (model.Options.NumClasses is not (1 or 2))
            throw new ArgumentException($"A detector needs 1 or 2 logits; the network has {model.Options.NumClasses}.", nameof(model));
        device ??= CPU;
        model.to(device);
        model.eval();
        return new Detector(model, architecture, device, new LoadReport([], [], [], 0), null, null);
    }

    /// <summary>The ResNet, in eval mode (built-in architectures only).</summary>
    /// <exception cref="InvalidOperationException">A package detector (TorchScript, ONNX): use <see cref="Network"/>.</exception>
    public ResNet Model => model ?? throw new InvalidOperationException($"A {Architecture.Name} detector has no ResNet; use Detector.Network.");

    /// <summary>The network behind <see cref="Forward"/>.</summary>
    public IDetectorNetwork Network { get; }

    /// <summary>True for our own ResNets (state-dict checkpoints), false for TorchScript and ONNX packages.</summary>
    public bool IsNative => model is not null;

    /// <summary>The architecture it was built as.</summary>
    public DetectorArchitecture Architecture { get; }

    /// <summary>The card: preprocessing, batching and output kind (the built-in one for our ResNets).</summary>
    public DetectorCard Card { get; }

    /// <summary>The card file it was read from; null for built-in cards and packages without one.</summary>
    public string? CardPath { get; }

    /// <summary>Width, depth and head size as inferred from the checkpoint, with the architecture's strides (built-in architectures only).</summary>
    public ResNetOptions Options => Model.Options;

    /// <summary>What reports say of the network: (stem width, blocks per stage, outputs); width 0 and no layers for packages.</summary>
    public (int BaseWidth, IReadOnlyList<int> Layers, int NumClasses) Summary =>
        model is null ? (0, [], Card.OutputWidth) : (model.Options.BaseWidth, model.Options.Layers, model.Options.NumClasses);

    /// <summary>Where the weights live and inputs must go.</summary>
    public Device Device => Network.Device;

    /// <summary>What the weights load did (clean for a checkpoint that loaded).</summary>
    public LoadReport LoadReport { get; }

    /// <summary>The checkpoint file (full path); null for a network built in code.</summary>
    public string? CheckpointPath { get; }

    /// <summary>SHA-256 of the checkpoint file, lowercase hex; null for a network built in code.</summary>
    public string? CheckpointSha256 { get; }

    /// <summary>Moves the weights to <paramref name="device"/>.</summary>
    public void MoveTo(Device device)
    {
        ArgumentNullException.ThrowIfNull(device);
        Network.MoveTo(device);
    }

    /// <summary>
    /// The network's outputs for a prepared batch [B,3,H,W] on <see cref="Device"/>, as [B, K]. With a fixed-batch card a
    /// short batch is filled up with copies of its last image and the extra rows dropped.
    /// </summary>
    public Tensor Forward(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        using var scope = NewDisposeScope();
        var rows = input.shape[0];
        var x = input;
        if (Card.Batching == CardBatching.Fixed && rows < Card.BatchSize)
            x = cat([input, input.narrow(0, rows - 1, 1).expand(Card.BatchSize - rows, -1, -1, -1)], 0);
        var output = Network.Forward(x);
        if (output.dim() == 1) output = output.unsqueeze(1);
        if (output.shape[0] != x.shape[0])
            throw new InvalidOperationException($"The network gave {output.shape[0]} rows for a batch of {x.shape[0]}.");
        if (output.dim() != 2) output = output.reshape(output.shape[0], -1);
        return output.narrow(0, 0, rows).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The fake-vs-real logit per row of <paramref name="logits"/> [B, K]: the logit itself for one output, the
    /// difference logit[fake] - logit[other] for two (as the AlignedForensics test code does, fake = 1), so that sigmoid
    /// of it equals softmax[:, fake]; log(p / (1 - p)) for a probability output. Returns a new [B] tensor.
    /// </summary>
    public Tensor FakeLogit(Tensor logits)
    {
        ArgumentNullException.ThrowIfNull(logits);
        var width = Card.OutputWidth;
        if (logits.dim() != 2 || logits.shape[1] != width)
            throw new ArgumentException($"Expected logits [B, {width}], got [{string.Join(", ", logits.shape)}].", nameof(logits));
        return Card.Output switch
        {
            OutputKind.TwoClass => logits.select(1, Card.FakeIndex) - logits.select(1, 1 - Card.FakeIndex),
            OutputKind.Probability => ProbabilityLogit(logits.select(1, 0)),
            _ => logits.select(1, 0).clone(),
        };
    }

    private static Tensor ProbabilityLogit(Tensor p)
    {
        using var scope = NewDisposeScope();
        var d = p.to(ScalarType.Float64);
        return (d.log() - d.neg().log1p()).MoveToOuterDisposeScope();
    }

    /// <summary>P(fake) per row of <paramref name="logits"/>: sigmoid of one logit, softmax[:, fake] of two, the probability itself. Returns a new [B] tensor.</summary>
    public Tensor Probabilities(Tensor logits)
    {
        if (Card.Output == OutputKind.Probability)
        {
            _ = FakeLogit(logits); // shape check
            return logits.select(1, 0).clone();
        }
        using var fake = FakeLogit(logits);
        return fake.sigmoid();
    }

    /// <summary>
    /// Logit and P(fake) per row of the outputs [B, K], in double: P(fake) = sigmoid(logit) computed in double from the
    /// float32 logit (as the reference's post-processing), or the probability itself for a probability output.
    /// </summary>
    public (double[] Logits, double[] Scores) Score(Tensor outputs)
    {
        using var scope = NewDisposeScope();
        var logits = FakeLogit(outputs).to(ScalarType.Float64).cpu().data<double>().ToArray();
        double[] scores;
        if (Card.Output == OutputKind.Probability)
            scores = outputs.select(1, 0).to(ScalarType.Float64).cpu().data<double>().ToArray();
        else
            scores = logits.Select(l => 1.0 / (1.0 + Math.Exp(-l))).ToArray();
        return (logits, scores);
    }

    /// <summary>Frees the weights.</summary>
    public void Dispose() => Network.Dispose();
}

/// <summary>
/// Loads detector checkpoints. Accepts what <see cref="WeightsFile"/> reads: the AlignedForensics training checkpoints
/// as released (<c>torch.save({'model': state_dict, 'optimizer': ..., 'total_steps': ...})</c>, which their test code
/// loads through <c>dat['model']</c>), plain state dicts, 'state_dict'/'net' nesting, DataParallel 'module.' prefixes and
/// safetensors. The network's width, depth and number of logits are read from the state dict's shapes, so miniature
/// configurations load without flags. The stem and max-pool strides are NOT stored in the weights: a res50nodown and a
/// torchvision ResNet-50 checkpoint look the same, and only the architecture name (default res50nodown) tells them apart.
/// </summary>
public static class DetectorCheckpoint
{
    /// <summary>
    /// Loads the checkpoint at <paramref name="path"/> as architecture <paramref name="arch"/> (null: res50nodown) onto
    /// <paramref name="device"/> (null: CPU), strictly: every weight of the network must be in the file with its shape,
    /// and nothing else. Call <c>TorchRuntime.EnsureLoaded()</c> first.
    /// </summary>
    /// <exception cref="FileNotFoundException">No file at <paramref name="path"/>.</exception>
    /// <exception cref="ArgumentException">Unknown architecture name (the message lists the known ones).</exception>
    /// <exception cref="DetectorCheckpointException">The state dict is not one of this architecture (the message lists missing,
    /// unexpected and mis-shaped keys), or its head has neither 1 nor 2 logits.</exception>
    /// <exception cref="InvalidDataException">The file is not a readable checkpoint (truncated, corrupt, another format).</exception>
    public static Detector Load(string path, string? arch = null, Device? device = null) => Load(path, arch, device, card: null);

    /// <summary>
    /// As <see cref="Load(string, string?, Device?)"/>; for the package architectures (torchscript, onnx) the network comes
    /// from the file itself and <paramref name="card"/> (null: <c>model.card.json</c> beside <c>model.pt</c> when it exists,
    /// else the default card) says how to feed it (see <see cref="DetectorPackage.Load"/>).
    /// </summary>
    public static Detector Load(string path, string? arch, Device? device, string? card)
    {
        ArgumentNullException.ThrowIfNull(path);
        var architecture = arch is null ? DetectorArchitectures.Default : DetectorArchitectures.Get(arch);
        var full = System.IO.Path.GetFullPath(path);
        if (!File.Exists(full)) throw new FileNotFoundException($"Checkpoint not found: {full}", full);
        device ??= CPU;
        if (architecture.IsPackage) return DetectorPackage.Load(full, architecture, card, device);
        if (card is not null)
            throw new ArgumentException($"A card describes a TorchScript or ONNX package; {architecture.Name} checkpoints use the built-in one.", nameof(card));

        using var weights = WeightsFile.Load(full);
        if (!DetectorArchitecture.LooksLikeResNet(weights))
            throw NotThisArchitecture(full, architecture, NameReport(architecture, weights));

        var options = architecture.OptionsFor(weights);
        if (options.NumClasses is not (1 or 2))
            throw new DetectorCheckpointException(full,
                $"{full}: fc.weight has {options.NumClasses} rows; a {architecture.Name} detector needs 1 logit (P(fake) = sigmoid) " +
                "or 2 (P(fake) = softmax[:, 1]).");
        if (weights["fc.weight"].shape[1] != options.FeatureCount)
            throw NotThisArchitecture(full, architecture, new LoadReport([], [], [
                new ShapeMismatch("fc.weight", [options.NumClasses, options.FeatureCount], weights["fc.weight"].shape),
            ], 0));

        var model = new ResNet(options);
        try
        {
            var report = StateDictLoader.Load(model, weights, strict: true);
            model.to(device);
            model.eval();
            return new Detector(model, architecture, device, report, full, Sha256(full));
        }
        catch (WeightsMismatchException e)
        {
            model.Dispose();
            throw NotThisArchitecture(full, architecture, e.Report, e);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>SHA-256 of a file, lowercase hex.</summary>
    public static string Sha256(string path) => FileDigest.Sha256(path);

    private static DetectorCheckpointException NotThisArchitecture(string path, DetectorArchitecture architecture, LoadReport report, Exception? inner = null) =>
        new(path, $"{path} is not a {architecture.Name} checkpoint ({architecture.Description}): {report.Describe()}", report, inner);

    /// <summary>
    /// Missing and unexpected names against the architecture's full-depth key set, for a state dict whose shape cannot be
    /// inferred. Key names do not depend on width, so a width-1 copy of the network gives them cheaply.
    /// </summary>
    private static LoadReport NameReport(DetectorArchitecture architecture, StateDict weights)
    {
        var options = architecture.OptionsFor(weights) with { BaseWidth = 1, NumClasses = 1 };
        using var probe = new ResNet(options);
        var expected = probe.state_dict().Keys.ToList();
        var known = expected.ToHashSet(StringComparer.Ordinal);
        var missing = expected.Where(k => !weights.ContainsKey(k)).ToList();
        var unexpected = weights.Names.Where(n => !known.Contains(n)).ToList();
        return new LoadReport(missing, unexpected, [], 0);
    }
}
