using Forensics.ML.Generators;
using Forensics.ML.Models.Diffusion;
using Forensics.ML.Runtime;
using Forensics.ML.Weights;
using static TorchSharp.torch;

namespace Forensics.ML.Tests.Generators;

public sealed class VaeTrainerTests : IDisposable
{
    readonly string root = GeneratorTestData.NewFolder("vae");
    readonly string data;
    readonly IDisposable threads;

    public VaeTrainerTests()
    {
        TorchRuntime.EnsureLoaded();
        threads = GeneratorTestData.SingleThread();
        data = GeneratorTestData.WriteImages(Path.Combine(root, "data"));
    }

    public void Dispose()
    {
        threads.Dispose();
        GeneratorTestData.Delete(root);
    }

    [Fact]
    public void Training_lowers_the_loss_and_writes_a_folder_that_AutoencoderKL_loads_unchanged()
    {
        var output = Path.Combine(root, "vae");
        var options = GeneratorTestData.TinyVae(data, output) with { Steps = 8, Decoder = "transpose" };
        var log = new StringWriter();
        var result = VaeTrainer.Run(options, log);

        Assert.True(result.Finished);
        Assert.Equal(8, result.Losses.Count);
        Assert.True(result.Losses.Skip(6).Average() < result.Losses.Take(2).Average(),
            $"loss did not decrease: {string.Join(", ", result.Losses)}");

        var config = AutoencoderKLConfig.FromJsonFile(Path.Combine(output, "config.json"));
        Assert.Equal(AutoencoderKLConfig.UpsampleConvTranspose, config.DecoderUpsample);
        Assert.Equal([8, 16, 16], config.BlockOutChannels);
        Assert.Equal(64, config.SampleSize);
        Assert.True(config.ScalingFactor > 0 && config.ScalingFactor != 1, $"scaling_factor {config.ScalingFactor}");

        // Strict load through the public loader, and a clean key report against the raw file.
        using var loaded = AutoencoderKL.FromPretrained(output);
        using var fresh = new AutoencoderKL(config);
        using (var weights = SafeTensors.Load(Path.Combine(output, "diffusion_pytorch_model.safetensors")))
        {
            var report = fresh.LoadWeights(weights, strict: false);
            Assert.True(report.IsClean, report.Describe());
        }
        // The final weights are the checkpoint's model tensors: both loads give the trained network's outputs.
        using var fromCheckpoint = new AutoencoderKL(config);
        using (var all = SafeTensors.Load(Path.Combine(output, GeneratorCheckpoint.FileName)))
        using (var model = new StateDict(all.Names.Where(n => n.StartsWith("vae/model.", StringComparison.Ordinal))
                   .Select(n => (n["vae/model.".Length..], all[n].clone()))))
            Assert.True(fromCheckpoint.LoadWeights(model).IsClean);
        using var noGrad = no_grad();
        using var x = rand(2, 3, 64, 64).mul_(2).sub_(1);
        using var a = loaded.forward(x);
        using var b = fresh.forward(x);
        using var c = fromCheckpoint.forward(x);
        Assert.Equal([2L, 3, 64, 64], a.shape);
        Assert.True(a.equal(b).all().item<bool>());
        Assert.True(a.equal(c).all().item<bool>());

        var card = File.ReadAllText(Path.Combine(output, ModelCard.FileName));
        Assert.Contains("kind: autoencoder", card);
        Assert.Contains("architecture: autoencoder-kl", card);
        Assert.Contains("source: test", card);
        Assert.Contains("seed: 7", card);
        using var images = TrainingImages.Load(data, 64);
        Assert.Equal(16, images.Count);
        Assert.Contains($"sha256 {images.ContentHash}", card);
    }

