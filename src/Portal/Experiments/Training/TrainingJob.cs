using System.Text.Json;
using Forensics.ML.Data;
using Forensics.ML.Datasets;
using Forensics.ML.Evaluation;
using Forensics.ML.Lare2;
using Forensics.ML.Models;
using Forensics.ML.Runtime;
using Forensics.ML.Training;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Portal.Infrastructure;
using Portal.Store;
using Portal.Runs;
using Portal.Datasets;
using Portal.Zoo;

namespace Portal.Experiments;

/// <summary>
/// Trains a detector on registered datasets, through the same code as `forensics train`: res50nodown with the
/// aligned-dataset paper's recipe (synced pairs "Ours-Sync", unsynced pairs, or the usual independent training are one
/// field apart), or LaRE² (arch "lare2": a CLIP ResNet tower with EGRE on the maps of a LaRE run; see TrainingJob.Lare2.cs).
/// Checkpoints go to the run's folder, so a run taken up again after a crash resumes from its last epoch. Loss and
/// validation curves are stored as metrics; the best weights become an artifact and a detector in the model zoo.
/// </summary>
public sealed partial class TrainingJob(IDbContextFactory<PortalDb> dbFactory, PortalPaths paths, IOptions<PortalOptions> options) : IRunJob
{
    readonly JobInputs inputs = new(dbFactory, paths);

    public const string KindName = "train";

    /// <summary>The artifact kind of a res50nodown run's untrained starting weights.</summary>
    public const string InitArtifact = TrainingResults.InitArtifact;

    /// <summary>The default architecture: the aligned-dataset paper's ResNet-50 without early down-sampling.</summary>
    public const string Res50NoDown = "res50nodown";

    /// <summary>
    /// What to train. TrainDatasetId: an aligned set (0_real + 1_fake reconstructions with the same stems) for synced or
    /// unsynced mode, any labelled set for independent mode; its "train" split is used when it has one. ValDatasetId:
    /// the validation images (its "val" split when it has one); default the training dataset's val split.
    /// Init or InitWeightsId (a zoo entry): the starting weights. PairsPerBatch: N reals + N fakes per batch.
    /// </summary>
    /// <remarks>
    /// Arch "lare2" trains LaRE² on precomputed maps: LareRunId is the succeeded "lare" run of the training dataset,
    /// ValLareRunId that of the validation dataset (needed when it is another dataset); Init/InitWeightsId is the CLIP
    /// ResNet image tower it fine-tunes (visual.* weights, or a LaRE² checkpoint), which also fixes the network's shape
    /// and crop; Ablation: none, no-spatial, no-channel or zero-lare. Generators: train (and validate) only on these
    /// generators' fakes and the reals of the same generator folders (GenImage's "train on one generator"); MaxImages or
    /// Fraction: a per-class subset of the training images (pairs in paired modes) drawn from Seed, for data efficiency. Epochs and PairsPerBatch default to the authors'
    /// (100 epochs, 24 pairs = 48 images) when not given; Mode, Width, Layers, Crop and Augment are res50nodown's and
    /// refused with lare2.
    /// </remarks>
    public sealed record Config(long TrainDatasetId, long? ValDatasetId = null, string Mode = "synced", int Epochs = 1000,
        int PairsPerBatch = 64, double LearningRate = 1e-4, long Seed = 17, int Width = 64, int[]? Layers = null, int Crop = 96,
        string Augment = "reference", string? Init = null,
        string Arch = Res50NoDown, long? InitWeightsId = null, long? LareRunId = null, long? ValLareRunId = null, string Ablation = "none",
        string[]? Generators = null, int? MaxImages = null, double? Fraction = null, AugmentationConfig? Augmentation = null, int? Patience = null,
        string? Card = null);

