using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.Playwright;

namespace Portal.BrowserTests;

/// <summary>
/// The real portal driven by Debian's chromium: register a dataset, queue an evaluation and watch it finish live,
/// find it on the leaderboard and in its CSV, and see a JPEG sweep's curve on the comparison page.
/// </summary>
public class PortalWalkthroughTests
{
    const string CheckpointName = "browser_detector.pth";


    [Fact]
    public async Task Dataset_evaluation_leaderboard_csv_and_sweep_chart_work_in_a_real_browser()
    {
        DebianChromium.RequireInstalled();

        var dataDir = Directory.CreateTempSubdirectory("portal-browser-").FullName;
        try
        {
            foreach (var file in Directory.GetFiles(DebianChromium.EvalFixture("data"), "*", SearchOption.AllDirectories))
            {
                var target = Path.Combine(dataDir, "eval-data", Path.GetRelativePath(DebianChromium.EvalFixture("data"), file));
                Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                File.Copy(file, target);
            }
            File.Copy(DebianChromium.EvalFixture("tiny_res50nodown_ckpt.pth"), Path.Combine(dataDir, CheckpointName));

            await using var portal = await PortalProcess.StartAsync(dataDir);
            using var playwright = await Playwright.CreateAsync();
            var (browser, page) = await DebianChromium.OpenAsync(playwright, portal);
            await using var _ = browser;
            try
            {
                await WalkAsync(page, portal);
            }
            catch (Exception e)
            {
                var shot = Path.Combine(AppContext.BaseDirectory, $"failure-{DateTime.UtcNow:yyyyMMdd-HHmmss}.png");
                try { await page.ScreenshotAsync(new PageScreenshotOptions { Path = shot, FullPage = true }); } catch (PlaywrightException) { }
                throw new Exception($"{e.Message}\nurl: {page.Url}\nscreenshot: {shot}\nportal output (tail):\n{DebianChromium.Tail(portal.Output)}", e);
            }
        }
        finally
        {
            try { Directory.Delete(dataDir, recursive: true); } catch (IOException) { }
        }
    }

