using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Forensics.ML.Evaluation;
using Forensics.ML.Lare2;
using Forensics.ML.Protocols;
using Microsoft.EntityFrameworkCore;
using Portal.Components.Shared;
using Portal.Infrastructure;
using Portal.Experiments;
using Portal.Datasets;
using Portal.Zoo;
using Portal.Runs;
using Portal.Store;

namespace Portal.Experiments;

/// <summary>One measured cell of one seed: a row (training) on a generator under a condition ("clean", "jpeg 90", "resize 0.5").</summary>
public sealed record DemoMeasurement(string Row, string Generator, string Condition, double Acc, double? Ap, long Seed = DemoBenchmark.Seed);

/// <summary>One detector's sanity numbers for one seed: AP on its own training distribution's test split, the untrained init's AP there, its last epoch's training loss.</summary>
public sealed record DemoSanity(string Row, long Seed, double? InDistributionAp, double? UntrainedAp, double? FinalTrainLoss);

/// <summary>The demo's stored results: the measured cells and the sanity numbers of every seed.</summary>
public sealed record DemoData(IReadOnlyList<DemoMeasurement> Measurements, IReadOnlyList<DemoSanity> Sanity);

/// <summary>A cell over the seeds: mean and sample sd of ACC and AP, and the seeds measured.</summary>
public sealed record DemoCell(string Row, string Generator, string Condition, double Acc, double? Ap, double? AccSd, double? ApSd, IReadOnlyList<long> Seeds);

/// <summary>A detector's sanity row over the seeds (means and sds); <see cref="Trained"/> when the mean in-distribution AP reaches <see cref="DemoResults.TrainedAp"/>.</summary>
public sealed record DemoSanityRow(string Row, IReadOnlyList<long> Seeds, double? InDistributionAp, double? InDistributionApSd, double? UntrainedAp, double? UntrainedApSd,
    double? FinalTrainLoss, double? FinalTrainLossSd)
{
    /// <summary>True when the detector trained (mean in-distribution AP at least <see cref="DemoResults.TrainedAp"/>).</summary>
    public bool Trained => InDistributionAp >= DemoResults.TrainedAp;
}

/// <summary>A set of images' shortcut statistics against the reals (<see cref="ShortcutStatistics"/>); HfRatio = its Laplacian energy / the reals'.</summary>
public sealed record DemoShortcutRow(string Generator, double LumaMean, double LumaStd, double LaplacianEnergy, double HfRatio, int Images);

/// <summary>The verdict of a claim.</summary>
public enum DemoVerdict
{
    /// <summary>Not every row is measured yet.</summary>
    NotMeasured,
    /// <summary>A detector behind the claim did not train (in-distribution AP below <see cref="DemoResults.TrainedAp"/>).</summary>
    DetectorDidNotTrain,
    /// <summary>The claimed difference exceeds the spread.</summary>
    Reproduces,
    /// <summary>The difference is reversed or within the spread.</summary>
    DoesNotReproduce,
}

/// <summary>A claim's table: rows = detector/training, conditions, the cells over the seeds; and the verdict with its numbers.</summary>
public sealed record DemoTable(string Claim, IReadOnlyList<string> Rows, IReadOnlyList<string> Conditions, IReadOnlyList<DemoCell> Cells, DemoVerdict Outcome, string Numbers)
{
    /// <summary>The verdict line: "reproduces: ...", "does not reproduce in miniature: ...", "detector did not train: ...".</summary>
    public string Verdict => DemoResults.VerdictText(Outcome) + ": " + Numbers;

    /// <summary>True / false for a verdict on trained detectors; null otherwise.</summary>
    public bool? Reproduces => Outcome switch { DemoVerdict.Reproduces => true, DemoVerdict.DoesNotReproduce => false, _ => null };
}

/// <summary>Everything the page and the command show: sanity rows, shortcut statistics, claim tables.</summary>
public sealed record DemoTables(IReadOnlyList<DemoSanityRow> Sanity, IReadOnlyList<DemoShortcutRow> Shortcut, IReadOnlyList<DemoTable> Claims);

/// <summary>
/// Turns the stored demo runs (tag demo) into what the /demo page and the demo-report command show, with the same code:
/// per detector the sanity row (in-distribution AP, untrained-init AP, final training loss beside ln 2), the shortcut
/// statistics per generator against the reals, and the claim tables, every cell the mean ± sd over the seeds. A claim
/// gets a verdict only when the detectors behind it trained (mean in-distribution AP of at least 80); it counts as
/// reproduced only when the difference exceeds the spread (the root sum of squares of the two rows' sds over the seeds).
/// </summary>
public static class DemoResults
{
    /// <summary>The in-distribution AP a detector must reach to count as trained.</summary>
    public const double TrainedAp = 0.80;

