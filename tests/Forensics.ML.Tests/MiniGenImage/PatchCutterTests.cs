using Forensics.ML.MiniGenImage;
using Forensics.ML.Runtime;
using Forensics.ML.Tests.Datasets;

namespace Forensics.ML.Tests.MiniGenImage;

public sealed class PatchCutterTests
{
    public PatchCutterTests() => Assert.True(TorchRuntime.EnsureLoaded().Loaded, TorchRuntime.Status?.Error);

    [Fact]
    public void Cutting_twice_gives_byte_identical_patches_named_by_grid_cell()
    {
        using var temp = new TempDir();
        var photos = MiniGenImageFixtures.PhotosFolder(temp);
        var first = PatchCutter.WritePatches(photos, temp["a"]);
        var second = PatchCutter.WritePatches(photos, temp["b"]);

        var a = MiniGenImageFixtures.Snapshot(temp["a"]);
        var b = MiniGenImageFixtures.Snapshot(temp["b"]);
        Assert.Equal(a.Keys, b.Keys);
        foreach (var (name, bytes) in a) Assert.True(bytes.AsSpan().SequenceEqual(b[name]), $"{name} differs between two runs");
        Assert.Equal(first.Patches, second.Patches);

        // 200x136 -> a 3x2 grid of 64-pixel cells, centred; names <stem>_<row>_<col>.png.
        Assert.Contains("val/beta_1_2.png", a.Keys);
        Assert.Equal(6, first.InSplit("val").Count);
        var patch = RgbImage.Load(Path.Combine(temp["a"], "val", "beta_1_2.png"));
        Assert.Equal((64, 64), (patch.Width, patch.Height));
        var photo = RgbImage.Load(Path.Combine(photos, "beta.png"));
        Assert.Equal(photo.Crop(4 + 64, 4 + 128, 64, 64).Pixels, patch.Pixels);
    }

    [Fact]
    public void Every_patch_goes_to_its_photos_split_only()
    {
        using var temp = new TempDir();
        var set = PatchCutter.WritePatches(MiniGenImageFixtures.PhotosFolder(temp), temp["p"]);
        var expected = new Dictionary<string, string> { ["alpha.png"] = "train", ["beta.png"] = "val", ["gamma.png"] = "test" };
        foreach (var p in set.Patches)
        {
            Assert.Equal(expected[p.Photo], p.Split);
            Assert.True(File.Exists(Path.Combine(temp["p"], p.Split, p.File)));
            Assert.StartsWith(Path.GetFileNameWithoutExtension(p.Photo) + "_", p.File);
        }
        foreach (var split in new[] { "train", "val", "test" })
            Assert.Equal(set.InSplit(split).Count, Directory.GetFiles(Path.Combine(temp["p"], split)).Length);
        Assert.Equal(set.Patches, PatchSet.Load(temp["p"]).Patches);
    }

    [Fact]
    public void Flat_patches_are_skipped_and_the_per_photo_cap_spreads_over_the_grid()
    {
        var photo = MiniGenImageFixtures.Photo(256, 128, seed: 3, flatColumns: 128);
        var all = PatchCutter.Cut(photo, new PatchOptions { MinLumaStdDev = 0, MaxPerPhoto = 0 });
        Assert.Equal(8, all.Count);

        // The left half is one colour: its four cells go.
        var textured = PatchCutter.Cut(photo, new PatchOptions { MaxPerPhoto = 0 });
        Assert.Equal([(0, 2), (0, 3), (1, 2), (1, 3)], textured.Select(p => (p.Row, p.Col)));

        var capped = PatchCutter.Cut(photo, new PatchOptions { MinLumaStdDev = 0, MaxPerPhoto = 3 });
        Assert.Equal([(0, 0), (0, 2), (1, 1)], capped.Select(p => (p.Row, p.Col)));
    }

    [Fact]
    public void Patches_without_fine_detail_are_skipped_by_the_laplacian_floor_even_when_their_luma_varies()
    {
        // Left cell: a smooth diagonal gradient (luma std about 37, Laplacian energy 0 inside); right cell: the fixture's texture.
        var texture = MiniGenImageFixtures.Photo(64, 64, seed: 5);
        var pixels = new byte[128 * 64 * 3];
        for (var y = 0; y < 64; y++)
            for (var x = 0; x < 128; x++)
                for (var c = 0; c < 3; c++)
                    pixels[(y * 128 + x) * 3 + c] = x < 64 ? (byte)(2 * (x + y)) : texture.Pixels[(y * 64 + x - 64) * 3 + c];
        var photo = new RgbImage(128, 64, pixels);
        var gradient = photo.Crop(0, 0, 64, 64);
        Assert.True(gradient.LumaStandardDeviation() > 30, $"gradient luma std {gradient.LumaStandardDeviation()}");
        Assert.Equal(0, gradient.LaplacianEnergy(), 6);
        Assert.True(texture.LaplacianEnergy() > 100, $"texture energy {texture.LaplacianEnergy()}");

        Assert.Equal([(0, 0), (0, 1)], PatchCutter.Cut(photo, new PatchOptions { MaxPerPhoto = 0 }).Select(p => (p.Row, p.Col)));
        Assert.Equal([(0, 1)], PatchCutter.Cut(photo, new PatchOptions { MaxPerPhoto = 0, MinLaplacianEnergy = 100 }).Select(p => (p.Row, p.Col)));
        Assert.Throws<ArgumentOutOfRangeException>(() => PatchCutter.Cut(photo, new PatchOptions { MinLaplacianEnergy = double.NaN }));
    }

    [Fact]
    public void Box_downscale_averages_blocks_with_integer_rounding()
    {
        // One 2x2 block per channel: R 0,1,2,3 -> 1.5 rounds up to 2; G all 255; B 0,0,0,1 -> 0.25 -> 0.
        var image = new RgbImage(2, 2, [0, 255, 0, 1, 255, 0, 2, 255, 0, 3, 255, 1]);
        var reduced = image.Downscale(2);
        Assert.Equal((1, 1), (reduced.Width, reduced.Height));
        Assert.Equal(new byte[] { 2, 255, 0 }, reduced.Pixels);
        Assert.Equal((3, 2), (MiniGenImageFixtures.Photo(7, 5, 1).Downscale(2).Width, MiniGenImageFixtures.Photo(7, 5, 1).Downscale(2).Height));
    }
}
