using Bunit;
using Microsoft.AspNetCore.Components;
using Portal.Auth;
using Portal.Components.Pages;
using Portal.Store;

namespace Portal.Tests.Components;

/// <summary>What each role sees: viewers no queue, cancel, re-run or register controls; researchers cancel only their own runs.</summary>
public sealed class AuthPagesTests : PortalComponentTest
{
    [Fact]
    public void Viewer_sees_runs_without_cancel_or_rerun_buttons()
    {
        var running = Add(NewRun(RunStatus.Running, 0.3));
        var done = Add(NewRun(RunStatus.Succeeded, 1));
        SignInAs("vera", Roles.Viewer);

        var runs = Render<Portal.Components.Pages.Runs>();
        Assert.Equal(2, runs.FindAll("[data-testid=run-row]").Count);
        Assert.Empty(runs.FindAll("[data-testid=cancel-run]"));

        var detail = Render<RunDetail>(p => p.Add(x => x.Id, running));
        Assert.Empty(detail.FindAll("[data-testid=cancel-run]"));
        Assert.Empty(detail.FindAll("[data-testid=rerun]"));
        var finished = Render<RunDetail>(p => p.Add(x => x.Id, done));
        Assert.Empty(finished.FindAll("[data-testid=rerun]"));
    }

    [Fact]
    public void Admin_sees_cancel_and_rerun_on_any_run()
    {
        var running = Add(NewRun(RunStatus.Running, 0.3));
        var failed = Add(NewRun(RunStatus.Failed, 0.3));
        var runs = Render<Portal.Components.Pages.Runs>();
        Assert.Single(runs.FindAll("[data-testid=cancel-run]"));
        var detail = Render<RunDetail>(p => p.Add(x => x.Id, running));
        Assert.Single(detail.FindAll("[data-testid=cancel-run]"));
        // Re-run is offered once a run has finished, not while it is queued or running.
        Assert.Empty(detail.FindAll("[data-testid=rerun]"));
        Assert.Single(Render<RunDetail>(p => p.Add(x => x.Id, failed)).FindAll("[data-testid=rerun]"));
    }

    [Fact]
    public void Researcher_can_cancel_own_runs_only()
    {
        var mine = NewRun(RunStatus.Running, 0.3);
        mine.OwnerId = "id-alice";
        var mineId = Add(mine);
        var theirs = NewRun(RunStatus.Queued);
        theirs.OwnerId = "id-bob";
        var theirsId = Add(theirs);
        var systems = Add(NewRun(RunStatus.Queued));
        SignInAs("alice", Roles.Researcher, "id-alice");

        var runs = Render<Portal.Components.Pages.Runs>();
        Assert.Equal([mineId.ToString()], runs.FindAll("[data-testid=cancel-run]").Select(b => b.GetAttribute("data-run-id")));
        Assert.Empty(Render<RunDetail>(p => p.Add(x => x.Id, theirsId)).FindAll("[data-testid=cancel-run]"));
        Assert.Empty(Render<RunDetail>(p => p.Add(x => x.Id, systems)).FindAll("[data-testid=cancel-run]"));
        // Re-running is queueing a new run of one's own: allowed on any finished run.
        var theirsDone = NewRun(RunStatus.Succeeded, 1);
        theirsDone.OwnerId = "id-bob";
        Assert.Single(Render<RunDetail>(p => p.Add(x => x.Id, Add(theirsDone))).FindAll("[data-testid=rerun]"));
        Assert.Empty(Render<RunDetail>(p => p.Add(x => x.Id, theirsId)).FindAll("[data-testid=rerun]"));
    }

    [Fact]
    public async Task Viewer_cannot_cancel_through_the_service_either()
    {
        var running = Add(NewRun(RunStatus.Queued));
        SignInAs("vera", Roles.Viewer);
        var service = Services.GetService(typeof(Portal.Runs.RunService)) as Portal.Runs.RunService;
        var e = await Assert.ThrowsAsync<AccessDeniedException>(() => service!.CancelAsync(running));
        Assert.Contains("vera", e.Message);
        await Assert.ThrowsAsync<AccessDeniedException>(() => service!.CreateAsync("register-dataset", "{\"datasetId\":1}"));
        using var db = Db();
        Assert.Equal(RunStatus.Queued, db.Runs.Single(r => r.Id == running).Status);
        Assert.Single(db.Runs);
        Assert.Empty(Queue.Enqueued);
    }

    [Fact]
    public void Viewer_sees_no_register_forms()
    {
        SignInAs("vera", Roles.Viewer);
        Assert.Empty(Render<Portal.Components.Pages.Datasets>().FindAll("[data-testid=register-dataset]"));
        Assert.Empty(Render<Models>().FindAll("#register-model"));
        SignInAs("rita", Roles.Researcher);
        Assert.Single(Render<Portal.Components.Pages.Datasets>().FindAll("[data-testid=register-dataset]"));
        Assert.Single(Render<Models>().FindAll("#register-model"));
    }
}
