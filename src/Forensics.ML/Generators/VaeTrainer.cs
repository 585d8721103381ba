using System.Globalization;
using Forensics.ML.Models.Diffusion;
using Forensics.ML.Randomness;
using Forensics.ML.Runtime;
using Forensics.ML.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace Forensics.ML.Generators;

/// <summary>Options of <see cref="VaeTrainer"/> (`forensics train-vae`).</summary>
/// <param name="Data">Folder of training images (PNG/JPEG, recursive, each at least <see cref="Resolution"/> square).</param>
/// <param name="Output">Output folder: the diffusers VAE folder, card.md and checkpoint.safetensors.</param>
public sealed record VaeTrainOptions(string Data, string Output) : GeneratorTrainingOptions(Data, Output)
{
    /// <summary>Adam learning rate.</summary>
    public override double LearningRate { get; init; } = 1e-3;

    /// <summary>The model's name on its card.</summary>
    public string Name { get; init; } = "vae";

    /// <summary>Decoder upsampler: "nearest" (diffusers' layout) or "transpose" (ConvTranspose2d).</summary>
    public string Decoder { get; init; } = "nearest";

    /// <summary>Channels per level; n levels downsample by 2^(n-1) (three levels: 64x64 images -> 16x16 latents).</summary>
    public IReadOnlyList<int> BlockOutChannels { get; init; } = [32, 64, 64];

    /// <summary>Resnets per encoder block (decoder blocks have one more).</summary>
    public int LayersPerBlock { get; init; } = 1;

    /// <summary>GroupNorm groups (must divide every channel count).</summary>
    public int NormNumGroups { get; init; } = 16;

    /// <summary>Latent channels.</summary>
    public int LatentChannels { get; init; } = 4;

    /// <summary>Whether the mid blocks keep their self-attention (diffusers' default).</summary>
    public bool MidBlockAttention { get; init; } = true;

    /// <summary>Side of the square training crops.</summary>
    public int Resolution { get; init; } = 64;

    /// <summary>Reconstruction loss: "l1" (LDM) or "mse".</summary>
    public string Loss { get; init; } = "l1";

    /// <summary>
    /// Weight of the KL term relative to the reconstruction loss summed over an image's pixels, as in LDM's KL
    /// autoencoders (1e-6 there): loss per image = sum |x - x^| + kl_weight * KL(q(z|x) || N(0, I)).
    /// </summary>
    public double KlWeight { get; init; } = 1e-6;

    /// <summary>The VAE configuration these options build (scaling factor 1 until measured).</summary>
    public AutoencoderKLConfig ModelConfig() => new()
    {
        DownBlockTypes = BlockOutChannels.Select(_ => AutoencoderKLConfig.DownEncoderBlock2D).ToList(),
        UpBlockTypes = BlockOutChannels.Select(_ => AutoencoderKLConfig.UpDecoderBlock2D).ToList(),
        BlockOutChannels = BlockOutChannels.ToList(),
        LayersPerBlock = LayersPerBlock,
        NormNumGroups = NormNumGroups,
        LatentChannels = LatentChannels,
        MidBlockAddAttention = MidBlockAttention,
        SampleSize = Resolution,
        ScalingFactor = 1.0,
        DecoderUpsample = DecoderUpsampleName(Decoder),
    };

    /// <summary>Maps the --decoder value to the config's <see cref="AutoencoderKLConfig.DecoderUpsample"/>.</summary>
    public static string DecoderUpsampleName(string decoder) => decoder.Trim().ToLowerInvariant() switch
    {
        "nearest" => AutoencoderKLConfig.UpsampleNearest,
        "transpose" or "conv_transpose" => AutoencoderKLConfig.UpsampleConvTranspose,
        _ => throw new ArgumentException($"--decoder must be nearest or transpose, not '{decoder}'"),
    };