    /// <summary>
    /// The reference chain's sizes, ranges and probabilities (res50nodown with augment "reference"). A field left out takes
    /// the default for the crop (<see cref="AugmentationOptions.ForCrop"/>: the paper's for crops of 96 px and more, scaled
    /// down below).
    /// </summary>
    public sealed record AugmentationConfig(int? ResizeSize = null, double? ResizeScaleMin = null, double? ResizeProbability = null,
        double? ColorJitterProbability = null, double? GrayscaleProbability = null, int? CutoutSize = null, double? CutoutProbability = null,
        double? NoiseProbability = null, double? BlurSigmaMin = null, double? BlurSigmaMax = null, double? BlurProbability = null,
        int? JpegQualityMin = null, int? JpegQualityMax = null, double? JpegProbability = null)
    {
        /// <summary>The options for a crop: its defaults with the given fields replaced.</summary>
        public AugmentationOptions For(int crop)
        {
            var d = AugmentationOptions.ForCrop(Math.Max(1, crop));
            return d with
            {
                ResizeSize = ResizeSize ?? d.ResizeSize, ResizeScaleMin = ResizeScaleMin ?? d.ResizeScaleMin, ResizeProbability = ResizeProbability ?? d.ResizeProbability,
                ColorJitterProbability = ColorJitterProbability ?? d.ColorJitterProbability, GrayscaleProbability = GrayscaleProbability ?? d.GrayscaleProbability,
                CutoutSize = CutoutSize ?? d.CutoutSize, CutoutProbability = CutoutProbability ?? d.CutoutProbability, NoiseProbability = NoiseProbability ?? d.NoiseProbability,
                BlurSigmaMin = BlurSigmaMin ?? d.BlurSigmaMin, BlurSigmaMax = BlurSigmaMax ?? d.BlurSigmaMax, BlurProbability = BlurProbability ?? d.BlurProbability,
                JpegQualityMin = JpegQualityMin ?? d.JpegQualityMin, JpegQualityMax = JpegQualityMax ?? d.JpegQualityMax, JpegProbability = JpegProbability ?? d.JpegProbability,
            };
        }
    }

    /// <summary>A config checked against the store: the datasets, the starting weights and the trainer's options (one of the two).</summary>
    sealed record Checked(Config Config, Dataset Train, Dataset Val, string? Init, TrainOptions? Res50, Lare2Plan? Lare2, TorchScriptPlan? TorchScript = null);

    public string Kind => KindName;
    public string Queue => JobQueues.Device;

    public Task ValidateAsync(string configJson) => CheckAsync(configJson);

    /// <summary>Every check of the config; each failure is a <see cref="FieldException"/> naming the field.</summary>
    async Task<Checked> CheckAsync(string configJson)
    {
        var c = JobInputs.Parse<Config>(configJson, "training");
        // The independent checks all run, so the form names every invalid field at once; what depends on them runs after.
        var checks = new FieldChecks();
        CheckLimits(c, options.Value.Limits, checks);
        var given = GivenFields(configJson);
        var arch = c.Arch?.Trim().ToLowerInvariant() ?? Res50NoDown;
        var knownArch = arch is Res50NoDown or TorchScriptArch or Lare2Evaluator.Architecture;
        if (!knownArch) checks.Fail("arch", $"arch must be {Res50NoDown}, {TorchScriptArch} or {Lare2Evaluator.Architecture}, not '{c.Arch}'");
        var lare2 = arch == Lare2Evaluator.Architecture;
        if (arch != TorchScriptArch && given.Contains("card")) checks.Fail("card", $"card is used with arch {TorchScriptArch} only");
        var train = await checks.RunAsync(() => ReadyDatasetAsync(c.TrainDatasetId, "trainDatasetId"));
        var val = c.ValDatasetId is { } v ? await checks.RunAsync(() => ReadyDatasetAsync(v, "valDatasetId")) : train;
        if (train is not null && val is not null) await checks.RunAsync(() => CheckSelectionAsync(c, train, val));
        var init = knownArch ? await checks.RunAsync(() => InitPathAsync(c, lare2, arch == TorchScriptArch)) : null;
        if (!lare2)
        {
            foreach (var field in new[] { "lareRunId", "valLareRunId" })
                if (given.Contains(field)) checks.Fail(field, $"{field} is used with arch {Lare2Evaluator.Architecture} only");
            if (c.Ablation is { } ablation && !string.Equals(ablation.Trim(), "none", StringComparison.OrdinalIgnoreCase))
                checks.Fail("ablation", $"ablation is used with arch {Lare2Evaluator.Architecture} only");
            if (!SyncedPairs.TryParseMode(c.Mode, out _)) checks.Fail("mode", $"mode must be {SyncedPairs.ModeList}, not '{c.Mode}'");
            if (c.Augment is not ("reference" or "none")) checks.Fail("augment", $"augment must be reference or none, not '{c.Augment}'");
        }
        checks.ThrowIfAny();
        // No check failed, so both datasets were found.
        if (train is null || val is null) throw new InvalidOperationException("the training datasets were not resolved");
        if (lare2) return new Checked(c, train, val, init, null, await CheckLare2Async(c, given, train, val, init));

        var trainOptions = Options(c, arch == TorchScriptArch ? null : init);
        try { trainOptions.Validate(); }
        catch (ArgumentException e) { throw new FieldException(FieldOf(e), e.Message); }
        if (arch == TorchScriptArch) return new Checked(c, train, val, init, trainOptions, null, CheckTorchScript(c, given, init, trainOptions));
        return new Checked(c, train, val, init, trainOptions, null);
    }

