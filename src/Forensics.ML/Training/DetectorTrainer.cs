using System.Globalization;
using Forensics.ML.Data;
using Forensics.ML.Models;
using Forensics.ML.Runtime;
using Forensics.ML.Weights;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Forensics.ML.Training;

/// <summary>
/// Trains the res50nodown detector with the aligned-dataset recipe: BCE-with-logits, Adam, one validation per epoch
/// (balanced accuracy at logit &gt; 0), the plateau rule of <see cref="PlateauSchedule"/>, best weights kept.
/// Every epoch ends with a checkpoint; calling <see cref="Train"/> again on the same output folder resumes from it and
/// reaches bit-identical weights to an uninterrupted run (same thread count). Nothing depends on torch's global random
/// generator, which other threads of the process may share: weights are initialised and dropout masks drawn from the
/// trainer's own generators, batches and augmentations follow from (seed, epoch). The epoch loop (<see cref="Run"/>) is
/// shared with <see cref="TorchScriptTrainer"/>, which trains a TorchScript detector by the same recipe.
/// </summary>
public static class DetectorTrainer
{
    // Seed streams of the trainer's own generators (the samplers use theirs inside Data).
    private const long InitStream = 101, DropoutStream = 102;

    /// <summary>
    /// Trains into <paramref name="outputDir"/> (created if needed): best.safetensors (the best epoch's model state
    /// dict, torchvision key names) and checkpoint.safetensors (the last epoch's full state). When the folder already
    /// holds a checkpoint of the same options, training resumes after its epoch.
    /// </summary>
    /// <exception cref="ArgumentException">Invalid options or data (the message names the field).</exception>
    /// <exception cref="InvalidDataException">The existing checkpoint is unreadable or was made with other options.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="ct"/> was cancelled (checked between steps); the last checkpoint stays.</exception>
    public static TrainResult Train(TrainOptions options, TrainingData data, string outputDir, ITrainingObserver? observer = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(data);
        ArgumentException.ThrowIfNullOrWhiteSpace(outputDir);
        options.Validate();
        var planner = Planner(options, data);
        CheckValidation(data.Validation);
        observer ??= TrainingLoop.NullObserver.Instance;
        var device = TrainingLoop.LoadTorch(options.Device);

        Directory.CreateDirectory(outputDir);
        var checkpointPath = Path.Combine(outputDir, TrainingCheckpoint.FileName);
        observer.OnProgress(0, TrainingPhase.Setup);

        using var model = new ResNet(options.Arch);
        var fc = model.named_children().Single(c => c.name == "fc").module as Linear
            ?? throw new InvalidOperationException("The ResNet has no Linear 'fc' head.");
        using var dropoutRng = new Generator(Seeds.Derive(options.Seed, DropoutStream));
        var fingerprint = options.Fingerprint();
        CheckpointInfo? resume = File.Exists(checkpointPath) ? TrainingCheckpoint.ReadInfo(checkpointPath) : null;
        TrainingLoop.CheckFingerprint(checkpointPath, resume?.Fingerprint, fingerprint);
        if (resume is null)
        {
            Initialise(model, fc, options, observer);
            SaveInit(Path.Combine(outputDir, TrainingCheckpoint.InitFileName), model);
        }
        model.to(device);
        using var network = new ResNetTrainee(model, fc, dropoutRng, device);
        return Run(options, network, planner, data.Validation, new TrainingSamples(options), outputDir, fingerprint, resume, observer, ct);
    }