    /// <summary>Throws an <see cref="ArgumentException"/> naming the first bad option.</summary>
    public void Validate()
    {
        ValidateSchedule();
        if (!(KlWeight >= 0)) throw new ArgumentException($"--kl-weight must be 0 or more, not {KlWeight}");
        if (Loss is not ("l1" or "mse")) throw new ArgumentException($"--loss must be l1 or mse, not '{Loss}'");
        var config = ModelConfig();
        try { config.Validate("train-vae options"); }
        catch (InvalidDataException e) { throw new ArgumentException(e.Message, e); }
        if (Resolution % config.DownsampleFactor != 0)
            throw new ArgumentException($"--resolution {Resolution} is not divisible by the VAE's downsampling factor {config.DownsampleFactor}");
    }
}

/// <summary>
/// Trains a small AutoencoderKL from scratch on a folder of images and writes a diffusers VAE folder (config.json with
/// the measured scaling factor, diffusion_pytorch_model.safetensors) that <see cref="AutoencoderKL.FromPretrained"/>
/// loads unchanged, plus card.md. Deterministic per seed: initial weights from torch's generator seeded from the
/// seed, and each step's batch, crops, flips and posterior noise from (seed, step) alone, so a resumed run continues
/// bit for bit.
/// </summary>
public static class VaeTrainer
{
    private const long InitStream = 1, BatchStream = 2, NoiseStream = 3, ScaleStream = 4;

    /// <summary>Images encoded to measure the latents' standard deviation.</summary>
    public const int ScalingImages = 256;

