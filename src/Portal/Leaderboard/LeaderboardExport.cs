using System.Globalization;
using System.Text;

namespace Portal.Leaderboard;

/// <summary>
/// Writes a leaderboard page as shown: the same rows, generator columns and numbers (percent, one decimal; sd over seeds
/// beside the mean; AP columns only when shown; published value and delta when the rows are compared with a baseline).
/// </summary>
public static class LeaderboardExport
{
    /// <summary>A fraction as the page shows it: percent with one decimal.</summary>
    public static string Percent(double fraction) => (fraction * 100).ToString("F1", CultureInfo.InvariantCulture);

    /// <summary>A signed percent-point difference with one decimal.</summary>
    public static string SignedPercent(double fraction)
    {
        // Rounded first, so a difference of -1e-17 reads +0.0, not -0.0.
        var points = Math.Round(fraction * 100, 1, MidpointRounding.AwayFromZero);
        if (points == 0) points = 0;
        return (points >= 0 ? "+" : "") + points.ToString("F1", CultureInfo.InvariantCulture);
    }

    /// <summary>"54.9", "54.9 ± 1.2" (sd over seeds) or "54.9 [52.0, 57.8]" (one run's bootstrap interval); empty for no value.</summary>
    public static string Cell(LeaderboardCell? cell) =>
        cell is null ? "" : Percent(cell.Mean) + Spread(cell);

    /// <summary>" ± sd" over seeds, " [low, high]" for one run's bootstrap interval, else empty.</summary>
    public static string Spread(LeaderboardCell cell) =>
        cell.Sd is { } sd ? $" ± {Percent(sd)}" : cell is { Low: { } lo, High: { } hi } ? $" [{Percent(lo)}, {Percent(hi)}]" : "";

    /// <summary>The threshold column as shown: "best" carries a warning that it was chosen on the reported data.</summary>
    public static string ThresholdLabel(string threshold) => threshold == LeaderboardQuery.BestThreshold ? "best (on test!)" : threshold;

    /// <summary>The column label of a generator: the paper's label for a GenImage folder, else the generator's own name.</summary>
    public static string GeneratorLabel(string generator) => PublishedBaselines.GenImageLabel(generator) ?? generator;

    /// <summary>CSV (RFC 4180): one line per row, mean and sd in separate columns.</summary>
    public static string Csv(LeaderboardPage page, bool showAp)
    {
        var compared = Compared(page);
        var header = new List<string> { "source", "detector", "arch", "dataset", "split", "perturbation", "threshold", "runs", "seeds", "run_ids" };
        void Metric(string name)
        {
            header.Add(name);
            header.Add(name + "_sd");
            header.Add(name + "_ci_lo");
            header.Add(name + "_ci_hi");
        }
        foreach (var g in page.Generators)
        {
            Metric("acc_" + g);
            if (compared) { header.Add($"acc_{g}_published"); header.Add($"acc_{g}_delta"); }
        }
        Metric("mean_acc");
        if (compared) { header.Add("mean_acc_published"); header.Add("mean_acc_delta"); }
        if (showAp)
        {
            foreach (var g in page.Generators) Metric("ap_" + g);
            Metric("mean_ap");
        }

        var sb = new StringBuilder();
        sb.Append(string.Join(",", header.Select(Quote))).Append("\r\n");
        foreach (var row in page.Rows)
        {
            var fields = new List<string>
            {
                row.Source, row.Detector, row.Arch, row.Dataset, row.Split, row.Perturbation, row.Threshold,
                row.IsPublished ? "" : row.RunIds.Count.ToString(CultureInfo.InvariantCulture),
                string.Join(" ", row.Seeds), string.Join(" ", row.RunIds),
            };
            void Value(LeaderboardCell? cell, bool withComparison)
            {
                fields.Add(cell is null ? "" : Percent(cell.Mean));
                fields.Add(cell?.Sd is { } sd ? Percent(sd) : "");
                fields.Add(cell?.Low is { } lo ? Percent(lo) : "");
                fields.Add(cell?.High is { } hi ? Percent(hi) : "");
                if (withComparison)
                {
                    fields.Add(cell?.Published is { } p ? Percent(p) : "");
                    fields.Add(cell?.Delta is { } d ? SignedPercent(d) : "");
                }
            }
            foreach (var g in page.Generators) Value(row.Acc.GetValueOrDefault(g), compared);
            Value(row.MeanAcc, compared);
            if (showAp)
            {
                foreach (var g in page.Generators) Value(row.Ap.GetValueOrDefault(g), false);
                Value(row.MeanAp, false);
            }
            sb.Append(string.Join(",", fields.Select(Quote))).Append("\r\n");
        }
        return sb.ToString();
    }

