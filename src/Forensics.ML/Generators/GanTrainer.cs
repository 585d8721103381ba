using System.Globalization;
using Forensics.ML.Randomness;
using Forensics.ML.Runtime;
using Forensics.ML.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace Forensics.ML.Generators;

/// <summary>Options of <see cref="GanTrainer"/> (`forensics train-gan`).</summary>
/// <param name="Data">Folder of training images (PNG/JPEG, recursive, each at least <see cref="DcganConfig.Resolution"/> square).</param>
/// <param name="Output">Output folder: config.json, generator.safetensors, discriminator.safetensors, generator.json, card.md, checkpoint.</param>
public sealed record GanTrainOptions(string Data, string Output) : GeneratorTrainingOptions(Data, Output)
{
    /// <summary>Adam learning rate.</summary>
    public override double LearningRate { get; init; } = 2e-4;

    /// <summary>The generator's name (generator.json and card).</summary>
    public string Name { get; init; } = "dcgan";

    /// <summary>The networks' shape.</summary>
    public DcganConfig Model { get; init; } = new();

    /// <summary>Throws an <see cref="ArgumentException"/> naming the first bad option.</summary>
    public void Validate()
    {
        ValidateSchedule(minBatch: 2);
        Model.Validate("train-gan options");
    }
}

/// <summary>
/// Trains a DCGAN on a folder of images with the non-saturating logistic loss (BCE with logits; the generator maximises
/// log D(G(z))) and writes its folder. Deterministic per seed: initial weights from torch's generator seeded from the
/// seed; each step's batch, crops, flips and latents from (seed, step).
/// </summary>
public static class GanTrainer
{
    private const long InitStream = 21, BatchStream = 22, NoiseStream = 23;

    /// <summary>Weights file of the generator in the output folder.</summary>
    public const string GeneratorWeights = "generator.safetensors";

    /// <summary>Weights file of the discriminator in the output folder.</summary>
    public const string DiscriminatorWeights = "discriminator.safetensors";

    /// <summary>Trains (or resumes) and, when all steps are done, writes the generator folder.</summary>
    public static GeneratorTrainingResult Run(GanTrainOptions options, TextWriter log, CancellationToken ct = default)
    {
        options.Validate();
        var config = options.Model;
        using var images = TrainingImages.Load(options.Data, config.Resolution);
        log.WriteLine($"train-gan: {images.Count} images from {images.Folder} (sha256 {images.ContentHash})");
        manual_seed((long)VaeTrainer.SeedOf(options.Seed, InitStream));
        using var g = new DcganGenerator(config);
        using var d = new DcganDiscriminator(config);
        g.train();
        d.train();
        var gPart = GeneratorCheckpoint.Part("g/", g, options.LearningRate, 0.5, 0.999);
        var dPart = GeneratorCheckpoint.Part("d/", d, options.LearningRate, 0.5, 0.999);
        using var gAdam = gPart.Optimizer;
        using var dAdam = dPart.Optimizer;
        var fingerprint = TrainingLoopRunner.Fingerprint(("model", "dcgan"), ("config", config.ToJson().ReplaceLineEndings("")),
            ("data", images.ContentHash), ("steps", options.Steps), ("batch", options.BatchSize), ("lr", options.LearningRate), ("seed", options.Seed));

        var result = TrainingLoopRunner.Run(options.Output, [gPart, dPart], fingerprint, options.Steps, options.CheckpointEvery,
            options.StopAfter, options.ProgressEvery, log, "train-gan", step =>
            {
                using var scope = NewDisposeScope();
                var random = new RandomSource(Seeds.Derive(unchecked((ulong)options.Seed), BatchStream, step));
                var indices = Enumerable.Range(0, options.BatchSize).Select(_ => random.NextInt(images.Count)).ToList();
                var real = images.Batch(indices, random, flip: true);
                using var noise = new Generator(VaeTrainer.SeedOf(options.Seed, NoiseStream, step));
                var z = randn([options.BatchSize, config.LatentDim, 1, 1], generator: noise);
                var ones = torch.ones(options.BatchSize);
                var zeros = torch.zeros(options.BatchSize);

                // Discriminator: real -> 1, fake -> 0 (fakes detached so only D learns here).
                var fake = g.call(z);
                var dLoss = nn.functional.binary_cross_entropy_with_logits(d.call(real), ones)
                            .Plus(nn.functional.binary_cross_entropy_with_logits(d.call(fake.detach()), zeros));
                dAdam.zero_grad();
                dLoss.backward();
                dAdam.step();

                // Generator: the non-saturating loss -log D(G(z)).
                var gLoss = nn.functional.binary_cross_entropy_with_logits(d.call(fake), ones);
                gAdam.zero_grad();
                gLoss.backward();
                gAdam.step();
                var dValue = dLoss.item<float>();
                var gValue = gLoss.item<float>();
                return (dValue + gValue, string.Create(CultureInfo.InvariantCulture, $"d {dValue:G5} g {gValue:G5}"));
            }, ct);
        if (!result.Finished) return result;

        g.eval();
        d.eval();
        Directory.CreateDirectory(options.Output);
        File.WriteAllText(Path.Combine(options.Output, "config.json"), config.ToJson());
        VaeTrainer.SaveWeights(Path.Combine(options.Output, GeneratorWeights), g);
        VaeTrainer.SaveWeights(Path.Combine(options.Output, DiscriminatorWeights), d);
        new GeneratorManifest(GeneratorManifest.GanKind, options.Name, "gan", config.Resolution).Write(options.Output);
        new ModelCard(options.Name, "generator", "dcgan", GeneratorWeights, options.Source, options.Seed, ModelCard.DataLine(images), ModelCard.ProjectLicence)
        {
            Notes = string.Create(CultureInfo.InvariantCulture,
                $"""
                A DCGAN trained from scratch by `forensics train-gan` at {config.Resolution}x{config.Resolution}: latent {config.LatentDim}, ngf {config.GeneratorWidth},
                ndf {config.DiscriminatorWidth}, non-saturating BCE loss, {options.Steps} steps of {options.BatchSize} images, Adam lr {options.LearningRate} betas (0.5, 0.999).
                Sampling uses the generator in eval mode (batch-norm running statistics), so an image does not depend on its batch.
                The logged loss is d + g; final {result.Losses[^1]:G5}.
                """),
        }.Write(options.Output);
        log.WriteLine($"train-gan: wrote {Path.GetFullPath(options.Output)}");
        return result;
    }

    /// <summary>Loads a generator from a folder written by <see cref="Run"/> (strict: every tensor must fit).</summary>
    public static DcganGenerator LoadGenerator(string folder)
    {
        var config = DcganConfig.Read(Path.Combine(folder, "config.json"));
        var path = Path.Combine(folder, GeneratorWeights);
        if (!File.Exists(path)) throw new FileNotFoundException($"{folder} has no {GeneratorWeights}", path);
        var g = new DcganGenerator(config);
        try
        {
            using var weights = SafeTensors.Load(path);
            StateDictLoader.Load(g, weights, strict: true);
            g.eval();
            return g;
        }
        catch (WeightsMismatchException e)
        {
            g.Dispose();
            throw new InvalidDataException($"{path}: {e.Report.Describe()}", e);
        }
        catch
        {
            g.Dispose();
            throw;
        }
    }
}
