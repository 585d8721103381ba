using Bunit;
using Microsoft.Extensions.DependencyInjection;
using Portal.Components.Pages;
using Portal.Components.Shared;
using Portal.Experiments;
using Portal.Datasets;
using Portal.Zoo;
using Portal.Runs;
using Portal.Store;

namespace Portal.Tests.Components;

/// <summary>
/// A queued run shows its place on its queue and the runs ahead of it; a running run an ETA from its measured rate;
/// re-run is refused for runs that have not finished.
/// </summary>
public sealed class QueueAndProgressTests : PortalComponentTest
{
    Run OnQueue(string queue, RunStatus status, double progress = 0)
    {
        var run = NewRun(status, progress);
        run.Queue = queue;
        return run;
    }

    [Fact]
    public async Task A_queued_run_knows_its_place_and_the_runs_ahead_on_its_own_queue()
    {
        var running = Add(OnQueue(JobQueues.DeviceCpu, RunStatus.Running, 0.45));
        var first = Add(OnQueue(JobQueues.DeviceCpu, RunStatus.Queued));
        Add(OnQueue(JobQueues.Light, RunStatus.Queued));      // another queue: not ahead
        Add(OnQueue(JobQueues.DeviceCpu, RunStatus.Succeeded, 1));   // finished: not ahead
        var mine = Add(OnQueue(JobQueues.DeviceCpu, RunStatus.Queued));
        Add(OnQueue(JobQueues.DeviceCpu, RunStatus.Queued));  // behind

        var place = await Services.GetRequiredService<RunService>().QueuePlaceAsync(mine);
        Assert.NotNull(place);
        Assert.Equal(2, place.Position);
        Assert.Equal(1, place.Running);
        Assert.Equal([running, first], place.Ahead.Select(a => a.Id));
        Assert.Null(await Services.GetRequiredService<RunService>().QueuePlaceAsync(running));

        var page = Render<RunDetail>(p => p.Add(x => x.Id, mine));
        page.WaitForAssertion(() => Assert.Equal("2", page.Find("[data-testid=queue-place]").GetAttribute("data-position")));
        Assert.Contains("2 run(s) ahead (1 running)", page.Find("[data-testid=queue-place]").TextContent);
        Assert.Equal([running.ToString(), first.ToString()], page.FindAll("[data-testid=queue-ahead] li[data-run-id]").Select(li => li.GetAttribute("data-run-id")));
        Assert.Contains("running, 45%", page.Find("[data-testid=queue-ahead]").TextContent);

        // The run ahead finishes and the first queued one starts: the page's next refresh moves it up.
        using (var db = Db())
        {
            db.Runs.Single(r => r.Id == running).Status = RunStatus.Succeeded;
            db.Runs.Single(r => r.Id == first).Status = RunStatus.Running;
            db.SaveChanges();
        }
        page.WaitForAssertion(() => Assert.Equal("1", page.Find("[data-testid=queue-place]").GetAttribute("data-position")), TimeSpan.FromSeconds(5));
    }

    [Fact]
    public void A_running_run_shows_an_eta_from_its_measured_rate_and_no_eta_before_it_says_much()
    {
        var now = DateTime.UtcNow;
        var run = new Run { Status = RunStatus.Running, Progress = 0.25, StartedAt = now.AddSeconds(-60) };
        Assert.Equal(180, RunProgress.Eta(run, now)!.Value.TotalSeconds, 3);
        Assert.Null(RunProgress.Eta(new Run { Status = RunStatus.Running, Progress = 0.01, StartedAt = now.AddSeconds(-60) }, now));
        Assert.Null(RunProgress.Eta(new Run { Status = RunStatus.Queued, Progress = 0.5 }, now));
        Assert.Null(RunProgress.Eta(new Run { Status = RunStatus.Succeeded, Progress = 1, StartedAt = now.AddSeconds(-60) }, now));

        var id = Add(NewRun(RunStatus.Running, 0.5, "scoring 50/100"));
        var page = Render<RunDetail>(p => p.Add(x => x.Id, id));
        page.WaitForAssertion(() => Assert.Contains("ETA", page.Find("[data-testid=run-eta]").TextContent));
    }

    [Fact]
    public async Task Only_a_finished_run_is_re_run()
    {
        var queued = Add(NewRun(RunStatus.Queued));
        var runs = Services.GetRequiredService<RunService>();
        var e = await Assert.ThrowsAsync<FieldException>(() => runs.RerunAsync(queued));
        Assert.Equal(409, e.Status);
        Assert.Contains("only a finished run", e.Message);
        using var db = Db();
        Assert.Equal(1, db.Runs.Count());
    }
}
