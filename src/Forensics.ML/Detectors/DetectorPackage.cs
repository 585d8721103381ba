using System.Globalization;
using TorchSharp;
using static TorchSharp.torch;

namespace Forensics.ML.Detectors;

/// <summary>
/// Detector packages: a model file exported from PyTorch (TorchScript .pt or ONNX .onnx) plus a <see cref="DetectorCard"/>.
/// Loading probes the network with a dummy batch of the card's input size and checks the output's shape against the card,
/// so a package that cannot work is refused at registration rather than in the middle of an evaluation.
/// </summary>
public static class DetectorPackage
{
    /// <summary>Side of the probe images when neither the card nor the file fixes a size.</summary>
    public const int DefaultProbeSide = 64;

    /// <summary>
    /// "torchscript" for a zip archive laid out as torch.jit.save writes it (a code/ folder or constants.pkl beside the
    /// data), "onnx" for a .onnx file, null otherwise (e.g. a plain torch.save state dict, which has neither).
    /// </summary>
    public static string? SniffFormat(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (path.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase)) return "onnx";
        try
        {
            using var zip = System.IO.Compression.ZipFile.OpenRead(path);
            return zip.Entries.Any(e => e.FullName.Contains("/code/", StringComparison.Ordinal) || e.FullName.EndsWith("/constants.pkl", StringComparison.Ordinal))
                ? "torchscript" : null;
        }
        catch (Exception e) when (e is InvalidDataException or IOException or UnauthorizedAccessException) { return null; }
    }

    /// <summary>The card file that goes with <paramref name="modelPath"/> when none is named: <c>model.card.json</c> beside <c>model.pt</c>.</summary>
    public static string CardPathFor(string modelPath) => Path.ChangeExtension(modelPath, ".card.json");

    /// <summary>
    /// Loads the package at <paramref name="path"/> as <paramref name="architecture"/> (torchscript or onnx) with the card
    /// <paramref name="cardPath"/> (null: <see cref="CardPathFor"/> when it exists, else the default card), probes it and
    /// returns the detector in eval mode on <paramref name="device"/>.
    /// </summary>
    /// <exception cref="DetectorCardException">The card is invalid, or contradicts the file (fixed input shape); names the field.</exception>
    /// <exception cref="DetectorCheckpointException">The file cannot be loaded, or the probe failed or gave outputs the card does not describe.</exception>
    public static Detector Load(string path, DetectorArchitecture architecture, string? cardPath, Device device)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(architecture);
        ArgumentNullException.ThrowIfNull(device);
        if (!architecture.IsPackage) throw new ArgumentException($"{architecture.Name} is not a package architecture.", nameof(architecture));
        var full = Path.GetFullPath(path);
        if (!File.Exists(full)) throw new FileNotFoundException($"Model file not found: {full}", full);
        string? cardFile = cardPath is null ? (File.Exists(CardPathFor(full)) ? CardPathFor(full) : null) : Path.GetFullPath(cardPath);
        var card = cardFile is null ? new DetectorCard() : DetectorCard.Load(cardFile);

        IDetectorNetwork network = architecture.PackageFormat == "onnx" ? OnnxNetwork.Load(full, device) : TorchScriptNetwork.Load(full, device);
        try
        {
            card = CheckDeclaredInput(card, network, cardFile);
            card = Probe(network, card, full, cardFile);
            return new Detector(network, architecture, card, full, DetectorCheckpoint.Sha256(full), cardFile);
        }
        catch
        {
            network.Dispose();
            throw;
        }
    }

    /// <summary>A card against the input shape an ONNX file fixes: the batch size and the spatial size must agree.</summary>
    private static DetectorCard CheckDeclaredInput(DetectorCard card, IDetectorNetwork network, string? cardFile)
    {
        var (batch, height, width) = network.DeclaredInput;
        if (batch is { } n)
        {
            if (card.Batching == CardBatching.Any && cardFile is null)
                card = n == 1 ? card with { Batching = CardBatching.Single } : card with { Batching = CardBatching.Fixed, BatchSize = n };
            else if (n == 1 ? card.Batching != CardBatching.Single && !(card.Batching == CardBatching.Fixed && card.BatchSize == 1)
                     : card.Batching != CardBatching.Fixed || card.BatchSize != n)
                throw new DetectorCardException(cardFile, "batching",
                    $"the model's input has a fixed batch of {n}; the card must say {(n == 1 ? "{\"mode\": \"single\"}" : $"{{\"mode\": \"fixed\", \"size\": {n}}}")}.");
        }
        if (height is { } h && width is { } w)
        {
            if (card.SizePolicy == SizePolicy.None && cardFile is null)
                card = card with { SizePolicy = SizePolicy.Resize, Size = (h, w) };
            else if (card.SizePolicy == SizePolicy.None || card.Size != (h, w))
                throw new DetectorCardException(cardFile, "input.size",
                    $"the model's input is fixed at {h}x{w} (height x width); the card must bring every image to that size " +
                    $"(sizePolicy resize, center-crop or pad with size [{h}, {w}]); it says {Describe(card)}.");
        }
        else if (height is not null || width is not null)
        {
            throw new DetectorCardException(cardFile, "input.size", "the model fixes only one of height and width; export it with both fixed or both dynamic.");
        }
        return card;
    }

    private static string Describe(DetectorCard card) => card.Size is { } s
        ? $"{DetectorCard.PolicyName(card.SizePolicy)} to {s.Height}x{s.Width}"
        : DetectorCard.PolicyName(card.SizePolicy);

    /// <summary>
    /// Runs a dummy batch (seeded uniform [0,1) images prepared by the card) and checks the output: one row per image, the
    /// card's number of values per image (or, without an output section, 1: one logit), finite values, probabilities in [0,1].
    /// </summary>
    private static DetectorCard Probe(IDetectorNetwork network, DetectorCard card, string path, string? cardFile)
    {
        var rows = card.Batching switch { CardBatching.Fixed => card.BatchSize, CardBatching.Single => 1, _ => 2 };
        var (h, w) = card.Size ?? (DefaultProbeSide, DefaultProbeSide);
        using var scope = NewDisposeScope();
        using var generator = new Generator(15, CPU);
        var images = rand([rows, 3, h, w], generator: generator);
        var batch = stack(Enumerable.Range(0, rows).Select(i => card.Prepare(images[i]))).to(network.Device);
        Tensor output;
        try
        {
            using (no_grad()) output = network.Forward(batch);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            var hint = card.Batching == CardBatching.Any
                ? " If it takes one image per forward, say {\"batching\": {\"mode\": \"single\"}} in the card; a fixed batch: {\"mode\": \"fixed\", \"size\": N}."
                : "";
            throw new DetectorCheckpointException(path,
                $"{path}: the probe batch [{rows}, 3, {h}, {w}] failed in the network: {TorchScriptNetwork.FirstLine(e.Message)}.{hint}", inner: e);
        }
        var shape = string.Join(", ", output.shape);
        if (output.dim() is not (1 or 2) || output.shape[0] != rows)
            throw new DetectorCheckpointException(path,
                $"{path}: the probe batch of {rows} gave an output of shape [{shape}]; a detector gives [B] or [B, K] with B = {rows}.");
        var width = output.dim() == 1 ? 1 : (int)output.shape[1];
        if (!card.OutputDeclared)
        {
            if (width != 1)
                throw new DetectorCardException(cardFile, "output",
                    $"the network gives {width} values per image (probe output [{shape}]); the card must say what they are, e.g. " +
                    "{\"output\": {\"kind\": \"two-class\", \"fakeIndex\": 1}}.");
            card = card with { Output = OutputKind.OneLogit, OutputDeclared = true };
        }
        else if (width != card.OutputWidth)
        {
            throw new DetectorCardException(cardFile, "output.kind",
                $"'{DetectorCard.OutputName(card.Output)}' means {card.OutputWidth} value(s) per image, but the network gives {width} (probe output [{shape}]).");
        }
        using var values = output.to(ScalarType.Float64).cpu();
        if (!values.isfinite().all().item<bool>())
            throw new DetectorCheckpointException(path, $"{path}: the probe gave non-finite outputs (NaN or infinity).");
        if (card.Output == OutputKind.Probability && (values.min().item<double>() < 0 || values.max().item<double>() > 1))
            throw new DetectorCardException(cardFile, "output.kind",
                $"'probability' but the probe gave values in [{values.min().item<double>().ToString("G4", CultureInfo.InvariantCulture)}, " +
                $"{values.max().item<double>().ToString("G4", CultureInfo.InvariantCulture)}]; a network ending in logits is 'one-logit'.");
        return card;
    }
}