    /// <summary>Published-value and delta columns appear when some row is compared with a baseline.</summary>
    static bool Compared(LeaderboardPage page) => page.Rows.Any(r => r.ComparedTo is not null);

    /// <summary>RFC 4180 quoting, and names that start with = + - @ (a dataset called =HYPERLINK(...)) neutralised for spreadsheets; numbers stay numbers.</summary>
    static string Quote(string field) => Forensics.ML.Data.CsvCell.Escape(field);

    /// <summary>A booktabs tabular: detector, source, dataset, perturbation, threshold, ACC per generator, mean (and AP when shown); values in percent.</summary>
    public static string Latex(LeaderboardPage page, bool showAp)
    {
        var compared = Compared(page);
        var metricColumns = page.Generators.Count + 1;
        var sb = new StringBuilder();
        sb.Append("% ").Append(string.Join("; ", page.Rows.Where(r => r.Citation is not null).Select(r => r.Citation).Distinct())).Append('\n');
        sb.Append("\\begin{tabular}{lllll").Append(new string('r', showAp ? 2 * metricColumns : metricColumns)).Append("}\n");
        sb.Append("\\toprule\n");
        var header = new List<string> { "Detector", "Source", "Dataset", "Perturbation", "Threshold" };
        header.AddRange(page.Generators.Select(g => Escape(GeneratorLabel(g))));
        header.Add("Mean");
        if (showAp)
        {
            header.AddRange(page.Generators.Select(g => "AP " + Escape(GeneratorLabel(g))));
            header.Add("Mean AP");
        }
        sb.Append(string.Join(" & ", header)).Append(" \\\\\n");
        sb.Append("\\midrule\n");
        foreach (var row in page.Rows)
        {
            var fields = new List<string> { Escape(row.Detector), Escape(row.Source), Escape(row.Dataset), Escape(row.Perturbation), Escape(ThresholdLabel(row.Threshold)) };
            fields.AddRange(page.Generators.Select(g => LatexCell(row.Acc.GetValueOrDefault(g), compared)));
            fields.Add(LatexCell(row.MeanAcc, compared));
            if (showAp)
            {
                fields.AddRange(page.Generators.Select(g => LatexCell(row.Ap.GetValueOrDefault(g), false)));
                fields.Add(LatexCell(row.MeanAp, false));
            }
            sb.Append(string.Join(" & ", fields)).Append(" \\\\\n");
        }
        sb.Append("\\bottomrule\n\\end{tabular}\n");
        return sb.ToString();
    }

    static string LatexCell(LeaderboardCell? cell, bool compared)
    {
        if (cell is null) return "--";
        var text = cell.Sd is { } sd ? $"{Percent(cell.Mean)} $\\pm$ {Percent(sd)}"
            : cell is { Low: { } lo, High: { } hi } ? $"{Percent(cell.Mean)} {{\\scriptsize [{Percent(lo)}, {Percent(hi)}]}}" : Percent(cell.Mean);
        return compared && cell.Delta is { } d ? $"{text} ({SignedPercent(d)})" : text;
    }

    /// <summary>Escapes LaTeX's special characters in a name.</summary>
    public static string Escape(string text)
    {
        var sb = new StringBuilder(text.Length);
        foreach (var c in text)
            sb.Append(c switch
            {
                '\\' => "\\textbackslash{}",
                '&' or '%' or '$' or '#' or '_' or '{' or '}' => "\\" + c,
                '~' => "\\textasciitilde{}",
                '^' => "\\textasciicircum{}",
                _ => c.ToString(),
            });
        return sb.ToString();
    }
}
