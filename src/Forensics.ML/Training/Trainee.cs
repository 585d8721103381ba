using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Forensics.ML.Training;

/// <summary>
/// A network as <see cref="DetectorTrainer.Run"/> trains it: our res50nodown, or a TorchScript module
/// (<see cref="TorchScriptTrainer"/>). The loop, loss, optimizer, plateau rule and checkpoints are the same for both;
/// what differs is how a batch becomes fake-vs-real logits and how the best weights are written.
/// </summary>
internal abstract class Trainee : IDisposable
{
    /// <summary>The module whose state dict the checkpoints hold.</summary>
    public abstract nn.Module Module { get; }

    /// <summary>The parameters Adam updates, with their state-dict names (the checkpoint's "adam.&lt;name&gt;.*" keys).</summary>
    public abstract IReadOnlyList<(string Name, Parameter Parameter)> Parameters { get; }

    /// <summary>The generator of the trainer's dropout masks, saved in checkpoints; null when the network draws none of its own.</summary>
    public abstract Generator? DropoutRng { get; }

    /// <summary>Where the weights are.</summary>
    public abstract Device Device { get; }

    /// <summary>The best weights' file name in the output folder.</summary>
    public abstract string BestFileName { get; }

    /// <summary>Before epoch <paramref name="epoch"/>'s training steps: train mode (and whatever else the network needs).</summary>
    public abstract void StartEpoch(int epoch);

    /// <summary>Evaluation mode, for the validation pass.</summary>
    public abstract void Eval();

    /// <summary>Fake-vs-real logits [B] of a training batch, with autograd.</summary>
    public abstract Tensor TrainingLogits(Tensor images);

    /// <summary>Fake-vs-real logits [B] in evaluation mode (called under no_grad).</summary>
    public abstract Tensor Logits(Tensor images);

    /// <summary>Writes the current weights as the best so far.</summary>
    public abstract void SaveBest(string path, int epoch, ValidationMetrics metrics);

    /// <inheritdoc/>
    public abstract void Dispose();
}
