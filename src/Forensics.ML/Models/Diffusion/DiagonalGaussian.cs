using Forensics.ML.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Forensics.ML.Models.Diffusion;

/// <summary>
/// The VAE posterior, diffusers' <c>DiagonalGaussianDistribution</c>: a per-element normal with <see cref="Mean"/> and
/// <see cref="LogVar"/> (clamped to [-30, 20] as diffusers does). Owns both tensors.
/// </summary>
public sealed class DiagonalGaussian : IDisposable
{
    /// <summary>Clamp bounds diffusers applies to the log-variance.</summary>
    public const double MinLogVar = -30, MaxLogVar = 20;

    /// <summary>Posterior mean, [B, latent, h, w].</summary>
    public Tensor Mean { get; }

    /// <summary>Posterior log-variance after clamping, [B, latent, h, w].</summary>
    public Tensor LogVar { get; }

    /// <summary>Takes ownership of <paramref name="mean"/> and <paramref name="logVar"/> (the latter is clamped in place).</summary>
    public DiagonalGaussian(Tensor mean, Tensor logVar)
    {
        if (!mean.shape.SequenceEqual(logVar.shape))
            throw new ArgumentException($"mean [{string.Join(", ", mean.shape)}] and logvar [{string.Join(", ", logVar.shape)}] differ in shape");
        Mean = mean;
        LogVar = logVar;
        LogVar.ClampInPlace(MinLogVar, MaxLogVar);
    }

    /// <summary>Splits encoder moments [B, 2L, h, w] into mean (first L channels) and log-variance (last L).</summary>
    public static DiagonalGaussian FromMoments(Tensor moments)
    {
        if (moments.dim() < 2 || moments.shape[1] % 2 != 0)
            throw new ArgumentException($"moments [{string.Join(", ", moments.shape)}] need an even channel dimension");
        var half = moments.shape[1] / 2;
        return new DiagonalGaussian(moments.narrow(1, 0, half).contiguous(), moments.narrow(1, half, half).contiguous());
    }

    /// <summary>Standard deviation exp(0.5 * logvar), a new tensor.</summary>
    public Tensor Std() => LogVar.Times(0.5).exp_();

    /// <summary>
    /// The standard-normal draw a sample uses: <c>torch.randn(mean.shape, generator)</c> in the mean's dtype, drawn on
    /// the generator's device (diffusers' <c>randn_tensor</c>, so a CPU generator gives the same numbers whatever
    /// device the model is on), then moved to the mean's device. A null generator uses torch's default one.
    /// </summary>
    public Tensor Noise(Generator? generator)
    {
        var device = generator?.device ?? Mean.device;
        var noise = randn(Mean.shape, dtype: Mean.dtype, device: device, generator: generator);
        if (noise.device_type == Mean.device_type && noise.device_index == Mean.device_index) return noise;
        var moved = noise.to(Mean.device);
        noise.Dispose();
        return moved;
    }

    /// <summary>A sample mean + exp(0.5 * logvar) * <see cref="Noise"/>: equal to diffusers' <c>latent_dist.sample(generator)</c>.</summary>
    public Tensor Sample(Generator? generator)
    {
        using var noise = Noise(generator);
        using var std = Std();
        using var scaled = std.mul(noise);
        return Mean.Plus(scaled);
    }

    /// <summary>The mode of the posterior, i.e. the mean (a new tensor handle the caller disposes).</summary>
    public Tensor Mode() => Mean.alias();

    /// <summary>Disposes the mean and log-variance.</summary>
    public void Dispose()
    {
        Mean.Dispose();
        LogVar.Dispose();
    }
}