    /// <summary>The size-like fields against Portal:Limits, before anything is read.</summary>
    static void CheckLimits(Config c, ConfigLimits limits, FieldChecks checks)
    {
        checks.Run(() => ConfigLimits.AtMost("epochs", c.Epochs, limits.Epochs, nameof(limits.Epochs)));
        checks.Run(() => ConfigLimits.AtMost("pairsPerBatch", c.PairsPerBatch, limits.PairsPerBatch, nameof(limits.PairsPerBatch)));
        checks.Run(() => ConfigLimits.AtMost("width", c.Width, limits.Width, nameof(limits.Width)));
        checks.Run(() => ConfigLimits.AtMost("crop", c.Crop, limits.ImageSize, nameof(limits.ImageSize)));
        checks.Run(() => { foreach (var blocks in c.Layers ?? []) ConfigLimits.AtMost("layers", blocks, limits.LayerBlocks, nameof(limits.LayerBlocks)); });
        if (c.Augmentation?.ResizeSize is { } resize) checks.Run(() => ConfigLimits.AtMost("augmentation.resizeSize", resize, limits.ImageSize, nameof(limits.ImageSize)));
        if (c.Augmentation?.CutoutSize is { } cutout) checks.Run(() => ConfigLimits.AtMost("augmentation.cutoutSize", cutout, limits.ImageSize, nameof(limits.ImageSize)));
        if (c.Patience is { } patience) checks.Run(() => ConfigLimits.AtMost("patience", patience, limits.Epochs, nameof(limits.Epochs)));
    }

    /// <summary>The training-set selection of the config; null when it selects everything.</summary>
    static TrainingSelection? Selection(Config c)
    {
        var selection = new TrainingSelection { Generators = c.Generators, MaxImages = c.MaxImages, Fraction = c.Fraction, Seed = unchecked((ulong)c.Seed) };
        return selection.IsAll ? null : selection;
    }

    /// <summary>Generators, MaxImages and Fraction: in range, one of the last two, and every generator in both datasets.</summary>
    async Task CheckSelectionAsync(Config c, Dataset train, Dataset val)
    {
        if (Selection(c) is not { } selection) return;
        try { selection.Validate(); }
        catch (ArgumentException e)
        {
            var field = e.Message.Contains("MaxImages and", StringComparison.Ordinal) ? "maxImages"
                : e.Message.Contains(".Generators", StringComparison.Ordinal) ? "generators"
                : e.Message.Contains(".MaxImages", StringComparison.Ordinal) ? "maxImages" : "fraction";
            throw new FieldException(field, e.Message.Replace("TrainingSelection.", "", StringComparison.Ordinal)
                .Replace("Generators", "generators").Replace("MaxImages", "maxImages").Replace("Fraction", "fraction"));
        }
        if (c.Generators is not { } wanted) return;
        foreach (var (dataset, field) in new[] { (train, "trainDatasetId"), (val, "valDatasetId") }.DistinctBy(d => d.Item1.Id))
        {
            var known = await GeneratorsOfAsync(dataset.Id);
            var missing = wanted.Where(g => !known.Contains(g)).ToList();
            if (missing.Count > 0)
                throw new FieldException("generators", $"generator(s) {string.Join(", ", missing.Select(g => $"'{g}'"))} not in dataset '{dataset.Name}' " +
                                                       $"({(field == "trainDatasetId" ? "training" : "validation")}); its generators: {string.Join(", ", known.Order(StringComparer.Ordinal))}");
        }
    }

    /// <summary>The generator names of a registered dataset's subsets (case-insensitive).</summary>
    async Task<HashSet<string>> GeneratorsOfAsync(long datasetId)
    {
        await using var db = await dbFactory.CreateDbContextAsync();
        var names = await db.Set<DatasetSubset>().AsNoTracking().Where(s => s.DatasetId == datasetId).Select(s => s.Generator).Distinct().ToListAsync();
        return new HashSet<string>(names, StringComparer.OrdinalIgnoreCase);
    }

