using Forensics.ML.Detectors;
using Forensics.ML.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Forensics.ML.Benchmarks;

/// <summary>One format's forward throughput on the shared batch, against the native TorchSharp network's.</summary>
/// <param name="Format">"native", "torchscript" or "onnx".</param>
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
    /// compared with the native network's.
    /// </summary>
    public static IReadOnlyList<FormatRate> Compare(ResNet native, IReadOnlyList<Detector> packages, int batch, int size, TimeSpan budget,
        bool sameWeights, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(native);
        ArgumentNullException.ThrowIfNull(packages);
        device ??= CPU;
        native.to(device);
        native.eval();
        using var generator = new Generator(8, CPU);
        using var x = rand([batch, 3, size, size], generator: generator).sub_(0.45).div_(0.226).to(device);
        Tensor reference;
        using (no_grad()) reference = native.forward(x).reshape(batch, -1).select(1, 0).to(ScalarType.Float64).cpu();
        using var _ = reference;
        var (reps, seconds) = Throughput.Time(() =>
        {
            using var g = no_grad();
            using var scope = NewDisposeScope();
            native.forward(x);
            if (device.type == DeviceType.CUDA) cuda.synchronize();
        }, budget);
        var nativeRate = reps * batch / seconds;
        var rates = new List<FormatRate> { new("native", nativeRate, 1.0, sameWeights ? 0.0 : null, reps, seconds) };
        foreach (var detector in packages)
        {
            double? diff = null;
            using (no_grad())
            using (NewDisposeScope())
            {
                var logits = detector.Forward(x).select(1, 0).to(ScalarType.Float64).cpu();
                if (sameWeights) diff = (logits - reference).abs().max().item<double>();
            }
            var (r, s) = Throughput.Time(() =>
            {
                using var g = no_grad();
                using var scope = NewDisposeScope();
                detector.Forward(x);
                if (device.type == DeviceType.CUDA) cuda.synchronize();
            }, budget);
            var rate = r * batch / s;
            rates.Add(new FormatRate(detector.Network.Format, rate, rate / nativeRate, diff, r, s));
        }
        return rates;
    }
}
