using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using Forensics.ML.Alignment;
using Forensics.ML.Datasets;
using Forensics.ML.Models.Diffusion;
using Forensics.ML.Runtime;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Portal.Infrastructure;
using Portal.Store;
using TorchSharp;
using Portal.Runs;
using Portal.Datasets;
using Portal.Zoo;

namespace Portal.Experiments;

/// <summary>
/// Dataset alignment (Rajan et al.): reconstructs every real image of a registered dataset through a latent diffusion
/// autoencoder, through the same code as `forensics align`, into data/aligned/&lt;run id&gt;/ (so a run taken up again
/// after a restart resumes there: finished PNGs are kept). The source reals are hard-linked (or copied, across file
/// systems) beside their reconstructions, 0_real/x.* next to 1_fake/x.png, because training pairs real and fake by stem
/// within one dataset. The folder is then scanned and stored as a NEW ready dataset whose lineage names the source's
/// content hash, the VAE's weights hash, the seed, posterior and size policy, and the PSNR summary.
/// </summary>
public sealed class AlignmentJob(IDbContextFactory<PortalDb> dbFactory, PortalPaths paths, IOptions<PortalOptions> options) : IRunJob
{
    public const string KindName = "align";

    /// <summary>
    /// What to align. Vae: a diffusers AutoencoderKL folder (config.json + diffusion_pytorch_model.safetensors) under an
    /// allowed root; or VaeWeightsId: an autoencoder of the model zoo. Name: of the new dataset (default
    /// "&lt;source&gt;-aligned-&lt;vae name&gt;").
    /// </summary>
    public sealed record Config(long SourceDatasetId, string? Vae = null, long? VaeWeightsId = null, long Seed = 42,
        string Posterior = "sample", string SizePolicy = "pad", int Batch = 1, string? Name = null);

    /// <summary>A config checked against the store: the source dataset, the VAE folder and weights, the parsed settings.</summary>
    sealed record Checked(Config Config, Dataset Source, string VaeFolder, string VaeWeights, string VaeName, long? VaeWeightsId,
        PosteriorMode Posterior, SizePolicy SizePolicy, string Name);

    static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public string Kind => KindName;
    public string Queue => JobQueues.Device;

    public async Task ValidateAsync(string configJson) => await CheckAsync(configJson, runId: null);

    /// <summary>Validates a config; <paramref name="runId"/>: the run executing it, whose own output dataset does not count as a name clash.</summary>
    async Task<Checked> CheckAsync(string configJson, long? runId)
    {
        var c = JobInputs.Parse<Config>(configJson, "alignment");
        ConfigLimits.AtMost("batch", c.Batch, options.Value.Limits.Batch, nameof(ConfigLimits.Batch));

        await using var db = await dbFactory.CreateDbContextAsync();
        var source = await db.Datasets.AsNoTracking().SingleOrDefaultAsync(d => d.Id == c.SourceDatasetId)
                     ?? throw new FieldException("sourceDatasetId", $"no dataset with id {c.SourceDatasetId}");
        if (source.Status != DatasetStatus.Ready || source.ManifestPath is null)
            throw new FieldException("sourceDatasetId", $"dataset '{source.Name}' is {source.Status.ToString().ToLowerInvariant()}, not ready");

        string vaePath, vaeName;
        if (c.VaeWeightsId is { } weightsId)
        {
            if (!string.IsNullOrWhiteSpace(c.Vae)) throw new FieldException("vae", "give either vae (a folder) or vaeWeightsId (a zoo entry), not both");
            var w = await db.Weights.AsNoTracking().SingleOrDefaultAsync(x => x.Id == weightsId)
                    ?? throw new FieldException("vaeWeightsId", $"no model with id {weightsId} in the zoo");
            if (w.Kind != ModelZooService.Autoencoder)
                throw new FieldException("vaeWeightsId", $"model '{w.Name}' is a {w.Kind}, not an autoencoder");
            vaePath = w.Path;
            vaeName = w.Name;
        }
        else
        {
            if (string.IsNullOrWhiteSpace(c.Vae)) throw new FieldException("vae", "vae (an AutoencoderKL folder) or vaeWeightsId is required");
            try { vaePath = paths.ResolveAllowed(c.Vae); }
            catch (PathNotAllowedException e) { throw new FieldException("vae", e.Message); }
            vaeName = DefaultVaeName(vaePath);
        }
        var (folder, weights) = VaeFiles(vaePath, c.VaeWeightsId is null ? "vae" : "vaeWeightsId");

        PosteriorMode posterior = c.Posterior?.Trim().ToLowerInvariant() switch
        {
            "sample" => PosteriorMode.Sample,
            "mean" => PosteriorMode.Mean,
            _ => throw new FieldException("posterior", $"posterior must be 'sample' or 'mean', not '{c.Posterior}'"),
        };
        SizePolicy policy = c.SizePolicy?.Trim().ToLowerInvariant() switch
        {
            "pad" => Forensics.ML.Alignment.SizePolicy.Pad,
            "crop" => Forensics.ML.Alignment.SizePolicy.Crop,
            _ => throw new FieldException("sizePolicy", $"sizePolicy must be 'pad' or 'crop', not '{c.SizePolicy}'"),
        };
        if (c.Batch < 1) throw new FieldException("batch", "batch must be at least 1");
        if (c.Seed < 0) throw new FieldException("seed", "seed must not be negative");

        var name = string.IsNullOrWhiteSpace(c.Name) ? $"{source.Name}-aligned-{vaeName}" : c.Name.Trim();
        if (name.Length > 200) throw new FieldException("name", "name must be at most 200 characters");
        var taken = await db.Datasets.AsNoTracking().Where(d => d.Name == name).Select(d => new { d.RegistrationRunId }).SingleOrDefaultAsync();
        if (taken is not null && (runId is null || taken.RegistrationRunId != runId))
            throw new FieldException("name", $"a dataset named '{name}' already exists", 409);
        return new Checked(c, source, folder, weights, vaeName, c.VaeWeightsId, posterior, policy, name);
    }

