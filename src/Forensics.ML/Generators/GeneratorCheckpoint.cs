using System.Globalization;
using Forensics.ML.Training;
using Forensics.ML.Weights;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Forensics.ML.Generators;

/// <summary>One network of a training run with its optimiser, stored under <see cref="Prefix"/> in a checkpoint.</summary>
/// <param name="Prefix">Key prefix in the checkpoint ("vae/", "unet/", "g/", "d/").</param>
/// <param name="Model">The network.</param>
/// <param name="Optimizer">Its Adam optimiser.</param>
/// <param name="ParameterNames">The parameter names in the optimiser's order.</param>
public sealed record TrainedPart(string Prefix, nn.Module Model, Adam Optimizer, IReadOnlyList<string> ParameterNames);

/// <summary>
/// The resumable state of a generator training run in one safetensors file (checkpoint.safetensors in the output
/// folder): for every <see cref="TrainedPart"/> its state dict and Adam moments (the layout of
/// <see cref="TrainingCheckpoint"/>, under the part's prefix), plus the steps done, the options fingerprint and the
/// loss history as metadata. Per-step randomness is derived from (seed, step), so no generator state is needed.
/// </summary>
public static class GeneratorCheckpoint
{
    /// <summary>The checkpoint's file name in the output folder.</summary>
    public const string FileName = "checkpoint.safetensors";

    /// <summary>The format tag in the metadata.</summary>
    public const string Format = "forensics-generator-checkpoint/1";

    /// <summary>Writes the checkpoint atomically.</summary>
    public static void Save(string path, IReadOnlyList<TrainedPart> parts, int step, string fingerprint, IReadOnlyList<double> losses)
    {
        using var scope = NewDisposeScope();
        var entries = new List<(string, Tensor)>();
        foreach (var part in parts)
            foreach (var (name, t) in TrainingCheckpoint.ModelAndAdamEntries(part.Model, part.Optimizer, part.ParameterNames))
                entries.Add((part.Prefix + name, t));
        var metadata = new Dictionary<string, string>
        {
            ["format"] = Format,
            ["step"] = step.ToString(CultureInfo.InvariantCulture),
            ["options"] = fingerprint,
            ["losses"] = string.Join(",", losses.Select(l => l.ToString("R", CultureInfo.InvariantCulture))),
        };
        TrainingCheckpoint.WriteAtomically(path, temp => SafeTensors.Save(temp, entries, metadata));
    }

    /// <summary>
    /// Restores every part from <paramref name="path"/> and returns the steps done and the loss history. The options
    /// fingerprint must equal <paramref name="fingerprint"/>: a resume with other options fails naming both.
    /// </summary>
    public static (int Step, List<double> Losses) Load(string path, IReadOnlyList<TrainedPart> parts, string fingerprint)
    {
        using var all = SafeTensors.Load(path, upcastHalf: false);
        var m = all.Metadata;
        TrainingCheckpoint.CheckFormat(path, m, Format, "generator training checkpoint");
        var found = TrainingCheckpoint.Field(path, m, "options");
        if (found != fingerprint)
            throw new InvalidDataException(
                $"{path} was written with other training options; delete it or the output folder to start afresh.\n  checkpoint: {found}\n  now:        {fingerprint}");
        foreach (var part in parts)
        {
            using var sub = new StateDict();
            foreach (var name in all.Names.Where(n => n.StartsWith(part.Prefix, StringComparison.Ordinal)).ToList())
                if (all.Remove(name, out var t)) sub.Add(name[part.Prefix.Length..], t);
            TrainingCheckpoint.LoadModelAndAdam(sub, path, part.Model, part.Optimizer, part.ParameterNames);
        }
        var step = int.Parse(TrainingCheckpoint.Field(path, m, "step"), CultureInfo.InvariantCulture);
        var text = TrainingCheckpoint.Field(path, m, "losses");
        var losses = text.Length == 0 ? [] : text.Split(',').Select(s => double.Parse(s, CultureInfo.InvariantCulture)).ToList();
        return (step, losses);
    }

    /// <summary>A part for <paramref name="model"/> with a fresh Adam over all its parameters.</summary>
    public static TrainedPart Part(string prefix, nn.Module model, double lr, double beta1, double beta2)
    {
        var named = model.named_parameters().ToList();
        var adam = new KeptAliveAdam(named.Select(p => p.parameter), lr: lr, beta1: beta1, beta2: beta2);
        return new TrainedPart(prefix, model, adam, named.Select(p => p.name).ToList());
    }
}

/// <summary>What a training command did.</summary>
/// <param name="Output">The output folder (full path).</param>
/// <param name="StartStep">Steps already done when this run started (0, or the checkpoint's step on resume).</param>
/// <param name="Step">Steps done when this run stopped.</param>
/// <param name="Finished">Whether all steps are done and the final folder was written.</param>
/// <param name="Losses">The training loss of every step done so far (resumed history included).</param>
/// <param name="Seconds">Wall time of this run's steps.</param>
public sealed record GeneratorTrainingResult(string Output, int StartStep, int Step, bool Finished, IReadOnlyList<double> Losses, double Seconds)
{
    /// <summary>Steps per second of this run (0 when it made none).</summary>
    public double StepsPerSecond => Step > StartStep && Seconds > 0 ? (Step - StartStep) / Seconds : 0;
}
