using Forensics.ML.Lare;
using Forensics.ML.Tests.Datasets;
using Forensics.ML.Weights;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Forensics.ML.Tests.Lare;

/// <summary>The job-facing API: output files, metadata, cache, failures, prompt fallbacks.</summary>
[Collection(LareCollection.Name)]
public sealed class LareExtractionTests(LareFixture fixture, ITestOutputHelper log)
{
    private StableDiffusionComponents C => fixture.Components;

    private static readonly LareOptions Small = new() { ResizeTo = 32, Ensemble = 2, Seed = 3, BatchSize = 2 };

    /// <summary>GenImage layout: 2 fake images with class indices, 1 real with a WordNet id, 1 truncated JPEG.</summary>
    private string Dataset()
    {
        var root = fixture.NewDir("data");
        DatasetFixtures.Write(root, "val/ai/371_sdv5_00145.png", DatasetFixtures.Png(40, 36, 1));
        DatasetFixtures.Write(root, "val/ai/sub/000_sdv5_00002.png", DatasetFixtures.Png(32, 32, 2));
        DatasetFixtures.Write(root, "val/nature/n03495258_20762.JPEG", DatasetFixtures.Jpeg(48, 30, 3));
        DatasetFixtures.Write(root, "val/nature/broken.JPEG", DatasetFixtures.TruncatedJpeg());
        return root;
    }

    private static (Tensor Map, IReadOnlyDictionary<string, string> Metadata) Read(string path)
    {
        using var file = SafeTensors.Load(path);
        Assert.Equal(["lare"], file.Names);
        file.Remove("lare", out var map);
        return (map!, file.Metadata);
    }

    [Fact]
    public void Run_with_a_filter_maps_only_the_selected_images()
    {
        var input = Dataset();
        var output = fixture.NewDir("out-fakes");
        var run = LareMaps.Run(C, input, output, Small, include: f => f.Label == "fake");
        Assert.Equal((2, 2, 0), (run.Total, run.Computed, run.Failed.Count)); // the broken real is not even looked at
        var written = Directory.EnumerateFiles(output, "*.safetensors", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(output, f).Replace('\\', '/'))
            .Where(f => !f.StartsWith(LareMaps.DefaultCacheFolder + "/", StringComparison.Ordinal)).Order(StringComparer.Ordinal);
        Assert.Equal(["val/ai/371_sdv5_00145.safetensors", "val/ai/sub/000_sdv5_00002.safetensors"], written);
    }

