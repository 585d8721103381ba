using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Forensics.ML.Datasets;
using Forensics.ML.Evaluation;
using Forensics.ML.Lare2;
using Microsoft.EntityFrameworkCore;
using Portal.Infrastructure;
using Portal.Experiments;
using Portal.Datasets;
using Portal.Zoo;
using Portal.Runs;
using Portal.Store;

namespace Portal.Experiments;

/// <summary>Which demo experiments to queue: the one-click pipeline, or it and the papers' reproduction set.</summary>
public enum DemoSet
{
    /// <summary>The one-click pipeline: align -> synced training -> cross-generator test -> JPEG and resize sweeps.</summary>
    Quick,
    /// <summary>The quick pipeline plus the reproduction set: usual vs aligned training at 10% and 100%, LaRE² vs ResNet-50.</summary>
    Full,
}

/// <summary>What the demo needs from the store: MiniGenImage, the autoencoder it aligns with, the LDM's SD folder and a CLIP tower.</summary>
/// <param name="ClipWeightsId">A CLIP ResNet tower of the zoo for LaRE²; null when the zoo has none (the LaRE² rows are then not queued).</param>
/// <param name="AlignSourceId">The ready dataset of ldm_nearest's folder alone (<see cref="DemoBenchmark.AlignSourceName"/>); null until registered.</param>
public sealed record DemoInputs(long DatasetId, long VaeWeightsId, string SdFolder, long? ClipWeightsId, long? AlignSourceId = null);

/// <summary>One pipeline of the demo: its key (the row of the result tables), its label and its config.</summary>
/// <param name="Key">"aligned", "usual", "aligned@10%", "usual@10%".</param>
/// <param name="Seed">The training seed of this pipeline.</param>
public sealed record DemoPipeline(string Key, string Label, PipelineJob.Config Config, long Seed = DemoBenchmark.Seed);

/// <summary>A run the demo took (queued or reused): its key and stage, kind, id and whether this call created it.</summary>
public sealed record DemoRun(string Key, string Kind, long RunId, bool Created);

/// <summary>The demo's inputs are missing from the store (MiniGenImage not built, a zoo entry absent): the message says which.</summary>
public sealed class DemoNotReadyException(string message) : Exception(message);