    /// <summary>
    /// The epoch loop every trainable network shares once it sits on its device: Adam over its parameters, the resume
    /// from <paramref name="resume"/> (the checkpoint's tensors, schedule and epoch), then per epoch one pass over the
    /// training plan, a validation pass, the plateau rule, the best weights kept and a checkpoint written.
    /// </summary>
    internal static TrainResult Run(TrainOptions options, Trainee network, TrainPlanner planner, ImageSet validation, TrainingSamples samples,
        string outputDir, string fingerprint, CheckpointInfo? resume, ITrainingObserver observer, CancellationToken ct)
    {
        var checkpointPath = Path.Combine(outputDir, TrainingCheckpoint.FileName);
        var bestPath = Path.Combine(outputDir, network.BestFileName);
        var schedule = PlateauSchedule.For(options);
        var resumedFrom = 0;
        StopReason? finished = null;
        var named = network.Parameters;
        var names = named.Select(p => p.Name).ToList();
        using var optimizer = new KeptAliveAdam(named.Select(p => p.Parameter), lr: options.LearningRate,
            beta1: options.Betas.Beta1, beta2: options.Betas.Beta2, weight_decay: 0);
        if (resume is not null)
        {
            resume = TrainingCheckpoint.Load(checkpointPath, network.Module, optimizer, names, network.DropoutRng);
            schedule.Restore(resume.Schedule);
            resumedFrom = resume.Epoch;
            finished = resume.Reason;
            observer.OnLog(FormattableString.Invariant(
                $"Resuming from {checkpointPath}: {resume.Epoch} epoch(s) done, lr {schedule.LearningRate:G3}, best balanced accuracy {schedule.Best:F4} at epoch {schedule.BestEpoch}."));
        }
        TrainingLoop.SetLearningRate(optimizer, schedule.LearningRate);
        if (finished == StopReason.LearningRateFloor || (finished == StopReason.MaxEpochs && resumedFrom >= options.MaxEpochs))
        {
            observer.OnLog($"Training in {outputDir} had already finished ({finished}).");
            observer.OnProgress(1, TrainingPhase.Done);
            return Result(schedule, resumedFrom, finished.Value, bestPath, checkpointPath, resumedFrom, 0);
        }

        var loaderOptions = new LoaderOptions { Workers = options.Workers };
        using var trainLoader = new BatchLoader(planner.Planner, samples.LoadTraining, loaderOptions);
        using var validationLoader = new BatchLoader(ValidationPlanner(options, validation), samples.LoadValidation, loaderOptions);
        var steps = planner.BatchesPerEpoch;
        var reportedSkips = 0;
        var epoch = resumedFrom;
        var reason = StopReason.MaxEpochs;
        while (epoch < options.MaxEpochs)
        {
            ct.ThrowIfCancellationRequested();
            epoch++;
            network.StartEpoch(epoch);
            var (lossSum, images) = TrainingLoop.TrainEpoch(trainLoader.Epoch(epoch, ct), b => b.Count,
                (batch, _, profile) => Step(network, optimizer, batch, profile),
                observer, epoch, steps, options.MaxEpochs, schedule.LearningRate, ct);
            reportedSkips = ReportSkips(observer, trainLoader, validationLoader, reportedSkips);
            if (images == 0)
                throw new InvalidDataException($"Epoch {epoch}: no training image could be loaded ({trainLoader.Skipped.Count} skipped); see the skipped files reported.");

            ct.ThrowIfCancellationRequested();
            observer.OnProgress(Math.Min(1, (double)epoch / options.MaxEpochs), TrainingPhase.Validate);
            var metrics = Validate(network, validationLoader, epoch, ct);
            reportedSkips = ReportSkips(observer, trainLoader, validationLoader, reportedSkips);
            var decision = schedule.Observe(epoch, metrics.BalancedAcc);
            var isBest = decision == PlateauDecision.Improved;
            if (isBest) network.SaveBest(bestPath, epoch, metrics);
            if (decision == PlateauDecision.LearningRateDropped)
            {
                TrainingLoop.SetLearningRate(optimizer, schedule.LearningRate);
                observer.OnLog(FormattableString.Invariant($"Epoch {epoch}: no improvement for {options.Patience} epochs; learning rate divided by 10 to {schedule.LearningRate:G3}."));
            }
            StopReason? end = decision == PlateauDecision.Stop ? StopReason.LearningRateFloor : epoch >= options.MaxEpochs ? StopReason.MaxEpochs : null;
            TrainingCheckpoint.Save(checkpointPath, network.Module, optimizer, names, network.DropoutRng,
                new CheckpointInfo(epoch, schedule.Save(), fingerprint, end));
            observer.OnEpoch(epoch, lossSum / images, metrics, schedule.LearningRate, isBest);
            if (end == StopReason.LearningRateFloor)
            {
                reason = StopReason.LearningRateFloor;
                observer.OnLog(FormattableString.Invariant(
                    $"Epoch {epoch}: no improvement for {options.Patience} epochs at lr {schedule.LearningRate:G3}; a further drop would go below {options.MinLearningRate:G3}: early stop."));
                break;
            }
        }
        observer.OnProgress(1, TrainingPhase.Done);
        var skipped = trainLoader.Skipped.Count + validationLoader.Skipped.Count;
        return Result(schedule, epoch, reason, bestPath, checkpointPath, resumedFrom, skipped);
    }

