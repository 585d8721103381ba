using System.Globalization;
using System.Text.Json;
using Forensics.ML.Detectors;
using Forensics.ML.Evaluation;
using Forensics.ML.Generators;
using Forensics.ML.Models;
using Forensics.ML.Models.Clip;
using Forensics.ML.Models.Diffusion;
using Forensics.ML.Lare2;
using Forensics.ML.Weights;
using static TorchSharp.torch;

namespace Forensics.ML.Inspection;

/// <summary>
/// Loads a weights file or folder into its architecture and measures it: kind and architecture inferred where not given,
/// the key report of the load, size, SHA-256 of the weights file, and the MACs where they are known
/// (<see cref="ModelMacs"/>). The torch runtime must be loaded. Errors are <see cref="ModelInspectionException"/>s naming the input at fault.
/// </summary>
public static class ModelInspector
{
    /// <summary>
    /// Inspects <paramref name="path"/> (which exists) as a <paramref name="kind"/> of <paramref name="architecture"/>, either
    /// inferred when null or blank. A load whose key report is not clean is refused on "path", naming the keys.
    /// </summary>
    public static ModelInspection Inspect(string path, string? kind = null, string? architecture = null, CancellationToken ct = default)
    {
        kind = string.IsNullOrWhiteSpace(kind) ? null : kind.Trim().ToLowerInvariant();
        architecture = string.IsNullOrWhiteSpace(architecture) ? null : architecture.Trim().ToLowerInvariant();
        if (kind is not null && !ModelKinds.Architectures.ContainsKey(kind))
            throw new ModelInspectionException("kind", $"unknown kind '{kind}'; known: {string.Join(", ", ModelKinds.Architectures.Keys)}");
        if (architecture is not null && kind is not null && !ModelKinds.Architectures[kind].Contains(architecture))
            throw new ModelInspectionException("architecture", $"a {kind} has architecture {string.Join(" or ", ModelKinds.Architectures[kind])}, not '{architecture}'");
        if (architecture is not null && kind is null)
            kind = ModelKinds.Architectures.FirstOrDefault(p => p.Value.Contains(architecture)).Key
                   ?? throw new ModelInspectionException("architecture", $"unknown architecture '{architecture}'; known: {string.Join(", ", ModelKinds.Architectures.Values.SelectMany(a => a))}");

        var isFolder = Directory.Exists(path);
        var (inferredKind, inferredArch) = isFolder ? ModelKindInference.OfFolder(path) : ModelKindInference.OfFile(path);
        // A generator's Stable Diffusion folder may still be registered as the autoencoder in its vae/.
        if (kind is not null && inferredKind is not null && isFolder && kind != inferredKind && inferredKind != ModelKinds.Generator)
            throw new ModelInspectionException("kind", $"'{path}' holds a {inferredKind} (config.json), not a {kind}");
        kind ??= inferredKind ?? throw new ModelInspectionException("path", inferredArch!);
        architecture ??= kind == inferredKind && inferredArch is not null ? inferredArch : ModelKinds.Architectures[kind][0];

        try
        {
            var inspection = kind switch
            {
                ModelKinds.Generator => InspectGenerator(path, architecture),
                ModelKinds.Autoencoder => InspectAutoencoder(path),
                ModelKinds.Unet => InspectUnet(path),
                ModelKinds.TextEncoder => InspectTextEncoder(path),
                ModelKinds.Detector when architecture == Lare2Evaluator.Architecture => InspectLare(path),
                ModelKinds.Detector => InspectDetector(path, architecture),
                ModelKinds.Clip => InspectClip(path),
                _ => throw new ModelInspectionException("kind", $"unknown kind '{kind}'"),
            };
            if (!inspection.Keys.Clean)
                throw new ModelInspectionException("path", $"'{path}' does not load as a {architecture}: {inspection.Keys.Describe()}");
            ct.ThrowIfCancellationRequested();
            var (bytes, sha) = (new FileInfo(inspection.WeightsPath).Length, FileDigest.Sha256(inspection.WeightsPath));
            if (isFolder && kind != ModelKinds.Generator) bytes = Directory.EnumerateFiles(path).Select(f => new FileInfo(f)).Where(f => IsModelFile(f.Name)).Sum(f => f.Length);
            if (kind == ModelKinds.Generator) bytes = inspection.Bytes;
            return inspection with { Kind = kind, Architecture = architecture, Bytes = bytes, Sha256 = sha };
        }
        catch (Exception e) when (e is IOException or InvalidDataException or ArgumentException or NotSupportedException or JsonException or UnauthorizedAccessException)
        {
            throw new ModelInspectionException("path", $"'{path}' does not load as a {architecture}: {e.Message}");
        }
    }

    static bool IsModelFile(string name) => name is "config.json" || name.EndsWith(".safetensors", StringComparison.Ordinal) || name.EndsWith(".bin", StringComparison.Ordinal);

