using System.Data.Common;
using System.Globalization;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Portal.Experiments;
using Portal.Datasets;
using Portal.Zoo;
using Portal.Runs;
using Portal.Store;
using Forensics.ML.Protocols;

namespace Portal.Leaderboard;

/// <summary>
/// What the leaderboard shows. Dataset: a name or an id; Perturbation: a spec, "none" (or "clean") for unperturbed;
/// Arch: exact (case-insensitive); Q: a substring of the detector; Threshold: "0.5" (or "fixed"), "best" or "calibrated"
/// (null = every mode, each its own row); Tag: runs carrying this tag. Sort: detector, arch, dataset, split, perturbation, threshold,
/// runs, run, mean_acc, mean_ap, acc:&lt;generator&gt;, ap:&lt;generator&gt; (default mean_acc); Desc: null = the column's
/// natural order (metrics high first, text A-Z). Take null = every row. Published names a baseline the measured rows are
/// compared with (delta per generator; a detector named as a
/// baseline, e.g. zoo weights "ResNet-50", is compared with it anyway); Baselines: include the paper's rows.
/// </summary>
public sealed record LeaderboardRequest(string? Dataset = null, string? Perturbation = null, string? Arch = null, string? Q = null,
    string? Sort = null, bool? Desc = null, int Skip = 0, int? Take = null, string? Published = null, bool Baselines = true,
    string? Threshold = null, string? Tag = null);

/// <summary>
/// A value over seeds (fractions 0..1): mean, sample sd (null for one run), runs; Published: the paper's value it is
/// compared with; Low/High: the run's stratified bootstrap interval when the cell is one run that recorded it.
/// </summary>
public sealed record LeaderboardCell(double Mean, double? Sd, int N, double? Published = null, double? Low = null, double? High = null)
{
    /// <summary>Mean minus the published value.</summary>
    public double? Delta => Published is { } p ? Mean - p : null;

    /// <summary>Mean and sample standard deviation of the values (null when empty).</summary>
    public static LeaderboardCell? Of(IReadOnlyList<double> values)
    {
        if (values.Count == 0) return null;
        var mean = values.Average();
        double? sd = values.Count > 1 ? Math.Sqrt(values.Sum(v => (v - mean) * (v - mean)) / (values.Count - 1)) : null;
        return new LeaderboardCell(mean, sd, values.Count);
    }
}

/// <summary>
/// One leaderboard row: a detector on a dataset (split, perturbation) at one threshold mode ("0.5"; "best", chosen on the
/// reported data and flagged; "calibrated" on a validation split), its runs aggregated over seeds (one run per seed: the newest).
/// Acc and Ap are keyed by generator; MeanAcc/MeanAp are the per-run mean over generators, aggregated over seeds (for a
/// paper row, the paper's own average). Source is "measured" or the paper's label.
/// </summary>
public sealed record LeaderboardRow(string Source, string Detector, string Arch, long? DatasetId, string Dataset, string Split,
    string Perturbation, string Threshold, IReadOnlyList<long> RunIds, IReadOnlyList<long> Seeds,
    IReadOnlyDictionary<string, LeaderboardCell> Acc, IReadOnlyDictionary<string, LeaderboardCell> Ap,
    LeaderboardCell? MeanAcc, LeaderboardCell? MeanAp, string? ComparedTo = null, string? Citation = null, long? ModelId = null)
{
    /// <summary>The latest run of the row (null for a paper row).</summary>
    public long? RunId => RunIds.Count > 0 ? RunIds[^1] : null;
    /// <summary>True for a row copied from a paper.</summary>
    public bool IsPublished => Source != LeaderboardQuery.MeasuredSource;
    /// <summary>True when the threshold was chosen on the data it is reported on (optimistic; flagged wherever shown).</summary>
    public bool IsBestOnTest => Threshold == LeaderboardQuery.BestThreshold;
}

/// <summary>One page of the leaderboard: Total rows over every page, the generator columns (the same on every page).</summary>
public sealed record LeaderboardPage(int Total, IReadOnlyList<LeaderboardRow> Rows, IReadOnlyList<string> Generators);

