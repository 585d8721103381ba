using System.Globalization;
using Forensics.ML.Data;
using Forensics.ML.Models;
using Forensics.ML.Models.Clip;
using Forensics.ML.Randomness;
using Forensics.ML.Runtime;
using Forensics.ML.Weights;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using Forensics.ML.Training;
using Forensics.ML.Evaluation;

namespace Forensics.ML.Lare2;

/// <summary>
/// Trains LaRE² (CLIP RN50 + EGRE) with the authors' recipe (<see cref="Lare2TrainOptions"/>): cross-entropy, Adam,
/// gradient-norm clipping, one validation per epoch feeding <see cref="ReduceLrOnPlateau"/>, best weights kept under the
/// authors' names. Every epoch ends with a checkpoint; calling <see cref="Train"/> again on the same folder resumes and
/// reaches the weights of an uninterrupted run (same thread count). Initial weights come from the trainer's own
/// generator; batches and crops follow from (seed, epoch); the model's dropout draws from the trainer's own generator
/// (<see cref="SeededDropout"/>), re-seeded from (seed, epoch, step) before each step, so masks depend
/// neither on where a run resumed nor on other users of torch's global generator in the process.
/// </summary>
public static class Lare2Trainer
{
    /// <summary>The checkpoint's file name in the output folder.</summary>
    public const string CheckpointFileName = TrainingCheckpoint.FileName;

    /// <summary>The best model's file name in the output folder.</summary>
    public const string BestFileName = TrainingCheckpoint.BestFileName;

    private const long InitStream = 201, DropoutStream = 202;

