using Forensics.ML.Data;
using Forensics.ML.Datasets;
using Forensics.ML.Tests.Datasets;

namespace Forensics.ML.Tests.MiniGenImage;

public sealed class GenImageTestSplitTests
{
    [Fact]
    public void A_test_split_folder_is_a_genimage_split_and_selectable_by_name()
    {
        using var temp = new TempDir();
        foreach (var (split, label, seed) in new[] { ("train", "ai", 1), ("train", "nature", 2), ("test", "ai", 3), ("test", "nature", 4) })
        {
            Directory.CreateDirectory(temp[$"gen/{split}/{label}"]);
            File.WriteAllBytes(temp[$"gen/{split}/{label}/{seed}.png"], DatasetFixtures.Png(8, 8, seed));
        }
        // A folder of another name is still not a split.
        Directory.CreateDirectory(temp["gen/holdout/ai"]);
        File.WriteAllBytes(temp["gen/holdout/ai/5.png"], DatasetFixtures.Png(8, 8, 5));

        var structure = DatasetLayouts.Resolve(temp.Path);
        Assert.Equal(DatasetLayout.GenImage, structure.Layout);
        Assert.Equal(["gen/test/ai", "gen/test/nature", "gen/train/ai", "gen/train/nature"], structure.Parts.Select(p => p.RelativePath));

        var manifest = DatasetScanner.Scan(temp.Path);
        var test = ImageSet.FromManifest(manifest, Splits.Test);
        Assert.Equal(2, test.Count);
        Assert.All(test, s => Assert.Equal("test", s.Split));
        Assert.Equal("test", Splits.Canonical("TEST"));
        Assert.False(Splits.Same("test", "val"));
    }
}
