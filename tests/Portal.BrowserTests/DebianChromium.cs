using Microsoft.Playwright;

namespace Portal.BrowserTests;

/// <summary>What the browser tests share: Debian's chromium (checked, launched headless), the eval fixture, run states.</summary>
static class DebianChromium
{
    public const string ExecutablePath = "/usr/bin/chromium";

    /// <summary>The statuses a run ends in.</summary>
    public static readonly string[] FinishedStatuses = ["succeeded", "failed", "canceled"];

    /// <summary>A file of the shared evaluation fixture (a res50nodown checkpoint, images, PyTorch's scores).</summary>
    public static string EvalFixture(params string[] parts) => Path.Combine([AppContext.BaseDirectory, "fixtures", "eval", .. parts]);

    /// <summary>Fails with the install command when chromium is missing.</summary>
    public static void RequireInstalled()
    {
        if (!File.Exists(ExecutablePath))
            throw new InvalidOperationException(
                $"The browser tests need Debian's chromium at {ExecutablePath}: install it with `apt-get install -y chromium` (as root; .ci/run does this).");
    }

    /// <summary>Headless chromium without network side traffic, and a page on the portal (signed in as the admin made through the setup link) with a 30 s default timeout.</summary>
    /// <param name="viewport">The window size (Playwright's default 1280x720 when null).</param>
    /// <param name="onSetupPage">Called on the setup page before the admin form is filled (to check or photograph it).</param>
    public static async Task<(IBrowser Browser, IPage Page)> OpenAsync(IPlaywright playwright, PortalProcess portal,
        ViewportSize? viewport = null, Func<IPage, Task>? onSetupPage = null)
    {
        var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = ExecutablePath,
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--disable-quic"],
        });
        var context = await browser.NewContextAsync(new BrowserNewContextOptions { BaseURL = portal.BaseAddress.ToString(), ViewportSize = viewport });
        context.SetDefaultTimeout(30_000);
        var page = await context.NewPageAsync();
        // Every browser test starts as a first start: the admin made through the printed setup link, signed in.
        await portal.SetUpAdminAsync(page, onSetupPage);
        return (browser, page);
    }

    /// <summary>The last lines of a log, for failure messages.</summary>
    public static string Tail(string text, int lines = 40) => string.Join('\n', text.Split('\n').TakeLast(lines));
}
