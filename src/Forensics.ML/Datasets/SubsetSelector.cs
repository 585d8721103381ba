using Forensics.ML.Data;

namespace Forensics.ML.Datasets;

/// <summary>
/// A selection of a dataset's (generator, split) folders, written "GENERATOR/SPLIT" with "*" for any: "ldm_nearest/*" is
/// every split of ldm_nearest, "*/test" the test split of every generator. Generators compare exactly; splits as
/// <see cref="Splits.Same"/> does ("val" is "valid").
/// </summary>
public sealed record SubsetSelector(string Generator, string Split)
{
    /// <summary>The wildcard.</summary>
    public const string Any = "*";

    /// <summary>Parses "GENERATOR/SPLIT".</summary>
    /// <exception cref="FormatException">The text is not two non-empty parts separated by one '/'; the message quotes it.</exception>
    public static SubsetSelector Parse(string text)
    {
        var parts = (text ?? "").Split('/');
        if (parts.Length != 2 || parts.Any(p => p.Trim().Length == 0))
            throw new FormatException($"'{text}' is not GENERATOR/SPLIT (use * for any, e.g. ldm_nearest/* or */test)");
        return new SubsetSelector(parts[0].Trim(), parts[1].Trim());
    }

    /// <summary>True when the folder (<paramref name="generator"/>, <paramref name="split"/>) is selected.</summary>
    public bool Matches(string generator, string split) =>
        (Generator == Any || string.Equals(Generator, generator, StringComparison.Ordinal)) && (Split == Any || Splits.Same(Split, split));

    /// <summary>A file filter that keeps the files of any of <paramref name="selectors"/>; every file when there are none.</summary>
    public static Func<ScannedFile, bool> AnyOf(IReadOnlyCollection<SubsetSelector>? selectors) =>
        selectors is not { Count: > 0 } ? _ => true : f => selectors.Any(s => s.Matches(f.Generator, f.Split));

    /// <inheritdoc />
    public override string ToString() => $"{Generator}/{Split}";
}
