using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Playwright;
using SkiaSharp;

namespace Portal.BrowserTests;

/// <summary>
/// A new user's walk at 1440x900 in Debian's chromium: the setup link, a token, the demo page, the page of each run
/// kind (evaluation, cross-generator, one- and several-point sweeps, and an aligned pipeline's alignment, training,
/// cross-generator and sweep stages), the matrix, the leaderboard and the comparison. On every page nothing overflows
/// horizontally; static forms have visibly bordered inputs; run pages show their results before "All metrics".
/// Screenshots are kept under the test output folder (screenshots/results-walk).
/// </summary>
public class ResultsWalkthroughTests
{
    const string CheckpointName = "walk_detector.pth";
    static readonly ViewportSize Viewport = new() { Width = 1440, Height = 900 };

    /// <summary>Where the screenshots go: the test output folder.</summary>
    static readonly string Shots = Path.Combine(AppContext.BaseDirectory, "screenshots", "results-walk");

    /// <summary>The eval fixture's 4 reals and 3 fakes as a two-generator GenImage layout (val is tested, train calibrates).</summary>
    static readonly (string Source, string Target)[] GenImage =
    [
        ("0_real/r_64x64.png", "gena/val/nature/r_64x64.png"), ("0_real/r_gray_41x29.png", "gena/val/nature/r_gray_41x29.png"),
        ("1_fake/f_64x64.png", "gena/val/ai/f_64x64.png"), ("1_fake/f_rgba_33x45.png", "gena/val/ai/f_rgba_33x45.png"),
        ("0_real/r_37x53.png", "genb/val/nature/r_37x53.png"), ("0_real/r_48x36.jpg", "genb/val/nature/r_48x36.jpg"),
        ("1_fake/f_50x41.png", "genb/val/ai/f_50x41.png"),
        ("0_real/r_37x53.png", "gena/train/nature/r_37x53.png"), ("1_fake/f_50x41.png", "gena/train/ai/f_50x41.png"),
        ("0_real/r_64x64.png", "genb/train/nature/r_64x64.png"), ("1_fake/f_64x64.png", "genb/train/ai/f_64x64.png"),
    ];

    [Fact]
    public async Task Every_page_of_the_main_flow_fits_1440_pixels_and_run_pages_show_results_first()
    {
        DebianChromium.RequireInstalled();
        Directory.CreateDirectory(Shots);
        var dataDir = Directory.CreateTempSubdirectory("portal-walk-").FullName;
        try
        {
            foreach (var (source, target) in GenImage)
            {
                var path = Path.Combine(dataDir, "genimage-tiny", target);
                Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                File.Copy(DebianChromium.EvalFixture("data", source), path);
            }
            WriteReals(Path.Combine(dataDir, "reals"), 3);
            File.Copy(DebianChromium.EvalFixture("tiny_res50nodown_ckpt.pth"), Path.Combine(dataDir, CheckpointName));
            Directory.CreateDirectory(Path.Combine(dataDir, "vae"));
            foreach (var name in new[] { "config.json", "diffusion_pytorch_model.safetensors" })
                File.Copy(Path.Combine(AppContext.BaseDirectory, "fixtures", "vae", name), Path.Combine(dataDir, "vae", name));

            await using var portal = await PortalProcess.StartAsync(dataDir);
            using var playwright = await Playwright.CreateAsync();
            var (browser, page) = await DebianChromium.OpenAsync(playwright, portal, Viewport, async setup =>
            {
                await CheckStaticFormAsync(setup, "00-setup");
            });
            await using var _ = browser;
            try
            {
                await WalkAsync(browser, page, portal);
            }
            catch (Exception e)
            {
                var shot = Path.Combine(Shots, $"failure-{DateTime.UtcNow:yyyyMMdd-HHmmss}.png");
                try { await page.ScreenshotAsync(new PageScreenshotOptions { Path = shot, FullPage = true }); } catch (PlaywrightException) { }
                throw new Exception($"{e.Message}\nurl: {page.Url}\nscreenshot: {shot}\nportal output (tail):\n{DebianChromium.Tail(portal.Output)}", e);
            }
        }
        finally
        {
            try { Directory.Delete(dataDir, recursive: true); } catch (IOException) { }
        }
    }