    /// <summary>ln 2: the BCE loss of a network that always answers 1/2.</summary>
    public static readonly double Ln2 = Math.Log(2);

    /// <summary>Row names.</summary>
    public const string Aligned = "aligned", Usual = "usual", Lare2 = "LaRE²", ResNet = "ResNet-50 (usual)";

    /// <summary>The generators the alignment claims are averaged over: the latent diffusion families the aligned training targets.</summary>
    public static readonly IReadOnlyList<string> LatentGenerators = ["ldm_nearest", "ldm_transpose"];

    /// <summary>The perturbed conditions of the sweeps, in column order ("jpeg 100" .. "resize 1.5").</summary>
    public static IReadOnlyList<string> PerturbedConditions { get; } =
        DemoBenchmark.JpegSeverities.Split(',').Select(s => $"jpeg {s}").Concat(DemoBenchmark.ResizeSeverities.Split(',').Select(s => $"resize {s}")).ToList();

    /// <summary>The measurements and sanity numbers of the succeeded demo runs in the store.</summary>
    public static async Task<DemoData> LoadAsync(IDbContextFactory<PortalDb> dbFactory, PortalPaths paths)
    {
        await using var db = await dbFactory.CreateDbContextAsync();
        var tagged = await db.Runs.AsNoTracking().Where(r => r.Status == RunStatus.Succeeded && r.Tags.Contains("," + DemoBenchmark.Tag + ","))
            .OrderBy(r => r.Id).ToListAsync();
        var evaluations = tagged.Where(r => r.Kind == EvaluationJob.KindName)
            .Select(r => (Run: r, Config: JsonSerializer.Deserialize<EvaluationJob.Config>(r.ConfigJson, JobInputs.Json)))
            .Where(x => x.Config is not null).ToList();
        var list = new List<DemoMeasurement>();
        var sanity = new List<DemoSanity>();
        foreach (var run in tagged.Where(r => r.Kind == PipelineJob.KindName))
        {
            var c = JsonSerializer.Deserialize<PipelineJob.Config>(run.ConfigJson, JobInputs.Json);
            if (c?.Train is null) continue;
            var row = (c.Align is null ? Usual : Aligned) + (c.Train.Fraction is { } f ? $"@{f * 100:0}%" : "");
            var seed = c.Train.Seed ?? DemoBenchmark.Seed;
            var children = await PipelineJob.ChildrenAsync(dbFactory, run.Id);
            if (children.FirstOrDefault(x => x.Stage == "crossgen") is { } cg)
            {
                var metrics = await FinalMetricsAsync(db, cg.RunId);
                foreach (var g in DemoBenchmark.Generators)
                    if (metrics.TryGetValue(EvaluationResults.Metric(EvaluationResults.Acc, g), out var acc))
                        list.Add(new DemoMeasurement(row, g, "clean", acc, metrics.TryGetValue(EvaluationResults.Metric(EvaluationResults.Ap, g), out var ap) ? ap : null, seed));
            }
            foreach (var sweep in children.Where(x => x.Kind == RobustnessSweepJob.KindName))
                list.AddRange(await SweepCellsAsync(db, paths, row, seed, sweep.RunId));
            if (children.FirstOrDefault(x => x.Stage == "train") is { } train)
            {
                string? ArtifactOf(string kind) => db.Artifacts.AsNoTracking().Where(a => a.RunId == train.RunId && a.Kind == kind).OrderByDescending(a => a.Id)
                    .Select(a => a.RelativePath).FirstOrDefault() is { } rel ? paths.Data(rel) : null;
                double? ApOf(string? checkpoint) => checkpoint is null ? null
                    : evaluations.LastOrDefault(e => e.Config!.Checkpoint == checkpoint && e.Config.Split == DemoBenchmark.TestSplit && e.Config.Arch is null) is { Run: { } r }
                        ? FinalMetricsAsync(db, r.Id).GetAwaiter().GetResult().GetValueOrDefault(EvaluationResults.Ap) : null;
                var loss = await LastAsync(db, train.RunId, TrainingResults.TrainLoss);
                sanity.Add(new DemoSanity(row, seed, ApOf(ArtifactOf(TrainingResults.WeightsArtifact)), ApOf(ArtifactOf(TrainingJob.InitArtifact)), loss));
            }
        }
        List<Artifact>? weights = null;
        // LaRE²: its test runs (evaluations with arch lare2) report per generator; its sanity is its own generator's AP.
        foreach (var (run, c) in evaluations.Where(e => e.Config!.Arch == Lare2Evaluator.Architecture))
        {
            var metrics = await FinalMetricsAsync(db, run.Id);
            // The seed is the training run's: the test config differs only in its checkpoint.
            weights ??= await db.Artifacts.AsNoTracking().Where(a => a.Kind == TrainingResults.WeightsArtifact).ToListAsync();
            var source = weights.LastOrDefault(a => paths.Data(a.RelativePath) == c!.Checkpoint)?.RunId;
            var seed = source is { } s0 && await db.Runs.AsNoTracking().Where(r => r.Id == s0).Select(r => r.Seed).FirstOrDefaultAsync() is { } trainSeed ? trainSeed : DemoBenchmark.Seed;
            foreach (var g in DemoBenchmark.Generators)
                if (metrics.TryGetValue(EvaluationResults.Metric(EvaluationResults.Acc, g), out var acc))
                    list.Add(new DemoMeasurement(Lare2, g, "clean", acc, metrics.TryGetValue(EvaluationResults.Metric(EvaluationResults.Ap, g), out var ap) ? ap : null, seed));
            sanity.Add(new DemoSanity(Lare2, seed, metrics.TryGetValue(EvaluationResults.Metric(EvaluationResults.Ap, DemoBenchmark.TrainGenerator), out var own) ? own : null, null,
                source is { } id ? await LastAsync(db, id, TrainingResults.TrainLoss) : null));
        }
        // A cell measured twice for one seed (a rerun) keeps its newest values.
        return new DemoData(list.GroupBy(m => (m.Row, m.Generator, m.Condition, m.Seed)).Select(g => g.Last()).ToList(),
            sanity.GroupBy(s => (s.Row, s.Seed)).Select(g => g.Last()).ToList());
    }

