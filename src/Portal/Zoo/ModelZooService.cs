using System.Globalization;
using System.Text;
using System.Text.Json;
using Forensics.ML.Inspection;
using Forensics.ML.Generators;
using Forensics.ML.Lare2;
using Forensics.ML.Models.Diffusion;
using Forensics.ML.Runtime;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Portal.Infrastructure;
using Portal.Store;
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
    public const string Autoencoder = ModelKinds.Autoencoder;
    public const string Unet = ModelKinds.Unet;
    public const string TextEncoder = ModelKinds.TextEncoder;
    public const string Detector = ModelKinds.Detector;
    public const string Clip = ModelKinds.Clip;
    /// <summary>An image generator folder written by train-ldm ("ldm") or train-gan ("dcgan"), as MiniGenImage samples it.</summary>
    public const string Generator = ModelKinds.Generator;

    /// <summary>The kinds and the architectures each accepts, first = default.</summary>
    public static IReadOnlyDictionary<string, string[]> Architectures => ModelKinds.Architectures;

    /// <summary>The image side the MACs are quoted at for autoencoders, as in the paper's comparison.</summary>
    public const int CostImageSize = ModelMacs.CostImageSize;
    /// <summary>The UNet's MACs per step are quoted at a 32 x 32 latent with 77 text tokens.</summary>
    public const int UnetLatentSize = ModelMacs.UnetLatentSize;
    /// <summary>The detector MACs are quoted at 224 x 224.</summary>
    public const int DetectorImageSize = ModelMacs.DetectorImageSize;

    /// <summary>The paper's figures (Rajan et al., 2410.11835): the reference point for the cost ratio.</summary>
    public const string PaperReference = ModelMacs.PaperReference;

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
        var (encode, decode, factor) = ModelMacs.Autoencoder(ae.Path, imageSize);
        var latent = imageSize / factor;
        long perStep;
        if (generatorUnet is not null)
        {
            using var model = UNet2DConditionModel.FromPretrained(generatorUnet);
            perStep = ModelMacs.UnetStep(model, latent);
        }
        else
        {
            var unetInspection = await InspectionAsync(unet, ct) ?? throw new FieldException("unet", $"model '{unet.Name}' can no longer be read at {unet.Path}");
            var key = latent.ToString(CultureInfo.InvariantCulture);
            if (latent == UnetLatentSize && unetInspection.Macs is { } stored) perStep = stored;
            else if (unetInspection.UnetMacsByLatent?.TryGetValue(key, out var cached) == true) perStep = cached;
            else
            {
                using (var model = UNet2DConditionModel.FromPretrained(unet.Path)) perStep = ModelMacs.UnetStep(model, latent);
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

    /// <summary>Infers kind and architecture where not given, loads the weights into it and measures it (the ML library's
    /// <see cref="ModelInspector"/>, off the caller's thread). Errors are FieldExceptions.</summary>
    async Task<ModelInspection> InspectAsync(string path, string? kind, string? architecture, CancellationToken ct)
    {
        TorchRuntime.EnsureLoaded(options.Value.Torch);
        try { return await Task.Run(() => ModelInspector.Inspect(path, kind, architecture, ct), ct); }
        catch (ModelInspectionException e) { throw new FieldException(e.Field, e.Message); }
    }

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
}
