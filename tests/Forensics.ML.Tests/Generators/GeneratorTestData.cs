using Forensics.ML.Generators;
using Forensics.ML.Imaging;
using Forensics.ML.Randomness;
using Forensics.ML.Runtime;
using Forensics.ML.Weights;
using static TorchSharp.torch;

namespace Forensics.ML.Tests.Generators;

/// <summary>Synthetic training images and tiny training configurations for the generator tests.</summary>
internal static class GeneratorTestData
{
    public static string TextFolder => Path.Combine(AppContext.BaseDirectory, "fixtures", "reference-small");

    /// <summary>A fresh temporary folder.</summary>
    public static string NewFolder(string tag) => Directory.CreateTempSubdirectory($"forensics-gen-{tag}-").FullName;

    /// <summary>
    /// Writes <paramref name="count"/> PNGs of smooth coloured gradients with a bright square (deterministic per index),
    /// half of them in a sub-folder so that the recursive scan is exercised.
    /// </summary>
    public static string WriteImages(string folder, int count = 16, int size = 64)
    {
        TorchRuntime.EnsureLoaded();
        for (var i = 0; i < count; i++)
        {
            var random = new RandomSource((ulong)(1000 + i));
            using var scope = NewDisposeScope();
            var ys = linspace(0, 1, size).view(1, size, 1).expand(1, size, size);
            var xs = linspace(0, 1, size).view(1, 1, size).expand(1, size, size);
            var channels = Enumerable.Range(0, 3).Select(_ =>
                ys.Times(random.Uniform(-1, 1)).Plus(xs.Times(random.Uniform(-1, 1))).Plus(random.Uniform(0, 1))).ToArray();
            var image = cat(channels, 0);
            var top = random.NextInt(0, size / 2);
            var left = random.NextInt(0, size / 2);
            image[.., top..(top + size / 4), left..(left + size / 4)] = tensor((float)random.Uniform(0.5, 1));
            image = image.ClampTo(0, 1);
            var sub = i % 2 == 0 ? folder : Path.Combine(folder, "more");
            ImageEncoder.SavePng(image, Path.Combine(sub, $"img{i:D3}.png"));
        }
        return folder;
    }

    public static VaeTrainOptions TinyVae(string data, string output) => new(data, output)
    {
        BlockOutChannels = [8, 16, 16],
        NormNumGroups = 8,
        Steps = 6,
        BatchSize = 4,
        LearningRate = 5e-3,
        Seed = 7,
        ProgressEvery = 0,
        CheckpointEvery = 2,
        Source = "test",
    };

    public static LdmTrainOptions TinyLdm(string data, string vae, string output) => new(data, vae, TextFolder, output)
    {
        BlockOutChannels = [16, 32],
        NormNumGroups = 8,
        AttentionHeads = 2,
        Steps = 3,
        BatchSize = 4,
        InferenceSteps = 3,
        Seed = 3,
        ProgressEvery = 0,
        Source = "test",
    };

    public static GanTrainOptions TinyGan(string data, string output) => new(data, output)
    {
        Model = new DcganConfig { LatentDim = 16, GeneratorWidth = 8, DiscriminatorWidth = 8, Resolution = 64 },
        Steps = 3,
        BatchSize = 4,
        Seed = 5,
        ProgressEvery = 0,
        Source = "test",
    };

    /// <summary>Throws unless two safetensors files hold the same names with bit-identical tensors.</summary>
    public static void AssertSameTensors(string expectedPath, string actualPath)
    {
        using var a = SafeTensors.Load(expectedPath, upcastHalf: false);
        using var b = SafeTensors.Load(actualPath, upcastHalf: false);
        Assert.Equal(a.Names.OrderBy(n => n, StringComparer.Ordinal), b.Names.OrderBy(n => n, StringComparer.Ordinal));
        foreach (var name in a.Names)
            Assert.True(a[name].shape.SequenceEqual(b[name].shape) && a[name].equal(b[name]).all().item<bool>(), $"{name} differs between {expectedPath} and {actualPath}");
    }

    /// <summary>
    /// Runs torch on one intra-op thread until disposed: these tiny models gain nothing from a second thread, and on a
    /// busy two-core machine two spinning threads make every step several times slower.
    /// </summary>
    public static IDisposable SingleThread()
    {
        var previous = TorchSharp.torch.get_num_threads();
        TorchSharp.torch.set_num_threads(1);
        return new Restore(() => TorchSharp.torch.set_num_threads(previous));
    }

    sealed class Restore(Action action) : IDisposable
    {
        public void Dispose() => action();
    }

    /// <summary>Deletes a temporary folder, ignoring failures.</summary>
    public static void Delete(string folder)
    {
        try { Directory.Delete(folder, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
