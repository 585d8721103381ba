using System.Globalization;
using Forensics.ML.Weights;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using Forensics.ML.Training;
using Forensics.ML.Evaluation;
using Forensics.ML.Models;

namespace Forensics.ML.Lare2;

/// <summary>What a LaRE² checkpoint records besides tensors.</summary>
/// <param name="Epoch">Epochs completed.</param>
/// <param name="Fingerprint">The trajectory-defining options; a resume must match.</param>
/// <param name="Plateau">The ReduceLROnPlateau state (<see cref="ReduceLrOnPlateau.Save"/>).</param>
/// <param name="Best">Best value of the best metric so far; null before any.</param>
/// <param name="BestEpoch">Its epoch; 0 before any.</param>
public sealed record Lare2CheckpointInfo(int Epoch, string Fingerprint, IReadOnlyDictionary<string, string> Plateau, double? Best, int BestEpoch);

/// <summary>
/// LaRE²'s resumable state in one safetensors file, as <see cref="TrainingCheckpoint"/> does for the ResNet: the model
/// state dict ("model." + the authors' names), Adam's exp_avg, exp_avg_sq and step per parameter ("adam.&lt;name&gt;.*"),
/// and the epoch, scheduler and best score as metadata (doubles as round-trip strings). Written atomically.
/// </summary>
public static class Lare2Checkpoint
{
    /// <summary>The format tag in the metadata.</summary>
    public const string Format = "forensics-lare2-checkpoint/1";

    /// <summary>Writes the checkpoint atomically.</summary>
    public static void Save(string path, Lare2Classifier model, Adam optimizer, IReadOnlyList<string> parameterNames, Lare2CheckpointInfo info)
    {
        using var scope = NewDisposeScope();
        var entries = TrainingCheckpoint.ModelAndAdamEntries(model, optimizer, parameterNames);
        var metadata = new Dictionary<string, string>(info.Plateau)
        {
            ["format"] = Format,
            ["epoch"] = info.Epoch.ToString(CultureInfo.InvariantCulture),
            ["options"] = info.Fingerprint,
            ["best"] = info.Best?.ToString("R", CultureInfo.InvariantCulture) ?? "",
            ["best_epoch"] = info.BestEpoch.ToString(CultureInfo.InvariantCulture),
        };
        TrainingCheckpoint.WriteAtomically(path, temp => SafeTensors.Save(temp, entries, metadata));
    }

    /// <summary>Reads the metadata only.</summary>
    /// <exception cref="InvalidDataException">Not a LaRE² training checkpoint; the message names the file.</exception>
    public static Lare2CheckpointInfo ReadInfo(string path) => Info(path, SafeTensors.ReadHeader(path).Metadata);

    /// <summary>Restores model and Adam state from <paramref name="path"/>; returns its metadata.</summary>
    /// <exception cref="InvalidDataException">Not a checkpoint of this format, or its tensors do not fit (named).</exception>
    public static Lare2CheckpointInfo Load(string path, Lare2Classifier model, Adam optimizer, IReadOnlyList<string> parameterNames)
    {
        using var all = SafeTensors.Load(path, upcastHalf: false);
        var info = Info(path, all.Metadata);
        TrainingCheckpoint.LoadModelAndAdam(all, path, model, optimizer, parameterNames);
        return info;
    }

    private static Lare2CheckpointInfo Info(string path, IReadOnlyDictionary<string, string> m)
    {
        string Field(string key) => TrainingCheckpoint.Field(path, m, key);
        TrainingCheckpoint.CheckFormat(path, m, Format, "LaRE² training checkpoint");
        try
        {
            var best = Field("best");
            return new Lare2CheckpointInfo(int.Parse(Field("epoch"), CultureInfo.InvariantCulture), Field("options"),
                m.Where(p => p.Key.StartsWith("plateau.", StringComparison.Ordinal)).ToDictionary(p => p.Key, p => p.Value),
                best.Length == 0 ? null : double.Parse(best, CultureInfo.InvariantCulture),
                int.Parse(Field("best_epoch"), CultureInfo.InvariantCulture));
        }
        catch (FormatException e)
        {
            throw new InvalidDataException($"{path}: unreadable checkpoint metadata: {e.Message}", e);
        }
    }
}
