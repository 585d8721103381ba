using Forensics.ML.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Forensics.ML.Models;

/// <summary>
/// torch.nn.BatchNorm2d with TorchSharp's parameter and buffer layout (weight, bias, running_mean, running_var,
/// num_batches_tracked as an int64 scalar; same init, eps and momentum, momentum null meaning a cumulative average), so
/// state dicts, .pth/.safetensors loading and <c>to()</c> behave as with <see cref="TorchSharp.Modules.BatchNorm2d"/>.
/// It exists because TorchSharp 0.107's training forward does <c>num_batches_tracked.add_(1)</c> with an implicit Scalar
/// that Scalar's finalizer can free while libtorch reads it when another thread triggers a GC ("argument alpha must not
/// be a floating point number"); here the increment uses a process-lifetime Scalar (<see cref="KeptAliveScalars.One"/>)
/// and batch_norm gets momentum and eps as doubles. Upstream fixes are open (dotnet/TorchSharp#1434, #1496).
/// </summary>
public sealed class KeptAliveBatchNorm2d : BatchNorm
{
    /// <summary>A BatchNorm2d over <paramref name="numFeatures"/> channels (torch.nn.BatchNorm2d's defaults).</summary>
    public KeptAliveBatchNorm2d(long numFeatures, double eps = 1e-5, double? momentum = 0.1, bool affine = true,
        bool trackRunningStats = true, Device? device = null, ScalarType? dtype = null)
        : base(numFeatures, eps, momentum ?? 0.0, affine, trackRunningStats, device, dtype, "BatchNorm2d")
    {
        // The base constructor takes a non-null momentum; null (cumulative moving average) is set here.
        this.momentum = momentum;
    }

    /// <inheritdoc />
    protected override void ValidateInputDimensions(Tensor input)
    {
        if (input.ndim != 4)
            throw new ArgumentException($"BatchNorm2d expects a 4D input (N, C, H, W), but got {input.ndim}D input.");
    }

    /// <summary>Normalises with batch statistics in training (updating the running ones), with running statistics in eval.</summary>
    public override Tensor forward(Tensor input)
    {
        ValidateInputDimensions(input);
        var averageFactor = momentum ?? 0.0;
        if (training && track_running_stats && num_batches_tracked is not null)
        {
            // add_(Scalar) alone would pass an implicit alpha 1, so both are the kept-alive one.
            num_batches_tracked.add_(KeptAliveScalars.One, KeptAliveScalars.One);
            if (momentum is null) averageFactor = 1.0 / num_batches_tracked.ItemAsDouble();
        }
        // As torch: batch statistics in training, or in eval when there are no running statistics.
        var useBatchStats = training || (running_mean is null && running_var is null);
        var passRunning = !training || track_running_stats;
        return nn.functional.batch_norm(input, passRunning ? running_mean : null, passRunning ? running_var : null,
            weight, bias, useBatchStats, averageFactor, eps);
    }
}
