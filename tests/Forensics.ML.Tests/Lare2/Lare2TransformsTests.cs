using Forensics.ML.Imaging;
using Forensics.ML.Lare2;
using Forensics.ML.Randomness;
using Forensics.ML.Runtime;
using Forensics.ML.Training;
using static TorchSharp.torch;
using Forensics.ML.Tests.Training;

namespace Forensics.ML.Tests.Lare2;

/// <summary>The authors' albumentations transforms: PadIfNeeded (reflect-101, floor(d/2) before) and the crops.</summary>
public class Lare2TransformsTests
{
    public Lare2TransformsTests() => Assert.True(TorchRuntime.EnsureLoaded().Loaded);

    private static Tensor Ramp(int h, int w) => arange(h * w, ScalarType.Float32).reshape(1, h, w).div(100f);

    [Fact]
    public void Pad_if_needed_reflects_101_and_puts_the_smaller_half_first()
    {
        using var image = Ramp(1, 5);
        using var padded = Lare2Transforms.PadIfNeeded(image, 8);
        // d = 3: one column before, two after; reflect-101 excludes the edge pixel: 1 | 0 1 2 3 4 | 3 2.
        Assert.Equal(new[] { 0.01f, 0f, 0.01f, 0.02f, 0.03f, 0.04f, 0.03f, 0.02f }, padded.select(1, 0).select(0, 0).data<float>().ToArray());
        Assert.Equal(new long[] { 1, 8, 8 }, padded.shape);   // a single row repeats
        using var big = Ramp(3, 3);
        using var far = Lare2Transforms.PadIfNeeded(big, 9);  // pads longer than the side keep reflecting (cv2)
        Assert.Equal(new[] { 0.01f, 0.02f, 0.01f, 0f, 0.01f, 0.02f, 0.01f, 0f, 0.01f }, far.select(1, 3).select(0, 0).data<float>().ToArray());
        using var same = Lare2Transforms.PadIfNeeded(big, 2);
        Assert.Equal(big.shape, same.shape);
    }

    [Fact]
    public void Test_input_centre_crop_starts_at_floor_of_half_the_excess()
    {
        using var image = Ramp(7, 7).expand(3, 7, 7).contiguous();
        using var crop = Lare2Transforms.TestInput(image, 4);
        Assert.Equal(new long[] { 3, 4, 4 }, crop.shape);
        // (7 - 4) // 2 = 1 (torchvision's round would start at 2): the first pixel is (1, 1) of the ramp, normalised.
        var expected = (0.08f - ImageOps.ImageNetMean[0]) / ImageOps.ImageNetStd[0];
        Assert.Equal(expected, crop[0, 0, 0].item<float>(), 5);
    }

    [Fact]
    public void Train_input_crops_every_position_with_a_fixed_seed_giving_a_fixed_crop()
    {
        using var image = Ramp(6, 6).expand(3, 6, 6).contiguous();
        var corners = new HashSet<float>();
        for (ulong s = 0; s < 200; s++)
        {
            using var crop = Lare2Transforms.TrainInput(image, 4, new RandomSource(s));
            corners.Add(crop[0, 0, 0].item<float>());
        }
        Assert.Equal(9, corners.Count);                        // 3 x 3 positions, all drawn
        using var a = Lare2Transforms.TrainInput(image, 4, new RandomSource(5));
        using var b = Lare2Transforms.TrainInput(image, 4, new RandomSource(5));
        Assert.True(a.eq(b).all().item<bool>());
    }
}
