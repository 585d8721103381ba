using Forensics.ML.Datasets;

namespace Forensics.ML.Tests.Datasets;

public sealed class SubsetSelectorTests
{
    [Theory]
    [InlineData("ldm_nearest/*", "ldm_nearest", "train", true)]
    [InlineData("ldm_nearest/*", "dcgan", "test", false)]
    [InlineData("*/test", "dcgan", "test", true)]
    [InlineData("*/test", "dcgan", "val", false)]
    [InlineData("*/val", "dcgan", "valid", true)]
    [InlineData("dcgan/val", "DCGAN", "val", false)]
    [InlineData("*/*", "x", "all", true)]
    public void A_selector_matches_its_generator_and_split(string text, string generator, string split, bool expected) =>
        Assert.Equal(expected, SubsetSelector.Parse(text).Matches(generator, split));

    [Theory]
    [InlineData("test")]
    [InlineData("a/b/c")]
    [InlineData("/test")]
    [InlineData("")]
    public void Anything_but_generator_slash_split_is_refused_quoting_it(string text)
    {
        var e = Assert.Throws<FormatException>(() => SubsetSelector.Parse(text));
        Assert.Contains($"'{text}'", e.Message);
    }
}
