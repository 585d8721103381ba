using System.Globalization;
using Forensics.ML.Models.Clip;
using Forensics.ML.Models.Diffusion;
using Forensics.ML.Randomness;
using Forensics.ML.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Forensics.ML.Generators;

/// <summary>Options of <see cref="LdmTrainer"/> (`forensics train-ldm`).</summary>
/// <param name="Data">Folder of training images (PNG/JPEG, recursive); each is centre-cropped to the VAE's sample size.</param>
/// <param name="Vae">The VAE folder written by train-vae (config.json + diffusion_pytorch_model.safetensors).</param>
/// <param name="Text">A folder with text_encoder/ and tokenizer/ (a CLIP text model in the transformers layout).</param>
/// <param name="Output">Output folder: the Stable Diffusion folder, generator.json, card.md, checkpoint.safetensors.</param>
public sealed record LdmTrainOptions(string Data, string Vae, string Text, string Output) : GeneratorTrainingOptions(Data, Output)
{
    /// <summary>Adam learning rate.</summary>
    public override double LearningRate { get; init; } = 3e-4;

    /// <summary>The generator's name (generator.json and card).</summary>
    public string Name { get; init; } = "ldm";

    /// <summary>UNet channels per level; cross-attention on every level but the lowest-resolution one (as SD).</summary>
    public IReadOnlyList<int> BlockOutChannels { get; init; } = [64, 128];

    /// <summary>Resnets per down block (up blocks have one more).</summary>
    public int LayersPerBlock { get; init; } = 1;

    /// <summary>Attention heads per level (diffusers' attention_head_dim, which counts heads in this model).</summary>
    public int AttentionHeads { get; init; } = 4;

    /// <summary>GroupNorm groups.</summary>
    public int NormNumGroups { get; init; } = 32;

    /// <summary>The prompt every image is conditioned on.</summary>
    public string Prompt { get; init; } = "a photo";

    /// <summary>Probability of training a sample on the empty prompt instead (enables classifier-free guidance).</summary>
    public double UnconditionalProbability { get; init; } = 0.1;

    /// <summary>DDIM steps written into generator.json for sampling.</summary>
    public int InferenceSteps { get; init; } = 25;

    /// <summary>Guidance scale written into generator.json (1: off).</summary>
    public double GuidanceScale { get; init; } = 1.0;

    /// <summary>Throws an <see cref="ArgumentException"/> naming the first bad option.</summary>
    public void Validate()
    {
        ValidateSchedule();
        if (UnconditionalProbability is < 0 or > 1) throw new ArgumentException($"--uncond-prob must lie in [0, 1], not {UnconditionalProbability}");
        if (InferenceSteps is < 1 or > 1000) throw new ArgumentException($"--sample-steps must lie in [1, 1000], not {InferenceSteps}");
        if (GuidanceScale < 1) throw new ArgumentException($"--guidance must be at least 1, not {GuidanceScale}");
        if (BlockOutChannels.Count < 1) throw new ArgumentException("--unet-channels is empty");
        if (!Directory.Exists(Vae)) throw new ArgumentException($"--vae: no VAE folder at {Path.GetFullPath(Vae)}");
        if (!File.Exists(Path.Combine(Vae, "config.json")))
            throw new ArgumentException($"--vae: {Path.GetFullPath(Vae)} has no config.json (expected a folder written by train-vae)");
        foreach (var sub in new[] { "text_encoder", "tokenizer" })
            if (!Directory.Exists(Path.Combine(Text, sub)))
                throw new ArgumentException($"--text: {Path.GetFullPath(Text)} has no {sub}/ folder (a CLIP text encoder and tokenizer in the transformers layout)");
    }

    /// <summary>The UNet configuration for latents of <paramref name="latentChannels"/> at <paramref name="latentSize"/> and text of width <paramref name="crossDim"/>.</summary>
    public UNet2DConditionConfig UnetConfig(int latentChannels, int latentSize, int crossDim)
    {
        var n = BlockOutChannels.Count;
        var down = Enumerable.Range(0, n).Select(i => i < n - 1 || n == 1 ? "CrossAttnDownBlock2D" : "DownBlock2D").ToList();
        var up = down.AsEnumerable().Reverse().Select(t => t == "DownBlock2D" ? "UpBlock2D" : "CrossAttnUpBlock2D").ToList();
        var config = new UNet2DConditionConfig
        {
            SampleSize = latentSize,
            InChannels = latentChannels,
            OutChannels = latentChannels,
            DownBlockTypes = down,
            UpBlockTypes = up,
            BlockOutChannels = BlockOutChannels.ToList(),
            LayersPerBlock = Enumerable.Repeat(LayersPerBlock, n).ToList(),
            AttentionHeadDim = Enumerable.Repeat(AttentionHeads, n).ToList(),
            TransformerLayersPerBlock = Enumerable.Repeat(1, n).ToList(),
            NormNumGroups = NormNumGroups,
            CrossAttentionDim = crossDim,
        };
        try { config.Validate(); }
        catch (Exception e) when (e is ArgumentException or NotSupportedException) { throw new ArgumentException($"train-ldm options: {e.Message}", e); }
        return config;
    }
}

