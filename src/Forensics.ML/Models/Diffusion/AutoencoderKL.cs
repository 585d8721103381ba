using Forensics.ML.Weights;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Forensics.ML.Models.Diffusion;

/// <summary>
/// diffusers' <c>AutoencoderKL</c> (the KL-regularised VAE of latent diffusion / Stable Diffusion) in TorchSharp.
/// Modules are named as diffusers' attributes, so <c>state_dict()</c> keys equal those of
/// <c>diffusion_pytorch_model.safetensors</c>: encoder.*, decoder.*, quant_conv.*, post_quant_conv.*.
/// <see cref="Encode"/> and <see cref="Decode"/> never apply <see cref="AutoencoderKLConfig.ScalingFactor"/>; callers
/// that feed a diffusion model multiply by it explicitly, as diffusers' pipelines do. <c>forward(x)</c> is
/// diffusers' default forward: decode(encode(x).mode()).
/// </summary>
public sealed class AutoencoderKL : nn.Module<Tensor, Tensor>
{
    /// <summary>Weights file names FromPretrained looks for, in order of preference.</summary>
    public static IReadOnlyList<string> WeightsFileNames { get; } =
        ["diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin"];

    private readonly VaeEncoder encoder;
    private readonly VaeDecoder decoder;
    private readonly Conv2d? quant_conv;
    private readonly Conv2d? post_quant_conv;

