using Bunit;
using Forensics.ML.Runtime;
using Portal.Components.Pages;
using Portal.Store;
using Portal.Tests.Support;

namespace Portal.Tests.Components;

public sealed class OverviewPagesTests : PortalComponentTest
{
    [Fact]
    public void System_page_shows_torch_paths_database_and_queues()
    {
        var torch = TorchRuntime.EnsureLoaded();
        Assert.True(torch.Loaded, torch.Error);
        Add(NewRun());
        Add(NewRun(RunStatus.Failed));
        Add(NewRun(RunStatus.Failed));

        var cut = Render<SystemPage>();

        Assert.Equal(torch.TorchSharpVersion, cut.Find("[data-testid=torch-version]").TextContent.Trim());
        Assert.Equal(torch.Device, cut.Find("[data-testid=torch-device]").TextContent.Trim());
        Assert.Equal(torch.Threads.ToString(), cut.Find("[data-testid=torch-threads]").TextContent.Trim());
        Assert.Equal(torch.CudaAvailable ? "yes" : "no", cut.Find("[data-testid=torch-cuda]").TextContent.Trim());
        Assert.Equal(torch.Workaround is not null, cut.FindAll("[data-testid=torch-workaround]").Count == 1);
        Assert.Contains(Path.GetFileName(DataDir), cut.Find("[data-testid=data-dir]").TextContent);
        // The store's data source: the in-memory SQLite database's name, or the PostgreSQL server's address.
        Assert.StartsWith(PortalFactory.Postgres ? "tcp://127.0.0.1:" : "portal-ui-", cut.Find("[data-testid=sqlite-path]").TextContent.Trim());
        Assert.Equal(["device-cpu", "device-cuda", "light", "orchestration"], cut.FindAll("[data-testid=queue-enqueued]").Select(e => e.GetAttribute("data-queue")));
        Assert.All(cut.FindAll("[data-testid=queue-enqueued] td"), td => Assert.Equal("0", td.TextContent.Trim()));
        Assert.Contains("0", cut.Find("[data-testid=queue-processing]").TextContent);
        Assert.NotNull(cut.Find("[data-testid=no-servers]"));
        Assert.Contains("failed: 2", cut.Find("[data-testid=run-count-by-status][data-status=failed]").TextContent);
        Assert.Equal("hangfire", cut.Find("[data-testid=hangfire-link]").GetAttribute("href"));
    }

    [Fact]
    public void Home_page_shows_the_title_and_counts()
    {
        Add(new Dataset { Name = "a", Path = DataDir, Status = DatasetStatus.Ready, CreatedAt = DateTime.UtcNow, Images = 10 });
        Add(NewRun(RunStatus.Running, 0.5));

        var cut = Render<Home>();

        Assert.Contains("Forensics Portal", cut.Find("h4").TextContent);
        Assert.Equal("1", cut.Find("[data-testid=dataset-count]").TextContent.Trim());
        Assert.Contains("running: 1", cut.Find("[data-testid=run-count-by-status][data-status=running]").TextContent);
        Assert.Single(cut.FindAll("[data-testid=recent-runs] [data-testid=run-progress]"));
    }
}
