using Forensics.ML.Data;
using Forensics.ML.Detectors;
using Forensics.ML.Runtime;
using Forensics.ML.Training;
using Portal.Runs;
using Portal.Zoo;

namespace Portal.Experiments;

// The TorchScript half of the "train" job: a TorchScript detector of the zoo (or a .pt under an allowed root) fine-tuned
// with res50nodown's recipe by TorchScriptTrainer. Progress, curves, resume, the weights artifact and the zoo entry are
// TrainingJob's; the trained module joins the zoo as a torchscript detector with its card beside it.
public sealed partial class TrainingJob
{
    /// <summary>The architecture of a TorchScript detector (<see cref="DetectorArchitectures.TorchScript"/>).</summary>
    public const string TorchScriptArch = "torchscript";

    /// <summary>
    /// What the TorchScript form posts: res50nodown's recipe (<see cref="Config"/>'s fields, in its JSON names) without the
    /// network's shape (<see cref="NetworkShape"/>): the TorchScript detector brings its own. Arch is <see cref="TorchScriptArch"/>.
    /// </summary>
    public sealed record TorchScriptConfig(long TrainDatasetId, long? ValDatasetId, string Arch, string? Init, long? InitWeightsId, string? Card,
        string Mode, int Epochs, int PairsPerBatch, double LearningRate, long Seed, int Crop, string Augment);

    /// <summary>What a checked torchscript config trains: the module, its card (null: the one beside it, or the default) and what the check found.</summary>
    sealed record TorchScriptPlan(string Model, string? Card, TorchScriptTrainability Found);

    /// <summary>The settings that shape a res50nodown; a TorchScript detector brings its own network.</summary>
    static readonly string[] NetworkShape = ["width", "layers"];

    /// <summary>The module is loaded on the CPU under its card and checked as the trainer will (refusals name init or card).</summary>
    TorchScriptPlan CheckTorchScript(Config c, HashSet<string> given, string? init, TrainOptions trainOptions)
    {
        foreach (var field in NetworkShape)
            if (given.Contains(field))
                throw new FieldException(field, $"{field} is a res50nodown setting; a TorchScript detector brings its own network");
        var initField = c.InitWeightsId is null ? "init" : "initWeightsId";
        if (init is null)
            throw new FieldException("initWeightsId", "arch torchscript fine-tunes a TorchScript detector: give initWeightsId (a torchscript detector " +
                                                      "of the zoo) or init (its .pt under an allowed root)");
        var card = inputs.DetectorCard(c.Card, TorchScriptArch);
        TorchRuntime.EnsureLoaded(options.Value.Torch);
        try { return new TorchScriptPlan(init, card, TorchScriptTrainer.Check(init, card, trainOptions.BatchSize)); }
        catch (DetectorCardException e) { throw new FieldException("card", e.Message); }
        catch (Exception e) when (e is InvalidDataException or DetectorCheckpointException) { throw new FieldException(initField, e.Message); }
    }

    async Task<(string BestPath, string Card)> TrainTorchScriptAsync(RunContext context, Checked k, TorchScriptPlan plan, TrainingData data, Observer observer)
    {
        var result = TorchScriptTrainer.Train(k.Res50!, plan.Model, plan.Card, data, context.WorkDir, observer, context.CancellationToken);
        await context.LogAsync($"done after {result.EpochsRun} epoch(s) ({result.Reason}): best validation balanced accuracy " +
                               $"{result.BestBalancedAcc:F4} at epoch {result.BestEpoch}; {result.SkippedImages} unreadable image(s) skipped");
        var cardFile = TorchScriptTrainer.CardPathFor(result.BestWeightsPath);
        if (File.Exists(cardFile)) await context.ArtifactAsync("card", cardFile);
        var c = k.Config;
        var card = $"TorchScript detector {Path.GetFileName(plan.Model)} (sha256 {DetectorCheckpoint.Sha256(plan.Model)}) fine-tuned by run {context.RunId}, " +
                   $"mode {c.Mode}, on dataset '{k.Train.Name}' (content {k.Train.ContentHash}), seed {c.Seed}, lr {c.LearningRate}, " +
                   $"{c.PairsPerBatch} pairs per batch, crop {c.Crop}, augmentation {c.Augment}; {plan.Found.Describe()}; card {Path.GetFileName(cardFile)} beside the weights.";
        return (result.BestWeightsPath, card);
    }
}