/// <summary>
/// Trains a small UNet2DConditionModel on the latents of a trained VAE (epsilon prediction, Stable Diffusion's DDPM
/// schedule: 1000 steps, scaled-linear betas 0.00085-0.012) conditioned by a CLIP text encoder on a fixed prompt, and
/// writes a diffusers Stable Diffusion folder (unet/, vae/, text_encoder/, tokenizer/, scheduler/, model_index.json)
/// that <see cref="Lare.StableDiffusionComponents"/> loads, plus generator.json and card.md. Each image's posterior
/// (mean, log-variance of its centre crop) is computed once; every step draws its batch, latent samples, noise,
/// timesteps and prompt dropout from (seed, step).
/// </summary>
public static class LdmTrainer
{
    private const long InitStream = 11, BatchStream = 12, NoiseStream = 13;

    /// <summary>The noise schedule trained and sampled with: Stable Diffusion 1.x's.</summary>
    public static DiffusionScheduleConfig Schedule { get; } = new()
    {
        NumTrainTimesteps = 1000, BetaStart = 0.00085, BetaEnd = 0.012, BetaSchedule = "scaled_linear",
        PredictionType = "epsilon", StepsOffset = 1, SetAlphaToOne = false, TimestepSpacing = "leading",
    };

    /// <summary>Trains (or resumes) and, when all steps are done, writes the Stable Diffusion folder.</summary>
    public static GeneratorTrainingResult Run(LdmTrainOptions options, TextWriter log, CancellationToken ct = default)
    {
        options.Validate();
        using var vae = AutoencoderKL.FromPretrained(options.Vae);
        var resolution = vae.Config.SampleSize;
        using var images = TrainingImages.Load(options.Data, resolution);
        log.WriteLine($"train-ldm: {images.Count} images from {images.Folder} (sha256 {images.ContentHash}), {resolution}x{resolution}");
        var textDir = Path.GetFullPath(options.Text);
        using var textModel = ClipTextModel.FromPretrained(Path.Combine(textDir, "text_encoder"));
        var tokenizer = ClipTokenizer.FromFolder(Path.Combine(textDir, "tokenizer"));
        using var text = new ClipTextPromptCache(tokenizer, textModel);
        using var cond = text.LastHiddenState(options.Prompt);
        using var uncond = text.LastHiddenState("");

        // Posterior of every image's centre crop, computed once (the VAE is frozen).
        Tensor means, logVars;
        using (no_grad())
        {
            var m = new List<Tensor>();
            var l = new List<Tensor>();
            for (var first = 0; first < images.Count; first += 32)
            {
                using var x = images.Batch(Enumerable.Range(first, Math.Min(32, images.Count - first)).ToList(), null, flip: false);
                var posterior = vae.Encode(x);
                m.Add(posterior.Mean);
                l.Add(posterior.LogVar);
            }
            means = cat(m, 0);
            logVars = cat(l, 0);
            foreach (var t in m.Concat(l)) t.Dispose();
        }
        using var meansOwned = means;
        using var stds = logVars.mul(0.5).exp_();
        logVars.Dispose();
        var scaling = vae.Config.ScalingFactor;
        var latentSize = (int)means.shape[2];

        var config = options.UnetConfig(vae.Config.LatentChannels, latentSize, (int)cond.shape[2]);
        manual_seed((long)VaeTrainer.SeedOf(options.Seed, InitStream));
        using var unet = new UNet2DConditionModel(config);
        unet.train();
        var part = GeneratorCheckpoint.Part("unet/", unet, options.LearningRate, 0.9, 0.999);
        using var adam = part.Optimizer;
        using var scheduler = new DdpmScheduler(Schedule);
        var vaeDigest = Weights.FileDigest.Sha256(AutoencoderKL.WeightsFileNames.Select(n => Path.Combine(options.Vae, n)).First(File.Exists));
        var textDigest = string.Join(",", Directory.EnumerateFiles(Path.Combine(textDir, "text_encoder")).Order(StringComparer.Ordinal)
            .Where(f => f.EndsWith(".safetensors", StringComparison.Ordinal) || f.EndsWith(".bin", StringComparison.Ordinal))
            .Select(Weights.FileDigest.Sha256));
        var fingerprint = TrainingLoopRunner.Fingerprint(("model", "ldm"), ("unet", config.ToString()), ("vae", vaeDigest), ("text", textDigest),
            ("data", images.ContentHash), ("prompt", options.Prompt), ("uncond", options.UnconditionalProbability),
            ("steps", options.Steps), ("batch", options.BatchSize), ("lr", options.LearningRate), ("seed", options.Seed));

        var result = TrainingLoopRunner.Run(options.Output, [part], fingerprint, options.Steps, options.CheckpointEvery,
            options.StopAfter, options.ProgressEvery, log, "train-ldm", step =>
            {
                using var scope = NewDisposeScope();
                var random = new RandomSource(Seeds.Derive(unchecked((ulong)options.Seed), BatchStream, step));
                var indices = Enumerable.Range(0, options.BatchSize).Select(_ => (long)random.NextInt(images.Count)).ToArray();
                var timesteps = Enumerable.Range(0, options.BatchSize).Select(_ => (long)random.NextInt(Schedule.NumTrainTimesteps)).ToArray();
                var dropped = Enumerable.Range(0, options.BatchSize).Select(_ => random.Bernoulli(options.UnconditionalProbability)).ToArray();
                var index = tensor(indices);
                using var noise = new Generator(VaeTrainer.SeedOf(options.Seed, NoiseStream, step));
                var mean = means.index_select(0, index);
                var latents = mean.Plus(stds.index_select(0, index) * randn(mean.shape, generator: noise)).Times(scaling);
                var eps = randn(latents.shape, generator: noise);
                var t = tensor(timesteps);
                var noisy = scheduler.AddNoise(latents, eps, t);
                var context = cat(dropped.Select(d => d ? uncond : cond).ToArray(), 0);
                var predicted = unet.Forward(noisy, t, context);
                var loss = nn.functional.mse_loss(predicted, eps);
                adam.zero_grad();
                loss.backward();
                adam.step();
                return (loss.item<float>(), "");
            }, ct);
        if (!result.Finished) return result;

        unet.eval();
        WriteFolder(options, config, unet, textDir);
        var manifest = new GeneratorManifest(GeneratorManifest.LatentDiffusionKind, options.Name, "latent-diffusion", resolution)
        {
            InferenceSteps = options.InferenceSteps, GuidanceScale = options.GuidanceScale, Prompt = options.Prompt,
        };
        manifest.Write(options.Output);
        new ModelCard(options.Name, "unet", "unet2d-condition", ".", options.Source, options.Seed, ModelCard.DataLine(images), ModelCard.ProjectLicence)
        {
            Notes = string.Create(CultureInfo.InvariantCulture,
                $"""
                A miniature latent diffusion model trained from scratch by `forensics train-ldm`: a diffusers Stable Diffusion folder whose
                UNet2DConditionModel ({config}) learns epsilon on the latents of the VAE in vae/ ({Path.GetFullPath(options.Vae)},
                sha256 {vaeDigest}, scaling_factor {StableDiffusionFolder.Num(scaling)}, {latentSize}x{latentSize}x{vae.Config.LatentChannels} latents) under SD's DDPM schedule
                (1000 steps, scaled_linear 0.00085-0.012), conditioned on the CLIP text encoder's last hidden state of "{options.Prompt}"
                (empty prompt with probability {options.UnconditionalProbability}). {options.Steps} Adam steps of {options.BatchSize} latents, lr {options.LearningRate}.
                Sampling (generator.json): DDIM, eta 0, {options.InferenceSteps} steps, guidance {options.GuidanceScale}. Final training loss {result.Losses[^1]:G5}.
                """),
        }.Write(options.Output);
        log.WriteLine($"train-ldm: wrote {Path.GetFullPath(options.Output)}");
        return result;
    }