    static async Task<double?> LastAsync(PortalDb db, long runId, string name) =>
        (await db.RunMetrics.AsNoTracking().Where(m => m.RunId == runId && m.Name == name).OrderByDescending(m => m.Step).ThenByDescending(m => m.Id)
            .FirstOrDefaultAsync())?.Value;

    static async Task<Dictionary<string, double>> FinalMetricsAsync(PortalDb db, long runId) =>
        (await db.RunMetrics.AsNoTracking().Where(m => m.RunId == runId && m.Step == 0).OrderBy(m => m.Id).ToListAsync())
        .GroupBy(m => m.Name).ToDictionary(g => g.Key, g => g.Last().Value);

    /// <summary>The per-generator cells of every perturbed point of a sweep's sweep.json ("jpeg 90", "resize 0.5").</summary>
    static async Task<IEnumerable<DemoMeasurement>> SweepCellsAsync(PortalDb db, PortalPaths paths, string row, long seed, long sweepRunId)
    {
        var artifact = await db.Artifacts.AsNoTracking().Where(a => a.RunId == sweepRunId && a.Kind == SweepResults.JsonArtifact).OrderByDescending(a => a.Id).FirstOrDefaultAsync();
        if (artifact is null || !File.Exists(paths.Data(artifact.RelativePath))) return [];
        var json = JsonNode.Parse(await File.ReadAllTextAsync(paths.Data(artifact.RelativePath)))!.AsObject();
        var axis = json["axis"]!.GetValue<string>();
        var cells = new List<DemoMeasurement>();
        foreach (var point in json["points"]!.AsArray())
        {
            var severity = point?["severity"]?.GetValue<string>();
            if (severity is null || severity == "clean") continue;
            foreach (var cell in point!["per_generator"]!.AsArray())
                cells.Add(new DemoMeasurement(row, cell!["generator"]!.GetValue<string>(), $"{axis} {severity}", cell["acc"]!.GetValue<double>(),
                    cell["ap"] is JsonValue ap && ap.TryGetValue<double>(out var v) ? v : null, seed));
        }
        return cells;
    }