    /// <summary>res50nodown (or any of our ResNets) as a <see cref="Trainee"/>: dropout from the trainer's own generator, best weights as safetensors.</summary>
    internal sealed class ResNetTrainee(ResNet model, Linear fc, Generator dropoutRng, Device device) : Trainee
    {
        public override nn.Module Module => model;
        public override IReadOnlyList<(string Name, Parameter Parameter)> Parameters { get; } = model.named_parameters().ToList();
        public override Generator? DropoutRng => dropoutRng;
        public override Device Device => device;
        public override string BestFileName => TrainingCheckpoint.BestFileName;
        public override void StartEpoch(int epoch) => model.train();
        public override void Eval() => model.eval();
        public override Tensor TrainingLogits(Tensor images) => DetectorTrainer.TrainingLogits(model, fc, dropoutRng, images);
        public override Tensor Logits(Tensor images) => model.forward(images).squeeze(1);
        public override void SaveBest(string path, int epoch, ValidationMetrics metrics) => DetectorTrainer.SaveBest(path, model, epoch, metrics);
        public override void Dispose() { }
    }

    /// <summary>
    /// Logits [B] of a training batch with dropout drawn from <paramref name="dropoutRng"/> (not torch's global generator):
    /// features → inverted dropout (keep 1 - p, scale 1/(1 - p), as nn.Dropout) → fc.
    /// </summary>
    internal static Tensor TrainingLogits(ResNet model, Linear fc, Generator dropoutRng, Tensor images)
    {
        using var features = model.Features(images);
        var p = model.Options.Dropout;
        if (p <= 0) return fc.forward(features).squeeze(1);
        // The mask is drawn on the CPU so one generator serves any device.
        using var mask = empty(features.shape, ScalarType.Float32).bernoulli_(1 - p, dropoutRng).DivInPlace(1 - p);
        using var onDevice = mask.to(features.device);
        using var dropped = features.mul(onDevice);
        using var logits = fc.forward(dropped);
        return logits.squeeze(1);
    }

    /// <summary>One optimisation step on <paramref name="batch"/>; its phases are marked in <paramref name="profile"/>.</summary>
    internal static double Step(Trainee network, Adam optimizer, Batch batch, StepProfile profile)
    {
        float value;
        using (var scope = NewDisposeScope())
        {
            var x = batch.Images.to(network.Device);
            var y = batch.Labels.to(network.Device);
            profile.Mark(StepPhase.HostToTensor);
            var logits = network.TrainingLogits(x);
            profile.Mark(StepPhase.Forward);
            var loss = nn.functional.binary_cross_entropy_with_logits(logits, y);
            profile.Mark(StepPhase.Loss);
            value = TrainingLoop.Optimise(loss, optimizer, profile);
        }
        profile.Mark(StepPhase.Disposal);
        return value;
    }

    private static ValidationMetrics Validate(Trainee network, BatchLoader loader, int epoch, CancellationToken ct)
    {
        network.Eval();
        var labels = new List<int>();
        var logits = new List<double>();
        using (no_grad())
        {
            foreach (var batch in loader.Epoch(epoch, ct))
            {
                TorchThreads.Ensure();
                using (batch)
                using (var scope = NewDisposeScope())
                {
                    var output = network.Logits(batch.Images.to(network.Device)).to(CPU).to_type(ScalarType.Float32);
                    logits.AddRange(output.data<float>().ToArray().Select(v => (double)v));
                    labels.AddRange(batch.Labels.data<float>().ToArray().Select(v => (int)v));
                }
            }
        }
        // Logits as scores with threshold 0: "fake when logit > 0" equals sigmoid(logit) > 0.5 without rounding at tiny logits; AP only needs the order.
        return TrainingLoop.Score(labels, logits, threshold: 0, epoch, loader.Skipped.Count).Metrics;
    }

    private static void SaveInit(string path, ResNet model) =>
        TrainingCheckpoint.WriteAtomically(path, temp => SafeTensors.Save(temp, model.state_dict().Select(p => (p.Key, p.Value)),
            new Dictionary<string, string> { ["arch"] = "res50nodown", ["epoch"] = "0" }));

    internal static void SaveBest(string path, ResNet model, int epoch, ValidationMetrics metrics)
    {
        var metadata = new Dictionary<string, string>
        {
            ["arch"] = "res50nodown",
            ["epoch"] = epoch.ToString(CultureInfo.InvariantCulture),
            ["val_balanced_acc"] = metrics.BalancedAcc.ToString("R", CultureInfo.InvariantCulture),
        };
        TrainingCheckpoint.WriteAtomically(path, temp => SafeTensors.Save(temp, model.state_dict().Select(p => (p.Key, p.Value)), metadata));
    }

