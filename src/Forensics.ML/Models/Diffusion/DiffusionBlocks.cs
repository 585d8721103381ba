using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Forensics.ML.Models.Diffusion;

// Field names below are diffusers' attribute names, so state-dict keys come out as diffusers writes them.
// Sub-modules are invoked with call() rather than forward() so that forward hooks (MacCounter, tests) see them.

/// <summary>
/// diffusers' <c>UNetMidBlock2D</c> without a time embedding: resnets.0, then for each further resnet an attention
/// (when enabled) followed by it; the VAE has one attention and two resnets, all at the same width.
/// </summary>
public sealed class UNetMidBlock2D : nn.Module<Tensor, Tensor>
{
    private readonly ModuleList<ResnetBlock2D> resnets;
    private readonly ModuleList<Attention> attentions;

    /// <summary>A mid block of <paramref name="channels"/> channels; one attention head spans all channels as in the VAE.</summary>
    public UNetMidBlock2D(long channels, long groups, double eps, string actFn, bool addAttention, int numLayers = 1)
        : base(nameof(UNetMidBlock2D))
    {
        resnets = new ModuleList<ResnetBlock2D>(new ResnetBlock2D(channels, channels, groups, eps, actFn: actFn));
        attentions = new ModuleList<Attention>();
        for (var i = 0; i < numLayers; i++)
        {
            if (addAttention) attentions.Add(Attention.SpatialSelfAttention(channels, channels, groups, eps));
            resnets.Add(new ResnetBlock2D(channels, channels, groups, eps, actFn: actFn));
        }
        RegisterComponents();
    }

    /// <summary>True when the block has its attention layers.</summary>
    public bool HasAttention => attentions.Count > 0;

    /// <inheritdoc/>
    public override Tensor forward(Tensor x)
    {
        var hidden = resnets[0].call(x);
        for (var i = 1; i < resnets.Count; i++)
        {
            if (HasAttention)
            {
                var attended = attentions[i - 1].call(hidden);
                hidden.Dispose();
                hidden = attended;
            }
            var next = resnets[i].call(hidden);
            hidden.Dispose();
            hidden = next;
        }
        return hidden;
    }
}

/// <summary>diffusers' <c>DownEncoderBlock2D</c>: <c>resnets</c>, then optionally <c>downsamplers.0</c>.</summary>
public sealed class DownEncoderBlock2D : nn.Module<Tensor, Tensor>
{
    private readonly ModuleList<ResnetBlock2D> resnets;
    private readonly ModuleList<Downsample2D>? downsamplers;

    /// <summary>A block of <paramref name="numLayers"/> resnets from <paramref name="inChannels"/> to <paramref name="outChannels"/>.</summary>
    public DownEncoderBlock2D(long inChannels, long outChannels, int numLayers, long groups, double eps, string actFn, bool addDownsample)
        : base(nameof(DownEncoderBlock2D))
    {
        resnets = new ModuleList<ResnetBlock2D>();
        for (var i = 0; i < numLayers; i++)
            resnets.Add(new ResnetBlock2D(i == 0 ? inChannels : outChannels, outChannels, groups, eps, actFn: actFn));
        if (addDownsample) downsamplers = new ModuleList<Downsample2D>(new Downsample2D(outChannels, padding: 0));
        RegisterComponents();
    }

    /// <inheritdoc/>
    public override Tensor forward(Tensor x) => ResnetChain.Forward(x, resnets, downsamplers);
}

/// <summary>diffusers' <c>UpDecoderBlock2D</c>: <c>resnets</c>, then optionally <c>upsamplers.0</c>.</summary>
public sealed class UpDecoderBlock2D : nn.Module<Tensor, Tensor>
{
    private readonly ModuleList<ResnetBlock2D> resnets;
    private readonly ModuleList<Upsample2D>? upsamplers;

    /// <summary>
    /// A block of <paramref name="numLayers"/> resnets from <paramref name="inChannels"/> to <paramref name="outChannels"/>;
    /// <paramref name="transposedUpsample"/> picks the ConvTranspose2d upsampler.
    /// </summary>
    public UpDecoderBlock2D(long inChannels, long outChannels, int numLayers, long groups, double eps, string actFn, bool addUpsample,
        bool transposedUpsample = false)
        : base(nameof(UpDecoderBlock2D))
    {
        resnets = new ModuleList<ResnetBlock2D>();
        for (var i = 0; i < numLayers; i++)
            resnets.Add(new ResnetBlock2D(i == 0 ? inChannels : outChannels, outChannels, groups, eps, actFn: actFn));
        if (addUpsample) upsamplers = new ModuleList<Upsample2D>(new Upsample2D(outChannels, transposed: transposedUpsample));
        RegisterComponents();
    }

    /// <inheritdoc/>
    public override Tensor forward(Tensor x) => ResnetChain.Forward(x, resnets, upsamplers);
}

// The forward shared by DownEncoderBlock2D and UpDecoderBlock2D, which differ only in their resampler.
internal static class ResnetChain
{
    /// <summary>Runs <paramref name="resnets"/> then <paramref name="resamplers"/> (when any), disposing intermediates but never <paramref name="x"/> within the resnets.</summary>
    public static Tensor Forward(Tensor x, IEnumerable<nn.Module<Tensor, Tensor>> resnets, IEnumerable<nn.Module<Tensor, Tensor>>? resamplers)
    {
        var hidden = x;
        foreach (var resnet in resnets)
        {
            var next = resnet.call(hidden);
            if (!ReferenceEquals(hidden, x)) hidden.Dispose();
            hidden = next;
        }
        if (resamplers is not null)
            foreach (var resampler in resamplers)
            {
                var next = resampler.call(hidden);
                hidden.Dispose();
                hidden = next;
            }
        return hidden;
    }
}
