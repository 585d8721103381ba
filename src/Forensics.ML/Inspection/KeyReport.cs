using Forensics.ML.Weights;

namespace Forensics.ML.Inspection;

/// <summary>What loading a weights file into its architecture did: the names at fault, or none for a clean load.</summary>
public sealed record KeyReport(int Keys, int Loaded, IReadOnlyList<string> Missing, IReadOnlyList<string> Unexpected, IReadOnlyList<string> Mismatched)
{
    public bool Clean => Missing.Count == 0 && Unexpected.Count == 0 && Mismatched.Count == 0;

    public static KeyReport From(LoadReport r, int keys) =>
        new(keys, r.Loaded, r.Missing, r.Unexpected, r.Mismatched.Select(m => m.ToString()).ToList());

    /// <summary>Counts and the first names of each kind, for error messages.</summary>
    public string Describe(int limit = 12)
    {
        static string List(string kind, IReadOnlyList<string> names, int limit) =>
            names.Count == 0 ? "" : $"{names.Count} {kind}: {string.Join(", ", names.Take(limit))}{(names.Count > limit ? ", ..." : "")}; ";
        var text = List("missing", Missing, limit) + List("unexpected", Unexpected, limit) + List("mis-shaped", Mismatched, limit);
        return text.Length == 0 ? $"all {Loaded} tensors loaded" : text.TrimEnd(' ', ';');
    }
}
