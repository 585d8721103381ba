using System.Globalization;
using Forensics.ML.Data;

namespace Forensics.ML.Evaluation;

/// <summary>A scores file that does not match the dataset; <see cref="Errors"/> names the first offending rows.</summary>
public sealed class SubmittedScoresException(IReadOnlyList<string> errors)
    : FormatException(string.Join("; ", errors))
{
    /// <summary>One line per problem, first rows first (at most <see cref="SubmittedScores.MaxErrors"/>, then a count).</summary>
    public IReadOnlyList<string> Errors { get; } = errors;
}

/// <summary>
/// Scores computed elsewhere (a detector that cannot run here), checked against a dataset's images: CSV with a header
/// naming <c>path</c> and <c>score</c> (P(fake) in [0, 1]), optionally <c>logit</c> and <c>label</c> (0 real, 1 fake,
/// checked against the manifest). Every image of the split must appear exactly once, with its path relative to the
/// dataset folder ('/' separators) and a finite score.
/// </summary>
public static class SubmittedScores
{
    /// <summary>How many problems an error lists before it only counts the rest.</summary>
    public const int MaxErrors = 10;

    /// <summary>
    /// Parses <paramref name="csv"/> against <paramref name="set"/>. Returns the scores in the set's order (with the
    /// manifest's labels and generators), ready for EvaluationReport.Create: the metrics of evaluations.
    /// </summary>
    /// <exception cref="SubmittedScoresException">Unknown paths, repeats, missing images, bad numbers or labels; rows named (line numbers count the header as 1).</exception>
    public static ScoringResult Parse(string csv, EvaluationSet set)
    {
        ArgumentNullException.ThrowIfNull(csv);
        ArgumentNullException.ThrowIfNull(set);
        var errors = new List<string>();
        var extra = 0;
        void Error(string message)
        {
            if (errors.Count < MaxErrors) errors.Add(message);
            else extra++;
        }

        var lines = csv.Replace("\r\n", "\n").Split('\n');
        var header = lines.Length > 0 ? lines[0].Trim().TrimStart('\uFEFF').Split(',').Select(h => h.Trim().ToLowerInvariant()).ToList() : [];
        int pathCol = header.IndexOf("path"), scoreCol = header.IndexOf("score"), logitCol = header.IndexOf("logit"), labelCol = header.IndexOf("label");
        if (pathCol < 0 || scoreCol < 0)
            throw new SubmittedScoresException([$"line 1: the header must name the columns path and score (optionally logit, label); it is '{(lines.Length > 0 ? lines[0].Trim() : "")}'"]);

        var known = set.Images.ToDictionary(s => s.RelativePath, StringComparer.Ordinal);
        var unreadable = set.Unreadable.Select(u => u.RelativePath).ToHashSet(StringComparer.Ordinal);
        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        var scored = new Dictionary<string, ImageScore>(StringComparer.Ordinal);
        for (var i = 1; i < lines.Length; i++)
        {
            var line = lines[i].Trim();
            if (line.Length == 0) continue;
            var row = i + 1;
            var fields = line.Split(',');
            if (fields.Length != header.Count)
            {
                Error($"line {row}: {fields.Length} fields, the header has {header.Count}");
                continue;
            }
            var path = fields[pathCol].Trim().Trim('"').Replace('\\', '/');
            if (seen.TryGetValue(path, out var first))
            {
                Error($"line {row}: '{path}' is scored again (first on line {first})");
                continue;
            }
            seen[path] = row;
            if (!known.TryGetValue(path, out var sample))
            {
                if (!unreadable.Contains(path)) Error($"line {row}: '{path}' is not an image of the dataset's {(set.Split is null ? "images" : $"split '{set.Split}'")}");
                continue;
            }
            if (!double.TryParse(fields[scoreCol], NumberStyles.Float, CultureInfo.InvariantCulture, out var score) || !double.IsFinite(score) || score is < 0 or > 1)
            {
                Error($"line {row}: score '{fields[scoreCol].Trim()}' of '{path}' is not a finite number in [0, 1]");
                continue;
            }
            var logit = Math.Log(score) - Math.Log(1 - score);
            if (logitCol >= 0 && fields[logitCol].Trim().Length > 0)
            {
                if (!double.TryParse(fields[logitCol], NumberStyles.Float, CultureInfo.InvariantCulture, out logit) || !double.IsFinite(logit))
                {
                    Error($"line {row}: logit '{fields[logitCol].Trim()}' of '{path}' is not a finite number");
                    continue;
                }
            }
            if (labelCol >= 0 && fields[labelCol].Trim() is { Length: > 0 } label && label != sample.Label.ToString(CultureInfo.InvariantCulture))
            {
                Error($"line {row}: label {label} of '{path}' differs from the dataset's ({sample.Label})");
                continue;
            }
            scored[path] = new ImageScore(sample.RelativePath, sample.Label, sample.Generator, logit, score);
        }
        var missing = set.Images.Where(s => !seen.ContainsKey(s.RelativePath)).ToList();
        if (missing.Count > 0)
            Error($"{missing.Count} image(s) of the {(set.Split is null ? "dataset" : $"split '{set.Split}'")} not scored: " +
                  string.Join(", ", missing.Take(5).Select(m => m.RelativePath)) + (missing.Count > 5 ? ", ..." : ""));
        if (extra > 0) errors.Add($"and {extra} more problem(s)");
        if (errors.Count > 0) throw new SubmittedScoresException(errors);
        return new ScoringResult(set.Images.Select(s => scored[s.RelativePath]).ToList(), []);
    }
}
