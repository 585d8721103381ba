using System.Globalization;
using Forensics.ML.Models;
using Forensics.ML.Weights;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Forensics.ML.Training;

/// <summary>What a checkpoint records besides tensors.</summary>
/// <param name="Epoch">Epochs completed.</param>
/// <param name="Schedule">The plateau schedule (lr, best score and epoch, patience counter, drops).</param>
/// <param name="Fingerprint">The trajectory-defining options (<see cref="TrainOptions"/>); a resume must match it.</param>
/// <param name="Reason">Set when training ended.</param>
public sealed record CheckpointInfo(int Epoch, PlateauState Schedule, string Fingerprint, StopReason? Reason);

/// <summary>
/// The resumable training state in one safetensors file: the model state dict (keys "model." + torchvision names), Adam's
/// per-parameter exp_avg, exp_avg_sq and step ("adam.&lt;param&gt;.*"), the dropout generator's state ("rng.dropout", when the
/// trainer draws the masks: res50nodown; a TorchScript module has none), and the
/// epoch, schedule and options fingerprint as metadata. Every value round-trips bit for bit (doubles as "R" strings).
/// Files are written to a temporary name and moved into place, so a crash never leaves a half-written checkpoint.
/// </summary>
public static class TrainingCheckpoint
{
    /// <summary>The checkpoint's file name in the output folder.</summary>
    public const string FileName = "checkpoint.safetensors";

    /// <summary>The best model's file name in the output folder.</summary>
    public const string BestFileName = "best.safetensors";

    /// <summary>The untrained network the run started from (its init, seed and architecture), written before the first step: the sanity baseline of an untrained detector.</summary>
    public const string InitFileName = "init.safetensors";

    /// <summary>The format tag in the metadata.</summary>
    public const string Format = "forensics-train-checkpoint/1";

    private const string ModelPrefix = "model.", AdamPrefix = "adam.", DropoutRng = "rng.dropout";

    /// <summary>Writes the checkpoint atomically.</summary>
    public static void Save(string path, nn.Module model, Adam optimizer, IReadOnlyList<string> parameterNames, Generator? dropout, CheckpointInfo info)
    {
        using var scope = NewDisposeScope();
        var entries = ModelAndAdamEntries(model, optimizer, parameterNames);
        if (dropout is not null) entries.Add((DropoutRng, dropout.get_state()));
        var s = info.Schedule;
        var metadata = new Dictionary<string, string>
        {
            ["format"] = Format,
            ["epoch"] = Invariant(info.Epoch),
            ["lr"] = s.LearningRate.ToString("R", CultureInfo.InvariantCulture),
            ["best"] = s.Best?.ToString("R", CultureInfo.InvariantCulture) ?? "",
            ["best_epoch"] = Invariant(s.BestEpoch),
            ["counter"] = Invariant(s.Counter),
            ["drops"] = Invariant(s.Drops),
            ["stopped"] = s.Stopped ? "true" : "false",
            ["options"] = info.Fingerprint,
            ["finished"] = info.Reason?.ToString() ?? "",
        };
        WriteAtomically(path, temp => SafeTensors.Save(temp, entries, metadata));
    }

    /// <summary>Reads the metadata only (cheap): what a resume would continue from.</summary>
    /// <exception cref="InvalidDataException">Not a training checkpoint of this format; the message names the file.</exception>
    public static CheckpointInfo ReadInfo(string path)
    {
        var header = SafeTensors.ReadHeader(path);
        return Info(path, header.Metadata);
    }

    /// <summary>Restores model, Adam state and dropout generator from <paramref name="path"/>; returns its metadata.</summary>
    /// <exception cref="InvalidDataException">The file is not a checkpoint of this format or its tensors do not fit the model.</exception>
    public static CheckpointInfo Load(string path, nn.Module model, Adam optimizer, IReadOnlyList<string> parameterNames, Generator? dropout)
    {
        using var all = SafeTensors.Load(path, upcastHalf: false);
        var info = Info(path, all.Metadata);
        LoadModelAndAdam(all, path, model, optimizer, parameterNames);
        dropout?.set_state(Get(all, path, DropoutRng, null));
        return info;
    }