    /// <summary>The top-level fields the posted config sets (null counts as not set), so per-arch defaults can apply.</summary>
    static HashSet<string> GivenFields(string configJson)
    {
        using var doc = System.Text.Json.JsonDocument.Parse(configJson);
        return doc.RootElement.EnumerateObject().Where(p => p.Value.ValueKind != System.Text.Json.JsonValueKind.Null)
            .Select(p => p.Name).ToHashSet(StringComparer.OrdinalIgnoreCase);
    }

    /// <summary>
    /// The starting weights: Init (a file under an allowed root) or InitWeightsId (a zoo entry that fits the arch: a
    /// CLIP tower or a LaRE² detector for lare2, another detector for res50nodown); null for a random start.
    /// </summary>
    async Task<string?> InitPathAsync(Config c, bool lare2, bool torchScript = false)
    {
        if (c.InitWeightsId is not { } id) return c.Init is { Length: > 0 } init ? inputs.ExistingFile(init, "init", "initial weights") : null;
        if (c.Init is { Length: > 0 }) throw new FieldException("initWeightsId", "give init (a path) or initWeightsId (a zoo entry), not both");
        await using var db = await dbFactory.CreateDbContextAsync();
        var w = await db.Weights.AsNoTracking().SingleOrDefaultAsync(x => x.Id == id)
                ?? throw new FieldException("initWeightsId", $"no model with id {id} in the zoo");
        var isLare2 = w.Kind == ModelZooService.Detector && w.Architecture == Lare2Evaluator.Architecture;
        var isPackage = w.Kind == ModelZooService.Detector && w.Architecture is TorchScriptArch or "onnx";
        var fits = lare2 ? w.Kind == ModelZooService.Clip || isLare2
            : torchScript ? w.Kind == ModelZooService.Detector && w.Architecture == TorchScriptArch
            : w.Kind == ModelZooService.Detector && !isLare2 && !isPackage;
        if (!fits)
            throw new FieldException("initWeightsId", $"model '{w.Name}' is a {w.Kind} ({w.Architecture}); " + (lare2
                ? "lare2 starts from a CLIP image tower (kind clip) or a LaRE² detector"
                : torchScript ? "arch torchscript fine-tunes a TorchScript detector of the zoo (architecture torchscript)"
                : "res50nodown starts from a ResNet detector's weights"));
        if (!File.Exists(w.Path)) throw new FieldException("initWeightsId", $"the weights of model '{w.Name}' are gone from {w.Path}");
        return w.Path;
    }

    /// <summary>The TrainOptions field an options error is about, in the config's words.</summary>
    static string FieldOf(ArgumentException e) => e.Message.StartsWith("AugmentationOptions.", StringComparison.Ordinal)
        ? "augmentation." + JsonNamingPolicy.CamelCase.ConvertName(System.Text.RegularExpressions.Regex.Match(e.Message, @"AugmentationOptions\.(\w+)").Groups[1].Value)
        : System.Text.RegularExpressions.Regex.Match(e.Message, @"(?:Lare2)?TrainOptions\.(\w+)").Groups[1].Value switch
    {
        nameof(TrainOptions.PairsPerBatch) or nameof(Lare2TrainOptions.BatchSize) => "pairsPerBatch",
        nameof(TrainOptions.LearningRate) => "learningRate",
        nameof(TrainOptions.MaxEpochs) => "epochs",
        nameof(TrainOptions.CropSize) => "crop",
        nameof(TrainOptions.Patience) => "patience",
        nameof(TrainOptions.Arch) => "layers",
        nameof(TrainOptions.InitWeights) or nameof(Lare2TrainOptions.Model) => "init",
        _ => "config",
    };

    Task<Dataset> ReadyDatasetAsync(long id, string field) => inputs.ReadyDatasetAsync(id, field);

