using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using TorchSharp;
using static TorchSharp.torch;

namespace Forensics.ML.Runtime;

/// <summary>
/// Checks that libtorch's oneDNN (mkldnn) float32 convolutions compute correctly on this CPU, and where they do not,
/// switches libtorch to its own convolution kernels (<c>torch.backends.mkldnn.enabled = False</c>).
/// libtorch 2.10 (TorchSharp-cpu 0.107, oneDNN 3.7.1) on AMD Zen 5 (AVX-512) returns wrong values, off by whole units,
/// from its direct 3x3/5x5 convolutions when the channel count being summed over is not a multiple of the SIMD block
/// (16 floats for AVX-512, 8 for AVX2; with oneDNN's padded "aBcd16b" layout) and the batch has 2 or more images: the
/// forward pass when in_channels is such a count (24 in a width-6 ResNet's layer3), the input gradient when
/// out_channels is. PyTorch 1.13 (older oneDNN) is right on the same CPU. The check convolves a fixed batch that hits
/// this case in float32 and float64 (float64 never uses oneDNN) and compares; on hosts that pass nothing is changed,
/// so their results stay bit-identical.
/// </summary>
public static class MkldnnConvolutionCheck
{
    /// <summary>Largest |float32 − float64| accepted; correct kernels differ by about 1e-5 here, the broken ones by ~10.</summary>
    public const float Tolerance = 1e-3f;

    /// <summary>
    /// The largest |float32 − float64| difference of the probe convolution with the current settings (NaN counts as
    /// the worst). The wrong values depend on what the reused memory held before, so the probe first leaves freed
    /// buffers full of large values for the allocator to hand back, and runs several times.
    /// </summary>
    public static float ProbeError()
    {
        var worst = 0f;
        for (var attempt = 0; attempt < 3; attempt++)
        {
            var error = ProbeOnce();
            if (!(error <= worst)) worst = error;
        }
        return worst;
    }

    static float ProbeOnce()
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        using (var large = 1e30.ToScalar())
            foreach (var size in new long[] { 2 * 32 * 10 * 10, 32 * 32 * 3 * 3, 2 * 32 * 8 * 8, 1 << 16 })
                using (var junk = empty(size, dtype: float32)) junk.fill_(large);
        // Deterministic values (no RNG draw, so seeded code elsewhere sees the same random stream): N=2, 24 channels
        // (not a multiple of 16 or 8), 3x3 kernel, stride 1, padding 1.
        var x = arange(2 * 24 * 8 * 8, dtype: float64).reshape(2, 24, 8, 8).Times(0.37).sin();
        var w = arange(24 * 24 * 3 * 3, dtype: float64).reshape(24, 24, 3, 3).Times(0.73).cos().DividedBy(3.0);
        var exact = nn.functional.conv2d(x, w, padding: [1, 1]);
        var single = nn.functional.conv2d(x.to(float32), w.to(float32), padding: [1, 1]);
        return (float)(single.to(float64) - exact).abs().max().item<double>();
    }

    /// <summary>
    /// Runs the probe; if oneDNN's result is wrong, disables mkldnn in libtorch and checks again. Returns what was measured
    /// and done when the workaround was applied, null when it was not needed.
    /// </summary>
    public static MkldnnWorkaround? DisableIfWrong(ILogger logger)
    {
        var before = ProbeError();
        if (before <= Tolerance) return null; // also false for NaN
        if (!TrySetMkldnnEnabled(false))
        {
            var failed = new MkldnnWorkaround(before, null);
            logger.LogError("{Problem}", failed.Message);
            return failed;
        }
        var applied = new MkldnnWorkaround(before, ProbeError());
        if (applied.Fixed) logger.LogWarning("{Workaround}", applied.Message);
        else logger.LogError("{Workaround}", applied.Message);
        return applied;
    }

    /// <summary>Whether libtorch currently lets convolutions use mkldnn; null when the setting cannot be reached.</summary>
    public static bool? MkldnnEnabled() =>
        TryGetContext(out var context) ? UserEnabledMkldnn(context) : null;

    /// <summary>Sets libtorch's global mkldnn switch (at::globalContext().setUserEnabledMkldnn); false if unreachable.</summary>
    public static bool TrySetMkldnnEnabled(bool enabled)
    {
        if (!TryGetContext(out var context)) return false;
        SetUserEnabledMkldnn(context, enabled);
        return UserEnabledMkldnn(context) == enabled;
    }

    // TorchSharp 0.107 has no binding for torch.backends.mkldnn.enabled; the switch is a plain, non-virtual member of
    // at::Context, exported by libtorch_cpu.so (already loaded by TorchSharp) and called with the context as `this`.
    const string LibTorchCpu = "libtorch_cpu.so";

    [DllImport(LibTorchCpu, EntryPoint = "_ZN2at13globalContextEv")]
    static extern IntPtr GlobalContext();

    [DllImport(LibTorchCpu, EntryPoint = "_ZN2at7Context20setUserEnabledMkldnnEb")]
    static extern void SetUserEnabledMkldnn(IntPtr context, [MarshalAs(UnmanagedType.U1)] bool enabled);

    [DllImport(LibTorchCpu, EntryPoint = "_ZNK2at7Context17userEnabledMkldnnEv")]
    [return: MarshalAs(UnmanagedType.U1)]
    static extern bool UserEnabledMkldnn(IntPtr context);

    static bool TryGetContext(out IntPtr context)
    {
        context = IntPtr.Zero;
        try
        {
            context = GlobalContext();
            return context != IntPtr.Zero;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }
    }
}

/// <summary>
/// What <see cref="MkldnnConvolutionCheck.DisableIfWrong"/> measured on a host whose oneDNN convolutions were wrong:
/// the probe error with oneDNN (<paramref name="ErrorBefore"/>, NaN counts as wrong) and with libtorch's own
/// convolutions (<paramref name="ErrorAfter"/>; null when mkldnn could not be switched off).
/// </summary>
public sealed record MkldnnWorkaround(float ErrorBefore, float? ErrorAfter)
{
    /// <summary>Whether switching oneDNN off brought the probe within <see cref="MkldnnConvolutionCheck.Tolerance"/>.</summary>
    public bool Fixed => ErrorAfter <= MkldnnConvolutionCheck.Tolerance;

    public string Message => ErrorAfter is { } after
        ? $"oneDNN float32 convolutions are wrong on this CPU (probe error {ErrorBefore:G3}); mkldnn disabled, " +
          $"libtorch's own convolutions used (probe error {after:G3})"
        : $"oneDNN float32 convolutions are wrong on this CPU (probe error {ErrorBefore:G3}) and mkldnn could not be disabled";
}
