using System.Globalization;
using Forensics.ML.Evaluation;
using Forensics.ML.Lare2;
using Forensics.ML.Models.Clip;
using Forensics.ML.Runtime;
using Forensics.ML.Training;
using Forensics.ML.Weights;
using Microsoft.EntityFrameworkCore;
using Portal.Store;
using Portal.Runs;
using Portal.Datasets;
using Portal.Zoo;

namespace Portal.Experiments;

// The LaRE² half of the "train" job: its config checks and its call into Lare2Trainer. Progress, curves, resume,
// the weights artifact and the zoo entry are TrainingJob's, shared with res50nodown.
public sealed partial class TrainingJob
{
    /// <summary>
    /// What the LaRE² form posts: the <see cref="Config"/> fields a lare2 run reads, in its JSON names, and none of
    /// res50nodown's shape (<see cref="Res50Only"/>), which lare2 refuses. Arch is <see cref="Lare2Evaluator.Architecture"/>.
    /// </summary>
    public sealed record Lare2Config(long TrainDatasetId, long? ValDatasetId, string Arch, long? LareRunId, long? ValLareRunId,
        string? Init, long? InitWeightsId, string Ablation, int Epochs, int PairsPerBatch, double LearningRate, long Seed);

    /// <summary>What a checked lare2 config trains: the trainer's options and the LaRE runs whose maps it reads.</summary>
    sealed record Lare2Plan(Lare2TrainOptions Options, long LareRunId, string Maps, long ValLareRunId, string? ValidationMaps);

    /// <summary>The settings that only shape a res50nodown; a lare2 config that sets one is refused, naming it.</summary>
    static readonly string[] Res50Only = ["mode", "width", "layers", "crop", "augment", "augmentation"];

    async Task<Lare2Plan> CheckLare2Async(Config c, HashSet<string> given, Dataset train, Dataset val, string? init)
    {
        foreach (var field in Res50Only)
            if (given.Contains(field) && !(field == "mode" && string.Equals(c.Mode?.Trim(), "independent", StringComparison.OrdinalIgnoreCase)))
                throw new FieldException(field, field == "mode"
                    ? "lare2 trains on reals and fakes as they are (mode independent); synced and unsynced pairs are res50nodown's"
                    : $"{field} is a res50nodown setting; lare2 takes its network's shape and crop from the CLIP tower it starts from (init)");
        var initField = c.InitWeightsId is null ? "init" : "initWeightsId";
        if (init is null)
            throw new FieldException("init", "lare2 fine-tunes a CLIP ResNet image tower: give init (its weights, e.g. OpenAI's RN50.pt, " +
                                             "visual.* names; or a LaRE² checkpoint) or initWeightsId (a clip model of the zoo)");
        var ablation = ParseAblation(c.Ablation);
        if (c.LareRunId is not { } lareRun)
            throw new FieldException("lareRunId", $"arch lare2 needs lareRunId: a finished LaRE extraction run of dataset '{train.Name}'");
        var maps = await inputs.LareMapsAsync(lareRun, train, "lareRunId");
        if (c.ValLareRunId is null && val.Id != train.Id)
            throw new FieldException("valLareRunId", $"the validation dataset '{val.Name}' is not the training dataset: give valLareRunId, a LaRE run of it");
        var valRun = c.ValLareRunId ?? lareRun;
        var valMaps = c.ValLareRunId is { } v ? await inputs.LareMapsAsync(v, val, "valLareRunId") : null;
        if (valRun == lareRun) valMaps = null; // one run holds the maps of both splits

        var defaults = new Lare2TrainOptions();
        var trainOptions = new Lare2TrainOptions
        {
            Model = Lare2ModelOf(init, initField) with { Ablation = ablation },
            LearningRate = c.LearningRate, Seed = unchecked((ulong)c.Seed), InitWeights = init, Device = options.Value.Torch.Device,
            // The authors' batch (48 images) and a finite epoch count unless the config says otherwise: the record's defaults are res50nodown's.
            BatchSize = 2 * (given.Contains("pairsPerBatch") ? c.PairsPerBatch : defaults.BatchSize / 2),
            MaxEpochs = given.Contains("epochs") ? c.Epochs : defaults.MaxEpochs,
        };
        try { trainOptions.Validate(); }
        catch (ArgumentException e) { throw new FieldException(FieldOf(e), e.Message); }
        return new Lare2Plan(trainOptions, lareRun, maps, valRun, valMaps);
    }

