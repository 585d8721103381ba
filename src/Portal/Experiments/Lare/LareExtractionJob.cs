using Forensics.ML.Lare;
using Forensics.ML.Runtime;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Portal.Infrastructure;
using Portal.Store;
using Portal.Runs;
using Portal.Datasets;
using Portal.Zoo;

namespace Portal.Experiments;

/// <summary>
/// LaRE extraction (LaRE^2's latent reconstruction error) for every image of a registered dataset, through the same code as
/// `forensics lare`: one 4 x H/8 x W/8 map per image under data/lare/&lt;run&gt;/, cached in data/cache/lare by (image hash,
/// model hash, t, E, prompt, seed, ...), so a re-run of the same settings costs no model pass.
/// </summary>
public sealed class LareExtractionJob(IDbContextFactory<PortalDb> dbFactory, PortalPaths paths, IOptions<PortalOptions> options) : IRunJob
{
    readonly JobInputs inputs = new(dbFactory, paths);

    public const string KindName = "lare";

    /// <summary>Sd: a diffusers Stable Diffusion folder (unet/, vae/, text_encoder/, tokenizer/, scheduler/) under an allowed root.</summary>
    public sealed record Config(long DatasetId, string Sd, int Timestep = 200, int Ensemble = 4, long Seed = 0,
        string Prompt = "a photo of a [CLS]", string Posterior = "sample", int ResizeTo = 256, int Batch = 4);

    public string Kind => KindName;
    public string Queue => JobQueues.Device;

    public async Task ValidateAsync(string configJson)
    {
        var c = JobInputs.Parse<Config>(configJson, "LaRE");
        var limits = options.Value.Limits;
        ConfigLimits.AtMost("ensemble", c.Ensemble, limits.Ensemble, nameof(limits.Ensemble));
        ConfigLimits.AtMost("resizeTo", c.ResizeTo, limits.ImageSize, nameof(limits.ImageSize));
        ConfigLimits.AtMost("batch", c.Batch, limits.Batch, nameof(limits.Batch));
        await inputs.ReadyDatasetAsync(c.DatasetId, "datasetId");
        var sd = SdFolder(c);
        var missing = StableDiffusionComponents.RequiredFolders.Where(f => !Directory.Exists(Path.Combine(sd, f))).ToList();
        if (missing.Count > 0) throw new FieldException("sd", $"'{c.Sd}' is not a diffusers Stable Diffusion folder: missing {string.Join(", ", missing)}");
        if (c.Posterior is not ("sample" or "mean")) throw new FieldException("posterior", $"posterior must be sample or mean, not '{c.Posterior}'");
        try { LareOptionsOf(c).Validate(); }
        catch (ArgumentException e) { throw new FieldException("config", e.Message); }
    }

    string SdFolder(Config c)
    {
        try { return paths.ResolveAllowed(c.Sd); }
        catch (PathNotAllowedException e) { throw new FieldException("sd", e.Message); }
    }

    static LareOptions LareOptionsOf(Config c) => new()
    {
        Timestep = c.Timestep, Ensemble = c.Ensemble, Seed = c.Seed, Prompt = c.Prompt, ResizeTo = c.ResizeTo, BatchSize = c.Batch,
        Posterior = c.Posterior == "mean" ? LarePosterior.Mean : LarePosterior.Sample,
    };

    public async Task ExecuteAsync(RunContext context)
    {
        await ValidateAsync(context.ConfigJson);
        var c = context.Config<Config>();
        Dataset dataset;
        await using (var db = await dbFactory.CreateDbContextAsync())
            dataset = await db.Datasets.AsNoTracking().SingleAsync(d => d.Id == c.DatasetId);

        TorchRuntime.EnsureLoaded(options.Value.Torch);
        context.ReportProgress(0, "loading Stable Diffusion components");
        using var components = StableDiffusionComponents.Load(SdFolder(c), TorchRuntime.ResolveDevice(options.Value.Torch.Device));
        var outDir = context.Paths.Data(LareResults.MapsFolder, context.RunId.ToString());
        var cacheDir = context.Paths.Data("cache", "lare");
        var result = LareMaps.Run(components, dataset.Path, outDir, LareOptionsOf(c), cacheDir,
            new SyncProgress<LareProgress>(p => context.ReportProgress(p.Total == 0 ? 1 : (double)p.Done / p.Total, $"maps {p.Done}/{p.Total}")),
            context.CancellationToken);

        await context.MetricAsync(LareResults.SecondsPerImage, 0, result.SecondsPerImage);
        await context.MetricAsync(LareResults.MapsComputed, 0, result.Computed);
        await context.MetricAsync(LareResults.MapsFromCache, 0, result.FromCache);
        await context.MetricAsync(LareResults.MapsFailed, 0, result.Failed.Count);
        foreach (var f in result.Failed) await context.LogAsync($"no map for {f.Path}: {f.Reason}", "warning");
        await context.LogAsync($"{result.Computed} map(s) computed, {result.FromCache} from the cache, {result.Failed.Count} failed, " +
                               $"{result.PromptFallbacks} prompt fallback(s); model {result.ModelHash}; maps in {context.Paths.RelativeToData(outDir)}");
    }
}