    /// <summary>The VAE folder (a pipeline root's vae/ too) and its weights file; errors name <paramref name="field"/>.</summary>
    static (string Folder, string Weights) VaeFiles(string path, string field)
    {
        if (!Directory.Exists(path))
            throw new FieldException(field, File.Exists(path) ? $"'{path}' is a file; the VAE must be a diffusers AutoencoderKL folder" : $"VAE folder '{path}' does not exist");
        var folder = File.Exists(Path.Combine(path, "config.json")) ? path
            : File.Exists(Path.Combine(path, "vae", "config.json")) ? Path.Combine(path, "vae")
            : throw new FieldException(field, $"the VAE folder '{path}' has no config.json (nor vae/config.json)");
        var weights = AutoencoderKL.WeightsFileNames.Select(n => Path.Combine(folder, n)).FirstOrDefault(File.Exists)
                      ?? throw new FieldException(field, $"the VAE folder '{folder}' holds none of {string.Join(", ", AutoencoderKL.WeightsFileNames)}");
        return (folder, weights);
    }

    /// <summary>The folder's name, or its parent's for a diffusers "vae" subfolder (sd-v1-5/vae -> sd-v1-5).</summary>
    static string DefaultVaeName(string folder)
    {
        var name = Path.GetFileName(Path.TrimEndingDirectorySeparator(folder));
        return name.Equals("vae", StringComparison.OrdinalIgnoreCase) && Path.GetDirectoryName(folder) is { } parent
            ? Path.GetFileName(parent) : name;
    }