/// <summary>
/// One benchmark of the leaderboard: a dataset the filtered runs were evaluated on, its generators (GenImage's in the
/// paper's order, then the others by name), and whether every generator is one of GenImage's, so that the paper's rows
/// belong beside it.
/// </summary>
public sealed record LeaderboardBenchmark(long? DatasetId, string Dataset, IReadOnlyList<string> Generators, bool GenImageShaped)
{
    /// <summary>The dataset filter that selects exactly this benchmark (its id; its name when it has none).</summary>
    public string Filter => DatasetId is { } id ? id.ToString(CultureInfo.InvariantCulture) : Dataset;
}

/// <summary>
/// The detectors x generators pivot over succeeded "evaluate", "crossgen" and "submission" runs. It only reads: each run
/// was summarised once into <see cref="LeaderboardEntry"/> rows (one per threshold mode it recorded) by
/// <see cref="LeaderboardIndexer"/> when it succeeded; grouping, filtering, sorting and paging run in SQL over those rows,
/// so only the page's metric rows are loaded. Metric names come from <see cref="EvaluationResults"/>. Published rows (the paper's baselines) lead the
/// list, sorted among themselves by the same column, then the measured rows.
/// </summary>
public sealed class LeaderboardQuery(IDbContextFactory<PortalDb> dbFactory)
{
    /// <summary>The source of a row computed from runs.</summary>
    public const string MeasuredSource = "measured";
    /// <summary>The fixed threshold's name (metrics "acc/&lt;generator&gt;").</summary>
    public const string Threshold = "0.5";
    /// <summary>The best-on-test mode's name (metrics "acc@best/&lt;generator&gt;").</summary>
    public const string BestThreshold = "best";
    /// <summary>The calibrated-on-validation mode's name (metrics "acc@calibrated/&lt;generator&gt;").</summary>
    public const string CalibratedThreshold = "calibrated";
    /// <summary>Every threshold mode, with the suffix its metric names carry (<see cref="CrossGeneratorResults.Suffix"/>).</summary>
    public static IReadOnlyList<(string Threshold, string Suffix)> ThresholdModes { get; } = CrossGeneratorResults.Modes
        .Select(m => (m == ThresholdMode.Fixed ? Threshold : m == ThresholdMode.BestOnTest ? BestThreshold : CalibratedThreshold, CrossGeneratorResults.Suffix(m)))
        .ToList();
    /// <summary>The pseudo-generator of a cross-generator run's average row, not a column.</summary>
    const string AverageRow = CrossGeneratorResults.AverageRow;
    /// <summary>Largest page the JSON API serves.</summary>
    public const int MaxTake = 1000;

    static readonly string[] TextColumns = ["detector", "arch", "dataset", "split", "perturbation", "threshold"];
    static readonly string[] NumberColumns = ["runs", "run", "mean_acc", "mean_ap"];

    /// <summary>Every sort column name for the given generators.</summary>
    public static IEnumerable<string> SortColumns(IEnumerable<string> generators) =>
        TextColumns.Concat(NumberColumns).Concat(generators.SelectMany(g => new[] { "acc:" + g, "ap:" + g }));

