using System.Text.Json;
using Forensics.Cli.Commands;
using Forensics.ML.Datasets;
using Forensics.ML.Generators;
using Forensics.ML.MiniGenImage;
using Forensics.ML.Runtime;
using Forensics.ML.Tests.Datasets;

namespace Forensics.ML.Tests.MiniGenImage;

public sealed class MiniGenImageBuilderTests
{
    private static readonly MiniGenImageOptions Small = new() { Train = 5, Val = 3, Test = 4, Seed = 7, BatchSize = 2 };

    public MiniGenImageBuilderTests() => Assert.True(TorchRuntime.EnsureLoaded().Loaded, TorchRuntime.Status?.Error);

    [Fact]
    public void The_build_scans_as_genimage_with_train_val_test_and_the_requested_counts()
    {
        using var temp = new TempDir();
        var patches = temp["ds/real-patches"];
        PatchCutter.WritePatches(MiniGenImageFixtures.PhotosFolder(temp), patches, new PatchOptions { MinLumaStdDev = 0 });
        using var a = new NoiseGenerator("gen_a");
        using var b = new NoiseGenerator("gen_b");
        var result = MiniGenImageBuilder.Build(patches, [a, b], temp["ds"], Small);
        Assert.Equal((24, 0, 24, 0), (result.FakesWritten, result.FakesKept, result.RealsWritten, result.RealsKept));

        var manifest = DatasetScanner.Scan(temp["ds"]);
        Assert.Equal(DatasetLayout.GenImage, manifest.Layout);
        Assert.Empty(manifest.Unreadable);
        var counts = manifest.Subsets.ToDictionary(s => (s.Generator, s.Split, s.Label), s => s.Count);
        foreach (var g in new[] { "gen_a", "gen_b" })
            foreach (var (split, n) in new[] { ("train", 5), ("val", 3), ("test", 4) })
            {
                Assert.Equal(n, counts[(g, split, DatasetLayouts.Fake)]);
                Assert.Equal(n, counts[(g, split, DatasetLayouts.Real)]);
            }
        Assert.Equal(12, counts.Count);
        Assert.All(manifest.Images, i => Assert.Equal((64, 64, "png"), (i.Width, i.Height, i.Format)));

        // Reals are the split's own patches (no photo crosses splits) and the fakes are named <generator>_<index>.
        Assert.All(Directory.GetFiles(temp["ds/gen_a/test/nature"]), f => Assert.StartsWith("gamma_", Path.GetFileName(f)));
        Assert.True(File.Exists(temp["ds/gen_b/train/ai/gen_b_00004.png"]));

        using var lineage = JsonDocument.Parse(File.ReadAllText(result.LineagePath));
        Assert.Equal("minigenimage", lineage.RootElement.GetProperty("name").GetString());
        Assert.Equal(PatchSet.Load(patches).CatalogueSha256, lineage.RootElement.GetProperty("photoCatalogueSha256").GetString());
        Assert.Equal(2, lineage.RootElement.GetProperty("generators").GetArrayLength());
        Assert.Equal(MiniGenImageBuilder.FakeSeed(7, "val"),
            lineage.RootElement.GetProperty("splits")[1].GetProperty("fakeSeed").GetInt64());
    }

    [Fact]
    public void A_resumed_build_is_byte_identical_and_resamples_only_incomplete_batches()
    {
        using var temp = new TempDir();
        var patches = temp["ds/real-patches"];
        PatchCutter.WritePatches(MiniGenImageFixtures.PhotosFolder(temp), patches, new PatchOptions { MinLumaStdDev = 0 });
        using var generator = new NoiseGenerator("gen_a");
        MiniGenImageBuilder.Build(patches, [generator], temp["ds"], Small);
        var before = MiniGenImageFixtures.Snapshot(temp["ds"]);

        File.Delete(temp["ds/gen_a/train/ai/gen_a_00003.png"]);
        File.WriteAllBytes(temp["ds/gen_a/test/ai/gen_a_00000.png"], [0x89, 0x50, 0x4E, 0x47]); // truncated PNG
        var nature = Directory.GetFiles(temp["ds/gen_a/val/nature"]).Order(StringComparer.Ordinal).First();
        File.Delete(nature);
        generator.Calls.Clear();

        var result = MiniGenImageBuilder.Build(patches, [generator], temp["ds"], Small);
        Assert.Equal((2, 10, 1, 11), (result.FakesWritten, result.FakesKept, result.RealsWritten, result.RealsKept));
        // Whole batches from their first index: train images 2..3 and test images 0..1.
        Assert.Equal([(MiniGenImageBuilder.FakeSeed(7, "train"), 2L, 2), (MiniGenImageBuilder.FakeSeed(7, "test"), 0L, 2)], generator.Calls);

        var after = MiniGenImageFixtures.Snapshot(temp["ds"]);
        Assert.Equal(before.Keys, after.Keys);
        foreach (var (name, bytes) in before) Assert.True(bytes.AsSpan().SequenceEqual(after[name]), $"{name} differs after the resume");
    }

