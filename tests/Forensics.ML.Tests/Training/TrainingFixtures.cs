using Forensics.ML.Imaging;
using Forensics.ML.Training;
using Forensics.ML.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Forensics.ML.Tests.Training;

/// <summary>
/// Synthetic real/fake sets generated at test time. Reals are smooth random colour textures (a coarse random grid,
/// bicubically upsampled); fakes are the same kind of texture plus a faint 1-pixel checkerboard (±3/255, the period-2
/// pattern of an upsampling artefact). Sizes, formats and colour statistics are equal: only the high-frequency pattern
/// tells them apart.
/// </summary>
public static class TrainingFixtures
{
    /// <summary>Checkerboard amplitude in 0..1 units.</summary>
    public const double Amplitude = 3.0 / 255;

    /// <summary>A smooth texture [3,size,size] in [0.15, 0.85] drawn from <paramref name="seed"/>.</summary>
    public static Tensor Texture(ulong seed, int size, int grid = 5)
    {
        using var scope = NewDisposeScope();
        using var rng = new Generator(seed);
        var coarse = rand([1, 3, grid, grid], generator: rng);
        var smooth = nn.functional.interpolate(coarse, [size, size], mode: InterpolationMode.Bicubic, align_corners: true)
            .squeeze(0).ClampTo(0, 1).Times(0.7).Plus(0.15);
        return smooth.MoveToOuterDisposeScope();
    }

    /// <summary><paramref name="image"/> plus the checkerboard (+a where x + y is even, -a where odd, all channels).</summary>
    public static Tensor WithArtefact(Tensor image, double amplitude = Amplitude)
    {
        var (h, w) = ((int)image.shape[1], (int)image.shape[2]);
        var pattern = new float[h * w];
        for (var y = 0; y < h; y++)
            for (var x = 0; x < w; x++)
                pattern[y * w + x] = (float)((x + y) % 2 == 0 ? amplitude : -amplitude);
        using var board = tensor(pattern).reshape(1, h, w);
        return image.Plus(board).ClampTo(0, 1);
    }

    /// <summary>
    /// Writes an unpaired set: <paramref name="perClass"/> reals (0_real/rNNN.png) and as many fakes (1_fake/fNNN.png) from
    /// unrelated texture seeds.
    /// </summary>
    public static void WriteUnpaired(string root, int perClass, int size, ulong seed)
    {
        Directory.CreateDirectory(Path.Combine(root, "0_real"));
        Directory.CreateDirectory(Path.Combine(root, "1_fake"));
        for (var i = 0; i < perClass; i++)
        {
            using (var real = Texture(seed * 100_003 + (ulong)(2 * i), size))
                ImageEncoder.SavePng(real, Path.Combine(root, "0_real", $"r{i:000}.png"));
            using var texture = Texture(seed * 100_003 + (ulong)(2 * i + 1), size);
            using var fake = WithArtefact(texture);
            ImageEncoder.SavePng(fake, Path.Combine(root, "1_fake", $"f{i:000}.png"));
        }
    }

    /// <summary>Writes an aligned set: 0_real/pNNN.png and its "reconstruction" 1_fake/pNNN.png (the same texture plus the artefact).</summary>
    public static void WriteAligned(string root, int pairs, int size, ulong seed)
    {
        Directory.CreateDirectory(Path.Combine(root, "0_real"));
        Directory.CreateDirectory(Path.Combine(root, "1_fake"));
        for (var i = 0; i < pairs; i++)
        {
            using var real = Texture(seed * 100_003 + (ulong)i, size);
            using var fake = WithArtefact(real);
            ImageEncoder.SavePng(real, Path.Combine(root, "0_real", $"p{i:000}.png"));
            ImageEncoder.SavePng(fake, Path.Combine(root, "1_fake", $"p{i:000}.png"));
        }
    }

    /// <summary>torch.equal: same shape and dtype, every element equal.</summary>
    public static bool Same(Tensor a, Tensor b) =>
        a.dtype == b.dtype && a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();
}

/// <summary>A temporary folder removed on dispose.</summary>
public sealed class TempFolder : IDisposable
{
    /// <summary>Creates a fresh folder under the system temp path.</summary>
    public TempFolder() => Directory.CreateDirectory(Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "train-" + Guid.NewGuid().ToString("N")));

    /// <summary>The folder.</summary>
    public string Path { get; }

    /// <summary>A path inside the folder.</summary>
    public string this[string relative] => System.IO.Path.Combine(Path, relative);

    /// <inheritdoc/>
    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
    }
}

/// <summary>Records every observer call; <see cref="AfterEpoch"/> runs after each OnEpoch (e.g. to cancel).</summary>
public sealed class RecordingObserver : ITrainingObserver
{
    public List<(int Epoch, double Loss, ValidationMetrics Validation, double Lr, bool IsBest)> Epochs { get; } = [];
    public List<(int Epoch, int Step, double Loss, double Lr)> Steps { get; } = [];
    public List<string> Logs { get; } = [];
    public List<(double Fraction, TrainingPhase Phase)> Progress { get; } = [];
    public Action<int>? AfterEpoch { get; init; }

    public void OnProgress(double fraction, TrainingPhase phase) => Progress.Add((fraction, phase));
    public void OnStep(int epoch, int step, double loss, double learningRate) => Steps.Add((epoch, step, loss, learningRate));
    public void OnLog(string message) => Logs.Add(message);

    public void OnEpoch(int epoch, double trainLoss, ValidationMetrics validation, double learningRate, bool isBest)
    {
        Epochs.Add((epoch, trainLoss, validation, learningRate, isBest));
        AfterEpoch?.Invoke(epoch);
    }
}
