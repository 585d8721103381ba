using static TorchSharp.torch;

namespace Forensics.ML.Generators;

/// <summary>
/// A trained image generator that a benchmark samples its fake images from (a latent diffusion model, a GAN, ...).
/// Sampling is deterministic per (seed, image index), so a resumed or re-batched build writes the same images.
/// </summary>
public interface IImageGenerator : IDisposable
{
    /// <summary>The generator's name, used as its folder in the GenImage layout (e.g. "ldm_nearest").</summary>
    string Name { get; }

    /// <summary>The model family: "latent-diffusion", "gan", "pixel-diffusion", ...</summary>
    string Family { get; }

    /// <summary>Side of the square images it makes, in pixels.</summary>
    int Resolution { get; }

    /// <summary>
    /// Images <paramref name="firstIndex"/> .. firstIndex + count - 1 of the stream of <paramref name="seed"/>: each image
    /// depends only on (seed, its index), not on how the stream is cut into calls. Returns [count, 3, R, R] float32 in
    /// [0, 1] on the CPU; the caller disposes it.
    /// </summary>
    Tensor Sample(long seed, long firstIndex, int count);
}