    /// <summary>A randomly initialised model of <paramref name="config"/> (validated first), in eval mode.</summary>
    public AutoencoderKL(AutoencoderKLConfig config) : base(nameof(AutoencoderKL))
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        Config = config;
        encoder = new VaeEncoder(config);
        decoder = new VaeDecoder(config);
        var latent = config.LatentChannels;
        if (config.UseQuantConv) quant_conv = nn.Conv2d(2 * latent, 2 * latent, kernel_size: 1);
        if (config.UsePostQuantConv) post_quant_conv = nn.Conv2d(latent, latent, kernel_size: 1);
        RegisterComponents();
        eval();
    }

    /// <summary>The configuration the model was built from.</summary>
    public AutoencoderKLConfig Config { get; }

    /// <summary>Image pixels per latent pixel along each axis (8 for Stable Diffusion).</summary>
    public int DownsampleFactor => Config.DownsampleFactor;

    /// <summary>
    /// Encodes images <paramref name="x"/> [B, in_channels, H, W] with values in [-1, 1] to the posterior over latents
    /// [B, latent, H/f, W/f] (f = <see cref="DownsampleFactor"/>; sizes not divisible by f are floored level by level).
    /// </summary>
    public DiagonalGaussian Encode(Tensor x)
    {
        CheckImage(x, Config.InChannels, nameof(x));
        using var scope = NewDisposeScope();
        var moments = encoder.call(x);
        if (quant_conv is not null) moments = quant_conv.call(moments);
        var posterior = DiagonalGaussian.FromMoments(moments);
        posterior.Mean.MoveToOuterDisposeScope();
        posterior.LogVar.MoveToOuterDisposeScope();
        return posterior;
    }

    /// <summary>Decodes latents <paramref name="z"/> [B, latent, h, w] (unscaled) to images [B, out_channels, h*f, w*f], roughly in [-1, 1].</summary>
    public Tensor Decode(Tensor z)
    {
        CheckImage(z, Config.LatentChannels, nameof(z));
        using var scope = NewDisposeScope();
        var hidden = post_quant_conv is null ? z : post_quant_conv.call(z);
        return decoder.call(hidden).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Encode then decode: the latent is a posterior sample drawn with <paramref name="generator"/> when
    /// <paramref name="sample"/> (the dataset-alignment recipe: seed 42), otherwise the posterior mean. The output has the
    /// decoder's size, which differs from the input's when H or W is not a multiple of <see cref="DownsampleFactor"/>.
    /// </summary>
    public Tensor Reconstruct(Tensor x, bool sample, Generator? generator = null)
    {
        using var posterior = Encode(x);
        using var z = sample ? posterior.Sample(generator) : posterior.Mode();
        return Decode(z);
    }

    /// <inheritdoc/>
    public override Tensor forward(Tensor x) => Reconstruct(x, sample: false);

    /// <summary>
    /// Multiply-accumulates of one encode + decode of an H x W image (batch 1): every convolution and linear layer
    /// (output elements x input channels x kernel area; what <see cref="MacCounter"/> measures) plus
    /// <see cref="AttentionMacsPerImage"/>, the mid-block attention matrix products that are not modules.
    /// Computed from the configuration, so it costs nothing at any size.
    /// </summary>
    public long MacsPerImage(int height, int width) => LayerMacsPerImage(height, width) + AttentionMacsPerImage(height, width);

    /// <summary>
    /// The attention matrix products of both mid blocks: per attention over N = h*w latent pixels of C channels,
    /// q k^T and probabilities x v each cost N^2 C, so 2 N^2 C (0 without mid-block attention).
    /// </summary>
    public long AttentionMacsPerImage(int height, int width)
    {
        if (!Config.MidBlockAddAttention) return 0;
        var (h, w) = LatentSize(height, width);
        long n = (long)h * w;
        long c = Config.BlockOutChannels[^1];
        return 2 /* encoder and decoder */ * (2 * n * n * c);
    }

    /// <summary>The MACs of convolution and linear layers alone for an H x W image (equal to MacCounter's count of encode + decode).</summary>
    public long LayerMacsPerImage(int height, int width)
    {
        if (height < 1 || width < 1) throw new ArgumentOutOfRangeException(nameof(height), $"{height}x{width} is not an image size");
        var ch = Config.BlockOutChannels;
        long latent = Config.LatentChannels;
        long Conv(long h, long w, long cin, long cout, long k) => h * w * cout * cin * k * k;
        long Resnet(long h, long w, long cin, long cout) =>
            Conv(h, w, cin, cout, 3) + Conv(h, w, cout, cout, 3) + (cin != cout ? Conv(h, w, cin, cout, 1) : 0);
        long Mid(long h, long w, long c) =>
            2 * Resnet(h, w, c, c) + (Config.MidBlockAddAttention ? 4 * h * w * c * c : 0);

        long total = 0;
        long hh = height, ww = width;
        total += Conv(hh, ww, Config.InChannels, ch[0], 3);
        long prev = ch[0];
        for (var i = 0; i < ch.Count; i++)
        {
            for (var j = 0; j < Config.LayersPerBlock; j++) total += Resnet(hh, ww, j == 0 ? prev : ch[i], ch[i]);
            prev = ch[i];
            if (i == ch.Count - 1) break;
            (hh, ww) = (DownsampledSize(hh, height, width), DownsampledSize(ww, height, width));
            total += Conv(hh, ww, ch[i], ch[i], 3);
        }
        total += Mid(hh, ww, ch[^1]);
        total += Conv(hh, ww, ch[^1], 2 * latent, 3);
        if (Config.UseQuantConv) total += Conv(hh, ww, 2 * latent, 2 * latent, 1);

        if (Config.UsePostQuantConv) total += Conv(hh, ww, latent, latent, 1);
        total += Conv(hh, ww, latent, ch[^1], 3);
        total += Mid(hh, ww, ch[^1]);
        prev = ch[^1];
        for (var i = 0; i < ch.Count; i++)
        {
            var c = ch[ch.Count - 1 - i];
            for (var j = 0; j < Config.LayersPerBlock + 1; j++) total += Resnet(hh, ww, j == 0 ? prev : c, c);
            prev = c;
            if (i == ch.Count - 1) break;
            // A 4x4 stride-2 transposed conv touches cin x cout x 16 weights per input pixel, i.e. 4 per output pixel.
            if (Config.DecoderUpsample == AutoencoderKLConfig.UpsampleConvTranspose) total += Conv(hh, ww, c, c, 4);
            (hh, ww) = (2 * hh, 2 * ww);
            if (Config.DecoderUpsample != AutoencoderKLConfig.UpsampleConvTranspose) total += Conv(hh, ww, c, c, 3);
        }
        total += Conv(hh, ww, ch[0], Config.OutChannels, 3);
        return total;
    }

    /// <summary>The latent size for an H x W image: each downsampler maps n to floor(n / 2) (pad 1 right, 3x3 stride 2).</summary>
    public (int Height, int Width) LatentSize(int height, int width)
    {
        long h = height, w = width;
        for (var i = 0; i < Config.BlockOutChannels.Count - 1; i++)
            (h, w) = (DownsampledSize(h, height, width), DownsampledSize(w, height, width));
        return ((int)h, (int)w);
    }

    static long DownsampledSize(long n, int height, int width) =>
        n >= 2 ? (n - 2) / 2 + 1 : throw new ArgumentOutOfRangeException(nameof(height), $"{height}x{width} is too small for the VAE's downsamplers");

    static void CheckImage(Tensor x, int channels, string name)
    {
        if (x.dim() != 4 || x.shape[1] != channels)
            throw new ArgumentException($"expected [B, {channels}, H, W], got [{string.Join(", ", x.shape)}]", name);
    }

    /// <summary>
    /// Loads a diffusers VAE folder: config.json plus diffusion_pytorch_model.safetensors (or .bin). A pipeline root
    /// whose vae/ subfolder holds them also works. Loading is strict: any missing, unexpected or mis-shaped tensor
    /// fails with an error naming the file and the keys. Old diffusers attention names are renamed first.
    /// </summary>
    public static AutoencoderKL FromPretrained(string folder)
    {
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"No VAE folder at {folder}");
        if (!File.Exists(Path.Combine(folder, "config.json")) && File.Exists(Path.Combine(folder, "vae", "config.json")))
            folder = Path.Combine(folder, "vae");
        var config = AutoencoderKLConfig.FromJsonFile(Path.Combine(folder, "config.json"));
        var weights = WeightsFileNames.Select(n => Path.Combine(folder, n)).FirstOrDefault(File.Exists)
            ?? throw new FileNotFoundException($"{folder} holds none of {string.Join(", ", WeightsFileNames)}");
        return FromCheckpoint(config, weights);
    }

    /// <summary>
    /// Builds <paramref name="config"/> and loads <paramref name="weightsPath"/> (.safetensors, or a .bin/.ckpt torch
    /// zip checkpoint) strictly, accepting diffusers' current names, its old attention names (query, key, value,
    /// proj_attn) and the original CompVis/LDM layout (encoder.down.N.block.M..., optionally under first_stage_model.).
    /// </summary>
    public static AutoencoderKL FromCheckpoint(AutoencoderKLConfig config, string weightsPath)
    {
        using var weights = WeightsFile.Load(weightsPath);
        var model = new AutoencoderKL(config);
        try
        {
            AutoencoderKLKeys.Upgrade(weights, config);
            model.LoadWeights(weights, strict: true);
            return model;
        }
        catch (WeightsMismatchException e)
        {
            model.Dispose();
            throw new InvalidDataException($"{weightsPath}: {e.Message}", e);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>Copies <paramref name="weights"/> (diffusers names) into the model; strict loads throw on any disagreement.</summary>
    public LoadReport LoadWeights(StateDict weights, bool strict = true) => StateDictLoader.Load(this, weights, strict);
}
