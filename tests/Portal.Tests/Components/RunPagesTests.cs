using Bunit;
using Microsoft.AspNetCore.Components;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Portal.Components.Pages;
using Portal.Store;

namespace Portal.Tests.Components;

public sealed class RunPagesTests : PortalComponentTest
{
    static readonly TimeSpan Live = TimeSpan.FromSeconds(5);

    [Fact]
    public void Runs_page_shows_progress_and_follows_the_store_without_a_reload()
    {
        var old = Add(NewRun(RunStatus.Succeeded, 1, "done"));
        var id = Add(NewRun(RunStatus.Running, 0.3, "decoding 30/100"));

        var cut = Render<Portal.Components.Pages.Runs>();

        var rows = cut.FindAll("[data-testid=run-row]");
        Assert.Equal([id.ToString(), old.ToString()], rows.Select(r => r.GetAttribute("data-run-id")));
        string Percent() => cut.Find($"[data-testid=run-progress][data-run-id='{id}'] [data-testid=run-progress-percent]").TextContent.Trim();
        Assert.Equal("30%", Percent());
        Assert.Contains("decoding 30/100", cut.Find($"[data-testid=run-progress][data-run-id='{id}']").TextContent);
        Assert.Equal("running", cut.Find($"[data-testid=run-status][data-run-id='{id}']").GetAttribute("data-status"));

        using (var db = Db())
            db.Runs.Where(r => r.Id == id).ExecuteUpdate(s => s.SetProperty(r => r.Progress, 0.75).SetProperty(r => r.Phase, "decoding 75/100"));

        cut.WaitForAssertion(() =>
        {
            Assert.Equal("75%", Percent());
            Assert.Contains("decoding 75/100", cut.Find($"[data-testid=run-progress][data-run-id='{id}']").TextContent);
        }, Live);

        using (var db = Db())
            db.Runs.Where(r => r.Id == id).ExecuteUpdate(s => s.SetProperty(r => r.Status, RunStatus.Failed));
        cut.WaitForAssertion(() =>
            Assert.Equal("failed", cut.Find($"[data-testid=run-status][data-run-id='{id}']").GetAttribute("data-status")), Live);
    }

    [Fact]
    public void Cancel_on_a_queued_run_cancels_it()
    {
        var finished = Add(NewRun(RunStatus.Succeeded, 1));
        var id = Add(NewRun());

        var cut = Render<Portal.Components.Pages.Runs>();
        Assert.Empty(cut.FindAll($"[data-testid=cancel-run][data-run-id='{finished}']"));
        cut.Find($"[data-testid=cancel-run][data-run-id='{id}']").Click();

        cut.WaitForAssertion(() =>
            Assert.Equal("canceled", cut.Find($"[data-testid=run-status][data-run-id='{id}']").GetAttribute("data-status")));
        using var db = Db();
        var run = db.Runs.Single(r => r.Id == id);
        Assert.Equal(RunStatus.Canceled, run.Status);
        Assert.NotNull(run.FinishedAt);
        Assert.Empty(cut.FindAll($"[data-testid=cancel-run][data-run-id='{id}']"));
        Assert.Contains($"#{id}", cut.Find("[data-testid=action-message]").TextContent);
    }

    [Fact]
    public void Runs_page_filters_by_status_and_pages()
    {
        for (var i = 0; i < 30; i++) Add(NewRun(i % 3 == 0 ? RunStatus.Failed : RunStatus.Succeeded, 1));
        var nav = Services.GetRequiredService<NavigationManager>();

        var cut = Render<Portal.Components.Pages.Runs>();
        Assert.Equal(25, cut.FindAll("[data-testid=run-row]").Count);
        Assert.NotNull(cut.Find("[data-testid=runs-pagination]"));

        nav.NavigateTo("runs?status=failed");
        cut.WaitForAssertion(() =>
        {
            var statuses = cut.FindAll("[data-testid=run-status]").Select(c => c.GetAttribute("data-status")).ToList();
            Assert.Equal(10, statuses.Count);
            Assert.All(statuses, s => Assert.Equal("failed", s));
        });
    }