    static EgreAblation ParseAblation(string? text) => text?.Trim().ToLowerInvariant() switch
    {
        null or "" or "none" => EgreAblation.None,
        "no-spatial" => EgreAblation.NoSpatial,
        "no-channel" => EgreAblation.NoChannel,
        "zero-lare" => EgreAblation.ZeroLare,
        _ => throw new FieldException("ablation", $"ablation must be none, no-spatial, no-channel or zero-lare, not '{text}'"),
    };
    /// <summary>
    /// The classifier the starting weights make: a CLIP model's tower (visual.*: the shape as CLIP's build_model infers
    /// it, EGRE sized from its layer3) or a whole LaRE² checkpoint (clip_model.visual.*, "module." allowed). The trainer
    /// loads exactly these two forms.
    /// </summary>
    Lare2Options Lare2ModelOf(string path, string field)
    {
        TorchRuntime.EnsureLoaded(options.Value.Torch);
        try
        {
            using var weights = WeightsFile.Load(path, upcastHalf: true);
            foreach (var name in weights.Names.Where(n => n.StartsWith("module.", StringComparison.Ordinal)).ToList())
                if (weights.Remove(name, out var t)) weights.Add(name["module.".Length..], t);
            if (weights.Names.Any(n => n.StartsWith(Lare2Classifier.BackbonePrefix, StringComparison.Ordinal)))
                return Lare2Classifier.InferOptions(weights);
            if (weights.Names.Any(n => n.StartsWith(ClipVisual.Prefix, StringComparison.Ordinal)))
                return Lare2Options.For(ModifiedResNetOptions.InferFrom(weights, ClipVisual.Prefix));
            throw new InvalidDataException("neither CLIP weights (visual.* names) nor a LaRE² checkpoint (clip_model.visual.*); " +
                                           $"its names start with: {string.Join(", ", weights.Names.Take(3))}");
        }
        catch (Exception e) when (e is IOException or InvalidDataException or ArgumentException or NotSupportedException or FormatException)
        {
            throw new FieldException(field, $"'{path}' cannot start a LaRE² training: {e.Message}");
        }
    }

    /// <summary>Runs Lare2Trainer into the run's folder; returns the best weights and the zoo card.</summary>
    async Task<(string BestPath, string Card)> TrainLare2Async(RunContext context, Checked k, Lare2Plan plan, TrainingData data, ITrainingObserver observer)
    {
        var o = plan.Options;
        var lareData = new Lare2TrainingData(data.Train!, data.Validation, plan.Maps) { ValidationLareFolder = plan.ValidationMaps };
        await context.LogAsync($"lare2 on {o.Model.Backbone} (crop {o.CropSize}, ablation {o.Model.Ablation}) from {k.Init}; " +
                               $"maps of LaRE run {plan.LareRunId} (validation: run {plan.ValLareRunId}); batch {o.BatchSize}, lr {o.LearningRate:G3}, {o.MaxEpochs} epoch(s)");
        if (observer is Observer progress) progress.MaxEpochs = o.MaxEpochs;
        var result = Lare2Trainer.Train(o, lareData, context.WorkDir, observer, context.CancellationToken);
        await context.LogAsync($"done after {result.EpochsRun} epoch(s): best validation {o.BestMetric} {result.BestValue:F4} at epoch {result.BestEpoch}; " +
                               $"final lr {result.FinalLearningRate:G3}; {result.SkippedImages} draw(s) with an unreadable image or map skipped");
        var card = $"LaRE² ({o.Model.Backbone}, ablation {o.Model.Ablation}) trained by run {context.RunId} on dataset '{k.Train.Name}' " +
                   $"(content {k.Train.ContentHash}) with the LaRE maps of run {plan.LareRunId}, validated on '{k.Val.Name}' (maps of run {plan.ValLareRunId}); " +
                   $"started from {Path.GetFileName(k.Init)}; seed {o.Seed}, lr {o.LearningRate}, batch {o.BatchSize} images, crop {o.CropSize}; " +
                   $"best by validation {o.BestMetric}. Evaluate it with arch {Lare2Evaluator.Architecture} and a LaRE run of the test dataset.";
        return (result.BestWeightsPath, card);
    }
}