    [Fact]
    public void A_resumed_run_writes_bit_identical_weights()
    {
        var straight = Path.Combine(root, "straight");
        var resumed = Path.Combine(root, "resumed");
        var full = VaeTrainer.Run(GeneratorTestData.TinyVae(data, straight), TextWriter.Null);

        var first = VaeTrainer.Run(GeneratorTestData.TinyVae(data, resumed) with { StopAfter = 3 }, TextWriter.Null);
        Assert.False(first.Finished);
        Assert.Equal(3, first.Step);
        Assert.False(File.Exists(Path.Combine(resumed, "config.json")));
        var log = new StringWriter();
        var second = VaeTrainer.Run(GeneratorTestData.TinyVae(data, resumed), log);
        Assert.Contains("resuming", log.ToString());
        Assert.Equal(3, second.StartStep);
        Assert.True(second.Finished);

        Assert.Equal(full.Losses, second.Losses);
        GeneratorTestData.AssertSameTensors(Path.Combine(straight, "diffusion_pytorch_model.safetensors"),
            Path.Combine(resumed, "diffusion_pytorch_model.safetensors"));
        Assert.Equal(File.ReadAllText(Path.Combine(straight, "config.json")), File.ReadAllText(Path.Combine(resumed, "config.json")));
    }

    [Fact]
    public void A_resume_with_other_options_is_refused()
    {
        var output = Path.Combine(root, "changed");
        VaeTrainer.Run(GeneratorTestData.TinyVae(data, output) with { StopAfter = 1 }, TextWriter.Null);
        var e = Assert.Throws<InvalidDataException>(() => VaeTrainer.Run(GeneratorTestData.TinyVae(data, output) with { LearningRate = 1e-4 }, TextWriter.Null));
        Assert.Contains(GeneratorCheckpoint.FileName, e.Message);
    }

    [Fact]
    public void Bad_inputs_name_the_folder_the_file_or_the_option()
    {
        var empty = Directory.CreateDirectory(Path.Combine(root, "empty")).FullName;
        var e1 = Assert.Throws<InvalidDataException>(() => VaeTrainer.Run(GeneratorTestData.TinyVae(empty, Path.Combine(root, "o1")), TextWriter.Null));
        Assert.Contains(empty, e1.Message);

        var small = GeneratorTestData.WriteImages(Path.Combine(root, "small"), count: 2, size: 32);
        var e2 = Assert.Throws<InvalidDataException>(() => VaeTrainer.Run(GeneratorTestData.TinyVae(small, Path.Combine(root, "o2")), TextWriter.Null));
        Assert.Contains("img000.png", e2.Message);
        Assert.Contains("32x32", e2.Message);

        var e3 = Assert.Throws<ArgumentException>(() => VaeTrainer.Run(GeneratorTestData.TinyVae(data, Path.Combine(root, "o3")) with { Decoder = "bilinear" }, TextWriter.Null));
        Assert.Contains("--decoder", e3.Message);

        var e4 = Assert.Throws<ArgumentException>(() => LdmTrainer.Run(GeneratorTestData.TinyLdm(data, Path.Combine(root, "no-vae"), Path.Combine(root, "o4")), TextWriter.Null));
        Assert.Contains("--vae", e4.Message);
        Assert.Contains("no-vae", e4.Message);

        var missing = Path.Combine(root, "nowhere");
        var e5 = Assert.Throws<DirectoryNotFoundException>(() => GeneratorFolder.Load(missing));
        Assert.Contains(missing, e5.Message);
        var e6 = Assert.Throws<FileNotFoundException>(() => GeneratorFolder.Load(data));
        Assert.Contains(GeneratorManifest.FileName, e6.Message);
    }

    [Fact]
    public void The_cli_reports_bad_input_with_exit_code_2()
    {
        var error = new StringWriter();
        var empty = Directory.CreateDirectory(Path.Combine(root, "cli-empty")).FullName;
        var command = Forensics.Cli.Commands.TrainVaeCommand.Create();
        var code = command.Parse(["--data", empty, "--output", Path.Combine(root, "cli-out"), "--steps", "1"])
            .Invoke(new System.CommandLine.InvocationConfiguration { Output = TextWriter.Null, Error = error });
        Assert.Equal(2, code);
        Assert.Contains("holds no training images", error.ToString());
    }
}