    public async Task ExecuteAsync(RunContext context)
    {
        var c = await CheckAsync(context.ConfigJson, context.RunId);
        var ct = context.CancellationToken;
        var output = context.Paths.Data("aligned", context.RunId.ToString());
        if (Directory.Exists(output)) await context.LogAsync($"resuming in {output}: finished reconstructions are kept");

        TorchRuntime.EnsureLoaded(options.Value.Torch);
        var device = TorchRuntime.ResolveDevice(options.Value.Torch.Device);
        context.ReportProgress(0, "loading the VAE");
        AlignmentResult result;
        using (var vae = AutoencoderKL.FromPretrained(c.VaeFolder))
        {
            vae.to(device);
            await context.LogAsync($"VAE {c.VaeFolder} (downsample factor {vae.DownsampleFactor}, {vae.Config.LatentChannels} latent channels) on {device}; " +
                                   $"source '{c.Source.Name}' ({c.Source.Path}); seed {c.Config.Seed}, posterior {c.Posterior}, size policy {c.SizePolicy}");
            var alignOptions = new AlignOptions
            {
                Seed = c.Config.Seed, Posterior = c.Posterior, SizePolicy = c.SizePolicy, BatchSize = c.Config.Batch, Device = device,
                VaeWeightsPath = c.VaeWeights,
            };
            // Reconstruction is most of the work; copying the reals and scanning the output share the last tenth.
            var progress = new SyncProgress<AlignProgress>(p => context.ReportProgress(p.Total == 0 ? 0 : 0.9 * p.Done / p.Total,
                $"reconstructing {p.Done}/{p.Total} ({p.ImagesPerSecond.ToString("0.00", CultureInfo.InvariantCulture)} images/s" +
                (p.SkippedExisting > 0 ? $", {p.SkippedExisting} already done" : "") + (p.Failed > 0 ? $", {p.Failed} failed" : "") + ")"));
            try { result = Reconstruction.Run(vae, c.Source.Path, output, alignOptions, progress, ct); }
            catch (Exception e) when (e is AlignmentException or DatasetLayoutException) { throw new InvalidOperationException(e.Message, e); }
        }
        if (c.Source.ContentHash is { } registered && registered != result.InputContentHash)
            await context.LogAsync($"the source folder changed since its registration (content {registered} then, {result.InputContentHash} now); " +
                                   "the lineage records the content aligned", "warning");
        foreach (var f in result.Images.Where(i => i.Status == AlignedStatus.Failed))
            await context.LogAsync($"not aligned: {f.Input}: {f.Reason}", "warning");
        var aligned = result.Images.Where(i => i.Status != AlignedStatus.Failed).ToList();
        if (aligned.Count == 0) throw new InvalidOperationException($"none of the {result.Total} real image(s) could be reconstructed");
        await context.LogAsync($"{result.Reconstructed} reconstructed, {result.SkippedExisting} already there, {result.Failed} failed; " +
                               $"PSNR mean {result.Psnr!.Mean:F2} dB, min {result.Psnr.Min:F2} dB; {result.SecondsPerImage:F4} s per image (VAE)");

        context.ReportProgress(0.9, "linking the real images beside their reconstructions");
        var reals = LinkReals(c.Source.Path, output, aligned.Select(a => a.Input), ct);
        await context.LogAsync($"reals beside the reconstructions: {reals.HardLinked} hard-linked, {reals.Copied} copied, {reals.Existing} already there");

        context.ReportProgress(0.95, "scanning the aligned dataset");
        var manifest = DatasetScanner.Scan(output, new ScanOptions
        {
            Progress = new SyncProgress<ScanProgress>(p => context.ReportProgress(0.95 + (p.Total == 0 ? 0 : 0.05 * p.Done / p.Total), $"scanning {p.Done}/{p.Total}")),
        }, ct);
        var datasetId = await DatasetRowAsync(context, c, output, Lineage(context, c, result, reals));
        var manifestDir = context.Paths.Data("datasets", datasetId.ToString());
        Directory.CreateDirectory(manifestDir);
        var manifestPath = Path.Combine(manifestDir, $"manifest-run{context.RunId}.json.gz");
        manifest.Save(manifestPath);
        // One place stores a manifest's rows: the registration job's.
        await new DatasetRegistrationJob(dbFactory).StoreAsync(datasetId, context.RunId, manifest, context.Paths.RelativeToData(manifestPath), ct);

        await StoreOutcomeAsync(context, result, manifestPath, Path.Combine(output, AlignmentResult.FileName));
        await context.LogAsync($"dataset '{c.Name}' (id {datasetId}): {manifest.Images.Count} image(s), content {manifest.ContentHash}");
    }

    /// <summary>The new dataset's row (status registering until its manifest is stored); the same row when the run is taken up again.</summary>
    async Task<long> DatasetRowAsync(RunContext context, Checked c, string output, string lineage)
    {
        await using var db = await dbFactory.CreateDbContextAsync();
        var row = await db.Datasets.SingleOrDefaultAsync(d => d.Name == c.Name);
        if (row is not null && row.RegistrationRunId != context.RunId)
            throw new InvalidOperationException($"a dataset named '{c.Name}' was registered while the alignment ran; re-run with another name");
        if (row is null)
        {
            row = new Dataset { Name = c.Name, Path = output, Status = DatasetStatus.Registering, CreatedAt = DateTime.UtcNow, RegistrationRunId = context.RunId };
            db.Datasets.Add(row);
        }
        row.LineageJson = lineage;
        await db.SaveChangesAsync();
        return row.Id;
    }

