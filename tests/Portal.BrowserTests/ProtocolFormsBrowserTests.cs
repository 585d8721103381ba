using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Forensics.ML.Metrics;
using Forensics.ML.Protocols;
using Microsoft.Playwright;

namespace Portal.BrowserTests;

/// <summary>
/// The protocol forms in a real browser against a real portal: a cross-generator evaluation (fixed, best-on-test and
/// calibrated thresholds) and a JPEG sweep of one checkpoint are queued from the /crossgen and /sweep pages, and the
/// numbers their run pages show equal `forensics eval` run as a separate process on the same images, with and without
/// `--perturb jpeg:Q`.
/// </summary>
public class ProtocolFormsBrowserTests
{
    const string CheckpointName = "protocol_detector.pth";
    const string DataFolder = "genimage-tiny";
    static readonly int[] JpegQualities = [75, 50];

    /// <summary>
    /// The eval fixture's 4 reals and 3 fakes laid out as GenImage (two generators, val and train splits): the val split
    /// is reported on, the train split calibrates the threshold. Generator b reuses images of a, which is all the
    /// protocol needs (each generator's own reals and fakes).
    /// </summary>
    static readonly (string Source, string Target)[] Layout =
    [
        ("0_real/r_64x64.png", "gena/val/nature/r_64x64.png"),
        ("0_real/r_gray_41x29.png", "gena/val/nature/r_gray_41x29.png"),
        ("1_fake/f_64x64.png", "gena/val/ai/f_64x64.png"),
        ("1_fake/f_rgba_33x45.png", "gena/val/ai/f_rgba_33x45.png"),
        ("0_real/r_37x53.png", "genb/val/nature/r_37x53.png"),
        ("0_real/r_48x36.jpg", "genb/val/nature/r_48x36.jpg"),
        ("1_fake/f_50x41.png", "genb/val/ai/f_50x41.png"),
        ("0_real/r_37x53.png", "gena/train/nature/r_37x53.png"),
        ("0_real/r_48x36.jpg", "gena/train/nature/r_48x36.jpg"),
        ("1_fake/f_50x41.png", "gena/train/ai/f_50x41.png"),
        ("0_real/r_64x64.png", "genb/train/nature/r_64x64.png"),
        ("1_fake/f_64x64.png", "genb/train/ai/f_64x64.png"),
    ];


    [Fact]
    public async Task Crossgen_and_jpeg_sweep_queued_in_the_browser_show_the_numbers_of_forensics_eval()
    {
        DebianChromium.RequireInstalled();

        var dataDir = Directory.CreateTempSubdirectory("portal-protocol-").FullName;
        try
        {
            foreach (var (source, target) in Layout)
            {
                var path = Path.Combine(dataDir, DataFolder, target);
                Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                File.Copy(DebianChromium.EvalFixture("data", source), path);
            }
            File.Copy(DebianChromium.EvalFixture("tiny_res50nodown_ckpt.pth"), Path.Combine(dataDir, CheckpointName));

            // The CLI runs beside the portal: it shares nothing with it but the files.
            var cli = Task.Run(() => RunCliEvaluations(dataDir));

            await using var portal = await PortalProcess.StartAsync(dataDir);
            using var playwright = await Playwright.CreateAsync();
            var (browser, page) = await DebianChromium.OpenAsync(playwright, portal);
            await using var _ = browser;
            try
            {
                await RegisterDatasetAsync(portal);
                var crossgen = await QueueCrossgenAsync(page);
                var sweep = await QueueSweepAsync(page);
                var expected = await cli;
                CompareCrossgen(crossgen, expected);
                CompareSweep(sweep, expected);
            }
            catch (Exception e)
            {
                var shot = Path.Combine(AppContext.BaseDirectory, $"failure-protocol-{DateTime.UtcNow:yyyyMMdd-HHmmss}.png");
                try { await page.ScreenshotAsync(new PageScreenshotOptions { Path = shot, FullPage = true }); } catch (PlaywrightException) { }
                throw new Exception($"{e.Message}\nurl: {page.Url}\nscreenshot: {shot}\nportal output (tail):\n{DebianChromium.Tail(portal.Output)}", e);
            }
        }
        finally
        {
            try { Directory.Delete(dataDir, recursive: true); } catch (IOException) { }
        }
    }

