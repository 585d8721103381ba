using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Forensics.ML.Models.Diffusion;

/// <summary>
/// diffusers' VAE <c>Encoder</c>: conv_in, one DownEncoderBlock2D per level (a downsampler on all but the last),
/// the mid block, then conv_norm_out -> act -> conv_out to 2 x latent channels (mean and log-variance). GroupNorm eps 1e-6.
/// </summary>
public sealed class VaeEncoder : nn.Module<Tensor, Tensor>
{
    /// <summary>GroupNorm epsilon of every VAE norm layer.</summary>
    public const double Eps = 1e-6;

    private readonly Conv2d conv_in;
    private readonly ModuleList<DownEncoderBlock2D> down_blocks;
    private readonly UNetMidBlock2D mid_block;
    private readonly GroupNorm conv_norm_out;
    private readonly nn.Module<Tensor, Tensor> conv_act;
    private readonly Conv2d conv_out;

    /// <summary>The encoder of <paramref name="config"/> (which must be valid).</summary>
    public VaeEncoder(AutoencoderKLConfig config) : base("Encoder")
    {
        var channels = config.BlockOutChannels;
        var groups = config.NormNumGroups;
        conv_in = nn.Conv2d(config.InChannels, channels[0], kernel_size: 3, stride: 1, padding: 1);
        down_blocks = new ModuleList<DownEncoderBlock2D>();
        var output = channels[0];
        for (var i = 0; i < config.DownBlockTypes.Count; i++)
        {
            var input = output;
            output = channels[i];
            down_blocks.Add(new DownEncoderBlock2D(input, output, config.LayersPerBlock, groups, Eps, config.ActFn,
                addDownsample: i != channels.Count - 1));
        }
        mid_block = new UNetMidBlock2D(channels[^1], groups, Eps, config.ActFn, config.MidBlockAddAttention);
        conv_norm_out = DiffusionLayers.GroupNorm(groups, channels[^1], Eps);
        conv_act = DiffusionLayers.Activation(config.ActFn);
        conv_out = nn.Conv2d(channels[^1], 2 * config.LatentChannels, kernel_size: 3, padding: 1);
        RegisterComponents();
    }

    /// <inheritdoc/>
    public override Tensor forward(Tensor x)
    {
        var hidden = conv_in.call(x);
        foreach (var block in down_blocks) hidden = Replace(hidden, block.call(hidden));
        hidden = Replace(hidden, mid_block.call(hidden));
        hidden = Replace(hidden, conv_norm_out.call(hidden));
        hidden = Replace(hidden, conv_act.call(hidden));
        return Replace(hidden, conv_out.call(hidden));
    }

    internal static Tensor Replace(Tensor old, Tensor next)
    {
        if (!ReferenceEquals(old, next)) old.Dispose();
        return next;
    }
}

/// <summary>
/// diffusers' VAE <c>Decoder</c>: conv_in to the widest level, the mid block, one UpDecoderBlock2D per level from the
/// widest (layers_per_block + 1 resnets each, an upsampler on all but the last: nearest + conv, or a transposed conv
/// when <see cref="AutoencoderKLConfig.DecoderUpsample"/> says so), then conv_norm_out -> act -> conv_out.
/// </summary>
public sealed class VaeDecoder : nn.Module<Tensor, Tensor>
{
    private readonly Conv2d conv_in;
    private readonly UNetMidBlock2D mid_block;
    private readonly ModuleList<UpDecoderBlock2D> up_blocks;
    private readonly GroupNorm conv_norm_out;
    private readonly nn.Module<Tensor, Tensor> conv_act;
    private readonly Conv2d conv_out;

    /// <summary>The decoder of <paramref name="config"/> (which must be valid).</summary>
    public VaeDecoder(AutoencoderKLConfig config) : base("Decoder")
    {
        var channels = config.BlockOutChannels;
        var groups = config.NormNumGroups;
        const double eps = VaeEncoder.Eps;
        conv_in = nn.Conv2d(config.LatentChannels, channels[^1], kernel_size: 3, stride: 1, padding: 1);
        mid_block = new UNetMidBlock2D(channels[^1], groups, eps, config.ActFn, config.MidBlockAddAttention);
        up_blocks = new ModuleList<UpDecoderBlock2D>();
        var reversed = channels.Reverse().ToList();
        var output = reversed[0];
        for (var i = 0; i < config.UpBlockTypes.Count; i++)
        {
            var previous = output;
            output = reversed[i];
            up_blocks.Add(new UpDecoderBlock2D(previous, output, config.LayersPerBlock + 1, groups, eps, config.ActFn,
                addUpsample: i != channels.Count - 1, transposedUpsample: config.DecoderUpsample == AutoencoderKLConfig.UpsampleConvTranspose));
        }
        conv_norm_out = DiffusionLayers.GroupNorm(groups, channels[0], eps);
        conv_act = DiffusionLayers.Activation(config.ActFn);
        conv_out = nn.Conv2d(channels[0], config.OutChannels, kernel_size: 3, padding: 1);
        RegisterComponents();
    }

    /// <inheritdoc/>
    public override Tensor forward(Tensor z)
    {
        var hidden = conv_in.call(z);
        hidden = VaeEncoder.Replace(hidden, mid_block.call(hidden));
        foreach (var block in up_blocks) hidden = VaeEncoder.Replace(hidden, block.call(hidden));
        hidden = VaeEncoder.Replace(hidden, conv_norm_out.call(hidden));
        hidden = VaeEncoder.Replace(hidden, conv_act.call(hidden));
        return VaeEncoder.Replace(hidden, conv_out.call(hidden));
    }
}
