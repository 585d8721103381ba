using Forensics.ML.Lare;
using Forensics.ML.Models.Diffusion;
using Forensics.ML.Randomness;
using TorchSharp;
using static TorchSharp.torch;

namespace Forensics.ML.Generators;

/// <summary>
/// Reads a generator folder written by train-ldm or train-gan: its generator.json says which kind it is and how to
/// sample it.
/// </summary>
public static class GeneratorFolder
{
    /// <summary>The generator in <paramref name="folder"/>; errors name the folder or the missing file.</summary>
    public static IImageGenerator Load(string folder)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(folder);
        var root = Path.GetFullPath(folder);
        if (!Directory.Exists(root)) throw new DirectoryNotFoundException($"No generator folder at {root}");
        var manifest = GeneratorManifest.Read(root);
        return manifest.Kind switch
        {
            GeneratorManifest.LatentDiffusionKind => new LatentDiffusionGenerator(root, manifest),
            _ => new GanImageGenerator(root, manifest),
        };
    }

    /// <summary>The torch generator seed of image <paramref name="index"/> of the stream <paramref name="seed"/>.</summary>
    public static ulong ImageSeed(long seed, long index) => Seeds.Derive(unchecked((ulong)seed), index) >> 1;

    internal static void CheckRange(long firstIndex, int count)
    {
        if (firstIndex < 0) throw new ArgumentOutOfRangeException(nameof(firstIndex), firstIndex, "The first image index must be 0 or more.");
        if (count < 1) throw new ArgumentOutOfRangeException(nameof(count), count, "At least one image must be asked for.");
    }
}

/// <summary>
/// A latent diffusion model in a diffusers Stable Diffusion folder, sampled with DDIM (eta 0) from per-image initial
/// noise: image i of seed s starts from randn([1, C, h, w]) of a torch generator seeded with
/// <see cref="GeneratorFolder.ImageSeed"/>(s, i), and each image is denoised on its own (batch 1), so the result does
/// not depend on how the stream is cut into calls. Optional classifier-free guidance against the empty prompt.
/// </summary>
public sealed class LatentDiffusionGenerator : IImageGenerator
{
    private readonly StableDiffusionComponents components;
    private readonly DdimScheduler scheduler;
    private readonly Tensor cond;
    private readonly Tensor? uncond;
    private readonly GeneratorManifest manifest;

    /// <summary>Loads the Stable Diffusion folder <paramref name="folder"/> described by <paramref name="manifest"/>.</summary>
    public LatentDiffusionGenerator(string folder, GeneratorManifest manifest)
    {
        this.manifest = manifest;
        components = StableDiffusionComponents.Load(folder);
        try
        {
            scheduler = new DdimScheduler(components.Schedule);
            scheduler.SetTimesteps(manifest.InferenceSteps);
            cond = components.PromptEmbedding(manifest.Prompt);
            if (manifest.GuidanceScale != 1) uncond = components.PromptEmbedding("");
            var factor = components.Vae.DownsampleFactor;
            if (manifest.Resolution % factor != 0)
                throw new InvalidDataException($"{folder}: resolution {manifest.Resolution} is not divisible by the VAE's factor {factor}");
        }
        catch
        {
            components.Dispose();
            throw;
        }
    }

    /// <inheritdoc/>
    public string Name => manifest.Name;

    /// <inheritdoc/>
    public string Family => manifest.Family;

    /// <inheritdoc/>
    public int Resolution => manifest.Resolution;

    /// <summary>The loaded Stable Diffusion components.</summary>
    public StableDiffusionComponents Components => components;

    /// <inheritdoc/>
    public Tensor Sample(long seed, long firstIndex, int count)
    {
        GeneratorFolder.CheckRange(firstIndex, count);
        using var noGrad = no_grad();
        var vae = components.Vae;
        var side = Resolution / vae.DownsampleFactor;
        var images = new Tensor[count];
        try
        {
            for (var i = 0; i < count; i++)
            {
                using var scope = NewDisposeScope();
                using var generator = new Generator(GeneratorFolder.ImageSeed(seed, firstIndex + i));
                var latents = randn([1, components.Unet.Config.InChannels, side, side], generator: generator);
                foreach (var t in scheduler.Timesteps)
                {
                    var eps = components.UnetForward(latents, t, cond);
                    if (uncond is not null)
                    {
                        var epsUncond = components.UnetForward(latents, t, uncond);
                        eps = epsUncond + (eps - epsUncond) * manifest.GuidanceScale;
                    }
                    using var step = scheduler.Step(eps, t, latents);
                    latents = step.PrevSample.alias();
                }
                var decoded = vae.Decode(latents / vae.Config.ScalingFactor);
                images[i] = decoded.div(2).add_(0.5).clamp_(0, 1).MoveToOuterDisposeScope();
            }
            return cat(images, 0);
        }
        finally
        {
            foreach (var image in images) image?.Dispose();
        }
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        cond.Dispose();
        uncond?.Dispose();
        scheduler.Dispose();
        components.Dispose();
    }
}

/// <summary>
/// A DCGAN generator folder: image i of seed s is G(z) for z = randn([1, latent, 1, 1]) of a torch generator seeded
/// with <see cref="GeneratorFolder.ImageSeed"/>(s, i), computed in eval mode one image at a time.
/// </summary>
public sealed class GanImageGenerator : IImageGenerator
{
    private readonly DcganGenerator generator;
    private readonly GeneratorManifest manifest;

    /// <summary>Loads the DCGAN in <paramref name="folder"/> described by <paramref name="manifest"/>.</summary>
    public GanImageGenerator(string folder, GeneratorManifest manifest)
    {
        this.manifest = manifest;
        generator = GanTrainer.LoadGenerator(folder);
        if (generator.Config.Resolution != manifest.Resolution)
        {
            generator.Dispose();
            throw new InvalidDataException($"{folder}: {GeneratorManifest.FileName} says resolution {manifest.Resolution} but config.json {generator.Config.Resolution}");
        }
    }

    /// <inheritdoc/>
    public string Name => manifest.Name;

    /// <inheritdoc/>
    public string Family => manifest.Family;

    /// <inheritdoc/>
    public int Resolution => manifest.Resolution;

    /// <inheritdoc/>
    public Tensor Sample(long seed, long firstIndex, int count)
    {
        GeneratorFolder.CheckRange(firstIndex, count);
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var images = new Tensor[count];
        for (var i = 0; i < count; i++)
        {
            using var rng = new Generator(GeneratorFolder.ImageSeed(seed, firstIndex + i));
            var z = randn([1, generator.Config.LatentDim, 1, 1], generator: rng);
            images[i] = generator.call(z);
        }
        return cat(images, 0).div_(2).add_(0.5).clamp_(0, 1).MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    public void Dispose() => generator.Dispose();
}
