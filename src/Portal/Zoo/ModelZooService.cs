using System.Globalization;
using System.Text;
using System.Text.Json;
using Forensics.ML.Evaluation;
using Forensics.ML.Detectors;
using Forensics.ML.Generators;
using Forensics.ML.Lare2;
using Forensics.ML.Models;
using Forensics.ML.Models.Clip;
using Forensics.ML.Models.Diffusion;
using Forensics.ML.Runtime;
using Forensics.ML.Weights;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Portal.Infrastructure;
using Portal.Store;
using TorchSharp;
using static TorchSharp.torch;
using Portal.Runs;
using Portal.Experiments;
using Portal.Datasets;

namespace Portal.Zoo;

/// <summary>
/// The model zoo: registers weights files and folders (autoencoders, UNets, text encoders, detectors, CLIP towers) after
/// checking that they load into their architecture, and reads them back with their inspection and cost.
/// </summary>
public sealed class ModelZooService(IDbContextFactory<PortalDb> dbFactory, PortalPaths paths, IOptions<PortalOptions> options,
    Auth.CurrentUser? currentUser = null, Auth.AuditLog? audit = null)
{
    public const string Autoencoder = "autoencoder";
    public const string Unet = "unet";
    public const string TextEncoder = "text-encoder";
    public const string Detector = "detector";
    public const string Clip = "clip";
    /// <summary>An image generator folder written by train-ldm ("ldm") or train-gan ("dcgan"), as MiniGenImage samples it.</summary>
    public const string Generator = "generator";

    /// <summary>The kinds and the architectures each accepts, first = default.</summary>
    public static readonly IReadOnlyDictionary<string, string[]> Architectures = new Dictionary<string, string[]>
    {
        [Autoencoder] = ["autoencoder-kl"],
        [Unet] = ["unet2d-condition"],
        [TextEncoder] = ["clip-text"],
        [Detector] = [.. DetectorArchitectures.All.Select(a => a.Name), Lare2Evaluator.Architecture],
        [Clip] = ["clip-rn"],
        [Generator] = ["ldm", "dcgan"],
    };

    /// <summary>The image side the MACs are quoted at for autoencoders (and the UNet's latent follows from it), as in the paper's comparison.</summary>
    public const int CostImageSize = 256;
    /// <summary>The UNet's MACs per step are quoted at a 32 x 32 latent (a 256 x 256 image through an f8 autoencoder) with 77 text tokens.</summary>
    public const int UnetLatentSize = 32;
    /// <summary>The detector MACs are quoted at 224 x 224.</summary>
    public const int DetectorImageSize = 224;

    /// <summary>The paper's figures (Rajan et al., 2410.11835): the reference point for the cost ratio.</summary>
    public const string PaperReference =
        "Rajan et al. (aligned datasets) quote about 25.2 GMACs for a full latent-diffusion generation (U-Net about 23.6, " +
        "autoencoder about 1.5) against 2.32 for a reconstruction: alignment is about 10x cheaper than generating fakes.";

    static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    /// <summary>
    /// Registers <paramref name="path"/> under <paramref name="name"/>: the path must lie under an allowed root and exist;
    /// kind and architecture are inferred when not given; the weights are loaded into the architecture and a registration
    /// whose key report is not clean is refused (400 on "path", naming the keys); name taken: 409.
    /// </summary>
    public async Task<(ModelWeights Model, ModelInspection Inspection)> RegisterAsync(string? name, string? path, string? kind = null,
        string? architecture = null, CancellationToken ct = default)
    {
        var actor = currentUser is null ? Auth.Actor.System : await currentUser.GetAsync();
        if (!actor.CanQueue) throw new Auth.AccessDeniedException($"{actor.Name} ({actor.Role ?? "no role"}) may not register weights: it needs the researcher or admin role");
        name = name?.Trim();
        if (string.IsNullOrEmpty(name)) throw new FieldException("name", "name is required");
        if (name.Length > 200) throw new FieldException("name", "name must be at most 200 characters");
        if (string.IsNullOrWhiteSpace(path)) throw new FieldException("path", "path is required");
        string resolved;
        try { resolved = paths.ResolveAllowed(path); }
        catch (PathNotAllowedException e) { throw new FieldException("path", e.Message); }
        if (!Directory.Exists(resolved) && !File.Exists(resolved)) throw new FieldException("path", $"'{path}' does not exist");
        await using (var db = await dbFactory.CreateDbContextAsync(ct))
            if (await db.Weights.AnyAsync(w => w.Name == name, ct))
                throw new FieldException("name", $"a model named '{name}' already exists", 409);

        var inspection = await InspectAsync(resolved, kind, architecture, ct);
        var model = new ModelWeights
        {
            Name = name, Kind = inspection.Kind, Architecture = inspection.Architecture, Path = resolved, Format = inspection.Format,
            Bytes = inspection.Bytes, Sha256 = inspection.Sha256, CreatedAt = DateTime.UtcNow,
            RegisteredBy = actor.IsSystem ? null : actor.Name,
        };
        model.Card = Card(model, inspection);
        await using (var db = await dbFactory.CreateDbContextAsync(ct))
        {
            db.Weights.Add(model);
            try { await db.SaveChangesAsync(ct); }
            catch (DbUpdateException) { throw new FieldException("name", $"a model named '{name}' already exists", 409); }
        }
        SaveInspection(model.Id, inspection);
        if (!actor.IsSystem && audit is not null) await audit.RecordAsync("model.register", $"model:{model.Id}", $"{name} at {resolved}", actor.Name);
        return (model, inspection);
    }

    /// <summary>
    /// Renames a zoo entry (the name the leaderboard, the matrix and the forms show): researcher or admin; blank or too long:
    /// 400 on "name"; taken by another entry: 409; unknown id: null.
    /// </summary>
    public async Task<ModelWeights?> RenameAsync(long id, string? name, CancellationToken ct = default)
    {
        var actor = currentUser is null ? Auth.Actor.System : await currentUser.GetAsync();
        if (!actor.CanQueue) throw new Auth.AccessDeniedException($"{actor.Name} ({actor.Role ?? "no role"}) may not rename models: it needs the researcher or admin role");
        name = name?.Trim();
        if (string.IsNullOrEmpty(name)) throw new FieldException("name", "name is required");
        if (name.Length > 200) throw new FieldException("name", "name must be at most 200 characters");
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        var model = await db.Weights.SingleOrDefaultAsync(w => w.Id == id, ct);
        if (model is null) return null;
        if (model.Name == name) return model;
        if (await db.Weights.AnyAsync(w => w.Name == name && w.Id != id, ct))
            throw new FieldException("name", $"a model named '{name}' already exists", 409);
        var old = model.Name;
        model.Name = name;
        try { await db.SaveChangesAsync(ct); }
        catch (DbUpdateException) { throw new FieldException("name", $"a model named '{name}' already exists", 409); }
        if (!actor.IsSystem && audit is not null) await audit.RecordAsync("model.rename", $"model:{id}", $"{old} -> {name}", actor.Name);
        return model;
    }

    public async Task<List<ModelWeights>> ListAsync(string? kind = null)
    {
        await using var db = await dbFactory.CreateDbContextAsync();
        var q = db.Weights.AsNoTracking();
        if (!string.IsNullOrEmpty(kind)) q = q.Where(w => w.Kind == kind);
        return await q.OrderBy(w => w.Name).ToListAsync();
    }

    public async Task<ModelWeights?> GetAsync(long id)
    {
        await using var db = await dbFactory.CreateDbContextAsync();
        return await db.Weights.AsNoTracking().SingleOrDefaultAsync(w => w.Id == id);
    }

    /// <summary>The stored inspection of a zoo entry; made now (and kept) for entries registered without one, e.g. by a training run.</summary>
    public async Task<ModelInspection?> InspectionAsync(ModelWeights model, CancellationToken ct = default)
    {
        var file = InspectionPath(model.Id);
        if (File.Exists(file))
        {
            try { return JsonSerializer.Deserialize<ModelInspection>(await File.ReadAllTextAsync(file, ct), Json); }
            catch (JsonException) { /* rewritten below */ }
        }
        if (!File.Exists(model.Path) && !Directory.Exists(model.Path)) return null;
        try
        {
            var inspection = await InspectAsync(model.Path, model.Kind, model.Architecture, ct);
            SaveInspection(model.Id, inspection);
            return inspection;
        }
        catch (FieldException) { return null; }
    }

    /// <summary>
    /// Alignment versus generation MACs of one <paramref name="imageSize"/>² image: alignment = encode + decode; generation
    /// = <paramref name="steps"/> UNet passes at the autoencoder's latent size + one decode (no classifier-free guidance,
    /// which would double the UNet term).
    /// </summary>
    public async Task<ModelCost> CostAsync(long autoencoderId, long unetId, int steps = 50, int imageSize = CostImageSize, CancellationToken ct = default) =>
        await CostAsync(autoencoderId, unetId, (int?)steps, imageSize, ct);

    /// <summary>
    /// As above; <paramref name="unetId"/> may also be a latent diffusion generator of the zoo (its unet/ folder), whose
    /// sampling steps (generator.json's num_inference_steps) are the default when <paramref name="steps"/> is null (else 50).
    /// </summary>
    public async Task<ModelCost> CostAsync(long autoencoderId, long unetId, int? steps, int imageSize = CostImageSize, CancellationToken ct = default)
    {
        if (steps is { } requested) ConfigLimits.AtMost("steps", requested, options.Value.Limits.Steps, nameof(ConfigLimits.Steps));
        if (steps < 1) throw new FieldException("steps", "steps must be at least 1");
        if (imageSize is < 8 or > 4096) throw new FieldException("size", "size must be between 8 and 4096");
        var ae = await GetAsync(autoencoderId) ?? throw new FieldException("autoencoder", $"no model with id {autoencoderId}");
        if (ae.Kind != Autoencoder) throw new FieldException("autoencoder", $"model '{ae.Name}' is a {ae.Kind}, not an autoencoder");
        var unet = await GetAsync(unetId) ?? throw new FieldException("unet", $"no model with id {unetId}");
        var generatorUnet = unet.Kind == Generator && Directory.Exists(unet.Path) ? Path.Combine(unet.Path, "unet") : null;
        if (unet.Kind != Unet && (generatorUnet is null || !Directory.Exists(generatorUnet)))
            throw new FieldException("unet", $"model '{unet.Name}' is a {unet.Kind}{(unet.Kind == Generator ? " without a unet/ folder (not a latent diffusion model)" : "")}, not a unet or a latent diffusion generator");
        // A generator samples with its own DDIM steps, two UNet passes per step under classifier-free guidance.
        Forensics.ML.Generators.GeneratorManifest? manifest = null;
        if (generatorUnet is not null)
        {
            try { manifest = Forensics.ML.Generators.GeneratorManifest.Read(unet.Path); }
            catch (Exception e) when (e is IOException or InvalidDataException or JsonException or ArgumentException) { manifest = null; }
        }
        var stepCount = steps ?? manifest?.InferenceSteps ?? 50;
        var passes = manifest is { GuidanceScale: > 1 } ? 2 : 1;

        TorchRuntime.EnsureLoaded(options.Value.Torch);
        var (encode, decode, factor) = AutoencoderMacs(ae.Path, imageSize);
        var latent = imageSize / factor;
        long perStep;
        if (generatorUnet is not null)
        {
            using var model = UNet2DConditionModel.FromPretrained(generatorUnet);
            perStep = UnetMacs(model, latent);
        }
        else
        {
            var unetInspection = await InspectionAsync(unet, ct) ?? throw new FieldException("unet", $"model '{unet.Name}' can no longer be read at {unet.Path}");
            var key = latent.ToString(CultureInfo.InvariantCulture);
            if (latent == UnetLatentSize && unetInspection.Macs is { } stored) perStep = stored;
            else if (unetInspection.UnetMacsByLatent?.TryGetValue(key, out var cached) == true) perStep = cached;
            else
            {
                using (var model = UNet2DConditionModel.FromPretrained(unet.Path)) perStep = UnetMacs(model, latent);
                var byLatent = new Dictionary<string, long>(unetInspection.UnetMacsByLatent ?? []) { [key] = perStep };
                SaveInspection(unet.Id, unetInspection with { UnetMacsByLatent = byLatent });
            }
        }
        var alignment = encode + decode;
        var generation = (long)stepCount * passes * perStep + decode;
        return new ModelCost(ae.Id, unet.Id, stepCount, imageSize, latent, perStep, encode, decode, alignment, generation,
            (double)generation / alignment, PaperReference);
    }

    string InspectionPath(long id) => paths.Data("zoo", id.ToString(CultureInfo.InvariantCulture), "inspection.json");

    void SaveInspection(long id, ModelInspection inspection)
    {
        var file = InspectionPath(id);
        Directory.CreateDirectory(Path.GetDirectoryName(file)!);
        File.WriteAllText(file + ".tmp", JsonSerializer.Serialize(inspection, Json));
        File.Move(file + ".tmp", file, overwrite: true);
    }

    /// <summary>Infers kind and architecture where not given, loads the weights into it and measures it. Errors are FieldExceptions.</summary>
    async Task<ModelInspection> InspectAsync(string path, string? kind, string? architecture, CancellationToken ct)
    {
        kind = string.IsNullOrWhiteSpace(kind) ? null : kind.Trim().ToLowerInvariant();
        architecture = string.IsNullOrWhiteSpace(architecture) ? null : architecture.Trim().ToLowerInvariant();
        if (kind is not null && !Architectures.ContainsKey(kind))
            throw new FieldException("kind", $"unknown kind '{kind}'; known: {string.Join(", ", Architectures.Keys)}");
        if (architecture is not null && kind is not null && !Architectures[kind].Contains(architecture))
            throw new FieldException("architecture", $"a {kind} has architecture {string.Join(" or ", Architectures[kind])}, not '{architecture}'");
        if (architecture is not null && kind is null)
            kind = Architectures.FirstOrDefault(p => p.Value.Contains(architecture)).Key
                   ?? throw new FieldException("architecture", $"unknown architecture '{architecture}'; known: {string.Join(", ", Architectures.Values.SelectMany(a => a))}");

        TorchRuntime.EnsureLoaded(options.Value.Torch);
        var isFolder = Directory.Exists(path);
        var (inferredKind, inferredArch) = isFolder ? InferFolder(path) : InferFile(path);
        // A generator's Stable Diffusion folder may still be registered as the autoencoder in its vae/.
        if (kind is not null && inferredKind is not null && isFolder && kind != inferredKind && inferredKind != Generator)
            throw new FieldException("kind", $"'{path}' holds a {inferredKind} (config.json), not a {kind}");
        kind ??= inferredKind ?? throw new FieldException("path", inferredArch!);
        architecture ??= kind == inferredKind && inferredArch is not null ? inferredArch : Architectures[kind][0];

        try
        {
            var inspection = kind switch
            {
                Generator => InspectGenerator(path, architecture),
                Autoencoder => InspectAutoencoder(path),
                Unet => InspectUnet(path),
                TextEncoder => InspectTextEncoder(path),
                Detector when architecture == Lare2Evaluator.Architecture => InspectLare(path),
                Detector => InspectDetector(path, architecture),
                Clip => InspectClip(path),
                _ => throw new FieldException("kind", $"unknown kind '{kind}'"),
            };
            if (!inspection.Keys.Clean)
                throw new FieldException("path", $"'{path}' does not load as a {architecture}: {inspection.Keys.Describe()}");
            var (bytes, sha) = (new FileInfo(inspection.WeightsPath).Length, await Sha256Async(inspection.WeightsPath, ct));
            if (isFolder && kind != Generator) bytes = Directory.EnumerateFiles(path).Select(f => new FileInfo(f)).Where(f => IsModelFile(f.Name)).Sum(f => f.Length);
            if (kind == Generator) bytes = inspection.Bytes;
            return inspection with { Kind = kind, Architecture = architecture, Bytes = bytes, Sha256 = sha };
        }
        catch (Exception e) when (e is IOException or InvalidDataException or ArgumentException or NotSupportedException or JsonException or UnauthorizedAccessException)
        {
            throw new FieldException("path", $"'{path}' does not load as a {architecture}: {e.Message}");
        }
    }

    static bool IsModelFile(string name) => name is "config.json" || name.EndsWith(".safetensors", StringComparison.Ordinal) || name.EndsWith(".bin", StringComparison.Ordinal);

    /// <summary>A diffusers/transformers folder: its config.json's "_class_name" or "architectures".</summary>
    static (string? Kind, string? ArchOrError) InferFolder(string folder)
    {
        // A generator folder (a Stable Diffusion folder or a DCGAN) says what it is in generator.json; its vae/ must not decide.
        if (File.Exists(Path.Combine(folder, GeneratorManifest.FileName)))
        {
            try { return (Generator, GeneratorArchitecture(GeneratorManifest.Read(folder))); }
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
            "AutoencoderKL" => (Autoencoder, "autoencoder-kl"),
            "UNet2DConditionModel" => (Unet, "unet2d-condition"),
            "CLIPTextModel" or "CLIPTextModelWithProjection" => (TextEncoder, "clip-text"),
            _ => (null, $"{config}: class '{className ?? "(none)"}' is not one the portal loads (AutoencoderKL, UNet2DConditionModel, CLIPTextModel)"),
        };
    }

    /// <summary>A single weights file: its state-dict keys (the safetensors header alone when it is one) decide.</summary>
    static (string? Kind, string? ArchOrError) InferFile(string file)
    {
        // A TorchScript archive or an ONNX file is a detector package (model + card), not a state dict.
        if (DetectorPackage.SniffFormat(file) is { } package) return (Detector, package);
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
        if (Starts(Lare2Classifier.BackbonePrefix) && (Has("conv.weight") || Starts("attn_pool."))) return (Detector, Lare2Evaluator.Architecture);
        if (Starts("visual.attnpool.") || Starts("attnpool.")) return (Clip, "clip-rn");
        if (Has("conv1.weight") && Has("fc.weight") && Starts("layer4.")) return (Detector, DetectorArchitectures.Default.Name);
        return (null, $"cannot tell what '{file}' holds from its {keys.Count} key(s) ({string.Join(", ", keys.Take(8))}{(keys.Count > 8 ? ", ..." : "")}); " +
                      "give kind and architecture");
    }

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
        var (encode, decode) = SplitMacs(model, CostImageSize);
        return new ModelInspection(Autoencoder, "autoencoder-kl", "diffusers", weightsPath, 0, "", report,
            $"block_out_channels [{string.Join(", ", config.BlockOutChannels)}], layers_per_block {config.LayersPerBlock}, latent_channels {config.LatentChannels}, " +
            $"scaling_factor {config.ScalingFactor.ToString(CultureInfo.InvariantCulture)}",
            encode + decode, $"{CostImageSize}x{CostImageSize} image (encode + decode)", encode, decode, config.DownsampleFactor, config.LatentChannels);
    }

    /// <summary>
    /// Encode and decode MACs of one side x side image. The decoder's layers are measured by MacCounter on a 2 x 2 latent
    /// and scaled by the latent area (every decoder layer's output grows with it exactly), so the count costs nothing
    /// even for large images; its mid-block attention products are added analytically; encode is the rest of the total.
    /// </summary>
    static (long Encode, long Decode) SplitMacs(AutoencoderKL vae, int side)
    {
        var total = vae.MacsPerImage(side, side);
        var (h, w) = vae.LatentSize(side, side);
        using var latent = zeros(1, vae.Config.LatentChannels, 2, 2);
        using var wrapper = new DecodeOnly(vae);
        var decode = MacCounter.PerSample(wrapper, latent) * h * w / 4 + vae.AttentionMacsPerImage(side, side) / 2;
        return (total - decode, decode);
    }

    /// <summary>
    /// UNet MACs per step at a latent x latent input. Up to 32 measured directly (a forward); above, the layer MACs are
    /// a + b·L² (the cross-attention key/value projections of the text and the time embedding do not grow with the
    /// latent; everything else grows with its area), fitted exactly from 16 and 32, plus the analytic attention products.
    /// </summary>
    static long UnetMacs(UNet2DConditionModel unet, int latent)
    {
        if (latent <= UnetLatentSize) return unet.MacsPerSample(latent, latent);
        long Layers(int l) => unet.MacsPerSample(l, l) - unet.AttentionMatmulMacs(l, l);
        long small = Layers(UnetLatentSize / 2), large = Layers(UnetLatentSize);
        var perArea = (large - small) / (UnetLatentSize * UnetLatentSize - UnetLatentSize * UnetLatentSize / 4);
        var fixedPart = large - perArea * UnetLatentSize * UnetLatentSize;
        return fixedPart + perArea * latent * latent + unet.AttentionMatmulMacs(latent, latent);
    }

    (long Encode, long Decode, int Factor) AutoencoderMacs(string folder, int side)
    {
        if (!File.Exists(Path.Combine(folder, "config.json")) && File.Exists(Path.Combine(folder, "vae", "config.json"))) folder = Path.Combine(folder, "vae");
        var config = AutoencoderKLConfig.FromJsonFile(Path.Combine(folder, "config.json"));
        // MACs depend on the configuration only: a randomly initialised model counts the same.
        using var model = new AutoencoderKL(config);
        var (encode, decode) = SplitMacs(model, side);
        return (encode, decode, config.DownsampleFactor);
    }

    static string GeneratorArchitecture(GeneratorManifest manifest) => manifest.Kind == GeneratorManifest.LatentDiffusionKind ? "ldm" : "dcgan";

    /// <summary>
    /// A generator folder, loaded exactly as MiniGenImage samples it (<see cref="GeneratorFolder.Load"/>, strict loads of every
    /// component). The hash is of the file that differs between generators of one family: the UNet, or the DCGAN generator.
    /// </summary>
    static ModelInspection InspectGenerator(string folder, string architecture)
    {
        if (!Directory.Exists(folder)) throw new InvalidDataException("a generator must be a folder with generator.json (written by train-ldm or train-gan)");
        var manifest = GeneratorManifest.Read(folder);
        var actual = GeneratorArchitecture(manifest);
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
        return new ModelInspection(Generator, actual, "safetensors", present[0], bytes, "", report, config, null, null, null, null, null, null);
    }

    static ModelInspection InspectUnet(string folder)
    {
        if (!Directory.Exists(folder)) throw new InvalidDataException("a unet must be a diffusers UNet2DConditionModel folder");
        var config = UNet2DConditionConfig.ReadConfig(Path.Combine(folder, "config.json"));
        var weightsPath = Path.Combine(folder, "diffusion_pytorch_model.safetensors");
        using var weights = SafeTensors.Load(weightsPath, upcastHalf: true);
        using var model = new UNet2DConditionModel(config);
        var report = KeyReport.From(StateDictLoader.Load(model, weights, strict: false), weights.Count);
        long? macs = report.Clean ? model.MacsPerSample(UnetLatentSize, UnetLatentSize) : null;
        return new ModelInspection(Unet, "unet2d-condition", "diffusers", weightsPath, 0, "", report,
            $"block_out_channels [{string.Join(", ", config.BlockOutChannels)}], cross_attention_dim {config.CrossAttentionDim}, in_channels {config.InChannels}",
            macs, $"one denoising step at a {UnetLatentSize}x{UnetLatentSize} latent, 77 text tokens", null, null, null, config.InChannels);
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
        return new ModelInspection(TextEncoder, "clip-text", "transformers", weightsPath, 0, "", report, config.ToString(), null, null, null, null, null, null);
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
            using var input = zeros(1, 3, DetectorImageSize, DetectorImageSize);
            var macs = MacCounter.PerSample(detector.Model, input);
            var o = detector.Options;
            return new ModelInspection(Detector, architecture, Format(file), file, 0, "", KeyReport.From(detector.LoadReport, count),
                $"width {o.BaseWidth}, layers [{string.Join(", ", o.Layers)}], {o.NumClasses} logit(s)", macs,
                $"{DetectorImageSize}x{DetectorImageSize} image", null, null, null, null);
        }
        catch (DetectorCheckpointException e) when (e.Report is { } report)
        {
            return new ModelInspection(Detector, architecture, Format(file), file, 0, "", KeyReport.From(report, count), null, null, null, null, null, null, null);
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
            return new ModelInspection(Detector, architecture, architecture, file, 0, "", KeyReport.From(detector.LoadReport, 0), summary,
                null, null, null, null, null, null);
        }
        catch (DetectorCardException e) { throw new FieldException("card", e.Message); }
    }

    static ModelInspection InspectLare(string file)
    {
        using var model = Lare2Classifier.Load(file, out var report);
        return new ModelInspection(Detector, Lare2Evaluator.Architecture, Format(file), file, 0, "", KeyReport.From(report.Report, report.Report.Loaded + report.IgnoredTextTower.Count),
            $"{report.IgnoredTextTower.Count} CLIP text-tower tensor(s) ignored", null, null, null, null, null, null);
    }

    static ModelInspection InspectClip(string file)
    {
        using var model = ClipVisual.Load(file, out var report);
        return new ModelInspection(Clip, "clip-rn", Format(file), file, 0, "", KeyReport.From(report, report.Loaded), "CLIP ModifiedResNet image tower",
            null, null, null, null, null, null);
    }

    static string Format(string file) => file.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase) ? "safetensors" : "pytorch";

    static Task<string> Sha256Async(string file, CancellationToken ct) => Task.Run(() => FileDigest.Sha256(file), ct);

    /// <summary>The markdown card: what it is, how big, its hash, its key report, its cost, and how to use it.</summary>
    static string Card(ModelWeights m, ModelInspection i)
    {
        string G(long macs) => (macs / 1e9).ToString("0.###", CultureInfo.InvariantCulture) + " GMACs";
        var b = new StringBuilder();
        b.AppendLine($"# {m.Name}").AppendLine();
        b.AppendLine($"- **Kind:** {i.Kind}; **architecture:** {i.Architecture}; **format:** {i.Format}");
        if (i.Config is not null) b.AppendLine($"- **Config:** {i.Config}");
        b.AppendLine($"- **Path:** `{m.Path}`; weights file `{Path.GetFileName(i.WeightsPath)}`");
        b.AppendLine($"- **Size:** {i.Bytes.ToString("N0", CultureInfo.InvariantCulture)} bytes; **SHA-256** (weights file): `{i.Sha256}`");
        b.AppendLine($"- **Keys:** {i.Keys.Keys} in the file; load report: {i.Keys.Describe()}");
        if (i.Macs is { } macs) b.AppendLine($"- **MACs:** {G(macs)} per {i.MacsAt}");
        if (i.EncodeMacs is { } e && i.DecodeMacs is { } d) b.AppendLine($"  (encode {G(e)}, decode {G(d)})");
        b.AppendLine().AppendLine("## How to use it").AppendLine();
        b.AppendLine(i.Kind switch
        {
            Autoencoder => $"Align a dataset with it (page Align, or POST /api/runs {{\"kind\": \"align\", \"config\": {{\"sourceDatasetId\": N, \"vaeWeightsId\": {m.Id}}}}}): " +
                           "every real image is encoded and decoded at its native size (posterior sample, seed 42) into a paired fake. " +
                           $"Compare its cost with a full generation at GET /api/models/cost?autoencoder={m.Id}&unet=ID&steps=50. {PaperReference}",
            Unet => $"Generation costs steps x this UNet plus one decode: GET /api/models/cost?autoencoder=ID&unet={m.Id}&steps=50. {PaperReference}",
            Detector => $"Evaluate it on a dataset (page Evaluate: checkpoint `{m.Path}`, architecture {i.Architecture}).",
            Generator => "An image generator: MiniGenImage samples its fakes from it (`forensics minigenimage --generator PATH`, `forensics sample`)" +
                         (i.Architecture == "ldm" ? $"; as a Stable Diffusion folder it also serves LaRE extraction (`sd`: `{m.Path}`)." : "."),
            TextEncoder => "The text encoder of a latent diffusion pipeline (prompt embeddings for the UNet's cross-attention).",
            _ => "A CLIP image tower (the backbone of LaRE²-style detectors).",
        });
        return b.ToString();
    }

    /// <summary>Runs the decoder alone, so MacCounter sees only its layers. The autoencoder belongs to the caller.</summary>
    sealed class DecodeOnly : nn.Module<Tensor, Tensor>
    {
        readonly AutoencoderKL vae;

        public DecodeOnly(AutoencoderKL vae) : base(nameof(DecodeOnly))
        {
            this.vae = vae;
            RegisterComponents();
        }

        public override Tensor forward(Tensor z) => vae.Decode(z);

        protected override void Dispose(bool disposing) { }
    }
}