    TrainOptions Options(Config c, string? init)
    {
        SyncedPairs.TryParseMode(c.Mode, out var mode);
        return new TrainOptions
        {
            Arch = ResNetOptions.Res50NoDown() with { BaseWidth = c.Width, Layers = c.Layers ?? [3, 4, 6, 3] },
            LearningRate = c.LearningRate, Seed = unchecked((ulong)c.Seed), PairsPerBatch = c.PairsPerBatch, Mode = mode,
            MaxEpochs = c.Epochs, CropSize = c.Crop, Augment = (c.Augmentation ?? new AugmentationConfig()).For(c.Crop),
            Patience = c.Patience ?? new TrainOptions().Patience,
            Augmentation = c.Augment == "none" ? AugmentationChoice.None : AugmentationChoice.Reference,
            InitWeights = init, Device = options.Value.Torch.Device,
        };
    }

    public async Task ExecuteAsync(RunContext context)
    {
        var k = await CheckAsync(context.ConfigJson);
        TorchRuntime.EnsureLoaded(options.Value.Torch);
        // LaRE² draws reals and fakes as they are: its training set is never paired.
        var mode = k.Res50?.Mode ?? PairMode.Independent;
        var data = TrainingData.FromManifests(DatasetManifest.Load(context.Paths.Data(k.Train.ManifestPath!)),
            DatasetManifest.Load(context.Paths.Data(k.Val.ManifestPath!)), mode, line => context.LogAsync(line).GetAwaiter().GetResult(),
            Selection(k.Config));
        if (File.Exists(Path.Combine(context.WorkDir, TrainingCheckpoint.FileName)))
            await context.LogAsync("resuming from the run's last checkpoint");

        // A resumed run's loss steps go on after the last one stored, so its curve never folds back.
        long lastStep;
        await using (var db = await dbFactory.CreateDbContextAsync())
            lastStep = await db.RunMetrics.Where(m => m.RunId == context.RunId && m.Name == TrainingResults.Loss).MaxAsync(m => (long?)m.Step) ?? 0;
        var observer = new Observer(context, lastStep);
        string bestPath, architecture, card;
        var format = "safetensors";
        if (k.TorchScript is { } script)
        {
            observer.MaxEpochs = k.Res50!.MaxEpochs;
            (bestPath, card) = await TrainTorchScriptAsync(context, k, script, data, observer);
            (architecture, format) = (TorchScriptArch, TorchScriptArch);
        }
        else if (k.Lare2 is { } plan)
        {
            (bestPath, card) = await TrainLare2Async(context, k, plan, data, observer);
            architecture = Lare2Evaluator.Architecture;
        }
        else
        {
            var c = k.Config;
            observer.MaxEpochs = k.Res50!.MaxEpochs;
            var result = DetectorTrainer.Train(k.Res50!, data, context.WorkDir, observer, context.CancellationToken);
            await context.LogAsync($"done after {result.EpochsRun} epoch(s) ({result.Reason}): best validation balanced accuracy " +
                                   $"{result.BestBalancedAcc:F4} at epoch {result.BestEpoch}; {result.SkippedImages} unreadable image(s) skipped");
            (bestPath, architecture) = (result.BestWeightsPath, Res50NoDown);
            // The untrained init (same architecture and seed): the demo's sanity baseline.
            if (Path.Combine(context.WorkDir, TrainingCheckpoint.InitFileName) is var initPath && File.Exists(initPath))
                await context.ArtifactAsync(InitArtifact, initPath);
            card = $"res50nodown (width {c.Width}, layers [{string.Join(",", c.Layers ?? [3, 4, 6, 3])}]) trained by run {context.RunId}, " +
                   $"mode {c.Mode}, on dataset '{k.Train.Name}' (content {k.Train.ContentHash}), seed {c.Seed}, lr {c.LearningRate}, " +
                   $"{c.PairsPerBatch} pairs per batch, crop {c.Crop}, augmentation {c.Augment}.";
        }
        var best = await context.ArtifactAsync(TrainingResults.WeightsArtifact, bestPath);
        await RegisterWeightsAsync(context, architecture, card, best, format);
    }

    /// <summary>The best weights join the model zoo as a detector, with a card that says how they were made.</summary>
    async Task RegisterWeightsAsync(RunContext context, string architecture, string card, Artifact best, string format = "safetensors")
    {
        await using var db = await dbFactory.CreateDbContextAsync();
        var name = $"{architecture}-run{context.RunId}";
        if (await db.Weights.AnyAsync(w => w.Name == name)) return; // a re-delivery after success
        db.Weights.Add(new ModelWeights
        {
            Name = name, Kind = ModelZooService.Detector, Architecture = architecture, Path = context.Paths.Data(best.RelativePath),
            Format = format, Bytes = best.Bytes, Sha256 = best.Sha256, SourceRunId = context.RunId, CreatedAt = DateTime.UtcNow,
            Card = card,
        });
        await db.SaveChangesAsync();
    }

