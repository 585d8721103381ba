using Forensics.ML.Benchmarks;
using Forensics.ML.Detectors;
using Forensics.ML.Models;
using Forensics.ML.Runtime;

namespace Forensics.ML.Tests.Detectors;

/// <summary>`forensics bench --torchscript/--onnx [--explain]`: the format rows and the rows that say where the gaps come from.</summary>
public class DetectorFormatsTests
{
    public DetectorFormatsTests() => Assert.True(TorchRuntime.EnsureLoaded().Loaded, TorchRuntime.Status?.Error);

    [Fact]
    public void Explain_times_the_ONNX_file_at_lower_optimization_levels_and_native_with_oneDNN_only_where_it_was_switched_off()
    {
        using var native = new ResNet(ResNetOptions.ResNet50(1).Small(4, [1, 1, 1, 1]));
        using var onnx = DetectorCheckpoint.Load(PackageFixtures.File("tinycnn_dynamic.onnx"), "onnx", null, null);
        var budget = TimeSpan.FromMilliseconds(30);
        var mkldnnBefore = MkldnnConvolutionCheck.MkldnnEnabled();

        var plain = DetectorFormats.Compare(native, [onnx], batch: 2, size: 32, budget, sameWeights: false);
        Assert.Equal(["native", "onnx"], plain.Select(r => r.Format));

        var rows = DetectorFormats.Compare(native, [onnx], batch: 2, size: 32, budget, sameWeights: false, explain: true);
        // oneDNN is timed only where the start-up check switched it off (wrong convolutions on this CPU), and left off.
        var oneDnn = mkldnnBefore == false ? new[] { "native, oneDNN convolutions" } : [];
        Assert.Equal(["native", "onnx", .. oneDnn, "onnx, no graph optimization", "onnx, fusions only (level extended)"], rows.Select(r => r.Format));
        Assert.Equal(mkldnnBefore, MkldnnConvolutionCheck.MkldnnEnabled());
        Assert.All(rows, r => Assert.True(r.ImagesPerSecond > 0 && r.Repetitions > 0, r.ToString()));
        Assert.Equal(1.0, rows[0].RatioToNative);
        Assert.All(rows.Skip(1), r => Assert.Equal(r.ImagesPerSecond / rows[0].ImagesPerSecond, r.RatioToNative, 12));
        // Different weights: only the native variant's logits are compared with the native network's (its own weights).
        Assert.All(rows.Where(r => r.Format.StartsWith("onnx", StringComparison.Ordinal)), r => Assert.Null(r.MaxAbsLogitDiff));
        if (mkldnnBefore == false) Assert.NotNull(rows.Single(r => r.Format == "native, oneDNN convolutions").MaxAbsLogitDiff);
    }
}