    /// <summary>Mean and sample sd (null with fewer than two values) of the present values.</summary>
    public static (double? Mean, double? Sd) MeanSd(IEnumerable<double?> values)
    {
        var v = values.Where(x => x.HasValue).Select(x => x!.Value).ToList();
        if (v.Count == 0) return (null, null);
        var mean = v.Average();
        return (mean, v.Count < 2 ? null : Math.Sqrt(v.Sum(x => (x - mean) * (x - mean)) / (v.Count - 1)));
    }

    /// <summary>The cells over the seeds.</summary>
    public static IReadOnlyList<DemoCell> Cells(IEnumerable<DemoMeasurement> m) => m.GroupBy(x => (x.Row, x.Generator, x.Condition)).Select(g =>
    {
        var (acc, accSd) = MeanSd(g.Select(x => (double?)x.Acc));
        var (ap, apSd) = MeanSd(g.Select(x => x.Ap));
        return new DemoCell(g.Key.Row, g.Key.Generator, g.Key.Condition, acc!.Value, ap, accSd, apSd, g.Select(x => x.Seed).Distinct().Order().ToList());
    }).ToList();

    /// <summary>The sanity rows over the seeds, in the order of <paramref name="order"/> (others after).</summary>
    public static IReadOnlyList<DemoSanityRow> SanityRows(IEnumerable<DemoSanity> sanity) => sanity.GroupBy(s => s.Row).Select(g =>
    {
        var (a, asd) = MeanSd(g.Select(x => x.InDistributionAp));
        var (u, usd) = MeanSd(g.Select(x => x.UntrainedAp));
        var (l, lsd) = MeanSd(g.Select(x => x.FinalTrainLoss));
        return new DemoSanityRow(g.Key, g.Select(x => x.Seed).Distinct().Order().ToList(), a, asd, u, usd, l, lsd);
    }).OrderBy(r => RowOrder(r.Row)).ToList();

    static int RowOrder(string row) => row switch
    {
        Aligned => 0, Usual => 1, _ when row.StartsWith(Aligned + "@", StringComparison.Ordinal) => 2, _ when row.StartsWith(Usual + "@", StringComparison.Ordinal) => 3, Lare2 => 4, _ => 5,
    };

    /// <summary>The sanity rows, the shortcut statistics and the three claim tables.</summary>
    public static DemoTables Tables(DemoData data, IReadOnlyList<DemoShortcutRow>? shortcut = null)
    {
        var m = data.Measurements;
        var sanity = SanityRows(data.Sanity);
        var small = $"@{DemoBenchmark.SmallFraction * 100:0}%";
        var perturbed = PerturbedConditions;
        var robustness = Claim(m, sanity, "Aligned vs usual training: robustness to JPEG and resizing (AP)", [Aligned, Usual], ["clean", .. perturbed],
            Aligned, Usual, LatentGenerators, perturbed,
            $"mean AP on {string.Join(" and ", LatentGenerators)} under JPEG q{DemoBenchmark.JpegSeverities.Split(',')[0]}..{DemoBenchmark.JpegSeverities.Split(',')[^1]} and resize x{DemoBenchmark.ResizeSeverities.Split(',')[0]}..{DemoBenchmark.ResizeSeverities.Split(',')[^1]}");
        var efficiency = Claim(m, sanity, $"Data efficiency: aligned vs usual with {DemoBenchmark.SmallFraction * 100:0}% and 100% of the training images",
            [Aligned + small, Usual + small, Aligned, Usual], ["clean"], Aligned + small, Usual + small, LatentGenerators, ["clean"],
            $"mean clean AP on {string.Join(" and ", LatentGenerators)} with {DemoBenchmark.SmallFraction * 100:0}% of the images");
        var renamed = m.Select(x => x.Row == Usual ? x with { Row = ResNet } : x).ToList();
        var renamedSanity = sanity.Select(s => s.Row == Usual ? s with { Row = ResNet } : s).ToList();
        var families = Claim(renamed, renamedSanity, "LaRE² vs ResNet-50 across generator families", [Lare2, ResNet], ["clean"], Lare2, ResNet,
            DemoBenchmark.Generators, ["clean"], "mean clean AP over the three families");
        return new DemoTables(sanity, shortcut ?? [], [robustness, efficiency, families]);
    }