    private static void WriteFolder(LdmTrainOptions options, UNet2DConditionConfig config, UNet2DConditionModel unet, string textDir)
    {
        var root = options.Output;
        var unetDir = Path.Combine(root, "unet");
        Directory.CreateDirectory(unetDir);
        File.WriteAllText(Path.Combine(unetDir, "config.json"), StableDiffusionFolder.UnetConfigJson(config));
        VaeTrainer.SaveWeights(Path.Combine(unetDir, "diffusion_pytorch_model.safetensors"), unet);
        StableDiffusionFolder.CopyFiles(options.Vae, Path.Combine(root, "vae"));
        // The VAE folder's own card and checkpoint are not part of a diffusers vae/ folder.
        foreach (var extra in new[] { ModelCard.FileName, GeneratorCheckpoint.FileName })
            File.Delete(Path.Combine(root, "vae", extra));
        StableDiffusionFolder.CopyFiles(Path.Combine(textDir, "text_encoder"), Path.Combine(root, "text_encoder"));
        StableDiffusionFolder.CopyFiles(Path.Combine(textDir, "tokenizer"), Path.Combine(root, "tokenizer"));
        var schedulerDir = Path.Combine(root, "scheduler");
        Directory.CreateDirectory(schedulerDir);
        File.WriteAllText(Path.Combine(schedulerDir, "scheduler_config.json"), StableDiffusionFolder.SchedulerConfigJson(Schedule));
        File.WriteAllText(Path.Combine(root, "model_index.json"), StableDiffusionFolder.ModelIndexJson());
    }
}
