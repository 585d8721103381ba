using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Forensics.ML.Generators;

/// <summary>
/// generator.json: what a trained generator folder holds and how to sample it. Written by the training commands,
/// read by <see cref="GeneratorFolder.Load"/>.
/// </summary>
/// <param name="Kind"><see cref="LatentDiffusionKind"/> or <see cref="GanKind"/>.</param>
/// <param name="Name">The generator's name (its folder in the GenImage layout).</param>
/// <param name="Family">"latent-diffusion" or "gan".</param>
/// <param name="Resolution">Side of the square images it makes.</param>
public sealed record GeneratorManifest(string Kind, string Name, string Family, int Resolution)
{
    /// <summary>The file name in a generator folder.</summary>
    public const string FileName = "generator.json";

    /// <summary>Kind of a folder written by train-ldm: a diffusers Stable Diffusion folder.</summary>
    public const string LatentDiffusionKind = "latent-diffusion";

    /// <summary>Kind of a folder written by train-gan.</summary>
    public const string GanKind = "dcgan";

    /// <summary>DDIM steps per image (latent diffusion only).</summary>
    public int InferenceSteps { get; init; } = 25;

    /// <summary>Classifier-free guidance scale; 1 means no guidance (one UNet pass per step).</summary>
    public double GuidanceScale { get; init; } = 1.0;

    /// <summary>The prompt the latent diffusion model is conditioned on.</summary>
    public string Prompt { get; init; } = "a photo";

    /// <summary>The DDIM eta (0: deterministic DDIM, the only value supported).</summary>
    public double Eta { get; init; }

    /// <summary>Writes the manifest as indented JSON to <paramref name="folder"/>/generator.json.</summary>
    public void Write(string folder)
    {
        var sampling = new JsonObject { ["eta"] = Eta };
        if (Kind == LatentDiffusionKind)
        {
            sampling["scheduler"] = "ddim";
            sampling["num_inference_steps"] = InferenceSteps;
            sampling["guidance_scale"] = GuidanceScale;
            sampling["prompt"] = Prompt;
        }
        var o = new JsonObject
        {
            ["kind"] = Kind,
            ["name"] = Name,
            ["family"] = Family,
            ["resolution"] = Resolution,
            ["sampling"] = sampling,
        };
        File.WriteAllText(Path.Combine(folder, FileName), o.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
    }

    /// <summary>Reads <paramref name="folder"/>/generator.json; errors name the file and the field.</summary>
    public static GeneratorManifest Read(string folder)
    {
        var path = Path.Combine(folder, FileName);
        if (!File.Exists(path))
            throw new FileNotFoundException($"{folder} is not a generator folder: it has no {FileName} (written by train-ldm or train-gan)", path);
        JsonNode? root;
        try { root = JsonNode.Parse(File.ReadAllText(path)); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not valid JSON: {e.Message}", e); }
        if (root is not JsonObject o) throw new InvalidDataException($"{path}: the JSON is not an object");
        string Str(JsonObject obj, string key) => obj[key] is JsonValue v && v.TryGetValue<string>(out var s) && s.Length > 0
            ? s : throw new InvalidDataException($"{path}: '{key}' must be a non-empty string");
        var kind = Str(o, "kind");
        if (kind is not (LatentDiffusionKind or GanKind))
            throw new InvalidDataException($"{path}: 'kind' is '{kind}', not {LatentDiffusionKind} or {GanKind}");
        var resolution = o["resolution"] is JsonValue r && r.TryGetValue<int>(out var res) && res > 0
            ? res : throw new InvalidDataException($"{path}: 'resolution' must be a positive integer");
        var manifest = new GeneratorManifest(kind, Str(o, "name"), Str(o, "family"), resolution);
        if (o["sampling"] is JsonObject s)
        {
            double Num(string key, double fallback) => s[key] is null ? fallback
                : s[key] is JsonValue v && v.TryGetValue<double>(out var d) ? d
                : throw new InvalidDataException($"{path}: 'sampling.{key}' must be a number");
            manifest = manifest with
            {
                Eta = Num("eta", 0),
                InferenceSteps = (int)Num("num_inference_steps", manifest.InferenceSteps),
                GuidanceScale = Num("guidance_scale", manifest.GuidanceScale),
                Prompt = s["prompt"] is null ? manifest.Prompt : Str(s, "prompt"),
            };
        }
        if (manifest.Eta != 0) throw new InvalidDataException($"{path}: 'sampling.eta' is {manifest.Eta.ToString(CultureInfo.InvariantCulture)}; only 0 (deterministic DDIM) is supported");
        if (manifest.InferenceSteps < 1) throw new InvalidDataException($"{path}: 'sampling.num_inference_steps' must be at least 1");
        if (manifest.GuidanceScale < 1) throw new InvalidDataException($"{path}: 'sampling.guidance_scale' must be at least 1 (1 = no guidance)");
        return manifest;
    }
}