    /// <summary>Trains (or resumes) and, when all steps are done, writes the VAE folder and its card.</summary>
    public static GeneratorTrainingResult Run(VaeTrainOptions options, TextWriter log, CancellationToken ct = default)
    {
        options.Validate();
        using var images = TrainingImages.Load(options.Data, options.Resolution);
        log.WriteLine($"train-vae: {images.Count} images from {images.Folder} (sha256 {images.ContentHash})");
        var config = options.ModelConfig();
        manual_seed((long)SeedOf(options.Seed, InitStream));
        using var vae = new AutoencoderKL(config);
        vae.train();
        var part = GeneratorCheckpoint.Part("vae/", vae, options.LearningRate, 0.5, 0.9);
        using var adam = part.Optimizer;
        var fingerprint = TrainingLoopRunner.Fingerprint(("model", "vae"), ("config", config.ToJson().ReplaceLineEndings("")),
            ("data", images.ContentHash), ("steps", options.Steps), ("batch", options.BatchSize), ("lr", options.LearningRate),
            ("loss", options.Loss), ("kl_weight", options.KlWeight), ("seed", options.Seed));
        var pixels = 3.0 * options.Resolution * options.Resolution;

        var result = TrainingLoopRunner.Run(options.Output, [part], fingerprint, options.Steps, options.CheckpointEvery,
            options.StopAfter, options.ProgressEvery, log, "train-vae", step =>
            {
                using var scope = NewDisposeScope();
                var random = new RandomSource(Seeds.Derive(unchecked((ulong)options.Seed), BatchStream, step));
                var indices = Enumerable.Range(0, options.BatchSize).Select(_ => random.NextInt(images.Count)).ToList();
                var x = images.Batch(indices, random, flip: true);
                using var noise = new Generator(SeedOf(options.Seed, NoiseStream, step));
                using var posterior = vae.Encode(x);
                var z = posterior.Sample(noise);
                var recon = vae.Decode(z);
                var diff = recon - x;
                var rec = options.Loss == "l1" ? diff.abs().mean() : diff.square().mean();
                var kl = KlPerImage(posterior).mean();
                // Per-pixel reconstruction plus the KL scaled as LDM weighs it against the per-image pixel sum.
                var loss = rec.Plus(kl.Times(options.KlWeight / pixels));
                adam.zero_grad();
                loss.backward();
                adam.step();
                return (loss.item<float>(), string.Create(CultureInfo.InvariantCulture, $"rec {rec.item<float>():G5} kl {kl.item<float>():G5}"));
            }, ct);
        if (!result.Finished) return result;

        vae.eval();
        var scaling = MeasureScalingFactor(vae, images, options.Seed);
        var final = config with { ScalingFactor = scaling };
        WriteFolder(options.Output, final, vae);
        log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"train-vae: latent std {1 / scaling:G5} -> scaling_factor {scaling:G6}; wrote {Path.GetFullPath(options.Output)}"));
        new ModelCard(options.Name, "autoencoder", "autoencoder-kl", ".", options.Source, options.Seed, ModelCard.DataLine(images), ModelCard.ProjectLicence)
        {
            Notes = string.Create(CultureInfo.InvariantCulture,
                $"""
                A small diffusers AutoencoderKL trained from scratch by `forensics train-vae` on {options.Resolution}x{options.Resolution} crops:
                block_out_channels [{string.Join(", ", options.BlockOutChannels)}], layers_per_block {options.LayersPerBlock}, {options.LatentChannels} latent channels
                (downsampling factor {final.DownsampleFactor}), decoder upsampler {final.DecoderUpsample}, {options.Steps} Adam steps of {options.BatchSize} images,
                lr {options.LearningRate}, {options.Loss} reconstruction + KL weight {options.KlWeight}. scaling_factor {scaling:G6} = 1 / std of posterior samples
                of up to {ScalingImages} centre crops (as LDM computes it). Final training loss {result.Losses[^1]:G5}.
                """),
        }.Write(options.Output);
        return result;
    }

    /// <summary>KL(q(z|x) || N(0, I)) summed over each image's latent elements, [B].</summary>
    public static Tensor KlPerImage(DiagonalGaussian posterior) =>
        posterior.Mean.square().Plus(posterior.LogVar.exp()).Minus(1).sub(posterior.LogVar).sum([1, 2, 3]).Times(0.5);

    /// <summary>1 / std of posterior samples of up to <see cref="ScalingImages"/> centre crops (LDM's scale_factor).</summary>
    public static double MeasureScalingFactor(AutoencoderKL vae, TrainingImages images, long seed)
    {
        using var noGrad = no_grad();
        using var noise = new Generator(SeedOf(seed, ScaleStream));
        var count = Math.Min(images.Count, ScalingImages);
        double sum = 0, sumSq = 0, n = 0;
        for (var first = 0; first < count; first += 32)
        {
            using var scope = NewDisposeScope();
            var x = images.Batch(Enumerable.Range(first, Math.Min(32, count - first)).ToList(), null, flip: false);
            using var posterior = vae.Encode(x);
            var z = posterior.Sample(noise).to(ScalarType.Float64);
            sum += z.sum().item<double>();
            sumSq += z.square().sum().item<double>();
            n += z.numel();
        }
        var variance = (sumSq - sum * sum / n) / Math.Max(n - 1, 1);
        if (!(variance > 0)) throw new InvalidOperationException("train-vae: the latents have zero variance; the scaling factor is undefined");
        return 1.0 / Math.Sqrt(variance);
    }

    /// <summary>Writes config.json and diffusion_pytorch_model.safetensors into <paramref name="folder"/>.</summary>
    public static void WriteFolder(string folder, AutoencoderKLConfig config, AutoencoderKL vae)
    {
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "config.json"), config.ToJson() + "\n");
        SaveWeights(Path.Combine(folder, AutoencoderKL.WeightsFileNames[0]), vae);
    }

    /// <summary>The module's state dict as safetensors (format "pt", as diffusers writes it).</summary>
    internal static void SaveWeights(string path, nn.Module module)
    {
        var entries = module.state_dict().Select(kv => (kv.Key, kv.Value.detach().contiguous())).ToList();
        Training.TrainingCheckpoint.WriteAtomically(path, temp => SafeTensors.Save(temp, entries, new Dictionary<string, string> { ["format"] = "pt" }));
    }

    /// <summary>A torch generator seed from (seed, parts): SplitMix64-derived, top bit cleared for torch.</summary>
    internal static ulong SeedOf(long seed, params ReadOnlySpan<long> parts) => Seeds.Derive(unchecked((ulong)seed), parts) >> 1;
}