    /// <summary>Writes through <paramref name="write"/> to a temporary file next to <paramref name="path"/>, then moves it into place.</summary>
    public static void WriteAtomically(string path, Action<string> write)
    {
        var temp = path + ".tmp";
        try
        {
            write(temp);
            File.Move(temp, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }

    /// <summary>The model's state dict under "model." and Adam's per-parameter state under "adam.&lt;name&gt;.*", the layout both training checkpoints share.</summary>
    internal static List<(string, Tensor)> ModelAndAdamEntries(nn.Module model, Adam optimizer, IReadOnlyList<string> parameterNames)
    {
        var entries = new List<(string, Tensor)>();
        foreach (var (name, tensor) in model.state_dict()) entries.Add((ModelPrefix + name, tensor));
        var states = AdamStates(optimizer, parameterNames);
        for (var i = 0; i < states.Count; i++)
        {
            var name = AdamPrefix + parameterNames[i];
            entries.Add(($"{name}.exp_avg", states[i].exp_avg));
            entries.Add(($"{name}.exp_avg_sq", states[i].exp_avg_sq));
            entries.Add(($"{name}.step", tensor(states[i].step)));
        }
        return entries;
    }

    /// <summary>Restores what <see cref="ModelAndAdamEntries"/> wrote from <paramref name="all"/> (the model's tensors are taken out of it).</summary>
    internal static void LoadModelAndAdam(StateDict all, string path, nn.Module model, Adam optimizer, IReadOnlyList<string> parameterNames)
    {
        using (var modelDict = Take(all, ModelPrefix))
        {
            try { StateDictLoader.Load(model, modelDict, strict: true); }
            catch (WeightsMismatchException e) { throw new InvalidDataException($"{path}: the model weights do not fit the network: {e.Report.Describe()}", e); }
        }
        var states = AdamStates(optimizer, parameterNames);
        using (no_grad())
        {
            for (var i = 0; i < states.Count; i++)
            {
                var name = AdamPrefix + parameterNames[i];
                states[i].exp_avg.copy_(Get(all, path, $"{name}.exp_avg", states[i].exp_avg.shape));
                states[i].exp_avg_sq.copy_(Get(all, path, $"{name}.exp_avg_sq", states[i].exp_avg_sq.shape));
                states[i].step = Get(all, path, $"{name}.step", []).item<long>();
            }
        }
    }

    /// <summary>A metadata field, or an error naming the file and the key.</summary>
    internal static string Field(string path, IReadOnlyDictionary<string, string> m, string key) =>
        m.TryGetValue(key, out var v) ? v : throw new InvalidDataException($"{path}: checkpoint metadata lacks '{key}'.");

    /// <summary>Throws unless the metadata's format tag is <paramref name="format"/>; <paramref name="kind"/> names the expected checkpoint.</summary>
    internal static void CheckFormat(string path, IReadOnlyDictionary<string, string> m, string format, string kind)
    {
        if (!m.TryGetValue("format", out var found) || found != format)
            throw new InvalidDataException($"{path}: not a {kind} (format '{found ?? "none"}', expected '{format}').");
    }

    private static List<Adam.State> AdamStates(Adam optimizer, IReadOnlyList<string> parameterNames)
    {
        var states = optimizer.state_dict().State.Cast<Adam.State>().ToList();
        if (states.Count != parameterNames.Count)
            throw new InvalidOperationException($"The optimizer holds {states.Count} parameter states but {parameterNames.Count} parameter names were given.");
        return states;
    }

    private static CheckpointInfo Info(string path, IReadOnlyDictionary<string, string> m)
    {
        string Field(string key) => TrainingCheckpoint.Field(path, m, key);
        CheckFormat(path, m, Format, "training checkpoint");
        try
        {
            var best = Field("best");
            var schedule = new PlateauState(
                double.Parse(Field("lr"), CultureInfo.InvariantCulture),
                best.Length == 0 ? null : double.Parse(best, CultureInfo.InvariantCulture),
                int.Parse(Field("best_epoch"), CultureInfo.InvariantCulture),
                int.Parse(Field("counter"), CultureInfo.InvariantCulture),
                int.Parse(Field("drops"), CultureInfo.InvariantCulture),
                Field("stopped") == "true");
            var finished = Field("finished");
            return new CheckpointInfo(int.Parse(Field("epoch"), CultureInfo.InvariantCulture), schedule, Field("options"),
                finished.Length == 0 ? null : Enum.Parse<StopReason>(finished));
        }
        catch (FormatException e)
        {
            throw new InvalidDataException($"{path}: unreadable checkpoint metadata: {e.Message}", e);
        }
    }

    // Moves the tensors under a prefix into a new state dict, prefix removed.
    private static StateDict Take(StateDict all, string prefix)
    {
        var taken = new StateDict();
        foreach (var name in all.Names.Where(n => n.StartsWith(prefix, StringComparison.Ordinal)).ToList())
            if (all.Remove(name, out var t)) taken.Add(name[prefix.Length..], t);
        return taken;
    }

    private static Tensor Get(StateDict all, string path, string name, long[]? shape)
    {
        if (!all.TryGetValue(name, out var t)) throw new InvalidDataException($"{path}: checkpoint lacks '{name}' (saved for a different network?).");
        if (shape is not null && !t.shape.SequenceEqual(shape))
            throw new InvalidDataException($"{path}: '{name}' has shape [{string.Join(", ", t.shape)}], the network needs [{string.Join(", ", shape)}].");
        return t;
    }

    private static string Invariant(int value) => value.ToString(CultureInfo.InvariantCulture);
}
