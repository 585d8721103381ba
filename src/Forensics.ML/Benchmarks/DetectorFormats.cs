using Forensics.ML.Detectors;
using Forensics.ML.Models;
using Forensics.ML.Runtime;
using Microsoft.ML.OnnxRuntime;
using TorchSharp;
using static TorchSharp.torch;

namespace Forensics.ML.Benchmarks;

/// <summary>One format's forward throughput on the shared batch, against the native TorchSharp network's.</summary>
/// <param name="Format">"native", "torchscript" or "onnx"; with the explain rows, a variant such as "native, oneDNN convolutions".</param>
/// <param name="ImagesPerSecond">Forward images per second (no_grad, eval mode, the same batch for every format).</param>
/// <param name="RatioToNative">ImagesPerSecond / the native network's.</param>
/// <param name="MaxAbsLogitDiff">Largest |logit - native logit| on the batch, when the weights are the same; null otherwise.</param>
public sealed record FormatRate(string Format, double ImagesPerSecond, double RatioToNative, double? MaxAbsLogitDiff, int Repetitions, double Seconds);

/// <summary>
/// The same network as our TorchSharp ResNet, as a TorchScript module and as an ONNX Runtime session, timed on one batch
/// of seeded images: what a team pays for bringing its detector as a package instead of native code.
/// </summary>
public static class DetectorFormats
{
    /// <summary>
    /// Times <paramref name="native"/> and each of <paramref name="packages"/> (already loaded) for <paramref name="budget"/>
    /// each on the same normalised batch [batch, 3, size, size]. With <paramref name="sameWeights"/> the logits are also
    /// compared with the native network's. With <paramref name="explain"/>, rows that say where the gaps come from follow,
    /// against the same native rate: the native network with libtorch's oneDNN (mkldnn) convolutions, when the start-up
    /// check switched them off for being wrong on this CPU (its logits are compared, so a wrong result shows); and the ONNX
    /// package at ONNX Runtime's lower graph optimization levels: none, and the node fusions without the layout
    /// transformations of level "all" (blocked NCHWc convolutions on x64).
    /// </summary>
    public static IReadOnlyList<FormatRate> Compare(ResNet native, IReadOnlyList<Detector> packages, int batch, int size, TimeSpan budget,
        bool sameWeights, Device? device = null, bool explain = false)
    {
        ArgumentNullException.ThrowIfNull(native);
        ArgumentNullException.ThrowIfNull(packages);
        device ??= CPU;
        using var bench = new SharedBatch(native, batch, size, budget, device);
        var nativeRate = bench.Rate(native.forward);
        var rates = new List<FormatRate> { new("native", nativeRate.ImagesPerSecond, 1.0, sameWeights ? 0.0 : null, nativeRate.Repetitions, nativeRate.Seconds) };
        void Add(string name, Func<Tensor, Tensor> forward, bool compare)
        {
            double? diff = compare ? bench.MaxAbsLogitDiff(forward) : null;
            var rate = bench.Rate(forward);
            rates.Add(new FormatRate(name, rate.ImagesPerSecond, rate.ImagesPerSecond / nativeRate.ImagesPerSecond, diff, rate.Repetitions, rate.Seconds));
        }
        foreach (var detector in packages) Add(detector.Network.Format, detector.Forward, sameWeights);
        if (!explain) return rates;

        if (device.type == DeviceType.CPU && MkldnnConvolutionCheck.MkldnnEnabled() == false && MkldnnConvolutionCheck.TrySetMkldnnEnabled(true))
        {
            try { Add("native, oneDNN convolutions", native.forward, compare: true); }
            finally { MkldnnConvolutionCheck.TrySetMkldnnEnabled(false); }
        }
        foreach (var onnx in packages.Where(p => p.Network.Format == "onnx" && p.CheckpointPath is not null))
        {
            foreach (var (name, level) in new[] { ("onnx, no graph optimization", GraphOptimizationLevel.ORT_DISABLE_ALL),
                         ("onnx, fusions only (level extended)", GraphOptimizationLevel.ORT_ENABLE_EXTENDED) })
            {
                using var network = OnnxNetwork.Load(onnx.CheckpointPath!, device, level);
                Add(name, network.Forward, sameWeights);
            }
        }
        return rates;
    }

    /// <summary>The seeded, normalised batch every format runs, the native logits on it, and the timing of one forward.</summary>
    private sealed class SharedBatch : IDisposable
    {
        private readonly Tensor x;
        private readonly Tensor reference;
        private readonly int batch;
        private readonly TimeSpan budget;
        private readonly Device device;

        public SharedBatch(ResNet native, int batch, int size, TimeSpan budget, Device device)
        {
            this.batch = batch;
            this.budget = budget;
            this.device = device;
            native.to(device);
            native.eval();
            using var generator = new Generator(8, CPU);
            x = rand([batch, 3, size, size], generator: generator).sub_(0.45).div_(0.226).to(device);
            using (no_grad()) reference = native.forward(x).reshape(batch, -1).select(1, 0).to(ScalarType.Float64).cpu();
        }

        /// <summary>Largest |logit - native logit| of <paramref name="forward"/> on the batch.</summary>
        public double MaxAbsLogitDiff(Func<Tensor, Tensor> forward)
        {
            using var g = no_grad();
            using var scope = NewDisposeScope();
            var logits = forward(x).reshape(batch, -1).select(1, 0).to(ScalarType.Float64).cpu();
            return (logits - reference).abs().max().item<double>();
        }

        /// <summary>Forward images per second of <paramref name="forward"/> (no_grad, best of 3 rounds within the budget).</summary>
        public (double ImagesPerSecond, int Repetitions, double Seconds) Rate(Func<Tensor, Tensor> forward)
        {
            var (reps, seconds) = Throughput.Time(() =>
            {
                using var g = no_grad();
                using var scope = NewDisposeScope();
                forward(x);
                if (device.type == DeviceType.CUDA) cuda.synchronize();
            }, budget);
            return (reps * batch / seconds, reps, seconds);
        }

        public void Dispose()
        {
            x.Dispose();
            reference.Dispose();
        }
    }
}
