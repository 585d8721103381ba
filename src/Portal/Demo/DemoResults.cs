using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.EntityFrameworkCore;
using Portal.Infrastructure;
using Portal.Jobs;
using Portal.Store;

namespace Portal.Demo;

/// <summary>One measured cell: a row (training) on a generator under a condition ("clean", "jpeg", "resize").</summary>
public sealed record DemoMeasurement(string Row, string Generator, string Condition, double Acc, double? Ap);

/// <summary>A claim's table: rows = detector/training, columns = generator x condition, each ACC and AP; and the verdict line.</summary>
public sealed record DemoTable(string Claim, IReadOnlyList<string> Rows, IReadOnlyList<string> Conditions, IReadOnlyList<DemoMeasurement> Cells, string Verdict, bool? Reproduces);

/// <summary>
/// Turns the stored demo runs (tag demo) into the claim tables the /demo page and the demo-report command show: aligned vs
/// usual training (clean, JPEG q75, resize x0.5; fixed 0.5 threshold), data efficiency (10% vs 100%: AP), and LaRE² vs
/// ResNet-50 across the generator families. Each claim's verdict compares averages over the generators.
/// </summary>
public static class DemoResults
{
    /// <summary>Conditions in column order.</summary>
    public static readonly IReadOnlyList<string> Conditions = ["clean", "jpeg", "resize"];

    /// <summary>Row names.</summary>
    public const string Aligned = "aligned", Usual = "usual", Lare2 = "LaRE²", ResNet = "ResNet-50 (usual)";

    /// <summary>The measurements of the succeeded demo runs in the store.</summary>
    public static async Task<IReadOnlyList<DemoMeasurement>> LoadAsync(IDbContextFactory<PortalDb> dbFactory, PortalPaths paths)
    {
        await using var db = await dbFactory.CreateDbContextAsync();
        var tagged = await db.Runs.AsNoTracking().Where(r => r.Status == RunStatus.Succeeded && r.Tags.Contains("," + DemoBenchmark.Tag + ","))
            .OrderBy(r => r.Id).ToListAsync();
        var list = new List<DemoMeasurement>();
        foreach (var run in tagged.Where(r => r.Kind == PipelineJob.KindName))
        {
            var c = JsonSerializer.Deserialize<PipelineJob.Config>(run.ConfigJson, JobInputs.Json);
            if (c?.Train is null) continue;
            var row = (c.Align is null ? Usual : Aligned) + (c.Train.Fraction is { } f ? $"@{f * 100:0}%" : "");
            var children = await PipelineJob.ChildrenAsync(dbFactory, run.Id);
            if (children.FirstOrDefault(x => x.Stage == "crossgen") is { } cg)
            {
                var metrics = await FinalMetricsAsync(db, cg.RunId);
                foreach (var g in DemoBenchmark.Generators)
                    if (metrics.TryGetValue($"acc/{g}", out var acc))
                        list.Add(new DemoMeasurement(row, g, "clean", acc, metrics.TryGetValue($"ap/{g}", out var ap) ? ap : null));
            }
            foreach (var sweep in children.Where(x => x.Kind == RobustnessSweepJob.KindName))
                list.AddRange(await SweepCellsAsync(db, paths, row, sweep.RunId));
        }
        // LaRE²: its test run (an evaluation with arch lare2) reports per generator.
        foreach (var run in tagged.Where(r => r.Kind == EvaluationJob.KindName))
        {
            var c = JsonSerializer.Deserialize<EvaluationJob.Config>(run.ConfigJson, JobInputs.Json);
            if (c?.Arch != Forensics.ML.Evaluation.Lare2Evaluator.Architecture) continue;
            var metrics = await FinalMetricsAsync(db, run.Id);
            foreach (var g in DemoBenchmark.Generators)
                if (metrics.TryGetValue($"acc/{g}", out var acc))
                    list.Add(new DemoMeasurement(Lare2, g, "clean", acc, metrics.TryGetValue($"ap/{g}", out var ap) ? ap : null));
        }
        // A row measured twice (a rerun) keeps its newest values.
        return list.GroupBy(m => (m.Row, m.Generator, m.Condition)).Select(g => g.Last()).ToList();
    }

    static async Task<Dictionary<string, double>> FinalMetricsAsync(PortalDb db, long runId) =>
        (await db.RunMetrics.AsNoTracking().Where(m => m.RunId == runId && m.Step == 0).OrderBy(m => m.Id).ToListAsync())
        .GroupBy(m => m.Name).ToDictionary(g => g.Key, g => g.Last().Value);

    /// <summary>The per-generator cells of a sweep's sweep.json at the severity the tables report.</summary>
    static async Task<IEnumerable<DemoMeasurement>> SweepCellsAsync(PortalDb db, PortalPaths paths, string row, long sweepRunId)
    {
        var artifact = await db.Artifacts.AsNoTracking().Where(a => a.RunId == sweepRunId && a.Kind == "sweep").OrderByDescending(a => a.Id).FirstOrDefaultAsync();
        if (artifact is null || !File.Exists(paths.Data(artifact.RelativePath))) return [];
        var json = JsonNode.Parse(await File.ReadAllTextAsync(paths.Data(artifact.RelativePath)))!.AsObject();
        var axis = json["axis"]!.GetValue<string>();
        var severity = axis switch { "jpeg" => DemoBenchmark.JpegQuality, "resize" => DemoBenchmark.ResizeScale, _ => double.NaN };
        var wanted = severity.ToString("R", CultureInfo.InvariantCulture);
        var point = json["points"]!.AsArray().FirstOrDefault(p => p?["severity"]?.GetValue<string>() == wanted);
        if (point is null) return [];
        return point["per_generator"]!.AsArray().Select(cell => new DemoMeasurement(row, cell!["generator"]!.GetValue<string>(), axis,
            cell["acc"]!.GetValue<double>(), cell["ap"] is JsonValue ap && ap.TryGetValue<double>(out var v) ? v : null));
    }