    /// <summary>
    /// Trains into <paramref name="outputDir"/>: best.safetensors (loadable with <see cref="Lare2Classifier.Load(string)"/>
    /// and by `forensics eval --arch lare2`) and checkpoint.safetensors; resumes from a checkpoint of the same options.
    /// </summary>
    /// <exception cref="ArgumentException">Invalid options or data (named).</exception>
    /// <exception cref="InvalidDataException">The existing checkpoint is unreadable or of other options; no image of an epoch loaded.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="ct"/> was cancelled; the last checkpoint stays.</exception>
    public static Lare2TrainResult Train(Lare2TrainOptions options, Lare2TrainingData data, string outputDir,
        ITrainingObserver? observer = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(data);
        ArgumentException.ThrowIfNullOrWhiteSpace(outputDir);
        options.Validate();
        observer ??= TrainingLoop.NullObserver.Instance;
        var maps = new LareMapFolder(data.LareFolder, options.Model.Egre.LareChannels);
        var validationMaps = data.ValidationLareFolder is { } v ? new LareMapFolder(v, options.Model.Egre.LareChannels) : maps;
        var sampler = new BalancedSampler(data.Train, new BalancedSamplerOptions { BatchSize = options.BatchSize, Seed = options.Seed });
        TrainingLoop.CheckValidationClasses(data.Validation);
        var device = TrainingLoop.LoadTorch(options.Device);

        Directory.CreateDirectory(outputDir);
        var checkpointPath = Path.Combine(outputDir, CheckpointFileName);
        var bestPath = Path.Combine(outputDir, BestFileName);
        observer.OnProgress(0, TrainingPhase.Setup);

        var fingerprint = options.Fingerprint();
        var resume = File.Exists(checkpointPath) ? Lare2Checkpoint.ReadInfo(checkpointPath) : null;
        TrainingLoop.CheckFingerprint(checkpointPath, resume?.Fingerprint, fingerprint);

        using var model = new Lare2Classifier(options.Model);
        if (resume is null) Initialise(model, options, observer);
        model.to(device);
        var named = model.named_parameters().ToList();
        var names = named.Select(p => p.name).ToList();
        using var optimizer = new KeptAliveAdam(named.Select(p => p.parameter), lr: options.LearningRate, beta1: 0.9, beta2: 0.999, weight_decay: 0);
        var plateau = new ReduceLrOnPlateau(options.LearningRate, PlateauMode.Max, options.PlateauFactor, options.PlateauPatience, options.MinLearningRate);
        double? best = null;
        var bestEpoch = 0;
        var resumedFrom = 0;
        if (resume is not null)
        {
            resume = Lare2Checkpoint.Load(checkpointPath, model, optimizer, names);
            plateau.Restore(resume.Plateau);
            (best, bestEpoch, resumedFrom) = (resume.Best, resume.BestEpoch, resume.Epoch);
            observer.OnLog(FormattableString.Invariant(
                $"Resuming from {checkpointPath}: {resume.Epoch} epoch(s) done, lr {plateau.LearningRate:G3}, best {options.BestMetric} {best ?? double.NaN:F4} at epoch {bestEpoch}."));
        }
        TrainingLoop.SetLearningRate(optimizer, plateau.LearningRate);
        if (resumedFrom >= options.MaxEpochs)
        {
            observer.OnLog($"Training in {outputDir} had already run {resumedFrom} epoch(s).");
            observer.OnProgress(1, TrainingPhase.Done);
            return new Lare2TrainResult(bestEpoch, best ?? double.NaN, plateau.LearningRate, resumedFrom, bestPath, checkpointPath, resumedFrom, 0);
        }

        // Dropout draws from the trainer's own generator, reseeded from (seed, epoch, step) before each step: no other
        // user of torch's global generator in this process can shift them, so a resumed run repeats them exactly.
        using var dropoutRng = new Generator(Seeds.Derive(options.Seed, DropoutStream));
        SeededDropout.UseGenerator(model, dropoutRng);
        var loaderOptions = new LoaderOptions { Workers = options.Workers };
        using var trainLoader = new Lare2Loader(sampler, maps, options.CropSize, training: true, loaderOptions);
        using var validationLoader = new Lare2Loader(new InOrderPlanner(data.Validation, options.ValidationBatchSize), validationMaps, options.CropSize, training: false, loaderOptions);
        var steps = sampler.BatchesPerEpoch;
        var reported = 0;
        var epoch = resumedFrom;
        while (epoch < options.MaxEpochs)
        {
            ct.ThrowIfCancellationRequested();
            epoch++;
            model.train();
            var (lossSum, images) = TrainingLoop.TrainEpoch(trainLoader.Epoch(epoch, ct), b => b.Count, (batch, step, profile) =>
                {
                    dropoutRng.manual_seed(unchecked((long)Seeds.Derive(options.Seed, DropoutStream, epoch, step)));
                    return Step(model, optimizer, batch, device, options.GradientClip, profile);
                },
                observer, epoch, steps, options.MaxEpochs, plateau.LearningRate, ct);
            reported = ReportSkips(observer, trainLoader, validationLoader, reported);
            if (images == 0)
                throw new InvalidDataException($"Epoch {epoch}: no training image could be loaded ({trainLoader.Skipped.Count} skipped); see the skipped files reported.");

            ct.ThrowIfCancellationRequested();
            observer.OnProgress(Math.Min(1, (double)epoch / options.MaxEpochs), TrainingPhase.Validate);
            var validation = Validate(model, validationLoader, epoch, device, ct);
            reported = ReportSkips(observer, trainLoader, validationLoader, reported);
            var value = validation.Get(options.BestMetric);
            var isBest = !double.IsNaN(value) && (best is not { } b || value > b);
            if (isBest)
            {
                (best, bestEpoch) = (value, epoch);
                TrainingCheckpoint.WriteAtomically(bestPath, temp => model.Save(temp));
            }
            if (plateau.Step(validation.Get(options.ScheduleMetric)))
            {
                TrainingLoop.SetLearningRate(optimizer, plateau.LearningRate);
                observer.OnLog(FormattableString.Invariant(
                    $"Epoch {epoch}: no {options.ScheduleMetric} improvement for more than {options.PlateauPatience} epochs; learning rate x{options.PlateauFactor} to {plateau.LearningRate:G3}."));
            }
            Lare2Checkpoint.Save(checkpointPath, model, optimizer, names, new Lare2CheckpointInfo(epoch, fingerprint, plateau.Save(), best, bestEpoch));
            observer.OnEpoch(epoch, lossSum / images, validation.Metrics, plateau.LearningRate, isBest);
        }
        observer.OnProgress(1, TrainingPhase.Done);
        return new Lare2TrainResult(bestEpoch, best ?? double.NaN, plateau.LearningRate, epoch, bestPath, checkpointPath, resumedFrom,
            trainLoader.Skipped.Count + validationLoader.Skipped.Count);
    }

