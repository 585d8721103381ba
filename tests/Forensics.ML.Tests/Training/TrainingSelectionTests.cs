using Forensics.ML.Data;
using Forensics.ML.Datasets;
using Forensics.ML.Training;
using static Forensics.ML.Tests.Data.DataFixtures;

namespace Forensics.ML.Tests.Training;

public class TrainingSelectionTests
{
    static readonly string[] Generators = ["ldm_nearest", "ldm_transpose", "dcgan"];

    /// <summary>A MiniGenImage-like manifest: per generator and split, n fakes (ai/) and n reals (nature/), the reals' stems shared across generators.</summary>
    static DatasetManifest MiniGenImage(int train = 20, int val = 4) => Manifest(
        Generators.SelectMany(g => new[] { ("train", train), ("val", val) }.SelectMany(s => Enumerable.Range(0, s.Item2).SelectMany(i => new[]
        {
            Entry($"{g}/{s.Item1}/ai/{g}_{i:D3}.png", "fake", g, s.Item1),
            Entry($"{g}/{s.Item1}/nature/p{i:D3}.png", "real", g, s.Item1),
        }))), layout: DatasetLayout.GenImage);

    /// <summary>The aligned version: each generator folder's reals and their reconstructions (ai/ with the real's stem).</summary>
    static DatasetManifest Aligned(int train = 20, int val = 4) => Manifest(
        Generators.SelectMany(g => new[] { ("train", train), ("val", val) }.SelectMany(s => Enumerable.Range(0, s.Item2).SelectMany(i => new[]
        {
            Entry($"{g}/{s.Item1}/ai/p{i:D3}.png", "fake", g, s.Item1),
            Entry($"{g}/{s.Item1}/nature/p{i:D3}.png", "real", g, s.Item1),
        }))), layout: DatasetLayout.GenImage);

    [Fact]
    public void Generators_keep_only_that_generators_fakes_and_reals_in_training_and_validation()
    {
        var m = MiniGenImage();
        var data = TrainingData.FromManifests(m, m, PairMode.Independent, selection: new TrainingSelection { Generators = ["LDM_nearest"] });
        Assert.Equal(new LabelCounts(20, 20), data.Train!.Counts);
        Assert.Equal(["ldm_nearest"], data.Train.ByGenerator.Keys);
        Assert.Equal(new LabelCounts(4, 4), data.Validation.Counts);
        Assert.All(data.Train, s => Assert.Equal("train", s.Split));
    }

    [Fact]
    public void Max_images_caps_each_class_and_the_same_seed_draws_the_same_images()
    {
        var m = MiniGenImage();
        TrainingData Draw(ulong seed, int max) => TrainingData.FromManifests(m, m, PairMode.Independent,
            selection: new TrainingSelection { Generators = ["ldm_nearest"], MaxImages = max, Seed = seed });
        var a = Draw(17, 5);
        Assert.Equal(new LabelCounts(5, 5), a.Train!.Counts);
        Assert.Equal(new LabelCounts(4, 4), a.Validation.Counts); // validation stays whole
        Assert.Equal(a.Train.Select(s => s.RelativePath), Draw(17, 5).Train!.Select(s => s.RelativePath));
        Assert.NotEqual(a.Train.Select(s => s.RelativePath), Draw(18, 5).Train!.Select(s => s.RelativePath));
        // A smaller subset of a seed lies inside a larger one.
        Assert.Subset(Draw(17, 12).Train!.Select(s => s.RelativePath).ToHashSet(), a.Train.Select(s => s.RelativePath).ToHashSet());
    }

    [Fact]
    public void Fraction_rounds_up_per_class_and_paired_modes_draw_whole_pairs()
    {
        var m = Aligned();
        var data = TrainingData.FromManifests(m, m, PairMode.Synced, selection: new TrainingSelection { Generators = ["ldm_nearest"], Fraction = 0.12, Seed = 17 });
        Assert.Equal(3, data.Pairs!.Count); // ceil(0.12 * 20)
        Assert.All(data.Pairs.Pairs, p => Assert.Equal(Path.GetFileNameWithoutExtension(p.Real.RelativePath), Path.GetFileNameWithoutExtension(p.Fake.RelativePath)));
        Assert.All(data.Pairs.Pairs, p => Assert.Equal("ldm_nearest", p.Real.Generator));
        var all = TrainingData.FromManifests(m, m, PairMode.Synced, selection: new TrainingSelection { Generators = ["ldm_nearest"] });
        Assert.Equal(20, all.Pairs!.Count);
    }

    [Fact]
    public void A_generator_the_data_lacks_and_bad_numbers_are_refused_by_name()
    {
        var m = MiniGenImage();
        var e = Assert.Throws<ArgumentException>(() => TrainingData.FromManifests(m, m, PairMode.Independent, selection: new TrainingSelection { Generators = ["sdv4"] }));
        Assert.Contains("TrainingSelection.Generators", e.Message);
        Assert.Contains("'sdv4'", e.Message);
        Assert.Contains("MaxImages", Assert.Throws<ArgumentException>(() => new TrainingSelection { MaxImages = 0 }.Validate()).Message);
        Assert.Contains("Fraction", Assert.Throws<ArgumentException>(() => new TrainingSelection { Fraction = 1.5 }.Validate()).Message);
        Assert.Contains("give one", Assert.Throws<ArgumentException>(() => new TrainingSelection { MaxImages = 3, Fraction = 0.5 }.Validate()).Message);
    }
}