    // ---- the portal, driven through the browser ----

    static async Task RegisterDatasetAsync(PortalProcess portal)
    {
        var response = await portal.Client.PostAsJsonAsync("/api/datasets", new { name = "genimage-tiny", path = DataFolder });
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"POST /api/datasets answered {(int)response.StatusCode}: {body}");
        var id = JsonDocument.Parse(body).RootElement.GetProperty("id").GetInt64();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            var dataset = JsonDocument.Parse(await portal.Client.GetStringAsync($"/api/datasets/{id}")).RootElement;
            var status = dataset.GetProperty("status").GetString();
            if (status == "ready") return;
            if (status == "failed" || DateTime.UtcNow > deadline) throw new InvalidOperationException($"the dataset did not become ready: {dataset.GetRawText()}");
            await Task.Delay(200);
        }
    }

    /// <summary>What the cross-generator run's page shows: mode -> generator ("avg" too) -> metric -> (shown text, exact value).</summary>
    sealed record PageCrossgen(Dictionary<string, Dictionary<string, Dictionary<string, (string Text, double Value)>>> Tables,
        Dictionary<string, string> ThresholdChosenOn, Dictionary<string, string> CheckpointChosenOn, HashSet<string> FlaggedBestOnTest);

    static async Task<PageCrossgen> QueueCrossgenAsync(IPage page)
    {
        // The first page is prerendered; the form works once the circuit is up: wait for Blazor's socket to carry a
        // frame and retry the submit until the page navigates to the run.
        var socketFrame = new TaskCompletionSource();
        page.WebSocket += (_, ws) =>
        {
            if (ws.Url.Contains("_blazor")) ws.FrameReceived += (_, _) => socketFrame.TrySetResult();
        };
        await page.GotoAsync("/crossgen");
        await socketFrame.Task.WaitAsync(TimeSpan.FromSeconds(30));
        await page.Locator("[data-testid=crossgen-form]").GetByText("genimage-tiny").WaitForAsync();
        var runPage = new Regex(@"/runs/\d+$");
        for (var attempt = 1; !runPage.IsMatch(page.Url); attempt++)
        {
            // MudTextField binds on change: fill, then leave the field.
            await FillAsync(page, "#crossgen-split", "val");
            await FillAsync(page, "#crossgen-checkpoint", CheckpointName);
            await FillAsync(page, "#crossgen-checkpoint-chosen-on", "train");
            await CheckAsync(page, "#crossgen-mode-best");
            await CheckAsync(page, "#crossgen-mode-calibrated");
            try
            {
                // The validation fields appear with the calibrated mode (not on the prerendered page): the test dataset's train split.
                await page.Locator("#crossgen-val-split").WaitForAsync(new() { Timeout = 5_000 });
                await FillAsync(page, "#crossgen-val-split", "train");
                await page.ClickAsync("#queue-crossgen");
                await page.WaitForURLAsync(runPage, new PageWaitForURLOptions { Timeout = 5_000 });
            }
            catch (TimeoutException) when (attempt < 4) { }
        }
        await WaitSucceededAsync(page, "cross-generator evaluation");
        await page.Locator("[data-testid=crossgen-table]").First.WaitForAsync();

        var tables = new Dictionary<string, Dictionary<string, Dictionary<string, (string, double)>>>();
        var thresholdChosenOn = new Dictionary<string, string>();
        var checkpointChosenOn = new Dictionary<string, string>();
        var flagged = new HashSet<string>();
        foreach (var table in await page.Locator("[data-testid=crossgen-table]").AllAsync())
        {
            var mode = (await table.GetAttributeAsync("data-mode"))!;
            thresholdChosenOn[mode] = (await table.Locator("[data-testid=crossgen-threshold-chosen-on]").InnerTextAsync()).Trim();
            checkpointChosenOn[mode] = (await table.Locator("[data-testid=crossgen-checkpoint-chosen-on]").InnerTextAsync()).Trim();
            if (await table.Locator("[data-testid=crossgen-best-on-test]").CountAsync() > 0) flagged.Add(mode);
            var rows = new Dictionary<string, Dictionary<string, (string, double)>>();
            foreach (var row in await table.Locator("[data-testid=crossgen-row]").AllAsync())
                rows[(await row.GetAttributeAsync("data-generator"))!] = await CellsAsync(row);
            tables[mode] = rows;
        }
        return new PageCrossgen(tables, thresholdChosenOn, checkpointChosenOn, flagged);
    }

    /// <summary>What the sweep's run page shows: severity ("clean", "75", ...) -> metric -> (shown text, exact value).</summary>
    static async Task<Dictionary<string, Dictionary<string, (string Text, double Value)>>> QueueSweepAsync(IPage page)
    {
        await page.EvaluateAsync("Blazor.navigateTo('/sweep')");
        await page.Locator("[data-testid=sweep-form]").GetByText("genimage-tiny").WaitForAsync();
        // The JPEG defaults are shown, ready to edit.
        Assert.Equal("clean,100,90,80,70,60,50,40,30", await page.InputValueAsync("#sweep-severities"));
        await FillAsync(page, "#sweep-checkpoint", CheckpointName);
        await FillAsync(page, "#sweep-split", "val");
        await FillAsync(page, "#sweep-severities", "clean," + string.Join(',', JpegQualities));
        await page.ClickAsync("#queue-sweep");
        await page.WaitForURLAsync(new Regex(@"/runs/\d+$"));
        await WaitSucceededAsync(page, "sweep");
        await page.Locator("[data-testid=sweep-panels] svg").First.WaitForAsync();

        var points = new Dictionary<string, Dictionary<string, (string, double)>>();
        foreach (var row in await page.Locator("[data-testid=sweep-point]").AllAsync())
            points[(await row.GetAttributeAsync("data-severity"))!] = await CellsAsync(row);
        return points;
    }

    // MudCheckBox hides its input under an icon: click its label, once (a second click would clear it).
    static async Task CheckAsync(IPage page, string selector)
    {
        var input = page.Locator(selector);
        if (!await input.IsCheckedAsync()) await page.Locator("label").Filter(new() { Has = input }).ClickAsync();
    }

    static async Task FillAsync(IPage page, string selector, string value)
    {
        await page.FillAsync(selector, value);
        await page.PressAsync(selector, "Tab");
    }

    /// <summary>Each [data-metric] cell of a row: the text shown and its exact value (data-value, round-trip format).</summary>
    static async Task<Dictionary<string, (string, double)>> CellsAsync(ILocator row)
    {
        var cells = new Dictionary<string, (string, double)>();
        foreach (var cell in await row.Locator("[data-metric]").AllAsync())
        {
            var exact = await cell.GetAttributeAsync("data-value");
            if (string.IsNullOrEmpty(exact)) continue; // undefined for this row
            cells[(await cell.GetAttributeAsync("data-metric"))!] = ((await cell.InnerTextAsync()).Trim(), double.Parse(exact, CultureInfo.InvariantCulture));
        }
        return cells;
    }

    // The run page updates live; the status chip carries the run's status.
    static async Task WaitSucceededAsync(IPage page, string what)
    {
        await page.WaitForFunctionAsync(
            "s => { const e = document.querySelector('[data-testid=run-status]'); return e && s.includes(e.dataset.status); }",
            DebianChromium.FinishedStatuses, new PageWaitForFunctionOptions { Timeout = 90_000 });
        var status = await page.Locator("[data-testid=run-status]").First.GetAttributeAsync("data-status");
        var error = await page.Locator("[data-testid=run-error]").AllInnerTextsAsync();
        Assert.True(status == "succeeded", $"the {what} did not succeed ({status}): {string.Join(" ", error)}");
    }

    // ---- the reference: `forensics eval` as a separate process ----

    /// <summary>One `forensics eval` output: metrics.json and the scores of scores.csv.</summary>
    sealed record CliEvaluation(JsonObject Metrics, IReadOnlyList<ScoreRow> Scores);

    sealed record CliResults(CliEvaluation Val, CliEvaluation Train, Dictionary<int, CliEvaluation> Jpeg);

    static CliResults RunCliEvaluations(string dataDir)
    {
        var data = Path.Combine(dataDir, DataFolder);
        var checkpoint = Path.Combine(dataDir, CheckpointName);
        CliEvaluation Eval(string name, string split, string? perturb)
        {
            var outDir = Path.Combine(dataDir, "cli", name);
            string[] args = ["eval", "--checkpoint", checkpoint, "--data", data, "--split", split, "--out", outDir, "--bootstrap", "0",
                             .. perturb is null ? Array.Empty<string>() : ["--perturb", perturb]];
            RunForensics(args);
            return new CliEvaluation(JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "metrics.json")))!.AsObject(),
                ScoresCsv.Read(Path.Combine(outDir, "scores.csv")).Rows);
        }
        return new CliResults(Eval("val", "val", null), Eval("train", "train", null),
            JpegQualities.ToDictionary(q => q, q => Eval($"jpeg{q}", "val", $"jpeg:{q}")));
    }

    static void RunForensics(string[] args)
    {
        var info = new ProcessStartInfo("dotnet", [ForensicsDll(), .. args]) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromSeconds(120)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"forensics {string.Join(' ', args)} did not finish within 120 s");
        }
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"forensics {string.Join(' ', args)} exited with {process.ExitCode}:\n{stdout.Result}\n{stderr.Result}");
    }

    /// <summary>The CLI's build output (the test project builds it without referencing it), beside this test's configuration and framework.</summary>
    static string ForensicsDll()
    {
        var bin = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd('/'));
        var dir = bin;
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Portal.sln"))) dir = dir.Parent;
        if (dir is null) throw new InvalidOperationException("Portal.sln not found above " + AppContext.BaseDirectory);
        var dll = Path.Combine(dir.FullName, "src", "Forensics.Cli", "bin", bin.Parent!.Name, bin.Name, "forensics.dll");
        if (!File.Exists(dll)) throw new FileNotFoundException("build src/Forensics.Cli first", dll);
        return dll;
    }

    // ---- the comparison ----

    static double Number(JsonNode? node, string what) => node?.GetValue<double>() ?? throw new InvalidOperationException($"metrics.json has no {what}");

    // The pages' one score format (Format.Score): a percentage with one decimal.
    static string F4(double v) => (100 * v).ToString("0.0", CultureInfo.InvariantCulture);

    /// <summary>The page's number equals the CLI's: the same text as a percentage with one decimal, and the exact values within 1e-6.</summary>
    static void Same(double cli, (string Text, double Value) shown, string what)
    {
        Assert.True(F4(cli) == shown.Text, $"{what}: the page shows {shown.Text}, forensics eval gives {F4(cli)} ({cli:R})");
        Assert.True(Math.Abs(cli - shown.Value) <= 1e-6, $"{what}: the page's exact value {shown.Value:R} differs from forensics eval's {cli:R}");
    }

    static void CompareCrossgen(PageCrossgen page, CliResults cli)
    {
        Assert.Equal(["fixed", "best", "calibrated"], page.Tables.Keys);
        var perGenerator = cli.Val.Metrics["per_generator"]!.AsObject();
        var generators = perGenerator.Select(p => p.Key).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(["gena", "genb"], generators);

        // Fixed 0.5: each generator's ACC and AP are the CLI's per-generator numbers; the average row is their mean.
        var fixedRows = page.Tables["fixed"];
        Assert.Equal([.. generators, "avg"], fixedRows.Keys);
        foreach (var g in generators)
        {
            Same(Number(perGenerator[g]!["acc"], $"{g} acc"), fixedRows[g]["acc"], $"fixed {g} ACC");
            Same(Number(perGenerator[g]!["ap"], $"{g} ap"), fixedRows[g]["ap"], $"fixed {g} AP");
            Same(Number(perGenerator[g]!["auc"], $"{g} auc"), fixedRows[g]["auc"], $"fixed {g} AUC");
        }
        Same(generators.Average(g => Number(perGenerator[g]!["acc"], "acc")), fixedRows["avg"]["acc"], "fixed average ACC");
        Same(generators.Average(g => Number(perGenerator[g]!["ap"], "ap")), fixedRows["avg"]["ap"], "fixed average AP");

        // Best on test: each generator at its own accuracy-maximising threshold, which is the CLI's best_acc; flagged.
        Assert.Contains("best", page.FlaggedBestOnTest);
        Assert.DoesNotContain("fixed", page.FlaggedBestOnTest);
        Assert.StartsWith("test:", page.ThresholdChosenOn["best"]);
        foreach (var g in generators)
            Same(Number(perGenerator[g]!["best_acc"], $"{g} best_acc"), page.Tables["best"][g]["acc"], $"best-on-test {g} ACC");

        // Calibrated: one threshold maximising balanced accuracy on the train split's CLI scores, applied to the val scores.
        Assert.StartsWith("validation:", page.ThresholdChosenOn["calibrated"]);
        Assert.Equal("none (fixed)", page.ThresholdChosenOn["fixed"]);
        Assert.All(page.CheckpointChosenOn.Values, v => Assert.Equal("train", v));
        var threshold = ThresholdModes.CalibrateBalancedAccuracy(cli.Train.Scores.Select(s => s.Label).ToArray(), cli.Train.Scores.Select(s => s.Score).ToArray());
        foreach (var g in generators)
        {
            var rows = cli.Val.Scores.Where(s => s.Path!.StartsWith(g + "/", StringComparison.Ordinal)).ToList();
            var acc = rows.Count(s => (s.Score > threshold ? 1 : 0) == s.Label) / (double)rows.Count;
            Same(acc, page.Tables["calibrated"][g]["acc"], $"calibrated {g} ACC");
            // AP does not depend on the threshold.
            Same(Number(perGenerator[g]!["ap"], $"{g} ap"), page.Tables["calibrated"][g]["ap"], $"calibrated {g} AP");
        }
    }

    static void CompareSweep(Dictionary<string, Dictionary<string, (string Text, double Value)>> page, CliResults cli)
    {
        Assert.Equal(["clean", .. JpegQualities.Select(q => q.ToString(CultureInfo.InvariantCulture))], page.Keys);
        var points = new List<(string Severity, CliEvaluation Cli)> { ("clean", cli.Val) };
        points.AddRange(JpegQualities.Select(q => (q.ToString(CultureInfo.InvariantCulture), cli.Jpeg[q])));
        foreach (var (severity, eval) in points)
        {
            var overall = eval.Metrics["overall"]!;
            Same(Number(overall["acc"], "acc"), page[severity]["acc"], $"jpeg {severity} ACC");
            Same(Number(overall["ap"], "ap"), page[severity]["ap"], $"jpeg {severity} AP");
            // The scores themselves, through the class means of P(fake) the sweep keeps.
            Same(eval.Scores.Where(s => s.Label == 0).Average(s => s.Score), page[severity]["mean_pfake_real"], $"jpeg {severity} mean P(fake) of reals");
            Same(eval.Scores.Where(s => s.Label == 1).Average(s => s.Score), page[severity]["mean_pfake_fake"], $"jpeg {severity} mean P(fake) of fakes");
        }
        // JPEG changes the scores: the points are not the clean evaluation repeated.
        Assert.NotEqual(page["clean"]["mean_pfake_fake"].Value, page[JpegQualities[^1].ToString(CultureInfo.InvariantCulture)]["mean_pfake_fake"].Value);
    }

}