    /// <summary>
    /// A claim "<paramref name="better"/> beats <paramref name="other"/>": the per-seed mean AP of each over the generators
    /// and conditions, then mean ± sd over the seeds; the verdict rules of <see cref="Verdict"/>.
    /// </summary>
    static DemoTable Claim(IReadOnlyList<DemoMeasurement> m, IReadOnlyList<DemoSanityRow> sanity, string claim, IReadOnlyList<string> rows,
        IReadOnlyList<string> conditions, string better, string other, IReadOnlyList<string> generators, IReadOnlyList<string> verdictConditions, string what)
    {
        var measured = m.Where(x => rows.Contains(x.Row) && conditions.Contains(x.Condition)).ToList();
        var cells = Cells(measured);
        var missing = rows.Where(r => !measured.Any(c => c.Row == r)).ToList();
        if (missing.Count > 0) return new DemoTable(claim, rows, conditions, cells, DemoVerdict.NotMeasured, $"no results for {string.Join(", ", missing)}");
        (double? Mean, double? Sd) PerSeed(string row) => MeanSd(measured.Where(x => x.Row == row && generators.Contains(x.Generator) && verdictConditions.Contains(x.Condition))
            .GroupBy(x => x.Seed).Select(g => MeanSd(g.Select(x => x.Ap)).Mean));
        var (outcome, numbers) = Verdict(PerSeed(better), PerSeed(other), sanity.FirstOrDefault(s => s.Row == better), sanity.FirstOrDefault(s => s.Row == other), better, other, what);
        return new DemoTable(claim, rows, conditions, cells, outcome, numbers);
    }

    /// <summary>
    /// The verdict rules: "detector did not train" (with its sanity numbers) when a detector's mean in-distribution AP is
    /// below <see cref="TrainedAp"/> or unmeasured; otherwise "reproduces" only when the difference of the means exceeds the
    /// spread, sqrt(sd_a² + sd_b²) of the two rows over the seeds (an sd missing, with one seed, counts as infinite spread).
    /// </summary>
    public static (DemoVerdict Outcome, string Numbers) Verdict((double? Mean, double? Sd) a, (double? Mean, double? Sd) b, DemoSanityRow? sanityA,
        DemoSanityRow? sanityB, string nameA, string nameB, string what)
    {
        var untrained = new[] { (nameA, sanityA), (nameB, sanityB) }.Where(x => x.Item2 is not { Trained: true }).ToList();
        if (untrained.Count > 0)
            return (DemoVerdict.DetectorDidNotTrain, string.Join("; ", untrained.Select(x => x.Item2 is { } s
                ? $"{x.Item1} in-distribution AP {Format.ScoreSpread(s.InDistributionAp, s.InDistributionApSd)} (< {Format.Score(TrainedAp)}), untrained init {Format.ScoreSpread(s.UntrainedAp, s.UntrainedApSd)}, final training loss {Loss(s.FinalTrainLoss, s.FinalTrainLossSd)} (ln 2 = {Ln2:0.000})"
                : $"{x.Item1} has no sanity numbers")));
        if (a.Mean is not { } ma || b.Mean is not { } mb) return (DemoVerdict.NotMeasured, $"{what}: not measured");
        var diff = ma - mb;
        var spread = a.Sd is { } sa && b.Sd is { } sb ? Math.Sqrt(sa * sa + sb * sb) : double.PositiveInfinity;
        var numbers = $"{what}: {nameA} {Format.ScoreSpread(a.Mean, a.Sd)} vs {nameB} {Format.ScoreSpread(b.Mean, b.Sd)}; difference {Points(diff)}, spread {Points(spread)}";
        return (diff > spread ? DemoVerdict.Reproduces : DemoVerdict.DoesNotReproduce, numbers);
    }

    static string Points(double v) => double.IsInfinity(v) ? "unknown (one seed)" : (100 * v).ToString("0.0", CultureInfo.InvariantCulture);

    static string Loss(double? mean, double? sd) => mean is not { } l ? "-" : sd is { } s ? $"{l.ToString("0.000", CultureInfo.InvariantCulture)} ± {s.ToString("0.000", CultureInfo.InvariantCulture)}" : l.ToString("0.000", CultureInfo.InvariantCulture);

    /// <summary>The verdict's words (the markdown's and the JSON's are <see cref="VerdictText"/> and <see cref="VerdictKey"/>).</summary>
    public static string VerdictText(DemoVerdict v) => v switch
    {
        DemoVerdict.Reproduces => "reproduces",
        DemoVerdict.DoesNotReproduce => "does not reproduce in miniature",
        DemoVerdict.DetectorDidNotTrain => "detector did not train",
        _ => "not measured yet",
    };