    static async Task WalkAsync(IBrowser browser, IPage page, PortalProcess portal)
    {
        // The token page the setup flow ended on, then the demo page.
        await PageAsync(page, "/account/tokens", "01-tokens");
        await PageAsync(page, "/demo", "02-demo");

        // Every run kind, queued through the API with small data.
        var genimage = await RegisterAsync(portal, "genimage-tiny");
        var reals = await RegisterAsync(portal, "reals");
        var vae = (await PostAsync(portal, "/api/models", new { name = "walk-vae", path = "vae" })).GetProperty("id").GetInt64();
        var evaluation = await QueueAsync(portal, "evaluate", new { datasetId = genimage, checkpoint = CheckpointName, split = "val", bootstrap = 50 });
        var crossgen = await QueueAsync(portal, "crossgen", new { datasetId = genimage, checkpoint = CheckpointName, split = "val", modes = "fixed,calibrated", valSplit = "train", checkpointChosenOn = "train" });
        var onePoint = await QueueAsync(portal, "sweep", new { datasetId = genimage, checkpoint = CheckpointName, split = "val", axis = "jpeg", severities = "clean,50", bootstrap = 0 });
        var resize = await QueueAsync(portal, "sweep", new { datasetId = genimage, checkpoint = CheckpointName, split = "val", axis = "resize", severities = "clean,0.5,0.75,1.5", bootstrap = 0 });
        var pipeline = await QueueAsync(portal, "pipeline", new
        {
            trainDatasetId = reals, align = new { vaeWeightsId = vae, seed = 42 },
            train = new { epochs = 2, pairsPerBatch = 2, width = 4, layers = new[] { 1, 1, 1, 1 }, crop = 8, augment = "none", seed = 3 },
            evaluate = new { datasetId = genimage, modes = "fixed", split = "val", bootstrap = 0 },
            sweeps = new[] { new { axis = "jpeg", severities = "clean,90,70,50", datasetId = reals, bootstrap = 0 } },
        });

        foreach (var (id, name) in new[] { (evaluation, "10-run-evaluate"), (crossgen, "11-run-crossgen"), (onePoint, "12-run-sweep-one-point"), (resize, "13-run-sweep-resize") })
        {
            await WaitSucceededAsync(portal, id, TimeSpan.FromSeconds(120));
            await RunPageAsync(page, id, name);
        }
        // The last sweep's page: its points carry hover tooltips (an SVG title each).
        await page.Locator("[data-testid=run-results] [data-testid=sweep-panels] svg circle[data-hover=point] title").First
            .WaitForAsync(new() { State = WaitForSelectorState.Attached });

        // The evaluation's headline: ACC with its interval, first on the page.
        await page.GotoAsync($"/runs/{evaluation}");
        var acc = await page.Locator("[data-testid=headline-row][data-generator=all] [data-metric=acc]").InnerTextAsync();
        Assert.Matches(@"^\d+\.\d \[\d+\.\d, \d+\.\d\]$", acc.Trim());

        // Every stage must succeed: a pipeline that failed (for example a training that diverged) fails the walk.
        var pipelineStatus = await WaitFinishedAsync(portal, pipeline, TimeSpan.FromSeconds(300));
        Assert.Equal("succeeded", pipelineStatus);
        await RunPageAsync(page, pipeline, "20-run-pipeline", pipelineStatus);
        var children = JsonDocument.Parse(await portal.Client.GetStringAsync($"/api/pipelines/{pipeline}/children")).RootElement.EnumerateArray()
            .ToDictionary(c => c.GetProperty("stage").GetString()!, c => (Id: c.GetProperty("runId").GetInt64(), Status: c.GetProperty("status").GetString()!));
        Assert.True(await page.Locator("[data-testid=pipeline-stages] tr[data-stage]").CountAsync() == children.Count, "the pipeline page lists its stages");
        Assert.Equal("succeeded", children["align"].Status);
        await RunPageAsync(page, children["align"].Id, "21-run-align");
        var widths = await page.Locator("[data-testid=alignment-pair] img").EvaluateAllAsync<int[]>(
            "els => Promise.all(els.map(e => e.decode().then(() => e.naturalWidth, () => 0)))");
        Assert.True(widths.Length >= 2 && widths.All(w => w > 0), $"the alignment shows real / reconstruction pairs that load: {string.Join(", ", widths)}");
        Assert.All(children.Values, c => Assert.Equal("succeeded", c.Status));
        await RunPageAsync(page, children["train"].Id, "22-run-train");
        Assert.Equal(1, await page.Locator("[data-testid=run-curves] [data-chart=validation] svg").CountAsync());
        foreach (var (stage, name) in new[] { ("crossgen", "23-run-pipeline-crossgen"), ("sweeps[0]", "24-run-pipeline-sweep") })
            await RunPageAsync(page, children[stage].Id, name);

        await PageAsync(page, "/matrix", "30-matrix");
        Assert.True(await page.Locator("[data-testid=matrix-cell][style*=hsl]").CountAsync() > 0, "the matrix cells are coloured");
        await PageAsync(page, "/leaderboard", "31-leaderboard");
        await PageAsync(page, $"/compare?runs={onePoint},{resize},{evaluation}", "32-compare");
        var axes = await page.Locator("[data-testid=compare-sweep-axis]").EvaluateAllAsync<string[]>("els => els.map(e => e.dataset.axis)");
        Assert.Equal(["jpeg", "resize"], axes);

        // The sign-in form, as someone signed out sees it.
        var anonymous = await browser.NewContextAsync(new BrowserNewContextOptions { BaseURL = portal.BaseAddress.ToString(), ViewportSize = Viewport });
        var login = await anonymous.NewPageAsync();
        await login.GotoAsync("/account/login");
        await CheckStaticFormAsync(login, "40-login");
        await anonymous.CloseAsync();
    }