    /// <summary>Runs the query; bad paging, sort or published names throw a <see cref="FieldException"/> naming the parameter.</summary>
    public async Task<LeaderboardPage> RunAsync(LeaderboardRequest request, CancellationToken ct = default)
    {
        if (request.Skip < 0) throw new FieldException("skip", $"skip must be 0 or more, not {request.Skip}");
        if (request.Take is < 1) throw new FieldException("take", $"take must be 1 or more, not {request.Take}");
        var baseline = request.Published is { Length: > 0 } name
            ? PublishedBaselines.Find(name) ?? throw new FieldException("published",
                $"no published baseline '{name}'; known: {string.Join(", ", PublishedBaselines.GenImage.Select(b => b.Name))}")
            : null;
        var filter = Filter.From(request);

        await using var db = await dbFactory.CreateDbContextAsync(ct);
        await db.Database.OpenConnectionAsync(ct);
        var connection = db.Database.GetDbConnection();
        var sql = new LeaderboardSql(db.Database.IsNpgsql());

        var measuredGenerators = await GeneratorsAsync(connection, sql, filter, ct);
        var published = request.Baselines ? PublishedRows(filter) : [];
        var generators = Columns(measuredGenerators, published.Count > 0);
        var sort = ParseSort(request.Sort, generators);
        var desc = request.Desc ?? sort.Metric is not null || sort.Column is "runs" or "run";

        published = published.Select(r => WithGenerators(r, generators)).ToList();
        published = (desc ? published.OrderByDescending(r => PublishedKey(r, sort), KeyComparer.Instance)
            : published.OrderBy(r => PublishedKey(r, sort), KeyComparer.Instance)).ToList();

        // The paper rows come first; the measured page starts after the part of them this page skips.
        var skipPublished = Math.Min(request.Skip, published.Count);
        var pagePublished = published.Skip(skipPublished).Take(request.Take ?? int.MaxValue).ToList();
        var measuredSkip = request.Skip - skipPublished;
        int? measuredTake = request.Take is { } take ? take - pagePublished.Count : null;

        var (groups, measuredTotal) = measuredTake is 0
            ? ([], await CountAsync(connection, sql, filter, ct))
            : await GroupsAsync(connection, sql, filter, sort, desc, measuredSkip, measuredTake, ct);
        var rows = await MeasuredRowsAsync(connection, sql, groups, baseline, ct);
        rows = await WithModelIdsAsync(db, rows, ct);
        return new LeaderboardPage(published.Count + measuredTotal, [.. pagePublished, .. rows], generators);
    }

    /// <summary>
    /// The benchmarks the filtered runs cover (every filter but the paper's rows applies), by dataset name: one table each,
    /// so that a small demo set never shares columns (or the paper's rows) with GenImage.
    /// </summary>
    public async Task<IReadOnlyList<LeaderboardBenchmark>> BenchmarksAsync(LeaderboardRequest request, CancellationToken ct = default)
    {
        var filter = Filter.From(request);
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        await db.Database.OpenConnectionAsync(ct);
        var connection = db.Database.GetDbConnection();
        var sql = new LeaderboardSql(db.Database.IsNpgsql());
        await using var command = connection.CreateCommand();
        command.CommandText = Selected(command, sql, filter) + " SELECT DISTINCT DatasetId, Dataset, Generators FROM sel";
        var found = new Dictionary<(long?, string), HashSet<string>>();
        await using (var reader = await command.ExecuteReaderAsync(ct))
            while (await reader.ReadAsync(ct))
            {
                var key = (reader.IsDBNull(0) ? (long?)null : reader.GetInt64(0), reader.GetString(1));
                if (!found.TryGetValue(key, out var set)) found[key] = set = new HashSet<string>(StringComparer.Ordinal);
                set.UnionWith(reader.GetString(2).Split(LeaderboardEntry.GeneratorSeparator));
            }
        return found.Select(p => new LeaderboardBenchmark(p.Key.Item1, p.Key.Item2, Columns(p.Value.ToList(), false),
                p.Value.All(g => PublishedBaselines.GenImageLabel(g) is not null)))
            .OrderByDescending(b => b.GenImageShaped).ThenBy(b => b.Dataset, StringComparer.OrdinalIgnoreCase).ToList();
    }

    /// <summary>The zoo entry behind each measured row's detector name, so pages can link (and rename) it.</summary>
    static async Task<List<LeaderboardRow>> WithModelIdsAsync(PortalDb db, List<LeaderboardRow> rows, CancellationToken ct)
    {
        if (rows.Count == 0) return rows;
        var names = rows.Select(r => r.Detector).Distinct().ToList();
        var ids = await db.Weights.AsNoTracking().Where(w => names.Contains(w.Name)).Select(w => new { w.Name, w.Id }).ToListAsync(ct);
        var byName = ids.GroupBy(w => w.Name).ToDictionary(g => g.Key, g => g.Min(w => w.Id));
        return rows.Select(r => byName.TryGetValue(r.Detector, out var id) ? r with { ModelId = id } : r).ToList();
    }