    /// <summary>The JSON's verdict: reproduces | does-not-reproduce | detector-did-not-train | not-measured.</summary>
    public static string VerdictKey(DemoVerdict v) => v switch
    {
        DemoVerdict.Reproduces => "reproduces",
        DemoVerdict.DoesNotReproduce => "does-not-reproduce",
        DemoVerdict.DetectorDidNotTrain => "detector-did-not-train",
        _ => "not-measured",
    };

    /// <summary>A cell as the page and the markdown show it: "mean ± sd" in percent, "-" when absent.</summary>
    public static string Show(double? mean, double? sd) => mean is null ? "-" : Format.ScoreSpread(mean, sd);

    /// <summary>The sanity table's cells of a row: in-distribution AP, untrained AP, final training loss (beside ln 2), verdict on training.</summary>
    public static IReadOnlyList<string> SanityCells(DemoSanityRow s) =>
    [
        s.Row, string.Join(",", s.Seeds), Show(s.InDistributionAp, s.InDistributionApSd), Show(s.UntrainedAp, s.UntrainedApSd),
        $"{Loss(s.FinalTrainLoss, s.FinalTrainLossSd)} (ln 2 = {Ln2:0.000})", s.Trained ? "trained" : "did not train",
    ];

    /// <summary>The sanity table's header.</summary>
    public static readonly IReadOnlyList<string> SanityHeader = ["detector / training", "seeds", "in-distribution AP", "untrained init AP", "final training loss", "status"];

    /// <summary>The shortcut table's header.</summary>
    public static readonly IReadOnlyList<string> ShortcutHeader = ["images", "n", "luma mean", "luma std", "Laplacian energy", "HF ratio to reals"];

    /// <summary>The shortcut table's cells of a row.</summary>
    public static IReadOnlyList<string> ShortcutCells(DemoShortcutRow r) =>
    [
        r.Generator, r.Images.ToString(CultureInfo.InvariantCulture), r.LumaMean.ToString("0.0", CultureInfo.InvariantCulture),
        r.LumaStd.ToString("0.0", CultureInfo.InvariantCulture), r.LaplacianEnergy.ToString("0.0", CultureInfo.InvariantCulture), r.HfRatio.ToString("0.00", CultureInfo.InvariantCulture),
    ];

    /// <summary>
    /// A claim table's layout, the same for the page and the markdown: with one condition, rows = detector/training and
    /// columns = generator ACC and AP; with several (the sweeps), rows = condition and columns = detector/training x generator AP.
    /// </summary>
    public static (IReadOnlyList<string> Header, IReadOnlyList<IReadOnlyList<string>> Body) Layout(DemoTable t)
    {
        DemoCell? Cell(string row, string g, string c) => t.Cells.FirstOrDefault(x => x.Row == row && x.Generator == g && x.Condition == c);
        if (t.Conditions.Count == 1)
        {
            var c = t.Conditions[0];
            var header = new List<string> { "detector / training" };
            header.AddRange(DemoBenchmark.Generators.SelectMany(g => new[] { $"{g} ACC", $"{g} AP" }));
            var body = t.Rows.Select(row => (IReadOnlyList<string>)new List<string> { row }.Concat(DemoBenchmark.Generators.SelectMany(g =>
            {
                var cell = Cell(row, g, c);
                return new[] { Show(cell?.Acc, cell?.AccSd), Show(cell?.Ap, cell?.ApSd) };
            })).ToList()).ToList();
            return (header, body);
        }
        var head = new List<string> { "condition" };
        head.AddRange(t.Rows.SelectMany(r => DemoBenchmark.Generators.Select(g => $"{r} {g} AP")));
        var rows = t.Conditions.Select(c => (IReadOnlyList<string>)new List<string> { c }
            .Concat(t.Rows.SelectMany(r => DemoBenchmark.Generators.Select(g => Cell(r, g, c) is { } cell ? Show(cell.Ap, cell.ApSd) : "-"))).ToList()).ToList();
        return (head, rows);
    }

    static void Markdown(StringBuilder text, IReadOnlyList<string> header, IEnumerable<IReadOnlyList<string>> body)
    {
        text.Append("| ").AppendJoin(" | ", header).AppendLine(" |");
        text.Append("|---|").AppendJoin("", header.Skip(1).Select(_ => "---:|")).AppendLine();
        foreach (var row in body) text.Append("| ").AppendJoin(" | ", row).AppendLine(" |");
    }