    /// <summary>A page at 1440x900: loaded, nothing wider than the window, photographed.</summary>
    static async Task PageAsync(IPage page, string path, string name)
    {
        await page.GotoAsync(path);
        await page.WaitForLoadStateAsync(LoadState.NetworkIdle);
        await AssertFitsAsync(page, name);
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(Shots, name + ".png"), FullPage = true });
    }

    /// <summary>A run page: the results section is there and comes before the collapsed "All metrics".</summary>
    static async Task RunPageAsync(IPage page, long runId, string name, string status = "succeeded")
    {
        await page.GotoAsync($"/runs/{runId}");
        await page.Locator($"[data-testid=run-status][data-status={status}]").First.WaitForAsync();
        await page.Locator("[data-testid=run-results]").WaitForAsync();
        // Result panels read their files once the run has succeeded; give the charts a moment to arrive.
        await page.WaitForLoadStateAsync(LoadState.NetworkIdle);
        var order = await page.EvaluateAsync<string>(@"() => {
            const results = document.querySelector('[data-testid=run-results]');
            const all = document.querySelector('[data-testid=all-metrics]');
            if (!results) return 'no results section';
            if (!all) return 'ok';
            if (all.open) return 'All metrics is open';
            return (results.compareDocumentPosition(all) & Node.DOCUMENT_POSITION_FOLLOWING) ? 'ok' : 'All metrics comes first';
        }");
        Assert.True(order == "ok", $"{name}: {order}");
        await AssertFitsAsync(page, name);
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(Shots, name + ".png"), FullPage = true });
    }

    static async Task AssertFitsAsync(IPage page, string name)
    {
        var widths = await page.EvaluateAsync<int[]>("() => [document.scrollingElement.scrollWidth, window.innerWidth]");
        var (scroll, inner) = (widths[0], widths[1]);
        Assert.True(scroll <= inner, $"{name} ({page.Url}) overflows horizontally: scrollWidth {scroll} > innerWidth {inner}");
    }

    /// <summary>Every visible input of the page's static form has a visible border; the page fits; photographed.</summary>
    static async Task CheckStaticFormAsync(IPage page, string name)
    {
        var inputs = await page.EvaluateAsync<string[]>(@"() => [...document.querySelectorAll('form.static-form input:not([type=hidden])')].map(e => {
            const s = getComputedStyle(e);
            const visible = parseFloat(s.borderTopWidth) >= 1 && s.borderTopStyle !== 'none' && s.borderTopColor !== 'rgba(0, 0, 0, 0)' && s.borderTopColor !== 'transparent';
            return (e.id || e.name) + ':' + (visible ? 'bordered' : 'no border (' + s.borderTopWidth + ' ' + s.borderTopStyle + ' ' + s.borderTopColor + ')');
        })");
        Assert.NotEmpty(inputs);
        Assert.All(inputs, i => Assert.EndsWith(":bordered", i));
        var button = await page.EvaluateAsync<string>("() => { const b = document.querySelector('form.static-form button[type=submit]'); return b ? getComputedStyle(b).backgroundColor : 'none'; }");
        Assert.NotEqual("rgba(0, 0, 0, 0)", button); // a filled button, not text
        Assert.NotEqual("none", button);
        await AssertFitsAsync(page, name);
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(Shots, name + ".png"), FullPage = true });
    }

    /// <summary>Reals only, as the portal's pipeline tests write them: 16 x 16 noise PNGs, one seed per image.</summary>
    static void WriteReals(string root, int perSplit)
    {
        var seed = 0;
        foreach (var split in new[] { "train", "val" })
            for (var i = 0; i < perSplit; i++)
            {
                using var bitmap = new SKBitmap(16, 16, SKColorType.Rgba8888, SKAlphaType.Opaque);
                var random = new Random(seed++);
                for (var y = 0; y < 16; y++)
                    for (var x = 0; x < 16; x++)
                        bitmap.SetPixel(x, y, new SKColor((byte)random.Next(256), (byte)random.Next(256), (byte)random.Next(256)));
                var path = Path.Combine(root, split, "0_real", $"img{i}.png");
                Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                using var image = SKImage.FromBitmap(bitmap);
                using var data = image.Encode(SKEncodedImageFormat.Png, 90);
                File.WriteAllBytes(path, data.ToArray());
            }
    }

    static async Task<JsonElement> PostAsync(PortalProcess portal, string path, object body)
    {
        var response = await portal.Client.PostAsJsonAsync(path, body);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"POST {path} answered {(int)response.StatusCode}: {text}");
        return JsonDocument.Parse(text).RootElement;
    }

    static async Task<long> QueueAsync(PortalProcess portal, string kind, object config) =>
        (await PostAsync(portal, "/api/runs", new { kind, config })).GetProperty("id").GetInt64();

    static async Task<long> RegisterAsync(PortalProcess portal, string folder)
    {
        var registered = await PostAsync(portal, "/api/datasets", new { name = folder, path = folder });
        await WaitSucceededAsync(portal, registered.GetProperty("runId").GetInt64(), TimeSpan.FromSeconds(60));
        return registered.GetProperty("id").GetInt64();
    }

    static async Task<string> WaitFinishedAsync(PortalProcess portal, long runId, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var run = JsonDocument.Parse(await portal.Client.GetStringAsync($"/api/runs/{runId}")).RootElement;
            var status = run.GetProperty("status").GetString()!;
            if (DebianChromium.FinishedStatuses.Contains(status)) return status;
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"run {runId} did not finish within {timeout}: {run.GetRawText()}");
            await Task.Delay(250);
        }
    }

    static async Task WaitSucceededAsync(PortalProcess portal, long runId, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var run = JsonDocument.Parse(await portal.Client.GetStringAsync($"/api/runs/{runId}")).RootElement;
            var status = run.GetProperty("status").GetString();
            if (status == "succeeded") return;
            if (DebianChromium.FinishedStatuses.Contains(status)) throw new InvalidOperationException($"run {runId} ended {status}: {run.GetRawText()}");
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"run {runId} did not finish within {timeout}: {run.GetRawText()}");
            await Task.Delay(250);
        }
    }
}
