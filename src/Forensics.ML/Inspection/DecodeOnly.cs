using Forensics.ML.Models.Diffusion;
using TorchSharp;
using static TorchSharp.torch;

namespace Forensics.ML.Inspection;

/// <summary>Runs an autoencoder's decoder alone, so MacCounter sees only its layers. The autoencoder belongs to the caller.</summary>
public sealed class DecodeOnly : nn.Module<Tensor, Tensor>
{
    readonly AutoencoderKL vae;

    public DecodeOnly(AutoencoderKL vae) : base(nameof(DecodeOnly))
    {
        this.vae = vae;
        RegisterComponents();
    }

    /// <summary>Decodes latents [N, latent_channels, h, w] (unscaled) as <see cref="AutoencoderKL.Decode"/> does.</summary>
    public override Tensor forward(Tensor z) => vae.Decode(z);

    // The autoencoder is the caller's: disposing the wrapper must not dispose it.
    protected override void Dispose(bool disposing) { }
}
