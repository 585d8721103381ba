using System.Text;

namespace Forensics.ML.Generators;

/// <summary>
/// A model card as models/README.md defines it: a front block of name, kind, architecture, weights, source, seed,
/// data and licence, followed by free text. Training commands write one as card.md into their output folder.
/// </summary>
public sealed record ModelCard(string Name, string Kind, string Architecture, string Weights, string Source, long Seed, string Data, string Licence)
{
    /// <summary>The file name in an output folder.</summary>
    public const string FileName = "card.md";

    /// <summary>The licence of weights the project trains itself.</summary>
    public const string ProjectLicence = "same as the project's code (trained by the project from its own data)";

    /// <summary>Free text after the front block.</summary>
    public string Notes { get; init; } = "";

    /// <summary>The card's markdown.</summary>
    public string ToMarkdown()
    {
        var b = new StringBuilder();
        b.Append("    name: ").Append(Name).Append('\n');
        b.Append("    kind: ").Append(Kind).Append('\n');
        b.Append("    architecture: ").Append(Architecture).Append('\n');
        b.Append("    weights: ").Append(Weights).Append('\n');
        b.Append("    source: ").Append(Source.Replace('\n', ' ')).Append('\n');
        b.Append("    seed: ").Append(Seed).Append('\n');
        b.Append("    data: ").Append(Data).Append('\n');
        b.Append("    licence: ").Append(Licence).Append('\n');
        b.Append('\n').Append(Notes.TrimEnd()).Append('\n');
        return b.ToString();
    }

    /// <summary>Writes card.md into <paramref name="folder"/>.</summary>
    public void Write(string folder) => File.WriteAllText(Path.Combine(folder, FileName), ToMarkdown());

    /// <summary>The data line: the folder, its image count and content hash.</summary>
    public static string DataLine(TrainingImages images) =>
        $"{images.Folder} ({images.Count} images, sha256 {images.ContentHash})";
}
