using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.Playwright;

namespace Portal.BrowserTests;

/// <summary>The real portal started as a child process on a free loopback port, with its own data directory.</summary>
public sealed class PortalProcess : IAsyncDisposable
{
    readonly Process process;
    readonly StringBuilder output = new();

    /// <summary>The portal's base address, e.g. http://127.0.0.1:41234.</summary>
    public Uri BaseAddress { get; }

    /// <summary>A client for the portal's JSON API.</summary>
    public HttpClient Client { get; }

    PortalProcess(Process process, Uri baseAddress)
    {
        this.process = process;
        BaseAddress = baseAddress;
        Client = new HttpClient { BaseAddress = baseAddress };
    }

    /// <summary>Starts the portal on <paramref name="dataDir"/> and waits until /api/health answers.</summary>
    public static async Task<PortalProcess> StartAsync(string dataDir)
    {
        var port = FreePort();
        var info = new ProcessStartInfo("dotnet", [PortalDll(), "--urls", $"http://127.0.0.1:{port}"])
        {
            WorkingDirectory = dataDir,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        info.Environment["PORTAL_DATA_DIR"] = dataDir;
        // Fast heartbeats so progress reaches the page without waiting seconds per step.
        info.Environment["Portal__Jobs__HeartbeatSeconds"] = "0.2";
        // No MiniGenImage build or demo zoo entries in the browser tests' store.
        info.Environment["Portal__Demo__Enabled"] = "false";
        var portal = new PortalProcess(Process.Start(info)!, new Uri($"http://127.0.0.1:{port}"));
        portal.process.OutputDataReceived += (_, e) => portal.Append(e.Data);
        portal.process.ErrorDataReceived += (_, e) => portal.Append(e.Data);
        portal.process.BeginOutputReadLine();
        portal.process.BeginErrorReadLine();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (true)
        {
            if (portal.process.HasExited)
                throw new InvalidOperationException($"the portal exited with code {portal.process.ExitCode}:\n{portal.Output}");
            try
            {
                if ((await portal.Client.GetAsync("/api/health")).StatusCode == HttpStatusCode.OK) return portal;
            }
            catch (HttpRequestException) { }
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"the portal was not healthy within 60 s:\n{portal.Output}");
            await Task.Delay(200);
        }
    }

    /// <summary>The admin created through the one-time setup link.</summary>
    public const string AdminName = "browser-admin";
    const string AdminPassword = "Browser-Admin-2026";

    /// <summary>The one-time setup link the portal printed (exactly one, or this throws), as a path.</summary>
    public string SetupPath()
    {
        var links = Regex.Matches(Output, @"https?://[^\s/]+(/setup\?code=[A-Za-z0-9_-]+)").Select(m => m.Groups[1].Value).Distinct().ToList();
        if (links.Count != 1) throw new InvalidOperationException($"expected one setup link in the portal's output, found {links.Count}:\n{Output}");
        return links[0];
    }

    /// <summary>
    /// First start as a person does it: open the printed setup link, create the admin through the form (which signs the
    /// browser in), then make an API token on the tokens page for <see cref="Client"/>.
    /// </summary>
    public async Task SetUpAdminAsync(IPage page, Func<IPage, Task>? onSetupPage = null)
    {
        // The link is printed when the server has started, which may be just after /api/health first answers.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!Output.Contains("/setup?code=") && DateTime.UtcNow < deadline) await Task.Delay(100);
        await page.GotoAsync(SetupPath());
        if (onSetupPage is not null) await onSetupPage(page);
        await page.FillAsync("#username", AdminName);
        await page.FillAsync("#password", AdminPassword);
        await page.FillAsync("#confirm", AdminPassword);
        await page.ClickAsync("#create-admin");
        await page.WaitForSelectorAsync("[data-testid=current-user]");
        await page.GotoAsync("/account/tokens");
        // The field and button work once the circuit is up: retry until the token is shown.
        for (var attempt = 0; ; attempt++)
        {
            await page.FillAsync("#token-name", "browser tests");
            await page.ClickAsync("#create-token");
            try
            {
                var token = (await page.WaitForSelectorAsync("[data-testid=new-token]", new PageWaitForSelectorOptions { Timeout = 3000 }))!;
                Client.DefaultRequestHeaders.Authorization = new("Bearer", (await token.TextContentAsync())!.Trim());
                return;
            }
            catch (TimeoutException) when (attempt < 10) { }
        }
    }

    /// <summary>What the portal wrote to stdout and stderr so far (for failure messages).</summary>
    public string Output { get { lock (output) return output.ToString(); } }

    void Append(string? line)
    {
        if (line is null) return;
        lock (output) output.AppendLine(line);
    }

    static int FreePort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    /// <summary>The portal's build output, found beside this test's (same configuration and framework).</summary>
    static string PortalDll()
    {
        var bin = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd('/'));
        var dir = bin;
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Portal.sln"))) dir = dir.Parent;
        if (dir is null) throw new InvalidOperationException("Portal.sln not found above " + AppContext.BaseDirectory);
        var dll = Path.Combine(dir.FullName, "src", "Portal", "bin", bin.Parent!.Name, bin.Name, "Portal.dll");
        if (!File.Exists(dll)) throw new FileNotFoundException("build the portal first", dll);
        return dll;
    }

    /// <summary>Kills the portal and its children.</summary>
    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        if (!process.HasExited)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
        }
        process.Dispose();
    }
}