    static ModelInspection InspectAutoencoder(string folder)
    {
        if (!Directory.Exists(folder)) throw new InvalidDataException("an autoencoder must be a diffusers AutoencoderKL folder (config.json + weights)");
        if (!File.Exists(Path.Combine(folder, "config.json")) && File.Exists(Path.Combine(folder, "vae", "config.json"))) folder = Path.Combine(folder, "vae");
        var config = AutoencoderKLConfig.FromJsonFile(Path.Combine(folder, "config.json"));
        var weightsPath = AutoencoderKL.WeightsFileNames.Select(n => Path.Combine(folder, n)).FirstOrDefault(File.Exists)
                          ?? throw new FileNotFoundException($"{folder} holds none of {string.Join(", ", AutoencoderKL.WeightsFileNames)}");
        using var weights = WeightsFile.Load(weightsPath);
        var count = weights.Count;
        AutoencoderKLKeys.Upgrade(weights, config);
        using var model = new AutoencoderKL(config);
        var report = KeyReport.From(StateDictLoader.Load(model, weights, strict: false), count);
        var (encode, decode) = ModelMacs.EncodeDecode(model, ModelMacs.CostImageSize);
        return new ModelInspection(ModelKinds.Autoencoder, "autoencoder-kl", "diffusers", weightsPath, 0, "", report,
            $"block_out_channels [{string.Join(", ", config.BlockOutChannels)}], layers_per_block {config.LayersPerBlock}, latent_channels {config.LatentChannels}, " +
            $"scaling_factor {config.ScalingFactor.ToString(CultureInfo.InvariantCulture)}",
            encode + decode, $"{ModelMacs.CostImageSize}x{ModelMacs.CostImageSize} image (encode + decode)", encode, decode, config.DownsampleFactor, config.LatentChannels);
    }