    /// <summary>The sanity table, the shortcut table and the claim tables as markdown (percent, mean ± sd over the seeds), each claim with its verdict line.</summary>
    public static string ToMarkdown(DemoTables tables)
    {
        var text = new StringBuilder();
        text.AppendLine("### Sanity: did each detector train?").AppendLine();
        Markdown(text, SanityHeader, tables.Sanity.Select(SanityCells));
        text.AppendLine();
        if (tables.Shortcut.Count > 0)
        {
            text.AppendLine("### Shortcut check: what a detector could key on (test split)").AppendLine();
            Markdown(text, ShortcutHeader, tables.Shortcut.Select(ShortcutCells));
            text.AppendLine();
        }
        foreach (var t in tables.Claims)
        {
            text.Append("### ").AppendLine(t.Claim).AppendLine();
            var (header, body) = Layout(t);
            Markdown(text, header, body);
            text.AppendLine().Append("Verdict: ").AppendLine(t.Verdict).AppendLine();
        }
        return text.ToString();
    }

    /// <summary>
    /// The machine-readable document: commit, set, minutes; rows (detector, training, seeds, generator, condition, acc, ap,
    /// acc_sd, ap_sd, n = seeds measured); sanity; shortcut; claims (claim, verdict, numbers); cost.
    /// </summary>
    public static JsonObject ToJson(DemoTables tables, string commit, string set, double minutes, JsonObject? cost)
    {
        static JsonNode? N(double? v) => v is { } x && double.IsFinite(x) ? JsonValue.Create(Math.Round(x, 6)) : null;
        static (string Detector, string Training) Split(string row) => row == Lare2 ? (Lare2Evaluator.Architecture, "usual") : ("res50nodown", row == ResNet ? Usual : row);
        var cells = tables.Claims.SelectMany(t => t.Cells).DistinctBy(c => (c.Row == ResNet ? Usual : c.Row, c.Generator, c.Condition));
        return new JsonObject
        {
            ["commit"] = commit, ["set"] = set, ["minutes"] = Math.Round(minutes, 2),
            ["rows"] = new JsonArray(cells.Select(c => (JsonNode)new JsonObject
            {
                ["detector"] = Split(c.Row).Detector, ["training"] = Split(c.Row).Training, ["seeds"] = new JsonArray(c.Seeds.Select(s => (JsonNode)JsonValue.Create(s)).ToArray()),
                ["generator"] = c.Generator, ["condition"] = c.Condition, ["acc"] = N(c.Acc), ["ap"] = N(c.Ap), ["acc_sd"] = N(c.AccSd), ["ap_sd"] = N(c.ApSd),
                ["n"] = c.Seeds.Count,
            }).ToArray()),
            ["sanity"] = new JsonArray(tables.Sanity.Select(s => (JsonNode)new JsonObject
            {
                ["detector"] = Split(s.Row).Detector, ["training"] = Split(s.Row).Training, ["in_distribution_ap"] = N(s.InDistributionAp),
                ["untrained_ap"] = N(s.UntrainedAp), ["final_train_loss"] = N(s.FinalTrainLoss),
            }).ToArray()),
            ["shortcut"] = new JsonArray(tables.Shortcut.Select(r => (JsonNode)new JsonObject
            {
                ["generator"] = r.Generator, ["luma_mean"] = N(r.LumaMean), ["luma_std"] = N(r.LumaStd), ["laplacian_energy"] = N(r.LaplacianEnergy), ["hf_ratio"] = N(r.HfRatio),
            }).ToArray()),
            ["claims"] = new JsonArray(tables.Claims.Select(t => (JsonNode)new JsonObject
            {
                ["claim"] = t.Claim, ["verdict"] = VerdictKey(t.Outcome), ["numbers"] = t.Numbers,
            }).ToArray()),
            ["cost"] = cost,
        };
    }

    /// <summary>
    /// The shortcut rows from image sets: "real" first (its ratio 1), then each named set with its Laplacian energy over the
    /// reals'. Null when there are no reals.
    /// </summary>
    public static IReadOnlyList<DemoShortcutRow> ShortcutRows(ShortcutStatistics reals, IEnumerable<(string Name, ShortcutStatistics Stats)> others) =>
    [
        new("real", reals.LumaMean, reals.LumaStd, reals.LaplacianEnergy, 1, reals.Images),
        .. others.Select(o => new DemoShortcutRow(o.Name, o.Stats.LumaMean, o.Stats.LumaStd, o.Stats.LaplacianEnergy,
            reals.LaplacianEnergy > 0 ? o.Stats.LaplacianEnergy / reals.LaplacianEnergy : double.NaN, o.Stats.Images)),
    ];