    /// <summary>Metrics and the alignment.json and manifest artifacts, once per run (a run taken up again after storing them adds none).</summary>
    async Task StoreOutcomeAsync(RunContext context, AlignmentResult result, string manifestPath, string alignmentJson)
    {
        await using (var db = await dbFactory.CreateDbContextAsync())
            if (await db.Artifacts.AnyAsync(a => a.RunId == context.RunId && a.Kind == AlignmentResults.ReportArtifact)) return;
        foreach (var (name, value) in AlignmentResults.Values(result))
            if (double.IsFinite(value)) await context.MetricAsync(name, 0, value);
        await context.ArtifactAsync(AlignmentResults.ManifestArtifact, manifestPath);
        await context.ArtifactAsync(AlignmentResults.ReportArtifact, alignmentJson);
    }

    static string Lineage(RunContext context, Checked c, AlignmentResult r, RealsLinked reals) => JsonSerializer.Serialize(new
    {
        kind = "alignment",
        runId = context.RunId,
        source = new { datasetId = c.Source.Id, name = c.Source.Name, path = c.Source.Path, contentHash = r.InputContentHash, layout = r.Layout },
        vae = new { name = c.VaeName, zooId = c.VaeWeightsId, folder = c.VaeFolder, weightsPath = r.VaeWeightsPath, sha256 = r.VaeSha256, downsampleFactor = r.DownsampleFactor },
        seed = r.Seed,
        posterior = r.Posterior.ToString().ToLowerInvariant(),
        sizePolicy = r.SizePolicy.ToString().ToLowerInvariant(),
        batch = r.BatchSize,
        device = r.Device,
        codeVersion = RunService.CodeVersion,
        images = new { total = r.Total, reconstructed = r.Reconstructed, existing = r.SkippedExisting, failed = r.Failed, sizeAdjusted = r.SizeAdjusted },
        psnr = Finite(r.Psnr!),
        secondsPerImage = r.SecondsPerImage,
        macsPerImage = r.MacsPerImage,
        reals = new { mode = reals.Mode, hardLinked = reals.HardLinked, copied = reals.Copied, existing = reals.Existing },
    }, Json);

    /// <summary>The PSNR summary with infinities (identical pixels) written as null: JSON has no number for them.</summary>
    static object Finite(PsnrSummary p)
    {
        static double? F(double v) => double.IsFinite(v) ? v : null;
        return new { count = p.Count, mean = F(p.Mean), median = F(p.Median), min = F(p.Min), max = F(p.Max) };
    }

    /// <summary>How the reals came beside their reconstructions.</summary>
    sealed record RealsLinked(int HardLinked, int Copied, int Existing)
    {
        public string Mode => HardLinked > 0 && Copied > 0 ? "mixed" : Copied > 0 ? "copy" : HardLinked > 0 ? "hardlink" : "existing";
    }

    /// <summary>
    /// Puts each aligned real at its own relative path in the output (0_real/x.jpg beside 1_fake/x.png): a hard link when
    /// source and output share a file system (no extra space, same bytes by construction), else a copy. A file already
    /// there with the source's size (a run taken up again) is kept.
    /// </summary>
    static RealsLinked LinkReals(string sourceRoot, string outputRoot, IEnumerable<string> relativePaths, CancellationToken ct)
    {
        int linked = 0, copied = 0, existing = 0;
        foreach (var relative in relativePaths)
        {
            ct.ThrowIfCancellationRequested();
            var from = Path.Combine(sourceRoot, relative);
            var to = Path.Combine(outputRoot, relative);
            if (File.Exists(to) && new FileInfo(to).Length == new FileInfo(from).Length) { existing++; continue; }
            Directory.CreateDirectory(Path.GetDirectoryName(to)!);
            if (File.Exists(to)) File.Delete(to);
            if (!OperatingSystem.IsWindows() && Link(from, to) == 0) { linked++; continue; }
            var partial = to + Reconstruction.PartialSuffix;
            File.Copy(from, partial, overwrite: true);
            File.Move(partial, to, overwrite: true);
            copied++;
        }
        return new RealsLinked(linked, copied, existing);
    }

    [DllImport("libc", EntryPoint = "link", SetLastError = true)]
    static extern int Link(string existing, string created);

    /// <summary>IProgress that calls back on the reporting thread (Progress&lt;T&gt; would post to a sync context).</summary>
}
