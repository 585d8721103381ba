using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;

namespace Forensics.ML.Protocols;

/// <summary>
/// GenImage's Table 4: rows = the generator a detector was trained on, columns = the generator it is tested on, cells =
/// ACC (and AP) under one threshold mode, with each row's average over its tested generators.
/// </summary>
/// <param name="Mode">The threshold mode the cells come from.</param>
/// <param name="TrainedOn">Row labels, in the order given.</param>
/// <param name="TestedOn">Column labels: every tested generator, ordinal order.</param>
/// <param name="Acc">Acc[row][column]; null when that row's result has no such generator.</param>
/// <param name="Ap">Ap[row][column]; null when missing or undefined.</param>
/// <param name="RowAverageAcc">Each row's "avg": its result's mean over generators.</param>
/// <param name="RowAverageAp">Each row's mean AP over generators; null when undefined everywhere.</param>
public sealed record TrainTestMatrix(
    ThresholdMode Mode,
    IReadOnlyList<string> TrainedOn,
    IReadOnlyList<string> TestedOn,
    IReadOnlyList<IReadOnlyList<double?>> Acc,
    IReadOnlyList<IReadOnlyList<double?>> Ap,
    IReadOnlyList<double> RowAverageAcc,
    IReadOnlyList<double?> RowAverageAp)
{
    /// <summary>Builds the matrix from one cross-generator result per training generator.</summary>
    /// <exception cref="ArgumentException">No results, a training label given twice, or a result without <paramref name="mode"/>.</exception>
    public static TrainTestMatrix Build(IEnumerable<(string TrainedOn, CrossGeneratorResult Result)> results, ThresholdMode mode = ThresholdMode.Fixed)
    {
        ArgumentNullException.ThrowIfNull(results);
        var list = results.ToList();
        if (list.Count == 0) throw new ArgumentException("no cross-generator results to put in a matrix", nameof(results));
        var duplicate = list.GroupBy(r => r.TrainedOn, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null) throw new ArgumentException($"trained-on '{duplicate.Key}' is given {duplicate.Count()} times", nameof(results));

        var tables = list.Select(r =>
            r.Result.Tables.FirstOrDefault(t => t.Mode == mode)
            ?? throw new ArgumentException($"the result trained on '{r.TrainedOn}' has no '{mode.Name()}' threshold table", nameof(results))).ToList();
        var columns = tables.SelectMany(t => t.Rows.Select(r => r.Generator)).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        var acc = new List<IReadOnlyList<double?>>();
        var ap = new List<IReadOnlyList<double?>>();
        foreach (var table in tables)
        {
            var byGenerator = table.Rows.ToDictionary(r => r.Generator, r => r.Result.Report, StringComparer.Ordinal);
            acc.Add(columns.Select(c => byGenerator.TryGetValue(c, out var r) ? r.Acc : (double?)null).ToList());
            ap.Add(columns.Select(c => byGenerator.TryGetValue(c, out var r) ? r.Ap : null).ToList());
        }
        return new TrainTestMatrix(mode, list.Select(r => r.TrainedOn).ToList(), columns, acc, ap,
            tables.Select(t => t.Average.Acc).ToList(), tables.Select(t => t.Average.Ap).ToList());
    }

    /// <summary>The matrix as JSON: trained_on, tested_on, acc, ap (row-major, null for missing cells), row averages.</summary>
    public JsonObject ToJson() => new()
    {
        ["threshold_mode"] = Mode.Name(),
        ["trained_on"] = new JsonArray(TrainedOn.Select(t => (JsonNode)JsonValue.Create(t)).ToArray()),
        ["tested_on"] = new JsonArray(TestedOn.Select(t => (JsonNode)JsonValue.Create(t)).ToArray()),
        ["acc"] = Grid(Acc),
        ["ap"] = Grid(Ap),
        ["row_avg_acc"] = new JsonArray(RowAverageAcc.Select(v => (JsonNode)JsonValue.Create(v)).ToArray()),
        ["row_avg_ap"] = new JsonArray(RowAverageAp.Select(v => (JsonNode?)JsonValue.Create(v)).ToArray()),
    };

    /// <summary>The ACC matrix as CSV: trained_on, one column per tested generator, avg.</summary>
    public string ToCsv(bool ap = false)
    {
        var cells = ap ? Ap : Acc;
        var csv = new StringBuilder("trained_on," + string.Join(',', TestedOn.Select(global::Forensics.ML.Data.CsvCell.Escape)) + ",avg\n");
        for (int i = 0; i < TrainedOn.Count; i++)
        {
            var avg = ap ? RowAverageAp[i] : RowAverageAcc[i];
            csv.AppendLine(string.Join(',', [global::Forensics.ML.Data.CsvCell.Escape(TrainedOn[i]), .. cells[i].Select(F), F(avg)]));
        }
        return csv.ToString();
    }

    private static JsonArray Grid(IReadOnlyList<IReadOnlyList<double?>> cells) =>
        new(cells.Select(row => (JsonNode)new JsonArray(row.Select(v => (JsonNode?)JsonValue.Create(v)).ToArray())).ToArray());

    private static string F(double? v) => v is { } x ? x.ToString("R", CultureInfo.InvariantCulture) : "";
}