    [Fact]
    public void The_jpeg_real_variant_stores_reals_as_jpeg_and_fakes_as_png()
    {
        using var temp = new TempDir();
        var patches = temp["ds/real-patches"];
        PatchCutter.WritePatches(MiniGenImageFixtures.PhotosFolder(temp), patches, new PatchOptions { MinLumaStdDev = 0 });
        using var generator = new NoiseGenerator("gen_a");
        var result = MiniGenImageBuilder.Build(patches, [generator], temp["ds"], Small with { RealFormat = RealImageFormat.Jpeg });

        var manifest = DatasetScanner.Scan(temp["ds"]);
        Assert.All(manifest.Images, i => Assert.Equal(i.Label == DatasetLayouts.Real ? "jpeg" : "png", i.Format));
        Assert.Equal(24, manifest.ImageCount);
        using var lineage = JsonDocument.Parse(File.ReadAllText(result.LineagePath));
        Assert.Equal("minigenimage-jpegreal", lineage.RootElement.GetProperty("name").GetString());
        Assert.Equal(90, lineage.RootElement.GetProperty("real").GetProperty("jpegQuality").GetInt32());
    }

    [Fact]
    public void Too_few_real_patches_or_a_resolution_mismatch_is_a_clear_error()
    {
        using var temp = new TempDir();
        var patches = temp["ds/real-patches"];
        PatchCutter.WritePatches(MiniGenImageFixtures.PhotosFolder(temp), patches, new PatchOptions { MinLumaStdDev = 0 });
        using var generator = new NoiseGenerator("gen_a");
        var few = Assert.Throws<ArgumentException>(() => MiniGenImageBuilder.Build(patches, [generator], temp["ds"], Small with { Val = 7 }));
        Assert.Contains("split 'val' has 6 real patches", few.Message);

        using var big = new NoiseGenerator("gen_big", resolution: 32);
        var size = Assert.Throws<ArgumentException>(() => MiniGenImageBuilder.Build(patches, [big], temp["ds"], Small));
        Assert.Contains("'gen_big' makes 32x32", size.Message);
    }

    [Fact]
    public void The_cli_verb_cuts_patches_and_builds_with_the_configured_generator_loader()
    {
        using var temp = new TempDir();
        var photos = MiniGenImageFixtures.PhotosFolder(temp);
        var output = new StringWriter();
        var error = new StringWriter();
        var patchOptions = new PatchOptions { MinLumaStdDev = 0 };
        Assert.Equal(0, MiniGenImageCommand.Run(photos, [], temp["ds"], Small, patchOptions, patchesOnly: true, output, error));
        Assert.Contains("18 real patches", output.ToString());
        Assert.Equal(6, Directory.GetFiles(temp["ds/real-patches/test"]).Length);

        var previous = MiniGenImageCommand.GeneratorLoader;
        try
        {
            Directory.CreateDirectory(temp["gens/gen_a"]);
            File.WriteAllText(temp["gens/gen_a/weights.bin"], "w");
            MiniGenImageCommand.GeneratorLoader = dir => new NoiseGenerator(Path.GetFileName(dir));
            Assert.Equal(0, MiniGenImageCommand.Run(photos, [temp["gens/gen_a"]], temp["ds"], Small, patchOptions, patchesOnly: false, output, error));
            Assert.Equal(DatasetLayout.GenImage, DatasetLayouts.Detect(temp["ds"]));
            using var lineage = JsonDocument.Parse(File.ReadAllText(temp["ds/minigenimage.json"]));
            Assert.Matches("^[0-9a-f]{64}$", lineage.RootElement.GetProperty("generators")[0].GetProperty("weightsSha256").GetString());
        }
        finally
        {
            MiniGenImageCommand.GeneratorLoader = previous;
        }
    }
}