    // Weights from the trainer's own generator: kaiming-normal (fan_out, relu) convs as torchvision, fc ~ N(0, FcInitStd)
    // with PyTorch's default uniform bias; or pretrained weights for everything but fc. Tensor.normal_/uniform_ are used
    // because TorchSharp's nn.init functions accept a generator but ignore it.
    internal static void Initialise(ResNet model, Linear fc, TrainOptions options, ITrainingObserver observer)
    {
        using var rng = new Generator(Seeds.Derive(options.Seed, InitStream));
        using var _ = no_grad();
        if (options.InitWeights is { } path)
        {
            using var weights = WeightsFile.Load(path);
            foreach (var name in weights.Names.Where(n => n.StartsWith("fc.", StringComparison.Ordinal)).ToList())
                if (weights.Remove(name, out var head)) head.Dispose();
            var report = StateDictLoader.Load(model, weights, strict: false);
            var missing = report.Missing.Where(n => !n.StartsWith("fc.", StringComparison.Ordinal)).ToList();
            if (missing.Count > 0 || report.Unexpected.Count > 0 || report.Mismatched.Count > 0)
                throw new InvalidDataException($"{path}: the initial weights do not fit the network (all keys but fc.* must match): {report.Describe()}");
            observer.OnLog($"Initialised {report.Loaded} tensors from {path}; fc re-initialised.");
        }
        else
        {
            foreach (var module in model.modules())
                if (module is Conv2d conv)
                {
                    var shape = conv.weight!.shape;
                    var fanOut = shape[0] * shape[2] * shape[3];
                    conv.weight.normal_(0, Math.Sqrt(2.0 / fanOut), rng);
                }
        }
        var fanIn = fc.weight!.shape[1];
        var bound = 1 / Math.Sqrt(fanIn);
        if (options.Arch.FcInitStd is { } std) fc.weight.normal_(0, std, rng);
        else fc.weight.uniform_(-bound, bound, rng);
        fc.bias?.uniform_(-bound, bound, rng);
    }

    internal static int ReportSkips(ITrainingObserver observer, BatchLoader train, BatchLoader validation, int reported) =>
        TrainingLoop.ReportSkips(observer, train.Skipped, validation.Skipped, reported, "unreadable image draw(s)");

    internal static TrainResult Result(PlateauSchedule schedule, int epochs, StopReason reason, string bestPath, string checkpointPath, int resumedFrom, int skipped) =>
        new(schedule.BestEpoch, schedule.Best ?? double.NaN, schedule.LearningRate, epochs, reason, bestPath, checkpointPath, resumedFrom, skipped);

    internal sealed record TrainPlanner(IBatchPlanner Planner, int BatchesPerEpoch);

    internal static TrainPlanner Planner(TrainOptions options, TrainingData data)
    {
        if ((data.Pairs is null) == (data.Train is null))
            throw new ArgumentException("TrainingData needs exactly one of Pairs (paired training) and Train (unpaired).", nameof(data));
        if (data.Pairs is { } pairs)
        {
            var sampler = new PairSampler(pairs, new PairSamplerOptions { PairsPerBatch = options.PairsPerBatch, Mode = options.Mode, Seed = options.Seed });
            return new TrainPlanner(sampler, sampler.BatchesPerEpoch);
        }
        if (options.Mode != PairMode.Independent)
            throw new ArgumentException($"{options.Mode} training needs (real, reconstruction) pairs: give TrainingData.Pairs, or use Independent mode.", nameof(data));
        var balanced = new BalancedSampler(data.Train!, new BalancedSamplerOptions { BatchSize = options.BatchSize, Seed = options.Seed });
        return new TrainPlanner(balanced, balanced.BatchesPerEpoch);
    }

    internal static void CheckValidation(ImageSet? validation)
    {
        if (validation is null) throw new ArgumentException("TrainingData.Validation is required.");
        TrainingLoop.CheckValidationClasses(validation);
    }

    internal static IBatchPlanner ValidationPlanner(TrainOptions options, ImageSet validation)
    {
        // Centre crops all have one size; full images are grouped by their scanned size (one per batch when unknown).
        if (options.Validation == ValidationInput.CentreCrop)
            return new ChunkPlanner(validation, options.ValidationBatchSize);
        var sizesKnown = validation.All(s => s.Width > 0 && s.Height > 0);
        return sizesKnown
            ? new EvalPlanner(validation, EvalBatching.BySize, options.ValidationBatchSize)
            : new EvalPlanner(validation, EvalBatching.Single);
    }

    // Every validation image once, in set order, in chunks: EvalPlanner's single-image batches regrouped.
    private sealed class ChunkPlanner(ImageSet set, int size) : IBatchPlanner
    {
        private readonly EvalPlanner single = new(set, EvalBatching.Single);

        public IReadOnlyList<PlannedBatch> Plan(int epoch) =>
            single.Plan(epoch).SelectMany(b => b.Samples).Chunk(size)
                .Select((samples, number) => new PlannedBatch(epoch, number, samples)).ToList();
    }
}
