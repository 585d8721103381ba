using System.Text.Json;
using Forensics.ML.Detectors;
using Forensics.ML.Evaluation;
using Forensics.ML.Generators;
using Forensics.ML.Lare2;
using Forensics.ML.Weights;

namespace Forensics.ML.Inspection;

/// <summary>
/// Tells what a path holds without loading it: a folder by its generator.json or config.json class, a single file by its
/// state-dict keys. Each method answers (kind, architecture), or (null, why not).
/// </summary>
public static class ModelKindInference
{
    /// <summary>A diffusers/transformers folder: its config.json's "_class_name" or "architectures".</summary>
    public static (string? Kind, string? ArchOrError) OfFolder(string folder)
    {
        // A generator folder (a Stable Diffusion folder or a DCGAN) says what it is in generator.json; its vae/ must not decide.
        if (File.Exists(Path.Combine(folder, GeneratorManifest.FileName)))
        {
            try { return (ModelKinds.Generator, ModelKinds.GeneratorArchitecture(GeneratorManifest.Read(folder))); }
            catch (InvalidDataException e) { return (null, e.Message); }
        }
        var config = Path.Combine(folder, "config.json");
        if (!File.Exists(config) && File.Exists(Path.Combine(folder, "vae", "config.json"))) config = Path.Combine(folder, "vae", "config.json");
        if (!File.Exists(config)) return (null, $"the folder '{folder}' has no config.json: give a diffusers or transformers model folder, or a weights file");
        string? className = null;
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(config));
            var root = doc.RootElement;
            if (root.TryGetProperty("_class_name", out var c) && c.ValueKind == JsonValueKind.String) className = c.GetString();
            else if (root.TryGetProperty("architectures", out var a) && a.ValueKind == JsonValueKind.Array && a.GetArrayLength() > 0) className = a[0].GetString();
        }
        catch (JsonException e) { return (null, $"{config}: not valid JSON ({e.Message})"); }
        return className switch
        {
            "AutoencoderKL" => (ModelKinds.Autoencoder, "autoencoder-kl"),
            "UNet2DConditionModel" => (ModelKinds.Unet, "unet2d-condition"),
            "CLIPTextModel" or "CLIPTextModelWithProjection" => (ModelKinds.TextEncoder, "clip-text"),
            _ => (null, $"{config}: class '{className ?? "(none)"}' is not one the portal loads (AutoencoderKL, UNet2DConditionModel, CLIPTextModel)"),
        };
    }

    /// <summary>A single weights file: its state-dict keys (the safetensors header alone when it is one) decide.</summary>
    public static (string? Kind, string? ArchOrError) OfFile(string file)
    {
        // A TorchScript archive or an ONNX file is a detector package (model + card), not a state dict.
        if (DetectorPackage.SniffFormat(file) is { } package) return (ModelKinds.Detector, package);
        List<string> keys;
        try
        {
            if (file.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase)) keys = SafeTensors.ReadHeader(file).Entries.Select(e => e.Name).ToList();
            else
            {
                using var weights = WeightsFile.Load(file);
                keys = [.. weights.Names];
            }
        }
        catch (Exception e) when (e is IOException or InvalidDataException or JsonException or NotSupportedException)
        {
            return (null, $"'{file}' is not a readable weights file: {e.Message}");
        }
        bool Has(string key) => keys.Contains(key);
        bool Starts(string prefix) => keys.Any(k => k.StartsWith(prefix, StringComparison.Ordinal));
        if (Starts(Lare2Classifier.BackbonePrefix) && (Has("conv.weight") || Starts("attn_pool."))) return (ModelKinds.Detector, Lare2Evaluator.Architecture);
        if (Starts("visual.attnpool.") || Starts("attnpool.")) return (ModelKinds.Clip, "clip-rn");
        if (Has("conv1.weight") && Has("fc.weight") && Starts("layer4.")) return (ModelKinds.Detector, DetectorArchitectures.Default.Name);
        return (null, $"cannot tell what '{file}' holds from its {keys.Count} key(s) ({string.Join(", ", keys.Take(8))}{(keys.Count > 8 ? ", ..." : "")}); " +
                      "give kind and architecture");
    }
}
