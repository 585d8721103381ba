using Forensics.ML.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Forensics.ML.Models.Diffusion;

/// <summary>diffusers' TimestepEmbedding: linear_1 → SiLU → linear_2.</summary>
public sealed class UnetTimestepEmbedding : nn.Module<Tensor, Tensor>
{
    private readonly Linear linear_1;
    private readonly Linear linear_2;

    /// <summary>An MLP from the sinusoidal width <paramref name="inChannels"/> to <paramref name="timeEmbedDim"/>.</summary>
    public UnetTimestepEmbedding(long inChannels, long timeEmbedDim, Device? device = null) : base(nameof(UnetTimestepEmbedding))
    {
        linear_1 = nn.Linear(inChannels, timeEmbedDim, device: device);
        linear_2 = nn.Linear(timeEmbedDim, timeEmbedDim, device: device);
        RegisterComponents();
    }

    /// <summary>The time embedding [B, timeEmbedDim] of a sinusoidal embedding [B, inChannels].</summary>
    public override Tensor forward(Tensor x) => linear_2.forward(nn.functional.silu(linear_1.forward(x)));
}

/// <summary>diffusers' sinusoidal timestep embedding (embeddings.py get_timestep_embedding, DDPM style).</summary>
public static class UnetTimesteps
{
    /// <summary>
    /// emb[i, j] = sin(t_i · f_j) for j &lt; half and cos(t_i · f_{j-half}) after it (cos first when
    /// <paramref name="flipSinToCos"/>), with f_j = exp(-ln(maxPeriod) · j / (half - downscaleFreqShift)) and
    /// half = dim / 2; an odd dim gets one zero column. Computed in float32 in the order diffusers uses, so the
    /// rounding matches. <paramref name="timesteps"/> is 1-D [B] (integer or float).
    /// </summary>
    public static Tensor Embed(Tensor timesteps, long dim, bool flipSinToCos, double downscaleFreqShift, double scale = 1, double maxPeriod = 10000)
    {
        ArgumentNullException.ThrowIfNull(timesteps);
        if (timesteps.dim() != 1) throw new ArgumentException($"Timesteps must be 1-D [B], got [{string.Join(", ", timesteps.shape)}].", nameof(timesteps));
        var half = dim / 2;
        using var scope = NewDisposeScope();
        var exponent = arange(0, half, dtype: ScalarType.Float32, device: timesteps.device).Times(-Math.Log(maxPeriod));
        exponent = exponent.DividedBy(half - downscaleFreqShift);
        var freqs = exponent.exp();
        var args = timesteps.unsqueeze(1).to_type(ScalarType.Float32) * freqs.unsqueeze(0);
        if (scale != 1) args = args.Times(scale);
        var emb = flipSinToCos ? cat([args.cos(), args.sin()], 1) : cat([args.sin(), args.cos()], 1);
        if (dim % 2 == 1) emb = nn.functional.pad(emb, [0, 1, 0, 0]);
        return emb.MoveToOuterDisposeScope();
    }
}
