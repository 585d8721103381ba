using Portal.Components.Shared;
using Portal.Store;

namespace Portal.Tests.Components;

public sealed class FormatTests
{
    [Theory]
    [InlineData(0.0, "0%")]
    [InlineData(0.426, "43%")]
    [InlineData(1.0, "100%")]
    [InlineData(1.7, "100%")]
    [InlineData(double.NaN, "0%")]
    public void Percent_is_a_whole_clamped_percentage(double fraction, string expected) => Assert.Equal(expected, Format.Percent(fraction));

    [Theory]
    [InlineData(0.53234, "53.2")]
    [InlineData(1.0, "100.0")]
    [InlineData(0.0, "0.0")]
    [InlineData(double.NaN, "—")]
    public void Score_is_a_percentage_with_one_decimal(double fraction, string expected) => Assert.Equal(expected, Format.Score(fraction));

    [Fact]
    public void Scores_with_intervals_and_spreads_read_the_same_everywhere()
    {
        Assert.Equal("53.2 [48.2, 58.0]", Format.ScoreInterval(0.5323, 0.4821, 0.5799));
        Assert.Equal("53.2", Format.ScoreInterval(0.5323, null, 0.58));
        Assert.Equal("—", Format.Score(null));
        Assert.Equal("53.2 ± 4.1", Format.ScoreSpread(0.5323, 0.0412));
        Assert.Equal("53.2", Format.ScoreSpread(0.5323, null));
    }

    [Theory]
    [InlineData(2.32e9, "2.32 G")]
    [InlineData(25.2e9, "25.2 G")]
    [InlineData(25.557e6, "25.6 M")]
    [InlineData(512, "512")]
    [InlineData(1.5e12, "1.50 T")]
    public void Si_writes_counts_with_units(double value, string expected) => Assert.Equal(expected, Format.Si(value));

    [Fact]
    public void Duration_reads_from_start_to_finish()
    {
        var start = new DateTime(2026, 1, 1, 10, 0, 0, DateTimeKind.Utc);
        Assert.Equal("—", Format.Duration(new Run()));
        Assert.Equal("2m 05s", Format.Duration(new Run { StartedAt = start, FinishedAt = start.AddSeconds(125) }));
        Assert.Equal("1h 01m", Format.Duration(new Run { StartedAt = start, FinishedAt = start.AddMinutes(61) }));
        Assert.Equal("4.5s", Format.Duration(new Run { StartedAt = start, FinishedAt = start.AddSeconds(4.5) }));
    }

    [Fact]
    public void JsonPairs_lists_object_members_with_nested_values_as_compact_json()
    {
        var pairs = Format.JsonPairs("{\"png\":3,\"note\":\"a<b\",\"buckets\":{\"<=256\":2}}");
        Assert.Equal([new("png", "3"), new("note", "a<b"), new("buckets", "{\"<=256\":2}")], pairs);
        Assert.Empty(Format.JsonPairs("{}"));
        Assert.Equal([new("", "not json")], Format.JsonPairs("not json"));
    }

    [Fact]
    public void PrettyJson_indents_and_leaves_invalid_text_alone()
    {
        Assert.Equal("{\n  \"a\": [\n    1\n  ]\n}", Format.PrettyJson("{\"a\":[1]}").ReplaceLineEndings("\n"));
        Assert.Equal("{broken", Format.PrettyJson("{broken"));
    }
}