    /// <summary>The sort column: a text or count column, or a metric ("acc"/"ap") of one generator or of the mean (Generator null).</summary>
    sealed record Sort(string Column, string? Metric, string? Generator);

    /// <summary>The metric family a sort token names: "acc" (the API's word) -> <see cref="EvaluationResults.Acc"/>, "ap" -> <see cref="EvaluationResults.Ap"/>.</summary>
    static string MetricOf(string token) => token == "acc" ? EvaluationResults.Acc : EvaluationResults.Ap;

    /// <summary>The first name after every name that starts with <paramref name="prefix"/>: "acc" -> "acd" (an index range's end).</summary>
    static string After(string prefix) => prefix[..^1] + (char)(prefix[^1] + 1);

    static Sort ParseSort(string? sort, IReadOnlyList<string> generators)
    {
        var s = string.IsNullOrWhiteSpace(sort) ? "mean_acc" : sort.Trim();
        if (TextColumns.Contains(s) || s is "runs" or "run") return new Sort(s, null, null);
        if (s is "mean_acc" or "mean_ap") return new Sort(s, MetricOf(s[5..]), null);
        var colon = s.IndexOf(':');
        if (colon > 0 && s[..colon] is "acc" or "ap" && generators.Contains(s[(colon + 1)..]))
            return new Sort(s, MetricOf(s[..colon]), s[(colon + 1)..]);
        throw new FieldException("sort", $"unknown sort column '{s}'; use one of: {string.Join(", ", SortColumns(generators))}");
    }

    /// <summary>Normalised filters: Perturbation "none" for clean; Threshold one of <see cref="ThresholdModes"/>; Tag lower-case.</summary>
    sealed record Filter(string? Dataset, string? Perturbation, string? Arch, string? Q, string? Threshold, string? Tag)
    {
        public static Filter From(LeaderboardRequest r) => new(Blank(r.Dataset), NormalisePerturbation(r.Perturbation), Blank(r.Arch), Blank(r.Q),
            NormaliseThreshold(r.Threshold), Blank(r.Tag)?.ToLowerInvariant());

        static string? NormaliseThreshold(string? t) => Blank(t) is not { } v ? null
            : v.ToLowerInvariant() switch
            {
                "0.5" or "fixed" => LeaderboardQuery.Threshold,
                "best" or "best-on-test" => BestThreshold,
                "calibrated" or "calibrated-on-validation" => CalibratedThreshold,
                _ => throw new FieldException("threshold", $"unknown threshold mode '{v}'; use 0.5 (fixed), best or calibrated"),
            };

        static string? Blank(string? s) => string.IsNullOrWhiteSpace(s) ? null : s.Trim();

        static string? NormalisePerturbation(string? p) => Blank(p) is { } v
            ? v.Equals("clean", StringComparison.OrdinalIgnoreCase) || v.Equals("none", StringComparison.OrdinalIgnoreCase) ? "none" : v
            : null;