/// <summary>
/// The ONE place that defines the demo benchmark on MiniGenImage. The one-click pipeline aligns MiniGenImage's reals
/// through vae-nearest and trains res50nodown (synced pairs) on the train split of ldm_nearest's folder only (its reals and
/// their reconstructions), then tests it on every generator's test split and sweeps JPEG and resize. The reproduction set
/// adds the usual training on ldm_nearest's generated images with the same detector and budget, both trainings at 10% of
/// the images, and LaRE² (maps from ldm_nearest's SD folder) trained on ldm_nearest and tested on all three families.
/// Every run is tagged <see cref="Tag"/> and taken through the reuse-by-config-hash rule, so queueing twice starts nothing.
/// </summary>
/// <remarks>
/// The alignment job reconstructs every real of its source dataset: on MiniGenImage that would be each generator folder's
/// nature/ patches in every split (a patch shared by several generators reconstructed once per folder), three times the
/// reals of ldm_nearest. So the demo registers ldm_nearest's folder alone as its own dataset (<see cref="AlignSourceName"/>,
/// the same files) and aligns that: training takes its train split, i.e. exactly the reals of the usual training and
/// their reconstructions, validated on its val reals and their reconstructions.
/// </remarks>
public sealed class DemoBenchmark(IDbContextFactory<PortalDb> dbFactory, RunService runs, ExperimentService experiments, ModelZooService zoo,
    DatasetService datasets, PortalPaths paths)
{
    /// <summary>The tag every demo run carries (the leaderboard's tag filter).</summary>
    public const string Tag = "demo";
    /// <summary>The benchmark dataset's registered name.</summary>
    public const string DatasetName = "minigenimage";
    /// <summary>The generator both trainings use (GenImage's "train on one generator").</summary>
    public const string TrainGenerator = "ldm_nearest";
    /// <summary>The autoencoder the alignment reconstructs through: ldm_nearest's own.</summary>
    public const string VaeName = "vae-nearest";
    /// <summary>The dataset of ldm_nearest's folder alone, the source the aligned trainings reconstruct.</summary>
    public const string AlignSourceName = "minigenimage-ldm_nearest";
    /// <summary>Images the alignment reconstructs per VAE call.</summary>
    public const int AlignBatch = 8;
    /// <summary>The MiniGenImage generators, latent ones first.</summary>
    public static readonly IReadOnlyList<string> Generators = ["ldm_nearest", "ldm_transpose", "dcgan"];
    /// <summary>The split everything is tested on; thresholds are calibrated on <see cref="ValSplit"/>.</summary>
    public const string TestSplit = "test", ValSplit = "val";
    /// <summary>The sweeps' severities: multi-point curves, each point scores the test split again.</summary>
    public const string JpegSeverities = "90,70,50", ResizeSeverities = "0.5,0.75,1.5";
    /// <summary>The small-data fraction of the data-efficiency rows.</summary>
    public const double SmallFraction = 0.1;
    /// <summary>
    /// The recipe, the same for every res50nodown row (aligned and usual differ only in their data): width 16 with one
    /// bottleneck block per stage (<see cref="Layers"/>), crops of <see cref="Crop"/> px, Adam at <see cref="LearningRate"/>,
    /// the plateau rule (patience <see cref="Patience"/>) capped at <see cref="Epochs"/> epochs, validation on the training
    /// data's own val split (aligned: the val reals and their reconstructions; usual: the val reals and ldm_nearest's val
    /// fakes), and the reference chain scaled to the 64 px patches (<see cref="Augmentation"/>). Measured on the aligned
    /// pairs (400, seed 17): the full depth [3,4,6,3] from scratch stayed at a training loss of 0.61-0.66 and a val AP of
    /// 0.59-0.69 after 12 epochs (PyTorch's own ResNet the same); one block per stage reached a loss of 0.46-0.49 and a val
    /// AP of 0.89-0.92 by epochs 10-14. Validating the aligned training on ldm_nearest's generated val fakes instead (as the
    /// authors do, <c>train.valDatasetId</c>) chose checkpoints and learning-rate drops by a val AP of 0.59-0.66, and left
    /// the in-distribution test AP at 69-76: under the 80 that counts as trained.
    /// </summary>
    public const int Width = 16, Crop = 32, Epochs = 14, PairsPerBatch = 16, Patience = 4;
    /// <summary>Bottleneck blocks per stage (res50nodown's are 3, 4, 6, 3).</summary>
    public static readonly int[] Layers = [1, 1, 1, 1];
    /// <summary>The recipe's learning rate (see <see cref="Width"/>).</summary>
    public const double LearningRate = 1e-3;
    /// <summary>
    /// The reference chain for 64 px patches, light: no resized crop, colour jitter, grayscale, cutout or noise; a mild blur
    /// (sigma up to 0.5, p 0.2) and JPEG (q 80-100, p 0.2); rotations, flips and the random crop as always. On the 64 px
    /// patches the paper's chain (and its crop-scaled defaults) left the training loss above ln 2 within the budget.
    /// </summary>
    public static readonly TrainingJob.AugmentationConfig Augmentation = new(ResizeProbability: 0, ColorJitterProbability: 0, GrayscaleProbability: 0,
        CutoutProbability: 0, NoiseProbability: 0, BlurSigmaMax: 0.5, BlurProbability: 0.2, JpegQualityMin: 80, JpegProbability: 0.2);
    /// <summary>The training seeds: every row is trained and measured once per seed and reported as mean ± sd.</summary>
    public static readonly IReadOnlyList<long> Seeds = [17, 18, 19];
    /// <summary>The first seed (the LaRE² maps' and the single-seed callers').</summary>
    public const long Seed = 17;
    /// <summary>The CLIP tower shipped for the demo when the zoo has none (the small CLIP RN test fixture, random weights).</summary>
    public const string ClipName = "clip-rn-demo";
    /// <summary>Where <see cref="ClipName"/> is looked for, relative to the repository root.</summary>
    public static readonly string ClipRelativePath = Path.Combine("models", "demo", "clip_rn_small", "model.safetensors");

    static readonly JsonSerializerOptions ChildJson = new(JsonSerializerDefaults.Web) { DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull };

    /// <summary>
    /// The pipelines of <paramref name="set"/>, one-click first; the aligned ones only once <see cref="DemoInputs.AlignSourceId"/>
    /// is known. The aligned trainings need no generator filter: their dataset is ldm_nearest's folder alone.
    /// </summary>
    public static IReadOnlyList<DemoPipeline> Pipelines(DemoInputs inputs, DemoSet set)
    {
        // Only the robustness rows (100% of the images) need the sweeps; the 10% rows are read clean.
        PipelineJob.Config Make(bool aligned, double? fraction, long seed) => new(aligned ? inputs.AlignSourceId!.Value : inputs.DatasetId,
            Align: aligned ? new PipelineJob.AlignStage(VaeWeightsId: inputs.VaeWeightsId, Batch: AlignBatch) : null,
            Train: new PipelineJob.TrainStage(Mode: aligned ? "synced" : "independent",
                Epochs: Epochs * EpochScale(fraction), PairsPerBatch: PairsPerBatch, LearningRate: LearningRate, Seed: seed, Width: Width, Layers: Layers, Crop: Crop,
                Generators: aligned ? null : [TrainGenerator], Fraction: fraction, Augmentation: Augmentation, Patience: Patience * EpochScale(fraction)),
            Evaluate: new PipelineJob.EvaluateStage(inputs.DatasetId, Split: TestSplit, Modes: "fixed,calibrated", ValSplit: ValSplit, CheckpointChosenOn: ValSplit),
            Sweeps: fraction is null ? [new PipelineJob.SweepStage("jpeg", JpegSeverities), new PipelineJob.SweepStage("resize", ResizeSeverities)] : null);
        var list = new List<DemoPipeline>();
        void Add(string key, string label, bool aligned, double? fraction)
        {
            if (aligned && inputs.AlignSourceId is null) return;
            foreach (var seed in Seeds) list.Add(new(key, $"{label}, seed {seed}", Make(aligned, fraction, seed), seed));
        }
        Add("aligned", "aligned (Ours-Sync), 100%", true, null);
        if (set == DemoSet.Full)
        {
            Add("usual", "usual (ldm_nearest fakes), 100%", false, null);
            Add($"aligned@{Percent(SmallFraction)}", $"aligned (Ours-Sync), {Percent(SmallFraction)}", true, SmallFraction);
            Add($"usual@{Percent(SmallFraction)}", $"usual (ldm_nearest fakes), {Percent(SmallFraction)}", false, SmallFraction);
        }
        return list;
    }

    /// <summary>
    /// The sanity evaluations of a finished pipeline's detector, both on its own training distribution's test split (the
    /// aligned dataset's test reals vs their reconstructions for the aligned training; ldm_nearest's test reals vs its test
    /// fakes for the usual one): its trained weights, and the untrained init of the same architecture and seed.
    /// </summary>
    public static IEnumerable<(string Stage, JsonObject Config)> SanityConfigs(long inDistributionDatasetId, string trained, string untrained) =>
    [
        ("sanity/trained", Node(new EvaluationJob.Config(inDistributionDatasetId, trained, Split: TestSplit, Bootstrap: 0))),
        ("sanity/untrained", Node(new EvaluationJob.Config(inDistributionDatasetId, untrained, Split: TestSplit, Bootstrap: 0))),
    ];

    static string Percent(double f) => $"{f * 100:0}%";

    /// <summary>
    /// How many times <see cref="Epochs"/> and <see cref="Patience"/> a row trains with a fraction of the images (1 / fraction,
    /// rounded): every row then takes the same number of optimizer steps and the plateau rule looks over the same number of
    /// them. With the 100% rows' 14 epochs, a 10% row made 42 steps and stopped with its training loss at 0.41-0.6, not
    /// converged; the data-efficiency claim compares what each training learns from fewer images, not fewer steps.
    /// </summary>
    public static int EpochScale(double? fraction) => fraction is { } f and > 0 and < 1 ? (int)Math.Round(1 / f) : 1;

    /// <summary>
    /// The LaRE extraction config: at their native 64 px through ldm_nearest's SD folder, the images LaRE² uses: every split of
    /// <see cref="TrainGenerator"/> (training and validation) and every generator's test split (the evaluation); about half of
    /// MiniGenImage.
    /// </summary>
    public static JsonObject LareConfig(DemoInputs inputs) => Node(new LareExtractionJob.Config(inputs.DatasetId, inputs.SdFolder, ResizeTo: 64, Batch: 8,
        Subsets: [$"{TrainGenerator}/{SubsetSelector.Any}", $"{SubsetSelector.Any}/{TestSplit}"]));

    /// <summary>LaRE²'s epochs (its own plateau rule inside).</summary>
    public const int Lare2Epochs = 3;

    /// <summary>The LaRE² training config on ldm_nearest with the maps of <paramref name="lareRunId"/>.</summary>
    public static JsonObject Lare2TrainConfig(DemoInputs inputs, long lareRunId, long seed = Seed)
    {
        var config = new JsonObject
        {
            ["trainDatasetId"] = inputs.DatasetId, ["arch"] = Lare2Evaluator.Architecture, ["initWeightsId"] = inputs.ClipWeightsId,
            ["lareRunId"] = lareRunId, ["epochs"] = Lare2Epochs, ["pairsPerBatch"] = PairsPerBatch, ["seed"] = seed,
            ["generators"] = new JsonArray(TrainGenerator),
        };
        return config;
    }

    /// <summary>The LaRE² test on every generator's test split.</summary>
    public static JsonObject Lare2EvaluateConfig(DemoInputs inputs, string checkpoint, long lareRunId) =>
        Node(new EvaluationJob.Config(inputs.DatasetId, checkpoint, Arch: Lare2Evaluator.Architecture, Split: TestSplit, LareRunId: lareRunId, Bootstrap: 200));

    static JsonObject Node<T>(T value) => JsonSerializer.SerializeToNode(value, ChildJson)!.AsObject();

    /// <summary>Finds MiniGenImage and the zoo entries; with <paramref name="registerClip"/>, registers the shipped CLIP tower when the zoo has none and it is present.</summary>
    /// <exception cref="DemoNotReadyException">MiniGenImage or a zoo entry is missing.</exception>
    public async Task<DemoInputs> InputsAsync(bool registerClip = true)
    {
        await using var db = await dbFactory.CreateDbContextAsync();
        var dataset = await db.Datasets.AsNoTracking().SingleOrDefaultAsync(d => d.Name == DatasetName);
        if (dataset is null || dataset.Status != DatasetStatus.Ready)
            throw new DemoNotReadyException(dataset is null
                ? $"the dataset '{DatasetName}' is not registered: MiniGenImage is built and registered on the portal's first start (the demo boot); start the portal once, or build it with `forensics minigenimage` and register it as '{DatasetName}'"
                : $"the dataset '{DatasetName}' is {dataset.Status.ToString().ToLowerInvariant()}, not ready yet");
        var vae = await db.Weights.AsNoTracking().SingleOrDefaultAsync(w => w.Name == VaeName)
                  ?? throw new DemoNotReadyException($"the model zoo has no '{VaeName}' (the autoencoder of {TrainGenerator}); it is registered by the demo boot with MiniGenImage");
        var sd = await db.Weights.AsNoTracking().SingleOrDefaultAsync(w => w.Name == TrainGenerator)
                 ?? throw new DemoNotReadyException($"the model zoo has no '{TrainGenerator}' (its Stable Diffusion folder feeds the LaRE maps); it is registered by the demo boot");
        var clip = await db.Weights.AsNoTracking().Where(w => w.Kind == ModelZooService.Clip).OrderBy(w => w.Name != ClipName).ThenBy(w => w.Id).FirstOrDefaultAsync();
        if (clip is null && registerClip && FindShippedClip() is { } file)
        {
            try { clip = (await zoo.RegisterAsync(ClipName, file, ModelZooService.Clip)).Model; }
            catch (FieldException e) { throw new DemoNotReadyException($"the demo's CLIP tower {file} could not join the zoo: {e.Message}"); }
        }
        var alignSource = await db.Datasets.AsNoTracking().SingleOrDefaultAsync(d => d.Name == AlignSourceName);
        return new DemoInputs(dataset.Id, vae.Id, SdFolderOf(sd.Path), clip?.Id, alignSource?.Status == DatasetStatus.Ready ? alignSource.Id : null);
    }

    /// <summary>Registers ldm_nearest's folder of MiniGenImage as <see cref="AlignSourceName"/> unless it is registered; the run registering it, or null when it is ready.</summary>
    async Task<Run?> EnsureAlignSourceAsync(long datasetId)
    {
        Dataset minigen;
        Dataset? existing;
        await using (var db = await dbFactory.CreateDbContextAsync())
        {
            minigen = await db.Datasets.AsNoTracking().SingleAsync(d => d.Id == datasetId);
            existing = await db.Datasets.AsNoTracking().SingleOrDefaultAsync(d => d.Name == AlignSourceName);
            if (existing is { Status: DatasetStatus.Ready }) return null;
            if (existing?.RegistrationRunId is { } runId && await db.Runs.AsNoTracking().SingleOrDefaultAsync(r => r.Id == runId) is { } run)
            {
                if (run.Status is RunStatus.Failed or RunStatus.Canceled)
                    throw new DemoNotReadyException($"registering '{AlignSourceName}' ({existing.Path}) failed in run {run.Id}: {run.Error}");
                return run;
            }
            if (existing is not null) throw new DemoNotReadyException($"the dataset '{AlignSourceName}' is {existing.Status.ToString().ToLowerInvariant()} without a registration run");
        }
        var folder = Path.Combine(minigen.Path, TrainGenerator);
        if (!Directory.Exists(folder)) throw new DemoNotReadyException($"MiniGenImage ({minigen.Path}) has no '{TrainGenerator}' folder");
        return (await datasets.RegisterAsync(AlignSourceName, folder)).Run;
    }

    /// <summary>The SD folder of a zoo entry: its path, or the folder above a component (unet/, vae/) it points into.</summary>
    static string SdFolderOf(string path)
    {
        for (var dir = Directory.Exists(path) ? path : Path.GetDirectoryName(path); dir is not null; dir = Path.GetDirectoryName(dir))
            if (Directory.Exists(Path.Combine(dir, "unet"))) return dir;
        return path;
    }

    /// <summary>models/demo/clip_rn_small/model.safetensors in the portal's models folder, else under the working directory, the app's folder or one of their parents.</summary>
    string? FindShippedClip()
    {
        // The models folder the portal reads the demo from (an allowed root) first.
        if (paths.ModelsDir is { } models && Path.Combine(models, "demo", "clip_rn_small", "model.safetensors") is var shipped && File.Exists(shipped))
            return shipped;
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory }.Concat(paths.AllowedRoots))
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
                if (File.Exists(Path.Combine(dir.FullName, ClipRelativePath))) return Path.Combine(dir.FullName, ClipRelativePath);
        return null;
    }

    /// <summary>
    /// Queues (or takes, by config hash) every run of <paramref name="set"/> whose inputs exist now, all tagged demo: the
    /// pipelines at once; the LaRE² chain (maps -> training -> test) one step per call as each step succeeds.
    /// </summary>
    /// <returns>The runs taken, and whether every step of the set has been queued.</returns>
    public async Task<(IReadOnlyList<DemoRun> Runs, bool AllQueued)> QueueAsync(DemoSet set)
    {
        // Only LaRE² needs the CLIP tower: the one-click set never registers it.
        var inputs = await InputsAsync(registerClip: set == DemoSet.Full);
        var taken = new List<DemoRun>();
        var complete = true;
        if (inputs.AlignSourceId is null && await EnsureAlignSourceAsync(inputs.DatasetId) is { } registering)
        {
            // The aligned pipelines wait for ldm_nearest's folder to be registered; the next call queues them.
            taken.Add(new DemoRun("align source", registering.Kind, registering.Id, false));
            complete = false;
        }
        var pipelines = Pipelines(inputs, set);
        var pipelineRuns = new List<DemoRun>();
        foreach (var p in pipelines)
            pipelineRuns.Add(await TakeAsync($"{p.Key} seed {p.Seed}", PipelineJob.KindName, Node(p.Config)));
        taken.AddRange(pipelineRuns);
        if (!await QueueSanityAsync(inputs, pipelines, pipelineRuns, taken)) complete = false;
        if (set != DemoSet.Full) return (taken, complete);
        if (inputs.ClipWeightsId is null)
            throw new DemoNotReadyException($"LaRE² needs a CLIP ResNet tower in the model zoo (kind clip), or {ClipRelativePath} in the repository");

        var lare = await TakeAsync("lare2/maps", LareExtractionJob.KindName, LareConfig(inputs));
        taken.Add(lare);
        if (!await SucceededAsync(lare.RunId)) return (taken, false);
        foreach (var seed in Seeds)
        {
            var train = await TakeAsync($"lare2/train seed {seed}", TrainingJob.KindName, Lare2TrainConfig(inputs, lare.RunId, seed));
            taken.Add(train);
            if (await WeightsOfAsync(train.RunId) is not { } checkpoint) { complete = false; continue; }
            taken.Add(await TakeAsync($"lare2/test seed {seed}", EvaluationJob.KindName, Lare2EvaluateConfig(inputs, checkpoint, lare.RunId)));
        }
        return (taken, complete);
    }

    /// <summary>
    /// The sanity evaluations of every succeeded pipeline (see <see cref="SanityConfigs"/>); false while a pipeline has not
    /// succeeded yet (its sanity runs are queued by a later call).
    /// </summary>
    async Task<bool> QueueSanityAsync(DemoInputs inputs, IReadOnlyList<DemoPipeline> pipelines, IReadOnlyList<DemoRun> pipelineRuns, List<DemoRun> taken)
    {
        var complete = true;
        foreach (var (p, run) in pipelines.Zip(pipelineRuns))
        {
            if (!await SucceededAsync(run.RunId)) { complete = false; continue; }
            var children = await PipelineJob.ChildrenAsync(dbFactory, run.RunId);
            var train = children.FirstOrDefault(c => c.Stage == "train");
            if (train is null || await ArtifactPathAsync(train.RunId, TrainingResults.WeightsArtifact) is not { } trained
                              || await ArtifactPathAsync(train.RunId, TrainingJob.InitArtifact) is not { } untrained) continue;
            long? dataset = inputs.AlignSourceId;
            if (p.Config.Align is not null && children.FirstOrDefault(c => c.Stage == "align") is { } align)
            {
                await using var db = await dbFactory.CreateDbContextAsync();
                dataset = (await db.Datasets.AsNoTracking().SingleOrDefaultAsync(d => d.RegistrationRunId == align.RunId && d.Status == DatasetStatus.Ready))?.Id;
            }
            if (dataset is not { } id) continue;
            foreach (var (stage, config) in SanityConfigs(id, trained, untrained))
                taken.Add(await TakeAsync($"{p.Key} seed {p.Seed} {stage}", EvaluationJob.KindName, config));
        }
        return complete;
    }

    /// <summary>The live run of this kind and config (tagged demo if it was not), or a new one tagged demo.</summary>
    async Task<DemoRun> TakeAsync(string key, string kind, JsonObject config)
    {
        var json = config.ToJsonString();
        var seed = config.FirstOrDefault(p => string.Equals(p.Key, "seed", StringComparison.OrdinalIgnoreCase)).Value?.GetValue<long>()
                   ?? (config["train"] as JsonObject)?["seed"]?.GetValue<long>();
        await Gate.WaitAsync();
        try
        {
            if (await experiments.FindLiveRunAsync(kind, RunService.ConfigHash(kind, json)) is { } existing)
            {
                var tags = RunTags.Parse(existing.Tags);
                if (!tags.Contains(Tag)) await runs.SetTagsAsync(existing.Id, tags.Append(Tag));
                return new DemoRun(key, kind, existing.Id, false);
            }
            var run = await runs.CreateAsync(kind, json, seed, tags: [Tag]);
            return new DemoRun(key, kind, run.Id, true);
        }
        finally { Gate.Release(); }
    }

    static readonly SemaphoreSlim Gate = new(1, 1);

    async Task<bool> SucceededAsync(long runId)
    {
        await using var db = await dbFactory.CreateDbContextAsync();
        return await db.Runs.AnyAsync(r => r.Id == runId && r.Status == RunStatus.Succeeded);
    }

    /// <summary>The weights file a succeeded training run recorded; null while it has not succeeded.</summary>
    async Task<string?> WeightsOfAsync(long trainRunId) => await SucceededAsync(trainRunId) ? await ArtifactPathAsync(trainRunId, TrainingResults.WeightsArtifact) : null;

    /// <summary>The path of a run's newest artifact of a kind; null when it has none.</summary>
    async Task<string?> ArtifactPathAsync(long runId, string kind)
    {
        await using var db = await dbFactory.CreateDbContextAsync();
        var artifact = await db.Artifacts.AsNoTracking().Where(a => a.RunId == runId && a.Kind == kind).OrderByDescending(a => a.Id).FirstOrDefaultAsync();
        return artifact is null ? null : paths.Data(artifact.RelativePath);
    }

    /// <summary>
    /// Queues the set and keeps advancing it until every run it took has finished: the driver behind the page's buttons
    /// and the demo-report command. Throws when a run fails or is canceled, naming it.
    /// </summary>
    public async Task<IReadOnlyList<DemoRun>> RunToCompletionAsync(DemoSet set, Action<string>? log = null, CancellationToken ct = default)
    {
        var reported = new HashSet<long>();
        while (true)
        {
            var (taken, allQueued) = await QueueAsync(set);
            foreach (var r in taken.Where(r => reported.Add(r.RunId)))
                log?.Invoke($"{r.Key}: {r.Kind} run {r.RunId} {(r.Created ? "queued" : "reused")}");
            List<Run> states;
            var ids = taken.Select(t => t.RunId).ToList();
            await using (var db = await dbFactory.CreateDbContextAsync(ct))
                states = await db.Runs.AsNoTracking().Where(r => ids.Contains(r.Id)).ToListAsync(ct);
            if (states.FirstOrDefault(r => r.Status is RunStatus.Failed or RunStatus.Canceled) is { } bad)
                throw new InvalidOperationException($"demo run {bad.Id} ({bad.Kind}) {bad.Status.ToString().ToLowerInvariant()}: {bad.Error}");
            if (allQueued && states.All(r => r.Status == RunStatus.Succeeded)) return taken;
            await Task.Delay(TimeSpan.FromSeconds(1), ct);
        }
    }
}

