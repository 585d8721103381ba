using Forensics.ML.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Forensics.ML.Models.Diffusion;

// Field names below are diffusers' attribute names, so state-dict keys come out as diffusers writes them.
// Sub-modules are invoked with call() rather than forward() so that forward hooks (MacCounter, tests) see them.

/// <summary>
/// diffusers' <c>ResnetBlock2D</c> ("default" time-embedding norm): norm1 -> act -> conv1 (3x3) [+ time_emb_proj(act(temb))
/// per channel] -> norm2 -> act -> dropout -> conv2 (3x3), plus the input (through a 1x1 <c>conv_shortcut</c> when the
/// channel count changes), divided by output_scale_factor. The VAE builds it without a time embedding (no
/// time_emb_proj), the UNet with one.
/// </summary>
public sealed class ResnetBlock2D : nn.Module<Tensor, Tensor>
{
    private readonly GroupNorm norm1;
    private readonly Conv2d conv1;
    private readonly Linear? time_emb_proj;
    private readonly GroupNorm norm2;
    private readonly Dropout dropout;
    private readonly Conv2d conv2;
    private readonly Conv2d? conv_shortcut;
    private readonly nn.Module<Tensor, Tensor> nonlinearity;
    private readonly double outputScaleFactor;

    /// <summary>Input channels.</summary>
    public long InChannels { get; }

    /// <summary>Output channels.</summary>
    public long OutChannels { get; }

    /// <summary>
    /// A block from <paramref name="inChannels"/> to <paramref name="outChannels"/> channels; with
    /// <paramref name="tembChannels"/> it adds a projection of a time embedding that wide (diffusers' temb_channels,
    /// None in the VAE).
    /// </summary>
    public ResnetBlock2D(long inChannels, long outChannels, long groups, double eps, long? tembChannels = null,
        string actFn = "silu", double dropout = 0.0, double outputScaleFactor = 1.0, Device? device = null)
        : base(nameof(ResnetBlock2D))
    {
        InChannels = inChannels;
        OutChannels = outChannels;
        norm1 = DiffusionLayers.GroupNorm(groups, inChannels, eps, device);
        conv1 = nn.Conv2d(inChannels, outChannels, kernel_size: 3, stride: 1, padding: 1, device: device);
        if (tembChannels is { } temb) time_emb_proj = nn.Linear(temb, outChannels, device: device);
        norm2 = DiffusionLayers.GroupNorm(groups, outChannels, eps, device);
        this.dropout = nn.Dropout(dropout);
        conv2 = nn.Conv2d(outChannels, outChannels, kernel_size: 3, stride: 1, padding: 1, device: device);
        if (inChannels != outChannels) conv_shortcut = nn.Conv2d(inChannels, outChannels, kernel_size: 1, device: device);
        nonlinearity = DiffusionLayers.Activation(actFn);
        this.outputScaleFactor = outputScaleFactor;
        RegisterComponents();
    }

    /// <summary>True when the block projects a time embedding (the UNet form).</summary>
    public bool HasTimeEmbedding => time_emb_proj is not null;

    /// <summary>The block output of <paramref name="x"/> [B, in, H, W] for a block without a time embedding.</summary>
    public override Tensor forward(Tensor x) => Forward(x, null);

    /// <summary>
    /// The block output [B, out, H, W] of <paramref name="x"/> [B, in, H, W] and the time embedding
    /// <paramref name="temb"/> [B, temb_channels], which is required exactly when the block has time_emb_proj.
    /// </summary>
    public Tensor Forward(Tensor x, Tensor? temb)
    {
        if ((temb is null) != (time_emb_proj is null))
            throw new ArgumentException(time_emb_proj is null
                ? "This ResnetBlock2D has no time_emb_proj; it takes no time embedding."
                : "This ResnetBlock2D has a time_emb_proj; it needs a time embedding.", nameof(temb));
        // Each intermediate is freed once consumed: at full image resolution they are hundreds of megabytes.
        var t = norm1.call(x);
        var a = nonlinearity.call(t); t.Dispose();
        t = conv1.call(a); a.Dispose();
        if (time_emb_proj is not null)
        {
            using var act = nonlinearity.call(temb!);
            using var projected = time_emb_proj.call(act);
            using var perChannel = projected.unsqueeze(-1).unsqueeze(-1);
            t.AddInPlace(perChannel);
        }
        a = norm2.call(t); t.Dispose();
        t = nonlinearity.call(a); a.Dispose();
        a = dropout.call(t);
        if (!ReferenceEquals(a, t)) t.Dispose();
        var hidden = conv2.call(a); a.Dispose();
        if (conv_shortcut is null)
            hidden.AddInPlace(x);
        else
            using (var shortcut = conv_shortcut.call(x))
                hidden.AddInPlace(shortcut);
        if (outputScaleFactor != 1.0) hidden.div_(outputScaleFactor);
        return hidden;
    }
}
