using Forensics.ML.Imaging;
using Forensics.ML.Models.Diffusion;
using Forensics.ML.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Forensics.ML.Lare;

/// <summary>One image to extract: RGB [3, H, W] in [0, 1] (as <see cref="ImageDecoder.Decode(string, ImageLimits)"/> gives) and its prompt.</summary>
public readonly record struct LareInput(Tensor Image, string Prompt);

/// <summary>
/// LaRE, the latent reconstruction error of Luo et al. (CVPR 2024): per image, RGB resized to S x S (bicubic with
/// antialias in two 8-bit passes, PIL's <c>img.resize((S, S))</c> of the authors' script) mapped to [-1, 1]; VAE
/// posterior sample (or mean) times scaling_factor; E noised copies x_t = add_noise(z, eps, t); the UNet's
/// prediction at t conditioned on the prompt; LaRE = mean over the E copies of (prediction - target)^2, a float32
/// [latent_channels, S/f, S/f] map (target = eps, or the velocity for v_prediction models).
/// Randomness is per image and independent of batching: a CPU generator seeded with <see cref="LareOptions.Seed"/>
/// draws first the posterior noise [1, C, h, w] (skipped for <see cref="LarePosterior.Mean"/>), then the ensemble
/// noise [E, C, h, w], as <c>torch.randn(shape, generator=g)</c> does.
/// </summary>
public sealed class LareExtractor
{
    /// <summary>An extractor over loaded components with validated <paramref name="options"/>.</summary>
    public LareExtractor(StableDiffusionComponents components, LareOptions options)
    {
        ArgumentNullException.ThrowIfNull(components);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var steps = components.Schedule.NumTrainTimesteps;
        if (options.Timestep >= steps)
            throw new ArgumentOutOfRangeException(nameof(options), options.Timestep, $"Timestep must lie in [0, {steps - 1}] (num_train_timesteps {steps})");
        Components = components;
        Options = options;
    }

    /// <summary>The models.</summary>
    public StableDiffusionComponents Components { get; }

    /// <summary>The settings.</summary>
    public LareOptions Options { get; }

    /// <summary>
    /// The VAE input [1, 3, S, S] in [-1, 1] of an RGB image [3, H, W] in [0, 1]: resized to S x S (aspect not kept,
    /// no crop; bicubic with antialias as PIL's default resize filter, horizontal then vertical pass, each rounded to 8
    /// bits as PIL's RGB resampling is; within one level of PIL, which computes in fixed point).
    /// An image already S x S is used as is (PIL returns a copy).
    /// </summary>
    public static Tensor Preprocess(Tensor image, int size)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (image.dim() != 3 || image.shape[0] != 3)
            throw new ArgumentException($"LaRE expects an RGB image [3, H, W], got [{string.Join(", ", image.shape)}]", nameof(image));
        using var scope = NewDisposeScope();
        var resized = image.to_type(ScalarType.Float32);
        var (height, width) = ImageSize.Of(image);
        // PIL resamples an RGB image in two 8-bit passes, horizontal then vertical, rounding after each.
        if (width != size) resized = Quantize(ImageOps.Resize(resized, height, size, ResizeFilter.Bicubic));
        if (height != size) resized = Quantize(ImageOps.Resize(resized, size, size, ResizeFilter.Bicubic));
        return resized.Times(2).SubInPlace(1).unsqueeze(0).MoveToOuterDisposeScope();
        static Tensor Quantize(Tensor x) => x.MulInPlace(255).round_().DivInPlace(255);
    }

    /// <summary>The LaRE map [C, h, w] (float32, CPU) of one image.</summary>
    public Tensor Extract(Tensor image, string prompt) => ExtractBatch([new LareInput(image, prompt)])[0];

    /// <summary>
    /// The LaRE maps of several images with one VAE encode and one UNet pass over all E x N noised latents; each map
    /// equals the one <see cref="Extract"/> gives for the image alone (up to float rounding of batched kernels).
    /// </summary>
    public Tensor[] ExtractBatch(IReadOnlyList<LareInput> inputs)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        if (inputs.Count == 0) return [];
        var device = Components.Device;
        var e = Options.Ensemble;
        var t = (long)Options.Timestep;
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var x = cat(inputs.Select(i => Preprocess(i.Image, Options.ResizeTo)).ToArray(), 0).to(device);
        using var posterior = Components.Vae.Encode(x);
        var scaling = Components.Vae.Config.ScalingFactor;

        var noisy = new Tensor[inputs.Count];
        var targets = new Tensor[inputs.Count];
        var conditions = new Tensor[inputs.Count];
        for (var i = 0; i < inputs.Count; i++)
        {
            using var generator = new Generator(unchecked((ulong)Options.Seed), CPU);
            var mean = posterior.Mean.narrow(0, i, 1);
            Tensor latent;
            if (Options.Posterior == LarePosterior.Sample)
            {
                // A one-image posterior, so the draw has the shape [1, C, h, w] whatever the batch.
                using var single = new DiagonalGaussian(mean.clone(), posterior.LogVar.narrow(0, i, 1).clone());
                latent = single.Sample(generator);
            }
            else latent = mean;
            latent = latent.Times(scaling);
            var shape = latent.shape.ToArray();
            shape[0] = e;
            var noise = randn(shape, ScalarType.Float32, CPU, generator: generator).to(device);
            var latents = latent.expand(shape);
            noisy[i] = Components.Scheduler.AddNoise(latents, noise, t);
            targets[i] = Target(latents, noise, t);
            conditions[i] = Components.PromptEmbedding(inputs[i].Prompt).expand(e, -1, -1);
        }

        var prediction = Components.UnetForward(cat(noisy, 0), t, cat(conditions, 0));
        var maps = new Tensor[inputs.Count];
        for (var i = 0; i < inputs.Count; i++)
        {
            var error = prediction.narrow(0, i * e, e).to_type(ScalarType.Float32) - targets[i].to_type(ScalarType.Float32);
            maps[i] = error.square().mean([0L]).cpu().contiguous().MoveToOuterDisposeScope();
        }
        return maps;
    }

    /// <summary>What the UNet is trained to predict: eps, or diffusers' get_velocity sqrt(a)*eps - sqrt(1-a)*x0.</summary>
    private Tensor Target(Tensor latents, Tensor noise, long t)
    {
        if (Components.Schedule.PredictionType == "epsilon") return noise;
        var acp = Components.Scheduler.AlphasCumprod[t].to(latents.device).to_type(latents.dtype);
        return acp.sqrt() * noise - acp.SubtractedFrom(1.0).sqrt() * latents;
    }
}