    static readonly Dictionary<string, IReadOnlyList<DemoShortcutRow>> ShortcutCache = [];

    /// <summary>
    /// The shortcut statistics of MiniGenImage's test split: ldm_nearest's reals, each generator's fakes, and the reals'
    /// reconstructions through vae-nearest (the aligned dataset's test fakes) when aligned; cached per set of folders.
    /// Empty while MiniGenImage is not ready.
    /// </summary>
    public static async Task<IReadOnlyList<DemoShortcutRow>> ShortcutAsync(IDbContextFactory<PortalDb> dbFactory)
    {
        await using var db = await dbFactory.CreateDbContextAsync();
        var minigen = await db.Datasets.AsNoTracking().SingleOrDefaultAsync(d => d.Name == DemoBenchmark.DatasetName && d.Status == DatasetStatus.Ready);
        if (minigen is null) return [];
        var source = await db.Datasets.AsNoTracking().SingleOrDefaultAsync(d => d.Name == DemoBenchmark.AlignSourceName && d.Status == DatasetStatus.Ready);
        Dataset? aligned = null;
        if (source is not null)
        {
            var alignRuns = await db.Runs.AsNoTracking().Where(r => r.Kind == AlignmentJob.KindName && r.Status == RunStatus.Succeeded && r.Tags.Contains("," + DemoBenchmark.Tag + ","))
                .OrderByDescending(r => r.Id).Select(r => r.Id).ToListAsync();
            aligned = await db.Datasets.AsNoTracking().Where(d => d.RegistrationRunId != null && alignRuns.Contains(d.RegistrationRunId.Value) && d.Status == DatasetStatus.Ready)
                .OrderByDescending(d => d.Id).FirstOrDefaultAsync();
        }
        var key = $"{minigen.Path}|{aligned?.Path}";
        lock (ShortcutCache)
            if (ShortcutCache.TryGetValue(key, out var cached)) return cached;
        IReadOnlyList<DemoShortcutRow> rows;
        try
        {
            rows = await Task.Run(() =>
            {
                Forensics.ML.Runtime.TorchRuntime.EnsureLoaded();
                return ShortcutRows(minigen.Path, aligned?.Path);
            });
        }
        catch (Exception e) when (e is Forensics.ML.Imaging.ImageDecodeException or IOException or UnauthorizedAccessException or ArgumentException)
        {
            return []; // unreadable images: no table (not cached, so a repaired folder is measured)
        }
        lock (ShortcutCache) ShortcutCache[key] = rows;
        return rows;
    }

    static IReadOnlyList<DemoShortcutRow> ShortcutRows(string minigenPath, string? alignedPath)
    {
        static IEnumerable<string> Images(string folder) => Directory.Exists(folder)
            ? Directory.EnumerateFiles(folder).Where(f => f.EndsWith(".png", StringComparison.OrdinalIgnoreCase) || f.EndsWith(".jpg", StringComparison.OrdinalIgnoreCase)).Order(StringComparer.Ordinal)
            : [];
        {
            var realFiles = Images(Path.Combine(minigenPath, DemoBenchmark.TrainGenerator, DemoBenchmark.TestSplit, "nature")).ToList();
            if (realFiles.Count == 0) return (IReadOnlyList<DemoShortcutRow>)[];
            var others = DemoBenchmark.Generators.Select(g => (g, Images(Path.Combine(minigenPath, g, DemoBenchmark.TestSplit, "ai")).ToList()))
                .Where(x => x.Item2.Count > 0).Select(x => (x.g, ShortcutStatistics.OfFiles(x.Item2))).ToList();
            if (alignedPath is not null)
            {
                var recon = new[] { Path.Combine(alignedPath, DemoBenchmark.TestSplit, "ai"), Path.Combine(alignedPath, DemoBenchmark.TestSplit, "1_fake"),
                    Path.Combine(alignedPath, DemoBenchmark.TrainGenerator, DemoBenchmark.TestSplit, "ai") }.Select(f => Images(f).ToList()).FirstOrDefault(f => f.Count > 0);
                if (recon is not null) others.Add(($"{DemoBenchmark.VaeName} reconstructions", ShortcutStatistics.OfFiles(recon)));
            }
            return ShortcutRows(ShortcutStatistics.OfFiles(realFiles), others);
        }
    }
}
