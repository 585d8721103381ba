using Forensics.ML.Lare;
using Forensics.ML.Tests.Datasets;
using static TorchSharp.torch;

namespace Forensics.ML.Tests.Lare;

/// <summary>The cache key covers every setting; damaged entries are recomputed.</summary>
[Collection(LareCollection.Name)]
public sealed class LareCacheTests(LareFixture fixture)
{
    private static readonly string Image = new('a', 64), Model = new('b', 64);

    [Fact]
    public void Every_setting_changes_the_key()
    {
        var o = new LareOptions();
        var key = LareCache.Key(Image, Model, o, "p");
        Assert.Equal(key, LareCache.Key(Image, Model, new LareOptions(), "p"));
        string[] others =
        [
            LareCache.Key(new string('c', 64), Model, o, "p"),
            LareCache.Key(Image, new string('c', 64), o, "p"),
            LareCache.Key(Image, Model, o, "q"),
            LareCache.Key(Image, Model, o with { Timestep = 201 }, "p"),
            LareCache.Key(Image, Model, o with { Ensemble = 5 }, "p"),
            LareCache.Key(Image, Model, o with { Seed = 1 }, "p"),
            LareCache.Key(Image, Model, o with { Posterior = LarePosterior.Mean }, "p"),
            LareCache.Key(Image, Model, o with { ResizeTo = 128 }, "p"),
        ];
        Assert.DoesNotContain(key, others);
        Assert.Equal(others.Length, others.Distinct().Count());
        // The batch size does not change maps, so it does not change the key.
        Assert.Equal(key, LareCache.Key(Image, Model, o with { BatchSize = 9 }, "p"));
    }

    [Fact]
    public void A_damaged_cache_entry_is_recomputed()
    {
        var root = fixture.NewDir("dmg");
        DatasetFixtures.Write(root, "val/ai/371_x.png", DatasetFixtures.Png(32, 32, 8));
        var options = new LareOptions { ResizeTo = 32, Ensemble = 2 };
        var cacheDir = fixture.NewDir("dmg-cache");
        Assert.Equal(1, LareMaps.Run(fixture.Components, root, fixture.NewDir("dmg-out"), options, cacheDir).Computed);
        var entry = Assert.Single(Directory.EnumerateFiles(cacheDir, "*.safetensors", SearchOption.AllDirectories));
        File.WriteAllBytes(entry, [1, 2, 3]);
        var calls = fixture.Components.UnetCalls;
        var again = LareMaps.Run(fixture.Components, root, fixture.NewDir("dmg-out"), options, cacheDir);
        Assert.Equal(1, again.Computed);
        Assert.Equal(0, again.FromCache);
        Assert.Equal(1, fixture.Components.UnetCalls - calls);
        using var cache = new LareCache(cacheDir).TryGet(Path.GetFileNameWithoutExtension(entry));
        Assert.NotNull(cache);
        Assert.Equal([4L, 16, 16], cache!.shape);
    }
}
