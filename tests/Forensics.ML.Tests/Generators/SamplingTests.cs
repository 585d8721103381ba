using Forensics.ML.Generators;
using Forensics.ML.Lare;
using Forensics.ML.Models.Diffusion;
using Forensics.ML.Runtime;
using static TorchSharp.torch;

namespace Forensics.ML.Tests.Generators;

/// <summary>A tiny VAE, latent diffusion model and DCGAN trained once for the sampling tests.</summary>
public sealed class TrainedGenerators : IDisposable
{
    readonly IDisposable threads;

    public TrainedGenerators()
    {
        TorchRuntime.EnsureLoaded();
        threads = GeneratorTestData.SingleThread();
        Root = GeneratorTestData.NewFolder("sampling");
        Data = GeneratorTestData.WriteImages(Path.Combine(Root, "data"));
        Vae = Path.Combine(Root, "vae");
        VaeTrainer.Run(GeneratorTestData.TinyVae(Data, Vae) with { Steps = 2 }, TextWriter.Null);
        Ldm = Path.Combine(Root, "ldm");
        LdmResult = LdmTrainer.Run(GeneratorTestData.TinyLdm(Data, Vae, Ldm), TextWriter.Null);
        Gan = Path.Combine(Root, "gan");
        GanResult = GanTrainer.Run(GeneratorTestData.TinyGan(Data, Gan), TextWriter.Null);
    }

    public string Root { get; }
    public string Data { get; }
    public string Vae { get; }
    public string Ldm { get; }
    public string Gan { get; }
    public GeneratorTrainingResult LdmResult { get; }
    public GeneratorTrainingResult GanResult { get; }

    public void Dispose()
    {
        threads.Dispose();
        GeneratorTestData.Delete(Root);
    }
}

public sealed class SamplingTests(TrainedGenerators trained) : IClassFixture<TrainedGenerators>
{
    static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.equal(b).all().item<bool>();

    [Fact]
    public void Train_ldm_writes_a_stable_diffusion_folder_that_loads()
    {
        Assert.True(trained.LdmResult.Finished);
        Assert.Equal(3, trained.LdmResult.Losses.Count);
        Assert.All(trained.LdmResult.Losses, l => Assert.True(double.IsFinite(l) && l > 0));
        foreach (var file in new[] { "model_index.json", "scheduler/scheduler_config.json", "unet/config.json", "unet/diffusion_pytorch_model.safetensors",
                     "vae/config.json", "vae/diffusion_pytorch_model.safetensors", "text_encoder/model.safetensors", "tokenizer/vocab.json",
                     GeneratorManifest.FileName, ModelCard.FileName })
            Assert.True(File.Exists(Path.Combine(trained.Ldm, file)), $"{file} is missing");
        Assert.False(File.Exists(Path.Combine(trained.Ldm, "vae", ModelCard.FileName)));

        using var sd = StableDiffusionComponents.Load(trained.Ldm);
        Assert.True(sd.ScheduleFromFile);
        Assert.Equal("scaled_linear", sd.Schedule.BetaSchedule);
        Assert.Equal(1000, sd.Schedule.NumTrainTimesteps);
        Assert.Equal([16, 32], sd.Unet.Config.BlockOutChannels);
        Assert.Equal(32, sd.Unet.Config.CrossAttentionDim);
        Assert.Equal(16, sd.Unet.Config.SampleSize);
        var vaeConfig = AutoencoderKLConfig.FromJsonFile(Path.Combine(trained.Vae, "config.json"));
        Assert.Equal(vaeConfig.ScalingFactor, sd.Vae.Config.ScalingFactor);

        // The unet config the trainer wrote parses back to the same network description.
        var reparsed = UNet2DConditionConfig.ReadConfig(Path.Combine(trained.Ldm, "unet", "config.json"));
        Assert.Equal(sd.Unet.Config.ToString(), reparsed.ToString());

        var manifest = GeneratorManifest.Read(trained.Ldm);
        Assert.Equal(GeneratorManifest.LatentDiffusionKind, manifest.Kind);
        Assert.Equal(64, manifest.Resolution);
        Assert.Equal(3, manifest.InferenceSteps);
        var card = File.ReadAllText(Path.Combine(trained.Ldm, ModelCard.FileName));
        Assert.Contains("architecture: unet2d-condition", card);
        Assert.Contains("seed: 3", card);
    }