    [Fact]
    public void Run_detail_shows_config_error_log_metrics_and_artifacts()
    {
        var run = NewRun(RunStatus.Failed, 0.5, "epoch 2/4");
        run.ConfigJson = "{\"datasetId\":7,\"epochs\":4}";
        run.Error = "CUDA out of memory: tried to allocate 2 GiB";
        run.Seed = 1234;
        run.FinishedAt = DateTime.UtcNow;
        var id = Add(run);
        using (var db = Db())
        {
            for (var i = 0; i < 205; i++)
                db.RunLog.Add(new RunLogLine { RunId = id, At = DateTime.UtcNow, Level = i == 204 ? "error" : "info", Message = $"line {i}" });
            db.RunMetrics.AddRange(
                new RunMetric { RunId = id, Name = "loss", Step = 1, Value = 0.9, At = DateTime.UtcNow },
                new RunMetric { RunId = id, Name = "loss", Step = 2, Value = 0.4, At = DateTime.UtcNow },
                new RunMetric { RunId = id, Name = "loss", Step = 3, Value = 0.6, At = DateTime.UtcNow });
            db.Artifacts.Add(new Artifact { RunId = id, Kind = "checkpoint", RelativePath = $"runs/{id}/epoch2.pt", Bytes = 2048, CreatedAt = DateTime.UtcNow });
            db.SaveChanges();
        }

        var cut = Render<RunDetail>(p => p.Add(x => x.Id, id));

        var config = cut.Find("[data-testid=run-config]").TextContent;
        Assert.Contains("\"epochs\": 4", config);
        Assert.Contains("\n", config);
        Assert.Contains("CUDA out of memory", cut.Find("[data-testid=run-error]").TextContent);
        var lines = cut.FindAll("[data-testid=log-line]");
        Assert.Equal(200, lines.Count);
        Assert.Contains("line 5", lines[0].TextContent);
        Assert.Contains("line 204", lines[^1].TextContent);
        var loss = cut.Find("[data-testid=metric-row][data-metric=loss]").QuerySelectorAll("td").Select(td => td.TextContent.Trim()).ToList();
        Assert.Equal(["loss", "0.6", "3", "0.4", "0.9", "3"], loss);
        Assert.Contains($"runs/{id}/epoch2.pt", cut.Find("[data-testid=artifacts-table]").TextContent);
        Assert.Equal("1234", cut.Find("[data-testid=run-seed]").TextContent.Trim());
        Assert.Empty(cut.FindAll("#cancel-run"));
    }

    [Fact]
    public void Run_detail_follows_the_log_and_reruns()
    {
        var id = Add(NewRun(RunStatus.Running, 0.1, "starting"));
        var nav = Services.GetRequiredService<NavigationManager>();
        var cut = Render<RunDetail>(p => p.Add(x => x.Id, id));
        Assert.NotNull(cut.Find("[data-testid=run-log-empty]"));

        using (var db = Db())
        {
            db.RunLog.Add(new RunLogLine { RunId = id, At = DateTime.UtcNow, Message = "scanned 10 files" });
            db.SaveChanges();
        }
        cut.WaitForAssertion(() => Assert.Contains("scanned 10 files", cut.Find("[data-testid=run-log]").TextContent), Live);

        // Re-run appears once the run has finished.
        Assert.Empty(cut.FindAll("#rerun"));
        using (var db = Db())
        {
            var r = db.Runs.Single(x => x.Id == id);
            r.Status = RunStatus.Succeeded;
            r.Progress = 1;
            r.FinishedAt = DateTime.UtcNow;
            db.SaveChanges();
        }
        cut.WaitForAssertion(() => Assert.NotNull(cut.Find("#rerun")), Live);
        cut.Find("#rerun").Click();
        cut.WaitForAssertion(() => Assert.Matches(@"/runs/\d+$", nav.Uri));
        using var check = Db();
        var rerun = check.Runs.Single(r => r.RerunOf == id);
        Assert.Equal(RunStatus.Queued, rerun.Status);
        Assert.EndsWith($"/runs/{rerun.Id}", nav.Uri);
        Assert.Contains(Queue.Enqueued, e => e.RunId == rerun.Id);
    }

    [Fact]
    public void Run_detail_reports_an_unknown_id()
    {
        var cut = Render<RunDetail>(p => p.Add(x => x.Id, 4242));
        Assert.Contains("No run with id 4242", cut.Find("[data-testid=not-found]").TextContent);
    }
}
