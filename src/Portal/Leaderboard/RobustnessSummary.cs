using System.Globalization;
using System.Text.Json;
using Forensics.ML.Protocols;
using Microsoft.EntityFrameworkCore;
using Portal.Experiments;
using Portal.Datasets;
using Portal.Zoo;
using Portal.Runs;
using Portal.Store;

namespace Portal.Leaderboard;

/// <summary>A sweep point a robustness summary reports: the axis and its severity (JPEG quality, resize scale, blur sigma...).</summary>
public sealed record RobustnessPoint(string Axis, double Severity)
{
    /// <summary>The column label in the axis's own units: "JPEG q75", "resize ×0.5", "blur σ1".</summary>
    public string Label => Axis switch
    {
        "jpeg" => $"JPEG q{Value}",
        "webp" => $"WebP q{Value}",
        "resize" => $"resize ×{Value}",
        "blur" => $"blur σ{Value}",
        "noise" => $"noise σ{Value}",
        _ => $"{Axis} {Value}",
    };

    string Value => Severity.ToString("0.##", CultureInfo.InvariantCulture);
}

/// <summary>One detector's robustness on one benchmark: clean ACC and ACC at each headline point its sweeps measured (fractions 0..1).</summary>
public sealed record RobustnessRow(string Detector, long? ModelId, double? Clean, IReadOnlyDictionary<RobustnessPoint, double> Acc,
    IReadOnlyDictionary<string, long> SweepRuns);

/// <summary>The robustness table of one benchmark: its columns (headline points, axis by axis) and one row per detector.</summary>
public sealed record RobustnessTable(long DatasetId, IReadOnlyList<RobustnessPoint> Points, IReadOnlyList<RobustnessRow> Rows);

/// <summary>
/// The leaderboard's robustness summaries, from succeeded robustness sweeps: for each detector on a dataset, ACC on clean
/// images and at the headline point of each axis it was swept along, the points papers quote (JPEG/WebP quality 75, resize
/// to half, blur σ 1, noise σ 5), or the nearest milder point the sweep measured when it skipped that one. The newest sweep
/// of a detector and axis counts.
/// </summary>
public sealed class RobustnessSummaryQuery(IDbContextFactory<PortalDb> dbFactory)
{
    /// <summary>Headline severities per axis, most preferred first: the quoted point, then milder ones.</summary>
    public static IReadOnlyDictionary<string, double[]> Headline { get; } = new Dictionary<string, double[]>
    {
        ["jpeg"] = [75, 80, 70, 90],
        ["webp"] = [75, 80, 70, 90],
        ["resize"] = [0.5, 0.75, 0.25],
        ["blur"] = [1, 2],
        ["noise"] = [5, 10],
    };

    /// <summary>Largest number of sweeps read per call (the newest).</summary>
    public const int MaxSweeps = 2000;

