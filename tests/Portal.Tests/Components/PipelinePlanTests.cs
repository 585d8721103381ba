using System.Text.Json;
using Bunit;
using Portal.Components.Pages;
using Portal.Experiments;
using Portal.Datasets;
using Portal.Zoo;
using Portal.Runs;
using Portal.Store;

namespace Portal.Tests.Components;

/// <summary>
/// A pipeline's plan: every stage its config names, weighted by its share of the work so the pipeline's progress tracks
/// it; its run page lists planned and started stages, and each stage's page links back to its pipeline.
/// </summary>
public sealed class PipelinePlanTests : PortalComponentTest
{
    const string Config = """{"trainDatasetId":1,"align":{"vaeWeightsId":3},"train":{"epochs":2},"evaluate":{"datasetId":1},"sweeps":[{"axis":"jpeg"},{"axis":"resize","severities":"clean,0.5"}]}""";

    [Fact]
    public void The_plan_names_every_stage_and_training_carries_most_of_the_progress()
    {
        var plan = PipelineJob.Plan(JsonSerializer.Deserialize<PipelineJob.Config>(Config, JobInputs.Json)!);
        Assert.Equal(["align", "train", "crossgen", "sweeps[0]", "sweeps[1]"], plan.Select(p => p.Stage));
        Assert.Equal([AlignmentJob.KindName, TrainingJob.KindName, CrossGeneratorJob.KindName, RobustnessSweepJob.KindName, RobustnessSweepJob.KindName],
            plan.Select(p => p.Kind));
        var total = plan.Sum(p => p.Weight);
        // Halfway through training: alignment plus half of training, not "1.5 of 5 stages".
        Assert.Equal((plan[0].Weight + plan[1].Weight / 2) / total, PipelineJob.Progress(plan, 1, 0.5), 9);
        Assert.True(plan[1].Weight / total > 0.5, "training is most of the work");
        // Progress follows the work: no step of a tenth of a stage moves it by more than a tenth of that stage's share.
        var previous = 0.0;
        for (var stage = 0; stage < plan.Count; stage++)
            for (var tenth = 0; tenth <= 10; tenth++)
            {
                var p = PipelineJob.Progress(plan, stage, tenth / 10.0);
                Assert.True(p >= previous - 1e-12, "progress never goes back");
                Assert.True(p - previous <= plan.Max(x => x.Weight) / total / 10 + 1e-9, $"a jump from {previous:P0} to {p:P0}");
                previous = p;
            }
        Assert.Equal(1, PipelineJob.Progress(plan, plan.Count - 1, 1), 9);
    }

    [Fact]
    public void A_pipeline_page_lists_planned_and_started_stages_and_a_stage_links_back()
    {
        var pipelineRun = NewRun(RunStatus.Running, 0.3, "train (2/5)");
        pipelineRun.Kind = PipelineJob.KindName;
        pipelineRun.ConfigJson = Config;
        var pipeline = Add(pipelineRun);
        var alignRun = NewRun(RunStatus.Succeeded, 1);
        alignRun.Kind = AlignmentJob.KindName;
        var align = Add(alignRun);
        var trainRun = NewRun(RunStatus.Running, 0.4, "epoch 1/2");
        trainRun.Kind = TrainingJob.KindName;
        var train = Add(trainRun);
        Add(new RunMetric { RunId = pipeline, Name = "child/align", Step = 0, Value = align, At = DateTime.UtcNow });
        Add(new RunMetric { RunId = pipeline, Name = "created/align", Step = 0, Value = align, At = DateTime.UtcNow });
        Add(new RunMetric { RunId = pipeline, Name = "child/train", Step = 0, Value = train, At = DateTime.UtcNow });
        Add(new RunMetric { RunId = pipeline, Name = "created/train", Step = 0, Value = train, At = DateTime.UtcNow });

        var page = Render<RunDetail>(p => p.Add(x => x.Id, pipeline));
        page.WaitForAssertion(() => Assert.Equal(5, page.FindAll("[data-testid=run-pipeline-stages] [data-testid=pipeline-stage]").Count));
        var stages = page.FindAll("[data-testid=pipeline-stage]").Select(s => (s.GetAttribute("data-stage"), s.GetAttribute("data-state"))).ToList();
        Assert.Equal([("align", "succeeded"), ("train", "running"), ("crossgen", "planned"), ("sweeps[0]", "planned"), ("sweeps[1]", "planned")], stages);
        Assert.Contains(page.FindAll("[data-testid=pipeline-stage][data-stage=train] a"), a => a.GetAttribute("href") == $"runs/{train}");
        Assert.Contains("40%", page.Find("[data-testid=pipeline-stage][data-stage=train]").TextContent);

        var stagePage = Render<RunDetail>(p => p.Add(x => x.Id, train));
        stagePage.WaitForAssertion(() => Assert.Contains("Stage train of pipeline", stagePage.Find("[data-testid=run-pipeline-parent]").TextContent));
        Assert.Equal($"runs/{pipeline}", stagePage.Find("[data-testid=run-pipeline-parent] a").GetAttribute("href"));
    }
}
