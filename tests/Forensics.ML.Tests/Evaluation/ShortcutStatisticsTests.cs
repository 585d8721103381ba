using Forensics.ML.Evaluation;
using Forensics.ML.Imaging;
using Forensics.ML.Tests.Datasets;
using static TorchSharp.torch;

namespace Forensics.ML.Tests.Evaluation;

public sealed class ShortcutStatisticsTests : IDisposable
{
    private readonly TempDir temp = new();

    public ShortcutStatisticsTests() => EvalFixtures.EnsureTorch();

    public void Dispose() => temp.Dispose();

    static float[,] Fill(int h, int w, Func<int, int, float> f)
    {
        var a = new float[h, w];
        for (var y = 0; y < h; y++) for (var x = 0; x < w; x++) a[y, x] = f(y, x);
        return a;
    }

    [Fact]
    public void A_flat_image_has_no_contrast_and_no_high_frequencies()
    {
        var s = ShortcutStatistics.OfLuma(Fill(8, 8, (_, _) => 77));
        Assert.Equal(77, s.LumaMean, 4);
        Assert.Equal(0, s.LumaStd, 4);
        Assert.Equal(0, s.LaplacianEnergy, 4);
    }

    [Fact]
    public void A_checkerboard_has_known_contrast_and_laplacian_energy()
    {
        // 0/255 checkerboard: mean 127.5, std 127.5, every interior Laplacian is +-4 * 255 = +-1020.
        var s = ShortcutStatistics.OfLuma(Fill(6, 6, (y, x) => (x + y) % 2 == 0 ? 255 : 0));
        Assert.Equal(127.5, s.LumaMean, 4);
        Assert.Equal(127.5, s.LumaStd, 4);
        Assert.Equal(1020.0 * 1020.0, s.LaplacianEnergy, 1);
    }

    [Fact]
    public void A_linear_ramp_has_no_laplacian_energy_but_its_contrast()
    {
        // Luma = 10 x: a plane, whose Laplacian is zero; std of 0, 10, 20, 30 = sqrt(125).
        var s = ShortcutStatistics.OfLuma(Fill(4, 4, (_, x) => 10 * x));
        Assert.Equal(15, s.LumaMean, 4);
        Assert.Equal(Math.Sqrt(125), s.LumaStd, 4);
        Assert.Equal(0, s.LaplacianEnergy, 4);
    }

    [Fact]
    public void Luma_is_bt601_of_the_rgb_tensor_and_files_pool_per_image()
    {
        using var red = zeros(3, 4, 4);
        red[0].fill_(1.0);
        Assert.Equal(0.299 * 255, ShortcutStatistics.Luma(red)[2, 3], 3);

        // Two files: a flat grey 128 and a flat white: pooled mean of the means, contrast 0.
        using var grey = full(3, 4, 4, 128f / 255f);
        using var white = ones(3, 4, 4);
        var a = temp["a.png"];
        var b = temp["b.png"];
        File.WriteAllBytes(a, ImageEncoder.EncodePng(grey));
        File.WriteAllBytes(b, ImageEncoder.EncodePng(white));
        var pooled = ShortcutStatistics.OfFiles([a, b]);
        Assert.Equal(2, pooled.Images);
        Assert.Equal((128 + 255) / 2.0, pooled.LumaMean, 2);
        Assert.Equal(0, pooled.LumaStd, 3);
        Assert.Throws<ArgumentException>(() => ShortcutStatistics.OfLuma(new float[2, 5]));
    }
}