    /// <summary>
    /// A generator folder, loaded exactly as MiniGenImage samples it (<see cref="GeneratorFolder.Load"/>, strict loads of every
    /// component). The hash is of the file that differs between generators of one family: the UNet, or the DCGAN generator.
    /// </summary>
    static ModelInspection InspectGenerator(string folder, string architecture)
    {
        if (!Directory.Exists(folder)) throw new InvalidDataException("a generator must be a folder with generator.json (written by train-ldm or train-gan)");
        var manifest = GeneratorManifest.Read(folder);
        var actual = ModelKinds.GeneratorArchitecture(manifest);
        if (actual != architecture)
            throw new InvalidDataException($"{GeneratorManifest.FileName} says kind '{manifest.Kind}' (architecture {actual}), not {architecture}");
        var weightFiles = actual == "ldm"
            ? new[] { "unet/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.safetensors", "text_encoder/model.safetensors" }
            : new[] { GanTrainer.GeneratorWeights };
        var present = weightFiles.Select(f => Path.Combine(folder, f)).Where(File.Exists).ToList();
        if (present.Count == 0) throw new FileNotFoundException($"{folder} holds none of {string.Join(", ", weightFiles)}");
        var keys = present.Sum(f => SafeTensors.ReadHeader(f).Entries.Count);
        KeyReport report;
        try
        {
            using var generator = GeneratorFolder.Load(folder);
            report = new KeyReport(keys, keys, [], [], []);
        }
        catch (WeightsMismatchException e) { report = KeyReport.From(e.Report, keys); }
        var bytes = Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length);
        var config = $"{manifest.Kind}, name {manifest.Name}, family {manifest.Family}, {manifest.Resolution}x{manifest.Resolution}" +
                     (actual == "ldm" ? $", {manifest.InferenceSteps} DDIM steps, guidance {manifest.GuidanceScale.ToString(CultureInfo.InvariantCulture)}, prompt \"{manifest.Prompt}\"" : "");
        return new ModelInspection(ModelKinds.Generator, actual, "safetensors", present[0], bytes, "", report, config, null, null, null, null, null, null);
    }

    static ModelInspection InspectUnet(string folder)
    {
        if (!Directory.Exists(folder)) throw new InvalidDataException("a unet must be a diffusers UNet2DConditionModel folder");
        var config = UNet2DConditionConfig.ReadConfig(Path.Combine(folder, "config.json"));
        var weightsPath = Path.Combine(folder, "diffusion_pytorch_model.safetensors");
        using var weights = SafeTensors.Load(weightsPath, upcastHalf: true);
        using var model = new UNet2DConditionModel(config);
        var report = KeyReport.From(StateDictLoader.Load(model, weights, strict: false), weights.Count);
        long? macs = report.Clean ? model.MacsPerSample(ModelMacs.UnetLatentSize, ModelMacs.UnetLatentSize) : null;
        return new ModelInspection(ModelKinds.Unet, "unet2d-condition", "diffusers", weightsPath, 0, "", report,
            $"block_out_channels [{string.Join(", ", config.BlockOutChannels)}], cross_attention_dim {config.CrossAttentionDim}, in_channels {config.InChannels}",
            macs, $"one denoising step at a {ModelMacs.UnetLatentSize}x{ModelMacs.UnetLatentSize} latent, 77 text tokens", null, null, null, config.InChannels);
    }

    static ModelInspection InspectTextEncoder(string folder)
    {
        if (!Directory.Exists(folder)) throw new InvalidDataException("a text encoder must be a transformers CLIPTextModel folder");
        var config = ClipTextConfig.Read(Path.Combine(folder, "config.json"));
        var weightsPath = new[] { "model.safetensors", "pytorch_model.bin" }.Select(n => Path.Combine(folder, n)).FirstOrDefault(File.Exists)
                          ?? throw new FileNotFoundException($"{folder}: no model.safetensors or pytorch_model.bin");
        using var weights = WeightsFile.Load(weightsPath);
        var count = weights.Count;
        if (weights.Remove(ClipTextModel.PositionIdsKey, out var ids)) ids.Dispose();
        using var model = new ClipTextModel(config);
        var report = KeyReport.From(StateDictLoader.Load(model, weights, strict: false), count);
        return new ModelInspection(ModelKinds.TextEncoder, "clip-text", "transformers", weightsPath, 0, "", report, config.ToString(), null, null, null, null, null, null);
    }

    static ModelInspection InspectDetector(string file, string architecture)
    {
        if (!File.Exists(file)) throw new InvalidDataException("a detector must be a checkpoint file");
        if (DetectorArchitectures.Get(architecture).IsPackage) return InspectPackage(file, architecture);
        int count;
        using (var weights = WeightsFile.Load(file)) count = weights.Count;
        try
        {
            using var detector = DetectorCheckpoint.Load(file, architecture);
            using var input = zeros(1, 3, ModelMacs.DetectorImageSize, ModelMacs.DetectorImageSize);
            var macs = MacCounter.PerSample(detector.Model, input);
            var o = detector.Options;
            return new ModelInspection(ModelKinds.Detector, architecture, Format(file), file, 0, "", KeyReport.From(detector.LoadReport, count),
                $"width {o.BaseWidth}, layers [{string.Join(", ", o.Layers)}], {o.NumClasses} logit(s)", macs,
                $"{ModelMacs.DetectorImageSize}x{ModelMacs.DetectorImageSize} image", null, null, null, null);
        }
        catch (DetectorCheckpointException e) when (e.Report is { } report)
        {
            return new ModelInspection(ModelKinds.Detector, architecture, Format(file), file, 0, "", KeyReport.From(report, count), null, null, null, null, null, null, null);
        }
    }

    /// <summary>
    /// A TorchScript or ONNX detector: loaded and probed with a dummy batch under its card (MODEL.card.json beside it, or
    /// the default card); a probe failure or a card that contradicts the network is refused naming the card's field.
    /// </summary>
    static ModelInspection InspectPackage(string file, string architecture)
    {
        try
        {
            using var detector = DetectorCheckpoint.Load(file, architecture, null, null);
            var card = detector.Card;
            var summary = $"{architecture} package, card {(detector.CardPath is null ? "default" : Path.GetFileName(detector.CardPath))}: " +
                          $"{DetectorCard.PolicyName(card.SizePolicy)}{(card.Size is { } s ? $" {s.Height}x{s.Width}" : "")}, " +
                          $"{DetectorCard.OutputName(card.Output)}{(card.Output == OutputKind.TwoClass ? $" (fake index {card.FakeIndex})" : "")}, " +
                          $"batching {card.Batching.ToString().ToLowerInvariant()}{(card.Batching == CardBatching.Fixed ? $" {card.BatchSize}" : "")}; probe passed";
            return new ModelInspection(ModelKinds.Detector, architecture, architecture, file, 0, "", KeyReport.From(detector.LoadReport, 0), summary,
                null, null, null, null, null, null);
        }
        catch (DetectorCardException e) { throw new ModelInspectionException("card", e.Message); }
    }

    static ModelInspection InspectLare(string file)
    {
        using var model = Lare2Classifier.Load(file, out var report);
        return new ModelInspection(ModelKinds.Detector, Lare2Evaluator.Architecture, Format(file), file, 0, "", KeyReport.From(report.Report, report.Report.Loaded + report.IgnoredTextTower.Count),
            $"{report.IgnoredTextTower.Count} CLIP text-tower tensor(s) ignored", null, null, null, null, null, null);
    }

    static ModelInspection InspectClip(string file)
    {
        using var model = ClipVisual.Load(file, out var report);
        return new ModelInspection(ModelKinds.Clip, "clip-rn", Format(file), file, 0, "", KeyReport.From(report, report.Loaded), "CLIP ModifiedResNet image tower",
            null, null, null, null, null, null);
    }

    static string Format(string file) => file.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase) ? "safetensors" : "pytorch";
}
