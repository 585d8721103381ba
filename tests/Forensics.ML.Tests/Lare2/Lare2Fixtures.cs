using Forensics.ML.Data;
using Forensics.ML.Datasets;
using Forensics.ML.Imaging;
using Forensics.ML.Lare2;
using Forensics.ML.Lare;
using Forensics.ML.Models.Clip;
using Forensics.ML.Randomness;
using Forensics.ML.Runtime;
using Forensics.ML.Tests.Training;
using Forensics.ML.Weights;
using static TorchSharp.torch;

namespace Forensics.ML.Tests.Lare2;

/// <summary>
/// Synthetic LaRE² data: real and fake images drawn from ONE distribution (a shared texture plus per-image noise), so
/// the pixels carry no label; each image's LaRE map [4, 8, 8] is uniform noise in [0, 1), and fakes' maps have
/// <see cref="Shift"/> added to channel 1. The label is visible only through the map.
/// </summary>
public static class Lare2Fixtures
{
    /// <summary>The mean shift of the fakes' channel 1.</summary>
    public const float Shift = 2.0f;

    /// <summary>A width-16 CLIP ResNet [1,1,1,1] at 64 px with a 2-head EGRE: small enough to train in seconds.</summary>
    public static Lare2Options Small(EgreAblation ablation = EgreAblation.None, double dropout = 0.1)
    {
        var backbone = new ModifiedResNetOptions { Width = 16, Layers = [1, 1, 1, 1], Heads = 8, OutputDim = 64, InputResolution = 64 };
        var options = Lare2Options.For(backbone, heads: 2, keyDim: 16, valueDim: 16, hidden: 16);
        return options with { Ablation = ablation, Egre = options.Egre with { Dropout = dropout, AttentionDropout = dropout } };
    }

    /// <summary>
    /// Writes <paramref name="perClass"/> reals (0_real/rNNN.png) and fakes (1_fake/fNNN.png) of <paramref name="size"/>²
    /// pixels (<paramref name="height"/> rows when given; names prefixed by <paramref name="prefix"/>) under <paramref name="root"/>, and their maps under <paramref name="lareRoot"/> at the extraction's paths.
    /// </summary>
    public static void Write(string root, string lareRoot, int perClass, int size, ulong seed, int? height = null, string prefix = "")
    {
        var namePrefix = prefix;
        foreach (var (folder, letter, label) in new[] { ("0_real", "r", 0), ("1_fake", "f", 1) })
        {
            Directory.CreateDirectory(Path.Combine(root, folder));
            Directory.CreateDirectory(Path.Combine(lareRoot, folder));
            for (var i = 0; i < perClass; i++)
            {
                var itemSeed = Seeds.Derive(seed, label, i);
                using (var texture = Image(itemSeed, size))
                using (var image = height is { } h ? texture.narrow(1, 0, Math.Min(h, size)).contiguous() : texture.alias())
                    ImageEncoder.SavePng(image, Path.Combine(root, folder, $"{namePrefix}{letter}{i:000}.png"));
                using var map = Map(Seeds.Derive(itemSeed, 7), label == 1);
                SafeTensors.Save(Path.Combine(lareRoot, folder, $"{namePrefix}{letter}{i:000}.safetensors"), [(LareMaps.TensorName, map)]);
            }
        }
    }

    /// <summary>
    /// One image: a texture shared by every image plus its own uniform noise of ±<see cref="Noise"/>; the same
    /// distribution for both classes, and little for a network to memorise per image.
    /// </summary>
    public static Tensor Image(ulong seed, int size)
    {
        using var scope = NewDisposeScope();
        var texture = TrainingFixtures.Texture(20_241_123, size);
        var rng = new RandomSource(seed);
        var noise = new float[3 * size * size];
        for (var i = 0; i < noise.Length; i++) noise[i] = (float)((rng.NextDouble() * 2 - 1) * Noise);
        // Kept-alive scalars: these fixtures run in loops beside background loaders (TorchSharp#1434).
        return texture.Plus(tensor(noise).reshape(3, size, size)).ClampTo(0, 1).MoveToOuterDisposeScope();
    }

    /// <summary>Per-pixel noise amplitude of <see cref="Image"/> (0..1 units).</summary>
    public const double Noise = 8.0 / 255;

    /// <summary>One map [4, 8, 8]: uniform noise, channel 1 shifted for fakes.</summary>
    public static Tensor Map(ulong seed, bool fake)
    {
        var rng = new RandomSource(seed);
        var values = new float[4 * 8 * 8];
        for (var i = 0; i < values.Length; i++)
            values[i] = (float)rng.NextDouble() + (fake && i / 64 == 1 ? Shift : 0f);
        return tensor(values).reshape(4, 8, 8);
    }

    /// <summary>The images of a 0_real/1_fake folder.</summary>
    public static ImageSet Images(string root) => ImageSet.FromManifest(DatasetScanner.Scan(root));
}