    /// <summary>One optimisation step on <paramref name="batch"/>; its phases are marked in <paramref name="profile"/>.</summary>
    internal static double Step(Lare2Classifier model, Adam optimizer, Lare2Batch batch, Device device, double clip, StepProfile profile)
    {
        float value;
        using (var scope = NewDisposeScope())
        {
            var images = batch.Images.to(device);
            var maps = batch.Maps.to(device);
            var labels = batch.Labels.to(device);
            profile.Mark(StepPhase.HostToTensor);
            var logits = model.forward(images, maps);
            profile.Mark(StepPhase.Forward);
            var loss = nn.functional.cross_entropy(logits, labels);
            profile.Mark(StepPhase.Loss);
            value = TrainingLoop.Optimise(loss, optimizer, profile, clip > 0 ? () => nn.utils.clip_grad_norm_(model.parameters(), clip) : null);
        }
        profile.Mark(StepPhase.Disposal);
        return value;
    }

    /// <summary>Scores the validation loader in eval mode; metrics at P(fake) &gt; 0.5 plus AUC and best-threshold accuracy.</summary>
    private static Lare2Validation Validate(Lare2Classifier model, Lare2Loader loader, int epoch, Device device, CancellationToken ct)
    {
        model.eval();
        var labels = new List<int>();
        var scores = new List<double>();
        using (no_grad())
        {
            foreach (var batch in loader.Epoch(epoch, ct))
            {
                TorchThreads.Ensure();
                using (batch)
                using (NewDisposeScope())
                {
                    var logits = model.forward(batch.Images.to(device), batch.Maps.to(device));
                    scores.AddRange(Lare2Classifier.Score(logits).to(ScalarType.Float64).cpu().data<double>().ToArray());
                    labels.AddRange(batch.Labels.data<long>().ToArray().Select(v => (int)v));
                }
            }
        }
        var (report, metrics) = TrainingLoop.Score(labels, scores, threshold: 0.5, epoch, loader.Skipped.Count);
        return new Lare2Validation(metrics, report.Auc, report.BestAcc);
    }