    static async Task WalkAsync(IPage page, PortalProcess portal)
    {
        // 1. Register the dataset. The first page is prerendered; the form only works once the circuit is up,
        //    so wait for Blazor's socket to carry a frame and retry the submit until the page navigates.
        var socketFrame = new TaskCompletionSource();
        page.WebSocket += (_, ws) =>
        {
            if (ws.Url.Contains("_blazor")) ws.FrameReceived += (_, _) => socketFrame.TrySetResult();
        };
        await page.GotoAsync("/datasets");
        await socketFrame.Task.WaitAsync(TimeSpan.FromSeconds(30));
        var datasetPage = new Regex(@"/datasets/\d+$");
        for (var attempt = 1; !datasetPage.IsMatch(page.Url); attempt++)
        {
            await page.FillAsync("#dataset-name", "browser-eval");
            await page.FillAsync("#dataset-path", "eval-data");
            await page.PressAsync("#dataset-path", "Tab");
            await page.ClickAsync("#register-dataset");
            try { await page.WaitForURLAsync(datasetPage, new PageWaitForURLOptions { Timeout = 5_000 }); }
            catch (TimeoutException) when (attempt < 4) { }
        }
        await page.Locator("[data-testid=dataset-status][data-status=ready]").WaitForAsync();
        Assert.Equal("browser-eval", await page.Locator("[data-testid=dataset-name]").InnerTextAsync());

        // 2. Queue an evaluation inside the same circuit (client-side navigation: the page is interactive at once).
        await page.EvaluateAsync("Blazor.navigateTo('/evaluate')");
        await page.Locator("#eval-checkpoint").WaitForAsync();
        await page.Locator("[data-testid=evaluate-form]").GetByText("browser-eval").WaitForAsync();
        // MudTextField binds on change: fill, then leave the field.
        await page.FillAsync("#eval-checkpoint", CheckpointName);
        await page.PressAsync("#eval-checkpoint", "Tab");
        await page.ClickAsync("#queue-evaluation");
        await page.WaitForURLAsync(new Regex(@"/runs/\d+$"));
        var runUrl = page.Url;
        var evaluationId = long.Parse(runUrl[(runUrl.LastIndexOf('/') + 1)..]);

        // 3. Watch the run finish live: a marker in the window survives only if the page is never reloaded.
        await page.EvaluateAsync("window.__browserTestMarker = 'still here'");
        var navigations = 0;
        page.FrameNavigated += (_, frame) => { if (frame == page.MainFrame) navigations++; };
        var status = page.Locator("[data-testid=run-status]").First;
        await page.WaitForFunctionAsync(
            "s => { const e = document.querySelector('[data-testid=run-status]'); return e && s.includes(e.dataset.status); }",
            DebianChromium.FinishedStatuses, new PageWaitForFunctionOptions { Timeout = 45_000 });
        var error = await page.Locator("[data-testid=run-error]").AllInnerTextsAsync();
        Assert.True(await status.GetAttributeAsync("data-status") == "succeeded", $"the evaluation did not succeed: {string.Join(" ", error)}");
        var progress = page.Locator("[data-testid=run-progress]").First;
        Assert.Equal("1", await progress.GetAttributeAsync("data-progress"));
        Assert.Equal("100%", await page.Locator("[data-testid=run-progress-percent]").First.InnerTextAsync());
        Assert.Equal("still here", await page.EvaluateAsync<string?>("window.__browserTestMarker ?? null"));
        Assert.Equal(0, navigations);
        Assert.Equal(runUrl, page.Url);

        // 4. The leaderboard lists the checkpoint; its CSV export has the row.
        await page.EvaluateAsync("Blazor.navigateTo('/leaderboard')");
        // One table per benchmark (leaderboard-table-{benchmark}); the checkpoint is in one of them.
        var table = page.Locator("[data-testid=leaderboard-benchmark] table");
        await table.Locator("tbody tr", new() { HasText = CheckpointName }).First.WaitForAsync();
        var csvHref = await page.Locator("#leaderboard-csv").GetAttributeAsync("href");
        Assert.False(string.IsNullOrEmpty(csvHref), "the CSV button has no link");
        var csvResponse = await page.Context.APIRequest.GetAsync(new Uri(portal.BaseAddress, csvHref).ToString());
        Assert.True(csvResponse.Ok, $"GET {csvHref} answered {csvResponse.Status}");
        var csv = await csvResponse.TextAsync();
        Assert.Contains(csv.Split('\n'), line => line.Contains(CheckpointName) && line.Contains("browser-eval"));

        // 5. A JPEG sweep queued through the API draws its curves on the comparison page.
        var queued = await portal.Client.PostAsJsonAsync("/api/runs", new
        {
            kind = "sweep",
            config = new { datasetId = await DatasetIdAsync(portal), checkpoint = CheckpointName, axis = "jpeg", severities = "clean,50" },
        });
        var queuedBody = await queued.Content.ReadAsStringAsync();
        Assert.True(queued.IsSuccessStatusCode, $"POST /api/runs answered {(int)queued.StatusCode}: {queuedBody}");
        var sweepId = JsonDocument.Parse(queuedBody).RootElement.GetProperty("id").GetInt64();
        var sweep = await WaitFinishedAsync(portal, sweepId, TimeSpan.FromSeconds(45));
        Assert.True(sweep.GetProperty("status").GetString() == "succeeded", $"the sweep did not succeed: {sweep.GetRawText()}");
        await page.EvaluateAsync($"Blazor.navigateTo('/compare?runs={sweepId}')");
        await page.Locator("[data-testid=compare-sweeps] svg").First.WaitForAsync();
        Assert.True(await page.Locator("[data-testid=compare-sweeps] svg").CountAsync() > 0);
        Assert.NotEqual(evaluationId, sweepId);
    }

    static async Task<long> DatasetIdAsync(PortalProcess portal)
    {
        var list = JsonDocument.Parse(await portal.Client.GetStringAsync("/api/datasets")).RootElement;
        return list.EnumerateArray().Single(d => d.GetProperty("name").GetString() == "browser-eval").GetProperty("id").GetInt64();
    }

    static async Task<JsonElement> WaitFinishedAsync(PortalProcess portal, long runId, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var run = JsonDocument.Parse(await portal.Client.GetStringAsync($"/api/runs/{runId}")).RootElement;
            if (DebianChromium.FinishedStatuses.Contains(run.GetProperty("status").GetString())) return run;
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"run {runId} did not finish within {timeout}: {run.GetRawText()}");
            await Task.Delay(250);
        }
    }

}