    /// <summary>The three claim tables from the measurements; a claim with missing rows says what is missing.</summary>
    public static IReadOnlyList<DemoTable> Tables(IReadOnlyList<DemoMeasurement> m)
    {
        var small = $"@{DemoBenchmark.SmallFraction * 100:0}%";
        var robustness = Table(m, "Aligned vs usual training: robustness to JPEG and downscaling", [Aligned, Usual], Conditions, rows =>
        {
            var a = Mean(m, Aligned, c => c != "clean", ap: false);
            var u = Mean(m, Usual, c => c != "clean", ap: false);
            return (a > u, $"mean ACC under JPEG q{DemoBenchmark.JpegQuality:0} and resize x{DemoBenchmark.ResizeScale:0.##}: aligned {P(a)} vs usual {P(u)}");
        });
        var efficiency = Table(m, "Data efficiency: aligned vs usual at 10% and 100% of the training images", [Aligned + small, Usual + small, Aligned, Usual], ["clean"], rows =>
        {
            var a = Mean(m, Aligned + small, c => c == "clean", ap: true);
            var u = Mean(m, Usual + small, c => c == "clean", ap: true);
            return (a > u, $"mean clean AP with {DemoBenchmark.SmallFraction * 100:0}% of the images: aligned {P(a)} vs usual {P(u)}");
        });
        var families = Table(m.Select(x => x.Row == Usual ? x with { Row = ResNet } : x).ToList(), "LaRE² vs ResNet-50 across generator families", [Lare2, ResNet], ["clean"], rows =>
        {
            var mm = m.Select(x => x.Row == Usual ? x with { Row = ResNet } : x).ToList();
            var l = Mean(mm, Lare2, c => c == "clean", ap: false);
            var r = Mean(mm, ResNet, c => c == "clean", ap: false);
            return (l > r, $"mean clean ACC over the three families: LaRE² {P(l)} vs ResNet-50 {P(r)}");
        });
        return [robustness, efficiency, families];
    }

    static DemoTable Table(IReadOnlyList<DemoMeasurement> m, string claim, IReadOnlyList<string> rows, IReadOnlyList<string> conditions, Func<IReadOnlyList<string>, (bool Holds, string Numbers)> verdict)
    {
        var cells = m.Where(x => rows.Contains(x.Row) && conditions.Contains(x.Condition)).ToList();
        var missing = rows.Where(r => !cells.Any(c => c.Row == r)).ToList();
        if (missing.Count > 0) return new DemoTable(claim, rows, conditions, cells, $"not measured yet: no results for {string.Join(", ", missing)}", null);
        var (holds, numbers) = verdict(rows);
        return new DemoTable(claim, rows, conditions, cells, (holds ? "reproduces" : "does not reproduce in miniature") + ": " + numbers, holds);
    }

    static double Mean(IReadOnlyList<DemoMeasurement> m, string row, Func<string, bool> condition, bool ap)
    {
        var values = m.Where(x => x.Row == row && condition(x.Condition)).Select(x => ap ? x.Ap : x.Acc).Where(v => v.HasValue).Select(v => v!.Value).ToList();
        return values.Count == 0 ? double.NaN : values.Average();
    }

    static string P(double v) => double.IsNaN(v) ? "-" : (100 * v).ToString("0.0", CultureInfo.InvariantCulture);

    /// <summary>The tables as markdown: one table per claim, ACC/AP in percent, then its verdict line.</summary>
    public static string ToMarkdown(IReadOnlyList<DemoTable> tables)
    {
        var text = new StringBuilder();
        foreach (var t in tables)
        {
            text.Append("### ").AppendLine(t.Claim).AppendLine();
            var columns = DemoBenchmark.Generators.SelectMany(g => t.Conditions.Select(c => (g, c))).ToList();
            text.Append("| detector / training |").AppendJoin("", columns.Select(x => $" {x.g} {x.c} ACC | {x.g} {x.c} AP |")).AppendLine();
            text.Append("|---|").AppendJoin("", columns.Select(_ => "---:|---:|")).AppendLine();
            foreach (var row in t.Rows)
            {
                text.Append("| ").Append(row).Append(" |");
                foreach (var (g, c) in columns)
                {
                    var cell = t.Cells.FirstOrDefault(x => x.Row == row && x.Generator == g && x.Condition == c);
                    text.Append(' ').Append(cell is null ? "-" : P(cell.Acc)).Append(" | ").Append(cell?.Ap is { } ap ? P(ap) : "-").Append(" |");
                }
                text.AppendLine();
            }
            text.AppendLine().Append("Verdict: ").AppendLine(t.Verdict).AppendLine();
        }
        return text.ToString();
    }
}