    /// <summary>
    /// Draws the initial weights from the trainer's own generator with each part's own rule (PyTorch's default
    /// U(±1/√fan_in) for convs and linears and their biases; CLIP's N(0, embed_dim^-½) for the attention-pool projections;
    /// xavier-uniform and zero bias for EGRE's attention; randn/√d positional embeddings; norms as built), so the start does
    /// not depend on torch's global generator. Then loads <see cref="Lare2TrainOptions.InitWeights"/> when given.
    /// </summary>
    internal static void Initialise(Lare2Classifier model, Lare2TrainOptions options, ITrainingObserver observer)
    {
        using var rng = new Generator(Seeds.Derive(options.Seed, InitStream));
        using var _ = no_grad();
        var handled = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (moduleName, module) in model.named_modules())
        {
            string Full(string p) => moduleName.Length == 0 ? p : $"{moduleName}.{p}";
            switch (module)
            {
                case Linear linear:
                {
                    var inFeatures = linear.weight!.shape[1];
                    if (moduleName.StartsWith("attn_pool.attention.", StringComparison.Ordinal))
                    {
                        var bound = Math.Sqrt(6.0 / (inFeatures + linear.weight.shape[0]));
                        linear.weight.uniform_(-bound, bound, rng);
                        linear.bias?.zero_();
                    }
                    else if (moduleName.StartsWith(Lare2Classifier.BackbonePrefix + "attnpool.", StringComparison.Ordinal))
                    {
                        linear.weight.normal_(0, Math.Pow(inFeatures, -0.5), rng);
                        linear.bias?.uniform_(-1 / Math.Sqrt(inFeatures), 1 / Math.Sqrt(inFeatures), rng);
                    }
                    else
                    {
                        var bound = 1 / Math.Sqrt(inFeatures);
                        linear.weight.uniform_(-bound, bound, rng);
                        linear.bias?.uniform_(-bound, bound, rng);
                    }
                    handled.Add(Full("weight"));
                    if (linear.bias is not null) handled.Add(Full("bias"));
                    break;
                }
                case Conv2d conv:
                {
                    var shape = conv.weight!.shape;
                    var bound = 1 / Math.Sqrt(shape[1] * shape[2] * shape[3]);
                    conv.weight.uniform_(-bound, bound, rng);
                    conv.bias?.uniform_(-bound, bound, rng);
                    handled.Add(Full("weight"));
                    if (conv.bias is not null) handled.Add(Full("bias"));
                    break;
                }
                case KeptAliveBatchNorm2d or LayerNorm:
                    // Built deterministically (ones, zeros, CLIP's zero bn3 weights).
                    foreach (var (p, _) in module.named_parameters(recurse: false)) handled.Add(Full(p));
                    break;
            }
            foreach (var (p, parameter) in module.named_parameters(recurse: false))
                if (p == "positional_embedding")
                {
                    parameter.normal_(0, 1 / Math.Sqrt(parameter.shape[1]), rng);
                    handled.Add(Full(p));
                }
        }
        var missed = model.named_parameters().Select(p => p.name).Where(n => !handled.Contains(n)).ToList();
        if (missed.Count > 0)
            throw new InvalidOperationException($"Lare2Trainer.Initialise has no rule for: {string.Join(", ", missed)}.");

        if (options.InitWeights is { } path) LoadInitWeights(model, path, observer);
    }

    private static void LoadInitWeights(Lare2Classifier model, string path, ITrainingObserver observer)
    {
        using var weights = WeightsFile.Load(path, upcastHalf: true);
        foreach (var name in weights.Names.Where(n => n.StartsWith("module.", StringComparison.Ordinal)).ToList())
            if (weights.Remove(name, out var t)) weights.Add(name["module.".Length..], t);
        if (weights.Names.Any(n => n.StartsWith(Lare2Classifier.BackbonePrefix, StringComparison.Ordinal)))
        {
            foreach (var name in weights.Names.Where(Lare2Classifier.IsTextTower).ToList())
                if (weights.Remove(name, out var t)) t.Dispose();
            try { StateDictLoader.Load(model, weights, strict: true); }
            catch (WeightsMismatchException e) { throw new InvalidDataException($"{path}: the LaRE² weights do not fit the network: {e.Report.Describe()}", e); }
            observer.OnLog($"Initialised every tensor from the LaRE² checkpoint {path}.");
            return;
        }
        using var visual = new StateDict();
        foreach (var name in weights.Names.Where(n => n.StartsWith("visual.", StringComparison.Ordinal)).ToList())
            if (weights.Remove(name, out var t)) visual.Add(name["visual.".Length..], t);
        if (visual.Count == 0)
            throw new InvalidDataException($"{path}: neither a LaRE² checkpoint (clip_model.visual.*) nor CLIP weights (visual.*); keys start with: {string.Join(", ", weights.Names.Take(5))}");
        try { StateDictLoader.Load(model.Backbone, visual, strict: true); }
        catch (WeightsMismatchException e) { throw new InvalidDataException($"{path}: the CLIP image tower does not fit the backbone: {e.Report.Describe()}", e); }
        observer.OnLog($"Initialised the CLIP image tower from {path}; EGRE and the head start fresh.");
    }

    private static int ReportSkips(ITrainingObserver observer, Lare2Loader train, Lare2Loader validation, int reported) =>
        TrainingLoop.ReportSkips(observer, train.Skipped, validation.Skipped, reported, "draw(s) with an unreadable image or LaRE map");
}
