using Bunit;
using Portal.Components.Pages;
using Portal.Experiments;
using Portal.Datasets;
using Portal.Zoo;
using Portal.Runs;
using Portal.Store;

namespace Portal.Tests.Demo;

public class DemoBenchmarkPageTests : DemoBenchmarkTestBase
{
    [Fact]
    public async Task The_button_queues_the_one_click_pipeline_shows_its_stages_and_the_claim_tables()
    {
        var cut = Render<Portal.Components.Pages.Demo>();
        Assert.Equal("Run the demo benchmark", cut.Find("#demo-run").TextContent.Trim());
        // The results load asynchronously (the shortcut statistics read images off the render thread).
        cut.WaitForAssertion(() => Assert.Equal(3, cut.FindAll("[data-testid=demo-table]").Count), TimeSpan.FromSeconds(60));
        Assert.NotNull(cut.Find("[data-testid=demo-sanity]"));
        // The shortcut table measures the test split's images: reals first, then each generator.
        Assert.Equal(["real", "ldm_nearest", "ldm_transpose", "dcgan"], cut.FindAll("[data-testid=demo-shortcut] tbody tr").Select(r => r.GetAttribute("data-row")));
        Assert.All(cut.FindAll("[data-testid=demo-verdict]"), v => Assert.StartsWith("not measured yet", v.TextContent.Trim()));
        // The cost claim: this store's ldm_nearest is an empty folder, so the page says why it is not counted.
        cut.WaitForAssertion(() => Assert.StartsWith("not counted: ", cut.Find("[data-testid=demo-cost-error]").TextContent.Trim()));

        await cut.InvokeAsync(() => cut.Find("#demo-run").Click());
        cut.WaitForAssertion(() => Assert.Equal(DemoBenchmark.Seeds.Count, Queue.Enqueued.Count));
        var runs = await RunsAsync();
        Assert.Equal(DemoBenchmark.Seeds.Count, runs.Count);
        Assert.All(runs, run => Assert.Equal(PipelineJob.KindName, run.Kind));
        Assert.All(runs, run => Assert.Contains(DemoBenchmark.Tag, RunTags.Parse(run.Tags)));
        cut.WaitForAssertion(() => Assert.All(runs, run => Assert.Contains($"#{run.Id}", cut.Markup)));
        // The whole plan shows before any stage starts: every stage planned, training among them, and the pipeline's progress.
        cut.WaitForAssertion(() => Assert.NotEmpty(cut.FindAll("[data-testid=stage-planned]")));
        Assert.All(cut.FindAll("[data-testid=pipeline-stage]"), s => Assert.Equal("planned", s.GetAttribute("data-state")));
        Assert.Contains("train", cut.FindAll("[data-testid=pipeline-stage]").Select(s => s.GetAttribute("data-stage")));
        Assert.NotNull(cut.Find("[data-testid=demo-pipeline-progress] [data-testid=run-progress]"));
        // While the set runs, the plan comes first; the results move above it once every pipeline has finished.
        Assert.Contains("order: 1", cut.Find("[data-testid=demo-plan]").GetAttribute("style"));
        Assert.Contains("order: 2", cut.Find("[data-testid=demo-results]").GetAttribute("style"));
        Assert.StartsWith($"Plan: {runs.Count} pipeline(s), 0 succeeded", cut.Find("[data-testid=demo-plan] h5").TextContent.Trim());

        // A second click reuses the pipelines.
        await cut.InvokeAsync(() => cut.Find("#demo-run").Click());
        cut.WaitForAssertion(() => Assert.False(cut.Find("#demo-run").HasAttribute("disabled")));
        Assert.Equal(DemoBenchmark.Seeds.Count, (await RunsAsync()).Count);
        Assert.Equal(DemoBenchmark.Seeds.Count, Queue.Enqueued.Count);
    }

    [Fact]
    public async Task Without_minigenimage_the_button_shows_what_is_missing()
    {
        using (var db = Db())
        {
            db.Datasets.Single(d => d.Name == DemoBenchmark.DatasetName).Status = DatasetStatus.Registering;
            db.SaveChanges();
        }
        var cut = Render<Portal.Components.Pages.Demo>();
        cut.WaitForAssertion(() => Assert.Equal(3, cut.FindAll("[data-testid=demo-table]").Count), TimeSpan.FromSeconds(60));
        // The page re-renders as it polls: find and click in one dispatch.
        await cut.InvokeAsync(() => cut.Find("#demo-run").Click());
        cut.WaitForAssertion(() => Assert.Contains("registering, not ready yet", cut.Find("[data-testid=demo-error]").TextContent));
        Assert.Empty(Queue.Enqueued);
    }
}