        public string Where(DbCommand command, LeaderboardSql sql)
        {
            var clauses = new List<string> { "1 = 1" };
            if (Dataset is not null)
            {
                clauses.Add("(Dataset = @dataset OR CAST(DatasetId AS TEXT) = @dataset)");
                Add(command, "@dataset", Dataset);
            }
            if (Perturbation is not null)
            {
                clauses.Add("Perturbation = @perturbation");
                Add(command, "@perturbation", Perturbation);
            }
            if (Arch is not null)
            {
                clauses.Add("lower(Arch) = lower(@arch)");
                Add(command, "@arch", Arch);
            }
            if (Q is not null)
            {
                clauses.Add(sql.Has("lower(Detector)", "lower(@q)"));
                Add(command, "@q", Q);
            }
            if (Threshold is not null)
            {
                clauses.Add("Threshold = @threshold");
                Add(command, "@threshold", Threshold);
            }
            if (Tag is not null)
            {
                clauses.Add($"EXISTS (SELECT 1 FROM \"Runs\" r WHERE r.\"Id\" = RunId AND {sql.Has("r.\"Tags\"", "@tag")})");
                Add(command, "@tag", "," + Tag + ",");
            }
            return string.Join(" AND ", clauses);
        }
    }

    /// <summary>
    /// The filtered entries with their row key: detector (zoo name of the checkpoint, else its path), arch (the config's,
    /// else the zoo's), dataset, split ('' = all), perturbation ('none' = clean), threshold mode.
    /// </summary>
    static string Selected(DbCommand command, LeaderboardSql sql, Filter filter) => $"""
        WITH keyed AS (
          SELECT e."RunId" AS RunId, e."DatasetId" AS DatasetId, e."Split" AS Split, e."Perturbation" AS Perturbation, e."Threshold" AS Threshold,
                 e."Seed" AS Seed, e."MeanAcc" AS MeanAcc, e."MeanAp" AS MeanAp, e."Generators" AS Generators,
                 coalesce((SELECT w."Name" FROM "Weights" w WHERE w."Path" = e."Checkpoint" ORDER BY w."Id" LIMIT 1), e."Checkpoint") AS Detector,
                 coalesce(nullif(e."ConfigArch", ''), (SELECT w."Architecture" FROM "Weights" w WHERE w."Path" = e."Checkpoint" ORDER BY w."Id" LIMIT 1), '') AS Arch,
                 coalesce((SELECT d."Name" FROM "Datasets" d WHERE d."Id" = e."DatasetId"), '#' || CAST(e."DatasetId" AS TEXT)) AS Dataset
          FROM "LeaderboardEntries" e WHERE e."Generators" IS NOT NULL
        ), sel AS (SELECT * FROM keyed WHERE {filter.Where(command, sql)})
        """;

    /// <summary>The metric-name suffix of a row's threshold mode ("" for 0.5, "@best", "@calibrated"), in SQL over a column.</summary>
    static string SuffixSql(string thresholdColumn) =>
        $"(CASE {thresholdColumn} {string.Join(" ", ThresholdModes.Select(m => $"WHEN '{m.Threshold}' THEN '{m.Suffix}'"))} END)";

    static string Suffix(string threshold) => ThresholdModes.First(m => m.Threshold == threshold).Suffix;

    static async Task<List<string>> GeneratorsAsync(DbConnection connection, LeaderboardSql sql, Filter filter, CancellationToken ct)
    {
        await using var command = connection.CreateCommand();
        command.CommandText = Selected(command, sql, filter) + " SELECT DISTINCT Generators FROM sel";
        var generators = new HashSet<string>(StringComparer.Ordinal);
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct)) generators.UnionWith(reader.GetString(0).Split(LeaderboardEntry.GeneratorSeparator));
        return generators.ToList();
    }

    /// <summary>GenImage's generators in the paper's order, then the others by name; with paper rows, GenImage columns no measured generator covers.</summary>
    static List<string> Columns(List<string> measured, bool withPublished)
    {
        var columns = measured.ToList();
        if (withPublished)
            foreach (var g in PublishedBaselines.GenImageGenerators)
                if (!columns.Any(c => PublishedBaselines.GenImageLabel(c) == g.Label)) columns.Add(g.Folder);
        return columns
            .OrderBy(c => PublishedBaselines.GenImageLabel(c) is { } label ? PublishedBaselines.GenImageGenerators.ToList().FindIndex(g => g.Label == label) : int.MaxValue)
            .ThenBy(c => c, StringComparer.Ordinal).ToList();
    }

    /// <summary>A row's key and its runs, one per seed (the newest run of that seed).</summary>
    sealed record Group(string Detector, string Arch, long? DatasetId, string Dataset, string Split, string Perturbation, string Threshold,
        List<(long RunId, long Seed)> Runs);

    static string GroupSql(DbCommand command, LeaderboardSql sql, Filter filter, Sort sort)
    {
        string sortValue = "CAST(NULL AS DOUBLE PRECISION)";
        if (sort.Metric is { } metric && sort.Generator is { } generator)
        {
            sortValue = $"(SELECT m.\"Value\" FROM \"RunMetrics\" m WHERE m.\"RunId\" = sel.RunId AND m.\"Name\" = @sortMetric || {SuffixSql("sel.Threshold")} || '{EvaluationResults.GeneratorSeparator}' || @sortGenerator AND m.\"Step\" = 0 LIMIT 1)";
            Add(command, "@sortMetric", metric);
            Add(command, "@sortGenerator", generator);
        }
        else if (sort.Metric is { } meanOf)
            sortValue = meanOf == EvaluationResults.Acc ? "sel.MeanAcc" : "sel.MeanAp";
        return Selected(command, sql, filter) + $"""
            , grp AS (
              SELECT Detector, Arch, DatasetId, Dataset, Split, Perturbation, Threshold, count(DISTINCT Seed) AS Runs, max(RunId) AS LastRun,
                     {sql.Join("CAST(RunId AS TEXT) || ':' || CAST(Seed AS TEXT)", "','", "RunId")} AS RunSeeds, avg(SortValue) AS SortValue
              FROM (SELECT sel.*, {sortValue} AS SortValue FROM sel) AS sorted
              GROUP BY Detector, Arch, DatasetId, Dataset, Split, Perturbation, Threshold
            )
            """;
    }

    static async Task<int> CountAsync(DbConnection connection, LeaderboardSql sql, Filter filter, CancellationToken ct)
    {
        await using var command = connection.CreateCommand();
        command.CommandText = GroupSql(command, sql, filter, new Sort("detector", null, null)) + " SELECT count(*) FROM grp";
        return Convert.ToInt32(await command.ExecuteScalarAsync(ct), CultureInfo.InvariantCulture);
    }

    static async Task<(List<Group>, int Total)> GroupsAsync(DbConnection connection, LeaderboardSql sql, Filter filter, Sort sort, bool desc, int skip, int? take,
        CancellationToken ct)
    {
        await using var command = connection.CreateCommand();
        var dir = desc ? "DESC" : "ASC";
        var order = sort.Column switch
        {
            "detector" => $"{sql.NoCase("Detector")} {dir}",
            "arch" => $"{sql.NoCase("Arch")} {dir}",
            "dataset" => $"{sql.NoCase("Dataset")} {dir}",
            "split" => $"{sql.NoCase("Split")} {dir}",
            "perturbation" => $"{sql.NoCase("Perturbation")} {dir}",
            "threshold" => $"{sql.NoCase("Threshold")} {dir}",
            "runs" => $"Runs {dir}",
            "run" => $"LastRun {dir}",
            _ => $"(SortValue IS NULL), SortValue {dir}",   // rows without the metric go last either way
        };
        command.CommandText = GroupSql(command, sql, filter, sort) + $"""
             SELECT Detector, Arch, DatasetId, Dataset, Split, Perturbation, Threshold, RunSeeds, count(*) OVER () AS Total FROM grp
             ORDER BY {order}, Detector, Dataset, Split, Perturbation, Threshold, Arch, LastRun
             LIMIT @take OFFSET @skip
            """;
        Add(command, "@take", take is { } t ? t : sql.NoLimit);
        Add(command, "@skip", skip);
        var groups = new List<Group>();
        int? total = null;
        await using (var reader = await command.ExecuteReaderAsync(ct))
            while (await reader.ReadAsync(ct))
            {
                // One run per seed, the newest: an evaluate and a crossgen run of the same seed are the same measurement.
                var runs = reader.GetString(7).Split(',').Select(p => p.Split(':'))
                    .Select(p => (RunId: long.Parse(p[0], CultureInfo.InvariantCulture), Seed: long.Parse(p[1], CultureInfo.InvariantCulture)))
                    .GroupBy(p => p.Seed).Select(g => g.MaxBy(p => p.RunId)).OrderBy(p => p.RunId).ToList();
                groups.Add(new Group(reader.GetString(0), reader.GetString(1), reader.IsDBNull(2) ? null : reader.GetInt64(2), reader.GetString(3),
                    reader.GetString(4), reader.GetString(5), reader.GetString(6), runs));
                total = Convert.ToInt32(reader.GetValue(8), CultureInfo.InvariantCulture);
            }
        // A page past the end has no row to carry the total.
        return (groups, total ?? await CountAsync(connection, sql, filter, ct));
    }

    static async Task<List<LeaderboardRow>> MeasuredRowsAsync(DbConnection connection, LeaderboardSql sql, List<Group> groups, PublishedBaseline? baseline,
        CancellationToken ct)
    {
        if (groups.Count == 0) return [];
        var (idTable, ids) = sql.IdTable(groups.SelectMany(g => g.Runs.Select(r => r.RunId)).Distinct().ToList());
        var metrics = new Dictionary<long, Dictionary<string, double>>();
        await using (var command = connection.CreateCommand())
        {
            // The acc* and ap* families of every mode: acc/, acc@best/, acc_ci_lo/, ap/, ap_ci_hi@calibrated/, ...
            // CROSS JOIN fixes the loop order: run id first, then the (RunId, Name, Step) index. Written as "RunId IN
            // (json_each)" with the name ranges OR-ed, SQLite scans every metric row instead (80 ms at 10,000 runs).
            command.CommandText = $"""
                SELECT m."RunId", m."Name", m."Value" FROM {idTable} CROSS JOIN "RunMetrics" m
                WHERE m."RunId" = j.value AND m."Step" = 0
                  AND ((m."Name" >= '{EvaluationResults.Acc}' AND m."Name" < '{After(EvaluationResults.Acc)}') OR (m."Name" >= '{EvaluationResults.Ap}' AND m."Name" < '{After(EvaluationResults.Ap)}'))
                """;
            Add(command, "@ids", ids);
            await using var reader = await command.ExecuteReaderAsync(ct);
            while (await reader.ReadAsync(ct))
            {
                var run = reader.GetInt64(0);
                if (!metrics.TryGetValue(run, out var byName)) metrics[run] = byName = new Dictionary<string, double>(StringComparer.Ordinal);
                byName[reader.GetString(1)] = reader.GetDouble(2);
            }
        }

        return groups.Select(g =>
        {
            // A detector named as a baseline is compared with it unless the request names another.
            var compareWith = baseline ?? PublishedBaselines.Find(g.Detector);
            var suffix = Suffix(g.Threshold);
            var runs = g.Runs.Select(r => metrics.GetValueOrDefault(r.RunId) ?? []).ToList();
            IEnumerable<string> GeneratorsOf(string metric) => runs.SelectMany(r => r.Keys)
                .Where(k => k.StartsWith(EvaluationResults.PerGeneratorPrefix(metric, suffix), StringComparison.Ordinal))
                .Select(k => k[EvaluationResults.PerGeneratorPrefix(metric, suffix).Length..])
                .Where(k => k != AverageRow).Distinct();
            LeaderboardCell Cell(string metric, string generator, double? published)
            {
                var name = EvaluationResults.Metric(metric, generator, suffix);
                var cell = LeaderboardCell.Of(runs.Where(r => r.ContainsKey(name)).Select(r => r[name]).ToList())!;
                // A single run's bootstrap interval; over seeds the sd says the spread.
                if (cell.N == 1 && runs.Single(r => r.ContainsKey(name)) is var run
                    && run.TryGetValue(EvaluationResults.Metric(metric + EvaluationResults.CiLow, generator, suffix), out var lo)
                    && run.TryGetValue(EvaluationResults.Metric(metric + EvaluationResults.CiHigh, generator, suffix), out var hi))
                    cell = cell with { Low = lo, High = hi };
                return Compare(cell, published);
            }
            LeaderboardCell? MeanOver(string metric)
            {
                var prefix = EvaluationResults.PerGeneratorPrefix(metric, suffix);
                var perRun = runs.Select(r => r.Where(m => m.Key.StartsWith(prefix, StringComparison.Ordinal) && m.Key != prefix + AverageRow)
                        .Select(m => m.Value).ToList())
                    .Where(v => v.Count > 0).Select(v => v.Average()).ToList();
                return LeaderboardCell.Of(perRun);
            }
            var meanAcc = MeanOver(EvaluationResults.Acc);
            return new LeaderboardRow(MeasuredSource, g.Detector, g.Arch, g.DatasetId, g.Dataset, g.Split, g.Perturbation, g.Threshold,
                g.Runs.Select(r => r.RunId).ToList(), g.Runs.Select(r => r.Seed).ToList(),
                GeneratorsOf(EvaluationResults.Acc).ToDictionary(x => x, x => Cell(EvaluationResults.Acc, x, PublishedFor(compareWith, x))),
                GeneratorsOf(EvaluationResults.Ap).ToDictionary(x => x, x => Cell(EvaluationResults.Ap, x, null)),
                meanAcc is null ? null : Compare(meanAcc, compareWith?.AverageAcc), MeanOver(EvaluationResults.Ap), compareWith?.Name);
        }).ToList();
    }

    static LeaderboardCell Compare(LeaderboardCell cell, double? published) => published is null ? cell : cell with { Published = published };

    static double? PublishedFor(PublishedBaseline? baseline, string generator) =>
        baseline is not null && PublishedBaselines.GenImageLabel(generator) is { } label ? baseline.Acc.GetValueOrDefault(label) : null;

    /// <summary>The paper's rows that pass the filters: clean perturbation only (the table is clean), arch and detector text.</summary>
    static List<LeaderboardRow> PublishedRows(Filter filter)
    {
        if (filter.Perturbation is not (null or "none") || filter.Threshold is not (null or Threshold) || filter.Tag is not null) return [];
        return PublishedBaselines.GenImage
            .Where(b => filter.Arch is null || string.Equals(b.Arch, filter.Arch, StringComparison.OrdinalIgnoreCase))
            .Where(b => filter.Q is null || b.Name.Contains(filter.Q, StringComparison.OrdinalIgnoreCase))
            .Select(b => new LeaderboardRow(b.Source, b.Name, b.Arch, null, $"GenImage (trained on {b.TrainedOn})", "val", "none", Threshold, [], [],
                new Dictionary<string, LeaderboardCell>(), new Dictionary<string, LeaderboardCell>(), new LeaderboardCell(b.AverageAcc, null, 1), null,
                Citation: b.Citation))
            .ToList();
    }

    /// <summary>Puts the paper's per-generator values under the columns whose generator maps to the paper's.</summary>
    static LeaderboardRow WithGenerators(LeaderboardRow row, IReadOnlyList<string> generators)
    {
        var baseline = PublishedBaselines.Find(row.Detector)!;
        var acc = generators.Where(g => PublishedBaselines.GenImageLabel(g) is not null)
            .ToDictionary(g => g, g => new LeaderboardCell(baseline.Acc[PublishedBaselines.GenImageLabel(g)!], null, 1));
        return row with { Acc = acc };
    }

    static IComparable? PublishedKey(LeaderboardRow row, Sort sort) => sort.Column switch
    {
        "detector" => row.Detector, "arch" => row.Arch, "dataset" => row.Dataset, "split" => row.Split, "perturbation" => row.Perturbation,
        "threshold" => row.Threshold,
        "runs" or "run" => null,
        "mean_acc" => row.MeanAcc?.Mean, "mean_ap" => row.MeanAp?.Mean,
        _ => (sort.Metric == EvaluationResults.Acc ? row.Acc : row.Ap).GetValueOrDefault(sort.Generator!)?.Mean,
    };

    /// <summary>Text case-insensitively, numbers by value, a missing value lowest.</summary>
    sealed class KeyComparer : IComparer<IComparable?>
    {
        public static readonly KeyComparer Instance = new();
        public int Compare(IComparable? x, IComparable? y) => (x, y) switch
        {
            (null, null) => 0,
            (null, _) => -1,
            (_, null) => 1,
            (string a, string b) => StringComparer.OrdinalIgnoreCase.Compare(a, b),
            _ => x.CompareTo(y),
        };
    }

    static void Add(DbCommand command, string name, object value)
    {
        var p = command.CreateParameter();
        p.ParameterName = name;
        p.Value = value;
        command.Parameters.Add(p);
    }
}
