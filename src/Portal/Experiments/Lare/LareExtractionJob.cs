using Forensics.ML.Datasets;
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
        string Prompt = "a photo of a [CLS]", string Posterior = "sample", int ResizeTo = 256, int Batch = 4, IReadOnlyList<string>? Subsets = null);

    public string Kind => KindName;
    public string Queue => JobQueues.Device;

    public Task ValidateAsync(string configJson) => CheckAsync(JobInputs.Parse<Config>(configJson, "LaRE"));

    /// <summary>Checks every field; the dataset and the parsed <see cref="Config.Subsets"/> (null: every image).</summary>
    async Task<(Dataset Dataset, IReadOnlyList<SubsetSelector>? Selectors)> CheckAsync(Config c)
    {
        var limits = options.Value.Limits;
        ConfigLimits.AtMost("ensemble", c.Ensemble, limits.Ensemble, nameof(limits.Ensemble));
        ConfigLimits.AtMost("resizeTo", c.ResizeTo, limits.ImageSize, nameof(limits.ImageSize));
        ConfigLimits.AtMost("batch", c.Batch, limits.Batch, nameof(limits.Batch));
        var dataset = await inputs.ReadyDatasetAsync(c.DatasetId, "datasetId");
        var selectors = await SelectorsAsync(c, dataset);
        var sd = SdFolder(c);
        var missing = StableDiffusionComponents.RequiredFolders.Where(f => !Directory.Exists(Path.Combine(sd, f))).ToList();
        if (missing.Count > 0) throw new FieldException("sd", $"'{c.Sd}' is not a diffusers Stable Diffusion folder: missing {string.Join(", ", missing)}");
        if (c.Posterior is not ("sample" or "mean")) throw new FieldException("posterior", $"posterior must be sample or mean, not '{c.Posterior}'");
        try { LareOptionsOf(c).Validate(); }
        catch (ArgumentException e) { throw new FieldException("config", e.Message); }
        return (dataset, selectors);
    }

    /// <summary>The parsed <see cref="Config.Subsets"/>; each must name at least one (generator, split) folder of the dataset.</summary>
    async Task<IReadOnlyList<SubsetSelector>?> SelectorsAsync(Config c, Dataset dataset)
    {
        if (c.Subsets is null) return null;
        if (c.Subsets.Count == 0) throw new FieldException("subsets", "give at least one GENERATOR/SPLIT, or leave subsets out for every image");
        await using var db = await dbFactory.CreateDbContextAsync();
        var folders = await db.DatasetSubsets.AsNoTracking().Where(s => s.DatasetId == dataset.Id).Select(s => new { s.Generator, s.Split }).Distinct().ToListAsync();
        var selectors = new List<SubsetSelector>();
        for (var i = 0; i < c.Subsets.Count; i++)
        {
            SubsetSelector selector;
            try { selector = SubsetSelector.Parse(c.Subsets[i]); }
            catch (FormatException e) { throw new FieldException($"subsets[{i}]", e.Message); }
            if (!folders.Any(f => selector.Matches(f.Generator, f.Split)))
                throw new FieldException($"subsets[{i}]", $"'{selector}' matches no folder of dataset '{dataset.Name}'; it has {string.Join(", ", folders.Select(f => $"{f.Generator}/{f.Split}").Distinct().Order())}");
            selectors.Add(selector);
        }
        return selectors;
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
        var c = context.Config<Config>();
        var (dataset, selectors) = await CheckAsync(c);

        TorchRuntime.EnsureLoaded(options.Value.Torch);
        context.ReportProgress(0, "loading Stable Diffusion components");
        using var components = StableDiffusionComponents.Load(SdFolder(c), TorchRuntime.ResolveDevice(options.Value.Torch.Device));
        var outDir = context.Paths.Data(LareResults.MapsFolder, context.RunId.ToString());
        var cacheDir = context.Paths.Data("cache", "lare");
        if (selectors is not null) await context.LogAsync($"maps of the images in {string.Join(", ", selectors)} only");
        var result = LareMaps.Run(components, dataset.Path, outDir, LareOptionsOf(c), cacheDir,
            new SyncProgress<LareProgress>(p => context.ReportProgress(p.Total == 0 ? 1 : (double)p.Done / p.Total, $"maps {p.Done}/{p.Total}")),
            context.CancellationToken, SubsetSelector.AnyOf(selectors));

        await context.MetricAsync(LareResults.SecondsPerImage, 0, result.SecondsPerImage);
        await context.MetricAsync(LareResults.MapsComputed, 0, result.Computed);
        await context.MetricAsync(LareResults.MapsFromCache, 0, result.FromCache);
        await context.MetricAsync(LareResults.MapsFailed, 0, result.Failed.Count);
        foreach (var f in result.Failed) await context.LogAsync($"no map for {f.Path}: {f.Reason}", "warning");
        await context.LogAsync($"{result.Computed} map(s) computed, {result.FromCache} from the cache, {result.Failed.Count} failed, " +
                               $"{result.PromptFallbacks} prompt fallback(s); model {result.ModelHash}; maps in {context.Paths.RelativeToData(outDir)}");
    }
}
