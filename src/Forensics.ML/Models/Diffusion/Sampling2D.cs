using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Forensics.ML.Models.Diffusion;

/// <summary>
/// diffusers' <c>Downsample2D</c> with a convolution: a 3x3 stride-2 conv named "conv" with <c>padding</c> on every side;
/// padding 0 (the VAE, and UNets with downsample_padding 0) zero-pads one pixel on the right and bottom only first
/// (pad (0, 1, 0, 1)). An H-pixel side becomes floor(H/2) with padding 0 and ceil(H/2) with padding 1.
/// </summary>
public sealed class Downsample2D : nn.Module<Tensor, Tensor>
{
    private readonly Conv2d conv;
    private readonly long padding;

    /// <summary>A downsampler keeping <paramref name="channels"/> channels, with diffusers' <paramref name="padding"/>.</summary>
    public Downsample2D(long channels, long padding = 1, Device? device = null) : base(nameof(Downsample2D))
    {
        if (padding < 0) throw new ArgumentOutOfRangeException(nameof(padding), padding, "Downsample2D padding must be 0 or more.");
        this.padding = padding;
        conv = nn.Conv2d(channels, channels, kernel_size: 3, stride: 2, padding: padding, device: device);
        RegisterComponents();
    }

    /// <summary>Halves the resolution.</summary>
    public override Tensor forward(Tensor x)
    {
        if (padding != 0) return conv.call(x);
        using var padded = nn.functional.pad(x, [0, 1, 0, 1], PaddingModes.Constant, 0);
        return conv.call(padded);
    }
}

/// <summary>
/// diffusers' <c>Upsample2D</c>. By default with a convolution: nearest-neighbour x2 (or to an explicit output size),
/// then a 3x3 conv (padding 1) named "conv". With <c>use_conv_transpose</c> (<see cref="Transposed"/>): a single
/// ConvTranspose2d(channels, channels, kernel 4, stride 2, padding 1), also named "conv", which doubles the size itself.
/// </summary>
public sealed class Upsample2D : nn.Module<Tensor, Tensor>
{
    private readonly nn.Module<Tensor, Tensor> conv;

    /// <summary>
    /// An upsampler keeping <paramref name="channels"/> channels; <paramref name="transposed"/> selects diffusers'
    /// use_conv_transpose variant (learned 4x4 stride-2 transposed convolution instead of nearest + 3x3 conv).
    /// </summary>
    public Upsample2D(long channels, Device? device = null, bool transposed = false) : base(nameof(Upsample2D))
    {
        Transposed = transposed;
        conv = transposed
            ? nn.ConvTranspose2d(channels, channels, kernel_size: 4, stride: 2, padding: 1, device: device)
            : nn.Conv2d(channels, channels, kernel_size: 3, stride: 1, padding: 1, device: device);
        RegisterComponents();
    }

    /// <summary>Whether this is the transposed-convolution variant.</summary>
    public bool Transposed { get; }

    /// <summary>Doubles the resolution.</summary>
    public override Tensor forward(Tensor x) => Forward(x, null);

    /// <summary>
    /// Upsamples to <paramref name="outputSize"/> (H, W) when given (the UNet's skip sizes for inputs not divisible by
    /// 2^blocks), otherwise by 2. The transposed variant always doubles (diffusers ignores the output size there too).
    /// </summary>
    public Tensor Forward(Tensor x, long[]? outputSize)
    {
        if (Transposed) return conv.call(x);
        using var up = outputSize is null
            ? nn.functional.interpolate(x, scale_factor: [2.0, 2.0], mode: InterpolationMode.Nearest)
            : nn.functional.interpolate(x, size: outputSize, mode: InterpolationMode.Nearest);
        return conv.call(up);
    }
}