    [Fact]
    public void Run_writes_one_map_per_readable_image_mirroring_paths_and_a_rerun_comes_from_the_cache()
    {
        var input = Dataset();
        var output = fixture.NewDir("out");
        var calls = C.UnetCalls;
        var first = LareMaps.Run(C, input, output, Small);
        var firstCalls = C.UnetCalls - calls;
        log.WriteLine($"first run: {first.Computed} computed, {first.SecondsPerImage:F3} s/image, {firstCalls} UNet passes");

        Assert.Equal(4, first.Total);
        Assert.Equal(3, first.Computed);
        Assert.Equal(0, first.FromCache);
        Assert.Equal(2, firstCalls); // 3 images in batches of 2
        var failure = Assert.Single(first.Failed);
        Assert.Equal("val/nature/broken.JPEG", failure.Path);
        Assert.False(string.IsNullOrWhiteSpace(failure.Reason));
        Assert.Equal(1, first.PromptFallbacks); // the WordNet-id name
        Assert.True(first.SecondsPerImage > 0);

        string[] expected = ["val/ai/371_sdv5_00145.safetensors", "val/ai/sub/000_sdv5_00002.safetensors", "val/nature/n03495258_20762.safetensors"];
        var written = Directory.EnumerateFiles(output, "*.safetensors", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(output, f).Replace('\\', '/'))
            .Where(f => !f.StartsWith(LareMaps.DefaultCacheFolder + "/", StringComparison.Ordinal)).Order(StringComparer.Ordinal);
        Assert.Equal(expected, written);
        Assert.False(File.Exists(Path.Combine(output, "val/nature/broken.safetensors")));

        var (map, meta) = Read(Path.Combine(output, expected[0]));
        Assert.Equal([4L, 16, 16], map.shape);
        Assert.Equal(ScalarType.Float32, map.dtype);
        Assert.True(map.abs().sum().item<float>() > 0);
        Assert.Equal("a photo of a patas", meta["prompt"]);
        Assert.Equal("200", meta["t"]);
        Assert.Equal("2", meta["ensemble"]);
        Assert.Equal("3", meta["seed"]);
        Assert.Equal("sample", meta["posterior"]);
        Assert.Equal("32", meta["resize"]);
        Assert.Equal(C.ModelHash, meta["model_hash"]);
        Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(Path.Combine(input, "val/ai/371_sdv5_00145.png")))),
            meta["image_sha256"]);
        Assert.Equal("a photo of a tench", Read(Path.Combine(output, expected[1])).Metadata["prompt"]);
        Assert.Equal("a photo of a object", Read(Path.Combine(output, expected[2])).Metadata["prompt"]);

        // The map in the file is the extractor's for that image and prompt.
        using (var image = Forensics.ML.Imaging.ImageDecoder.Decode(Path.Combine(input, "val/ai/371_sdv5_00145.png")))
        using (var alone = new LareExtractor(C, Small).Extract(image, "a photo of a patas"))
            Assert.True((alone - map).abs().max().item<float>() <= 1e-5f * alone.abs().max().item<float>());

        // Re-run into a fresh output folder sharing the cache: no UNet pass, identical maps.
        var again = fixture.NewDir("out2");
        calls = C.UnetCalls;
        var second = LareMaps.Run(C, input, again, Small, cacheDir: Path.Combine(output, LareMaps.DefaultCacheFolder));
        Assert.Equal(0, C.UnetCalls - calls);
        Assert.Equal(0, second.Computed);
        Assert.Equal(3, second.FromCache);
        Assert.Single(second.Failed);
        foreach (var f in expected)
        {
            var (a, _) = Read(Path.Combine(output, f));
            var (b, metaB) = Read(Path.Combine(again, f));
            Assert.Equal(0f, (a - b).abs().max().item<float>());
            Assert.Equal(C.ModelHash, metaB["model_hash"]);
        }

        // Another seed is another cache key: computed again, different maps.
        calls = C.UnetCalls;
        var other = LareMaps.Run(C, input, fixture.NewDir("out3"), Small with { Seed = 4 }, cacheDir: Path.Combine(output, LareMaps.DefaultCacheFolder));
        Assert.Equal(3, other.Computed);
        Assert.True(C.UnetCalls - calls > 0);
        map.Dispose();
    }

    [Fact]
    public void Batch_size_does_not_change_the_maps()
    {
        var input = Dataset();
        var one = fixture.NewDir("b1");
        var three = fixture.NewDir("b3");
        LareMaps.Run(C, input, one, Small with { BatchSize = 1 });
        LareMaps.Run(C, input, three, Small with { BatchSize = 3 });
        foreach (var f in Directory.EnumerateFiles(one, "*.safetensors", SearchOption.AllDirectories)
                     .Where(f => !f.Contains(Path.DirectorySeparatorChar + LareMaps.DefaultCacheFolder + Path.DirectorySeparatorChar)))
        {
            var (a, _) = Read(f);
            var (b, _) = Read(Path.Combine(three, Path.GetRelativePath(one, f)));
            Assert.True((a - b).abs().max().item<float>() <= 1e-5f * a.abs().max().item<float>(), f);
        }
    }

    [Fact]
    public void A_fixed_prompt_is_used_for_every_image_and_nothing_falls_back()
    {
        var input = Dataset();
        var output = fixture.NewDir("fixed");
        var result = LareMaps.Run(C, input, output, Small with { Prompt = "a photograph" });
        Assert.Equal(0, result.PromptFallbacks);
        Assert.Equal("a photograph", Read(Path.Combine(output, "val/ai/371_sdv5_00145.safetensors")).Metadata["prompt"]);
        Assert.Equal("a photograph", Read(Path.Combine(output, "val/nature/n03495258_20762.safetensors")).Metadata["prompt"]);
    }

    [Fact]
    public void Images_whose_outputs_collide_fail_instead_of_overwriting()
    {
        var root = fixture.NewDir("collide");
        DatasetFixtures.Write(root, "val/ai/371_a.png", DatasetFixtures.Png(32, 32, 5));
        DatasetFixtures.Write(root, "val/ai/371_a.jpg", DatasetFixtures.Jpeg(32, 32, 6));
        var result = LareMaps.Run(C, root, fixture.NewDir("collide-out"), Small);
        Assert.Equal(1, result.Computed);
        var failure = Assert.Single(result.Failed);
        Assert.Contains("also that of", failure.Reason);
    }
}