    /// <summary>The robustness tables of these datasets (a dataset without sweeps has none).</summary>
    public async Task<IReadOnlyDictionary<long, RobustnessTable>> ForDatasetsAsync(IReadOnlyCollection<long> datasetIds, CancellationToken ct = default)
    {
        if (datasetIds.Count == 0) return new Dictionary<long, RobustnessTable>();
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        var sweeps = await db.Runs.AsNoTracking()
            .Where(r => r.Kind == RobustnessSweepJob.KindName && r.Status == RunStatus.Succeeded)
            .OrderByDescending(r => r.Id).Take(MaxSweeps).Select(r => new { r.Id, r.ConfigJson }).ToListAsync(ct);
        var parsed = new List<(long RunId, RobustnessSweepJob.Config Config)>();
        foreach (var s in sweeps)
        {
            RobustnessSweepJob.Config? c;
            try { c = JsonSerializer.Deserialize<RobustnessSweepJob.Config>(s.ConfigJson, JobInputs.Json); }
            catch (JsonException) { continue; }
            if (c is null || !datasetIds.Contains(c.DatasetId) || !SweepAxes.All.Contains(c.Axis)) continue;
            parsed.Add((s.Id, c));
        }
        if (parsed.Count == 0) return new Dictionary<long, RobustnessTable>();

        // The newest sweep per dataset, checkpoint and axis.
        var newest = parsed.GroupBy(p => (p.Config.DatasetId, p.Config.Checkpoint, p.Config.Axis)).Select(g => g.First()).ToList();
        var runIds = newest.Select(p => p.RunId).ToList();
        var accPrefix = SweepResults.MetricPrefix(EvaluationResults.Acc);
        var metrics = await db.RunMetrics.AsNoTracking().Where(m => runIds.Contains(m.RunId) && m.Name.StartsWith(accPrefix))
            .Select(m => new { m.RunId, m.Name, m.Step, m.Value }).ToListAsync(ct);
        var checkpoints = newest.Select(p => p.Config.Checkpoint).Distinct().ToList();
        var zoo = (await db.Weights.AsNoTracking().Where(w => checkpoints.Contains(w.Path)).Select(w => new { w.Path, w.Name, w.Id }).ToListAsync(ct))
            .GroupBy(w => w.Path).ToDictionary(g => g.Key, g => g.OrderBy(w => w.Id).First());

        var tables = new Dictionary<long, RobustnessTable>();
        foreach (var dataset in newest.GroupBy(p => p.Config.DatasetId))
        {
            var rows = new List<RobustnessRow>();
            var points = new HashSet<RobustnessPoint>();
            foreach (var detector in dataset.GroupBy(p => p.Config.Checkpoint))
            {
                double? clean = null;
                var acc = new Dictionary<RobustnessPoint, double>();
                var runs = new Dictionary<string, long>();
                foreach (var (runId, c) in detector)
                {
                    IReadOnlyList<double?> severities;
                    try
                    {
                        severities = string.IsNullOrWhiteSpace(c.Severities) ? SweepAxes.DefaultSeverities(c.Axis) : SweepAxes.ParseSeverities(c.Axis, c.Severities);
                    }
                    catch (ArgumentException) { continue; }
                    // Point i of the sweep is its metric at step i.
                    var byStep = metrics.Where(m => m.RunId == runId && m.Name == SweepResults.Metric(EvaluationResults.Acc, c.Axis)).ToDictionary(m => m.Step, m => m.Value);
                    var measured = severities.Select((s, i) => (Severity: s, Acc: byStep.TryGetValue(i, out var v) ? v : (double?)null))
                        .Where(p => p.Acc is not null).ToList();
                    if (measured.Count == 0) continue;
                    runs[c.Axis] = runId;
                    if (measured.FirstOrDefault(p => p.Severity is null).Acc is { } cleanAcc) clean ??= cleanAcc;
                    foreach (var preferred in Headline[c.Axis])
                        if (measured.FirstOrDefault(p => p.Severity is { } s && Math.Abs(s - preferred) < 1e-9).Acc is { } value)
                        {
                            var point = new RobustnessPoint(c.Axis, preferred);
                            acc[point] = value;
                            points.Add(point);
                            break;
                        }
                }
                if (runs.Count == 0) continue;
                var zooEntry = zoo.GetValueOrDefault(detector.Key);
                rows.Add(new RobustnessRow(zooEntry?.Name ?? detector.Key, zooEntry?.Id, clean, acc, runs));
            }
            if (rows.Count == 0) continue;
            var columns = points.OrderBy(p => SweepAxes.All.ToList().IndexOf(p.Axis)).ThenBy(p => Array.IndexOf(Headline[p.Axis], p.Severity)).ToList();
            tables[dataset.Key] = new RobustnessTable(dataset.Key, columns,
                rows.OrderByDescending(r => r.Acc.Count == 0 ? double.MinValue : r.Acc.Values.Average()).ThenBy(r => r.Detector, StringComparer.OrdinalIgnoreCase).ToList());
        }
        return tables;
    }
}
