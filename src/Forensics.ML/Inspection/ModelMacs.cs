using Forensics.ML.Models;
using Forensics.ML.Models.Diffusion;
using static TorchSharp.torch;

namespace Forensics.ML.Inspection;

/// <summary>
/// Multiply-accumulates of the models compared in the aligned-dataset paper (Rajan et al., 2410.11835): an autoencoder's
/// encode and decode (one alignment = both), and a UNet's denoising step (a generation = steps x UNet + one decode).
/// </summary>
public static class ModelMacs
{
    /// <summary>The image side the MACs are quoted at for autoencoders (and the UNet's latent follows from it), as in the paper's comparison.</summary>
    public const int CostImageSize = 256;
    /// <summary>The UNet's MACs per step are quoted at a 32 x 32 latent (a 256 x 256 image through an f8 autoencoder) with 77 text tokens.</summary>
    public const int UnetLatentSize = 32;
    /// <summary>The detector MACs are quoted at 224 x 224.</summary>
    public const int DetectorImageSize = 224;

    /// <summary>The paper's figures (Rajan et al., 2410.11835): the reference point for the cost ratio.</summary>
    public const string PaperReference =
        "Rajan et al. (aligned datasets) quote about 25.2 GMACs for a full latent-diffusion generation (U-Net about 23.6, " +
        "autoencoder about 1.5) against 2.32 for a reconstruction: alignment is about 10x cheaper than generating fakes.";

    /// <summary>
    /// Encode and decode MACs of one side x side image. The decoder's layers are measured by MacCounter on a 2 x 2 latent
    /// and scaled by the latent area (every decoder layer's output grows with it exactly), so the count costs nothing
    /// even for large images; its mid-block attention products are added analytically; encode is the rest of the total.
    /// </summary>
    public static (long Encode, long Decode) EncodeDecode(AutoencoderKL vae, int side)
    {
        var total = vae.MacsPerImage(side, side);
        var (h, w) = vae.LatentSize(side, side);
        using var latent = zeros(1, vae.Config.LatentChannels, 2, 2);
        using var wrapper = new DecodeOnly(vae);
        var decode = MacCounter.PerSample(wrapper, latent) * h * w / 4 + vae.AttentionMacsPerImage(side, side) / 2;
        return (total - decode, decode);
    }

    /// <summary>
    /// Encode and decode MACs of one side x side image through the diffusers autoencoder folder <paramref name="folder"/>
    /// (or its vae/), and its downsampling factor. Only config.json is read: a randomly initialised model counts the same.
    /// </summary>
    public static (long Encode, long Decode, int Factor) Autoencoder(string folder, int side)
    {
        if (!File.Exists(Path.Combine(folder, "config.json")) && File.Exists(Path.Combine(folder, "vae", "config.json"))) folder = Path.Combine(folder, "vae");
        var config = AutoencoderKLConfig.FromJsonFile(Path.Combine(folder, "config.json"));
        using var model = new AutoencoderKL(config);
        var (encode, decode) = EncodeDecode(model, side);
        return (encode, decode, config.DownsampleFactor);
    }

    /// <summary>
    /// UNet MACs per step at a latent x latent input. Up to 32 measured directly (a forward); above, the layer MACs are
    /// a + b·L² (the cross-attention key/value projections of the text and the time embedding do not grow with the
    /// latent; everything else grows with its area), fitted exactly from 16 and 32, plus the analytic attention products.
    /// </summary>
    public static long UnetStep(UNet2DConditionModel unet, int latent)
    {
        if (latent <= UnetLatentSize) return unet.MacsPerSample(latent, latent);
        long Layers(int l) => unet.MacsPerSample(l, l) - unet.AttentionMatmulMacs(l, l);
        long small = Layers(UnetLatentSize / 2), large = Layers(UnetLatentSize);
        var perArea = (large - small) / (UnetLatentSize * UnetLatentSize - UnetLatentSize * UnetLatentSize / 4);
        var fixedPart = large - perArea * UnetLatentSize * UnetLatentSize;
        return fixedPart + perArea * latent * latent + unet.AttentionMatmulMacs(latent, latent);
    }
}
