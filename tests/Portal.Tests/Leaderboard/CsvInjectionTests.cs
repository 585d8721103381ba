using Forensics.ML.Data;
using Forensics.ML.Metrics;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Portal.Store;
using Portal.Tests.Support;

namespace Portal.Tests.Leaderboard;

/// <summary>
/// Every CSV the portal writes neutralises text cells a spreadsheet would evaluate (OWASP CSV injection: = + - @, tab, CR),
/// keeps numbers as numbers, and the portal's own reader of scores.csv gets the original text back.
/// </summary>
public class CsvInjectionTests
{
    const string Formula = "=HYPERLINK(\"http://x/\",\"y\")";

    [Fact]
    public async Task A_dataset_named_as_a_formula_comes_out_of_the_leaderboard_csv_as_text()
    {
        using var tmp = new TempDir();
        await using var app = new PortalFactory(tmp.Path);
        var client = app.CreateClient();
        await client.GetJsonAsync("/api/health");
        var dbFactory = app.Services.GetRequiredService<IDbContextFactory<PortalDb>>();
        await LeaderboardQueryTests.SeedAsync(dbFactory);
        await using (var db = await dbFactory.CreateDbContextAsync())
            Assert.True(await db.Datasets.ExecuteUpdateAsync(s => s.SetProperty(d => d.Name, Formula)) > 0);

        var lines = (await client.GetStringAsync("/api/leaderboard.csv?perturbation=none")).Split("\r\n", StringSplitOptions.RemoveEmptyEntries);
        var measured = lines.Where(l => l.StartsWith("measured,", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(measured);
        // The cell is quoted (it holds commas and quotes) and starts with a single quote inside the quotes.
        Assert.All(measured, l => Assert.Contains(",\"'=HYPERLINK(\"\"http://x/\"\",\"\"y\"\")\",", l));
        Assert.DoesNotContain(lines, l => l.Contains(",=") || l.Contains(",\"=") || l.Contains(",@") || l.Contains(",+H"));
    }

    [Theory]
    [InlineData("=1+2", "'=1+2")]
    [InlineData("+SUM(A1)", "'+SUM(A1)")]
    [InlineData("-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0")]
    [InlineData("@SUM(A1)", "'@SUM(A1)")]
    [InlineData("\tx", "'\tx")]
    [InlineData("\r=x", "\"'\r=x\"")]
    [InlineData("'=already", "''=already")]
    [InlineData("a,b", "\"a,b\"")]
    [InlineData("-3.2", "-3.2")]
    [InlineData("+1.5", "+1.5")]
    [InlineData("-1e-5", "-1e-5")]
    [InlineData("-0.25", "-0.25")]
    [InlineData("genimage-val", "genimage-val")]
    [InlineData("", "")]
    public void Cells_are_neutralised_and_negative_numbers_stay_numbers(string text, string written) =>
        Assert.Equal(written, CsvCell.Escape(text));

    [Fact]
    public void Scores_csv_paths_are_neutralised_on_disk_and_read_back_unchanged()
    {
        using var tmp = new TempDir();
        var file = tmp.Sub("scores.csv");
        string[] paths = [Formula + ".png", "-1.png", "@x/0_real/a.png", "'=quoted.png", "'plain.png", "0_real/a,b.png", "1_fake/ok.png"];
        ScoresCsv.Write(file, paths.Select((p, i) => new ScoreRow(p, i % 2, i / 10.0)));

        var text = File.ReadAllText(file);
        Assert.Contains("\"'=HYPERLINK(\"\"http://x/\"\",\"\"y\"\").png\",0,0", text);
        Assert.Contains("\n'-1.png,1,0.1\n", text);
        Assert.Contains("\n'@x/0_real/a.png,0,0.2\n", text);
        Assert.Contains("\n''=quoted.png,1,0.3\n", text);
        Assert.Contains("\n'plain.png,0,0.4\n", text);   // nothing to neutralise: as it was

        // The portal's readers (thumbnails, the sweep's clean point, `forensics metrics`) see the real paths.
        var table = ScoresCsv.Read(file);
        Assert.Equal(paths, table.Rows.Select(r => r.Path));
        Assert.Equal(paths, table.Rows.Select(r => r.Columns["path"]));
        Assert.Equal(paths.Select((_, i) => i / 10.0), table.Scores);
    }
}