    [Fact]
    public void Latent_diffusion_samples_depend_only_on_seed_and_index()
    {
        using var generator = GeneratorFolder.Load(trained.Ldm);
        Assert.IsType<LatentDiffusionGenerator>(generator);
        Assert.Equal("ldm", generator.Name);
        Assert.Equal("latent-diffusion", generator.Family);
        AssertBatchIndependent(generator);
    }

    [Fact]
    public void Train_gan_writes_a_folder_whose_samples_depend_only_on_seed_and_index()
    {
        Assert.True(trained.GanResult.Finished);
        Assert.Equal(3, trained.GanResult.Losses.Count);
        Assert.True(File.Exists(Path.Combine(trained.Gan, GanTrainer.GeneratorWeights)));
        var card = File.ReadAllText(Path.Combine(trained.Gan, ModelCard.FileName));
        Assert.Contains("architecture: dcgan", card);
        Assert.Contains("seed: 5", card);

        using var generator = GeneratorFolder.Load(trained.Gan);
        Assert.IsType<GanImageGenerator>(generator);
        Assert.Equal("gan", generator.Family);
        AssertBatchIndependent(generator);
    }

    [Fact]
    public void Gan_training_is_deterministic_per_seed()
    {
        var again = Path.Combine(trained.Root, "gan-again");
        var result = GanTrainer.Run(GeneratorTestData.TinyGan(trained.Data, again), TextWriter.Null);
        Assert.Equal(trained.GanResult.Losses, result.Losses);
        GeneratorTestData.AssertSameTensors(Path.Combine(trained.Gan, GanTrainer.GeneratorWeights), Path.Combine(again, GanTrainer.GeneratorWeights));
    }

    [Fact]
    public void The_sample_command_writes_pngs()
    {
        var output = Path.Combine(trained.Root, "pngs");
        var stdout = new StringWriter();
        var error = new StringWriter();
        var code = Forensics.Cli.Commands.SampleCommand.Create()
            .Parse(["--generator", trained.Gan, "--count", "3", "--seed", "9", "--batch", "2", "--out", output])
            .Invoke(new System.CommandLine.InvocationConfiguration { Output = stdout, Error = error });
        Assert.True(code == 0, error.ToString());
        var files = Directory.GetFiles(output, "*.png").Select(f => Path.GetFileName(f)).Order(StringComparer.Ordinal).ToArray<string>();
        Assert.Equal(["dcgan_000000.png", "dcgan_000001.png", "dcgan_000002.png"], files);
        using var written = Forensics.ML.Imaging.ImageDecoder.Decode(Path.Combine(output, "dcgan_000002.png"));
        using var generator = GeneratorFolder.Load(trained.Gan);
        using var sampled = generator.Sample(9, 2, 1);
        using var bytes = sampled[0].mul(255).round().div(255);
        Assert.True((written - bytes).abs().max().item<float>() < 1e-6f);
    }

    static void AssertBatchIndependent(IImageGenerator generator)
    {
        using var all = generator.Sample(11, 0, 4);
        using var head = generator.Sample(11, 0, 2);
        using var tail = generator.Sample(11, 2, 2);
        using var joined = cat([head, tail], 0);
        Assert.Equal([4L, 3, generator.Resolution, generator.Resolution], all.shape);
        Assert.True(Same(all, joined), "Sample(s, 0, 4) differs from Sample(s, 0, 2) + Sample(s, 2, 2)");
        Assert.True(all.min().item<float>() >= 0 && all.max().item<float>() <= 1);
        using var single = generator.Sample(11, 3, 1);
        Assert.True(Same(all[3..4], single));
        using var other = generator.Sample(12, 0, 1);
        Assert.False(Same(all[0..1], other), "a different seed gave the same image");
        Assert.False(Same(all[0..1], all[1..2]), "two indices gave the same image");
    }
}