    /// <summary>Training progress into the run: progress bar, loss per step, validation metrics per epoch, log lines.</summary>
    sealed class Observer(RunContext context, long step) : ITrainingObserver
    {
        readonly System.Diagnostics.Stopwatch clock = System.Diagnostics.Stopwatch.StartNew();
        // The first progress this attempt measured from (a resumed run starts part-way), and the epoch in progress.
        (double Fraction, TimeSpan At)? start;
        int epoch;

        /// <summary>The run's epoch budget, for "epoch 2/3".</summary>
        public int MaxEpochs { get; set; }

        public void OnProgress(double fraction, TrainingPhase phase)
        {
            var now = clock.Elapsed;
            if (phase == TrainingPhase.Setup || start is null) start = (fraction, now);
            var (from, at) = start.Value;
            // The rate measured over this attempt so far: (fraction done since the start) per elapsed second.
            TimeSpan? eta = fraction > from && now > at && phase != TrainingPhase.Done
                ? TimeSpan.FromSeconds((now - at).TotalSeconds * (1 - fraction) / (fraction - from)) : null;
            context.ReportProgress(fraction, TrainingPhaseText.Of(phase, epoch, MaxEpochs, eta));
        }

        // The per-step losses wait here and go to the store together (every StepsPerWrite steps, every WriteEvery, and at
        // each epoch's end), so the training thread does not stop for a database insert at every step.
        const int StepsPerWrite = 32;
        static readonly TimeSpan WriteEvery = TimeSpan.FromSeconds(2);
        readonly List<(string Name, long Step, double Value)> pending = [];
        TimeSpan lastWrite;

        public void OnStep(int epoch, int stepInEpoch, double loss, double learningRate)
        {
            this.epoch = epoch;
            pending.Add((TrainingResults.Loss, ++step, loss));
            if (pending.Count >= StepsPerWrite || clock.Elapsed - lastWrite >= WriteEvery) Write();
        }

        void Write()
        {
            context.MetricsAsync(pending).GetAwaiter().GetResult();
            pending.Clear();
            lastWrite = clock.Elapsed;
        }

        public void OnEpoch(int epoch, double trainLoss, ValidationMetrics v, double learningRate, bool isBest)
        {
            this.epoch = epoch;
            foreach (var (name, value) in new (string, double?)[]
                     {
                         (TrainingResults.TrainLoss, trainLoss), (TrainingResults.ValBalancedAcc, v.BalancedAcc), (TrainingResults.ValAcc, v.Acc), (TrainingResults.ValRealAcc, v.RealAcc),
                         (TrainingResults.ValFakeAcc, v.FakeAcc), (TrainingResults.ValAp, v.Ap), (TrainingResults.LearningRate, learningRate),
                     })
                if (value is { } x) pending.Add((name, epoch, x));
            Write();
            context.LogAsync($"epoch {epoch}: train loss {trainLoss:F4}, val balanced acc {v.BalancedAcc:F4}{(isBest ? " (best)" : "")}, next lr {learningRate:G3}")
                .GetAwaiter().GetResult();
        }

        public void OnLog(string message) => context.LogAsync(message).GetAwaiter().GetResult();
    }
}

/// <summary>A training run's phase as the run page shows it: "epoch 2/3 · train, ETA 1:40".</summary>
public static class TrainingPhaseText
{
    /// <summary>The phase text; the epoch part only once an epoch has started, the ETA only when measured.</summary>
    public static string Of(TrainingPhase phase, int epoch, int maxEpochs, TimeSpan? eta)
    {
        var name = phase.ToString().ToLowerInvariant();
        if (phase == TrainingPhase.Done) return name;
        var text = epoch > 0 && maxEpochs > 0 ? $"epoch {epoch}/{maxEpochs} · {name}" : name;
        return eta is { } e ? $"{text}, ETA {Eta(e)}" : text;
    }

    /// <summary>"1:40" under an hour, "2:05:00" above.</summary>
    public static string Eta(TimeSpan eta)
    {
        var s = (long)Math.Ceiling(Math.Max(0, eta.TotalSeconds));
        return s >= 3600 ? $"{s / 3600}:{s % 3600 / 60:00}:{s % 60:00}" : $"{s / 60}:{s % 60:00}";
    }
}