/// <summary>Runs a demo set in the background for the page (one at a time), so the steps that wait for another (the align source's registration, the LaRE² chain) advance without the page open.</summary>
public sealed class DemoDriver(IServiceScopeFactory scopes, ILogger<DemoDriver> logger)
{
    Task? running;

    /// <summary>The last error of a background run, for the page; null when none.</summary>
    public string? LastError { get; private set; }

    /// <summary>True while a set is being driven.</summary>
    public bool Busy => running is { IsCompleted: false };

    /// <summary>Queues <paramref name="set"/> now (errors are thrown to the caller) and keeps advancing it in the background.</summary>
    public async Task<IReadOnlyList<DemoRun>> StartAsync(DemoSet set)
    {
        IReadOnlyList<DemoRun> first;
        using (var scope = scopes.CreateScope())
            first = (await scope.ServiceProvider.GetRequiredService<DemoBenchmark>().QueueAsync(set)).Runs;
        if (!Busy)
        {
            LastError = null;
            running = Task.Run(async () =>
            {
                try
                {
                    using var scope = scopes.CreateScope();
                    await scope.ServiceProvider.GetRequiredService<DemoBenchmark>().RunToCompletionAsync(set);
                }
                catch (Exception e)
                {
                    LastError = e.Message;
                    logger.LogWarning(e, "demo set {Set} stopped", set);
                }
            });
        }
        return first;
    }
}

/// <summary>Registers the demo benchmark's services.</summary>
public static class DemoServices
{
    /// <summary>DemoBenchmark (per scope) and the page's background driver (one).</summary>
    public static IServiceCollection AddDemoBenchmark(this IServiceCollection services)
    {
        services.AddTransient<DemoBenchmark>();
        services.AddSingleton<DemoDriver>();
        return services;
    }
}
