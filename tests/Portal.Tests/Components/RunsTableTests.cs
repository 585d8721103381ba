using Bunit;
using Microsoft.AspNetCore.Components;
using Microsoft.Extensions.DependencyInjection;
using Portal.Components.Pages;
using Portal.Experiments;
using Portal.Datasets;
using Portal.Zoo;
using Portal.Runs;
using Portal.Store;

namespace Portal.Tests.Components;

/// <summary>
/// The runs table, W&amp;B style: tags shown and filterable, columns chosen from metrics, config fields, tags and dataset
/// (kept in the address), rows ticked and compared; and Compare takes cross-generator runs and overlays training curves.
/// </summary>
public sealed class RunsTableTests : PortalComponentTest
{
    NavigationManager Nav => Services.GetRequiredService<NavigationManager>();

    long AddRun(string kind, string config, string[]? tags = null, RunStatus status = RunStatus.Succeeded)
    {
        var run = NewRun(status, status == RunStatus.Succeeded ? 1 : 0.2);
        run.Kind = kind;
        run.Queue = JobQueues.DeviceCpu;
        run.ConfigJson = config;
        run.Tags = RunTags.Format(tags);
        run.FinishedAt = status == RunStatus.Succeeded ? DateTime.UtcNow : null;
        return Add(run);
    }

    void AddMetric(long runId, string name, long step, double value) =>
        Add(new RunMetric { RunId = runId, Name = name, Step = step, Value = value, At = DateTime.UtcNow });

    long AddDataset(string name) => Add(new Dataset
    {
        Name = name, Path = Path.Combine(DataDir, name), Layout = "real-fake", Status = DatasetStatus.Ready, CreatedAt = DateTime.UtcNow,
    });

    [Fact]
    public void Tags_show_on_each_row_and_filter_the_table()
    {
        var demo = AddRun(EvaluationJob.KindName, "{\"datasetId\":1}", ["demo", "paper"]);
        var other = AddRun(EvaluationJob.KindName, "{\"datasetId\":1}", ["ablation"]);

        var page = Render<Portal.Components.Pages.Runs>();
        page.WaitForAssertion(() => Assert.Equal(2, page.FindAll("[data-testid=run-row]").Count));
        Assert.Equal(["demo", "paper"], page.FindAll($"[data-testid=run-row][data-run-id='{demo}'] [data-testid=run-tag]").Select(t => t.TextContent));
        Assert.Equal("runs?tag=demo", page.Find($"[data-testid=run-row][data-run-id='{demo}'] [data-tag=demo]").GetAttribute("href"));

        Nav.NavigateTo("runs?tag=demo");
        page.WaitForAssertion(() => Assert.Equal([demo.ToString()], page.FindAll("[data-testid=run-row]").Select(r => r.GetAttribute("data-run-id"))));
        Assert.Equal("demo", page.Find("#runs-tag").GetAttribute("value"));
        // The status filter keeps the tag.
        Assert.Equal("runs?status=failed&tag=demo", page.FindAll("[data-testid=filter-status]").Single(b => b.GetAttribute("data-status") == "failed").GetAttribute("href"));
        Assert.DoesNotContain(other.ToString(), page.Find("[data-testid=runs-table]").InnerHtml.Split("data-run-id=\"").Skip(1).Select(s => s.Split('"')[0]));
    }

    [Fact]
    public void Columns_for_metrics_config_fields_and_the_dataset_are_chosen_in_the_address()
    {
        var dataset = AddDataset("minigenimage");
        var a = AddRun(EvaluationJob.KindName, $"{{\"datasetId\":{dataset},\"arch\":\"res50nodown\",\"perturbation\":\"jpeg:75\"}}");
        var b = AddRun(TrainingJob.KindName, $"{{\"trainDatasetId\":{dataset},\"epochs\":3}}");
        AddMetric(a, "acc", 0, 0.5323);
        AddMetric(a, "acc/sdv4", 0, 0.9);   // per generator: not a column
        AddMetric(b, "val_acc", 1, 0.6);
        AddMetric(b, "val_acc", 2, 0.7);

        // Default columns: dataset, tags, created, duration.
        var page = Render<Portal.Components.Pages.Runs>();
        page.WaitForAssertion(() => Assert.Equal(2, page.FindAll("[data-testid=run-row]").Count));
        Assert.Equal(["dataset", "tags", "created", "duration"], page.FindAll("[data-testid=column-head]").Select(h => h.GetAttribute("data-column")));
        Assert.Equal("minigenimage", page.Find($"[data-testid=run-row][data-run-id='{a}'] td[data-column=dataset]").TextContent.Trim());
        Assert.Equal("minigenimage", page.Find($"[data-testid=run-row][data-run-id='{b}'] td[data-column=dataset]").TextContent.Trim());

        // The column picker offers the page's metrics (not per generator) and config fields.
        var picker = page.FindComponents<MudBlazor.MudSelect<string>>().Single(s => s.Instance.Label == "Columns");
        page.InvokeAsync(() => picker.Instance.SelectedValuesChanged.InvokeAsync(["metric.acc", "config.perturbation", "metric.val_acc"]));
        page.WaitForAssertion(() => Assert.Contains("cols=metric.acc,metric.val_acc,config.perturbation", Uri.UnescapeDataString(Nav.Uri)));

        page.WaitForAssertion(() => Assert.Equal(["metric.acc", "metric.val_acc", "config.perturbation"],
            page.FindAll("[data-testid=column-head]").Select(h => h.GetAttribute("data-column"))));
        string Cell(long run, string column) => page.Find($"[data-testid=run-row][data-run-id='{run}'] td[data-column='{column}']").TextContent.Trim();
        Assert.Equal("53.2", Cell(a, "metric.acc"));
        Assert.Equal("70.0", Cell(b, "metric.val_acc"));   // the last epoch's value
        Assert.Equal("—", Cell(b, "metric.acc"));
        Assert.Equal("jpeg:75", Cell(a, "config.perturbation"));
        Assert.Empty(page.FindAll("td[data-column='metric.acc/sdv4']"));

        // A reload of that address shows the same columns.
        var reloaded = Render<Portal.Components.Pages.Runs>();
        reloaded.WaitForAssertion(() => Assert.Equal(3, reloaded.FindAll("[data-testid=column-head]").Count));
    }

    [Fact]
    public void Ticked_rows_open_compare_with_those_runs()
    {
        var a = AddRun(EvaluationJob.KindName, "{\"datasetId\":1}");
        var b = AddRun(CrossGeneratorJob.KindName, "{\"datasetId\":1}");
        AddRun(EvaluationJob.KindName, "{\"datasetId\":1}");
        var page = Render<Portal.Components.Pages.Runs>();
        page.WaitForAssertion(() => Assert.Equal(3, page.FindAll("[data-testid=run-pick]").Count));
        Assert.True(page.Find("#runs-compare").HasAttribute("disabled") || page.Find("#runs-compare").ClassList.Contains("mud-button-disabled"));

        page.Find($"[data-testid=run-pick][data-run-id='{b}']").Change(true);
        page.Find($"[data-testid=run-pick][data-run-id='{a}']").Change(true);
        page.WaitForAssertion(() => Assert.Equal($"compare?runs={a},{b}", page.Find("#runs-compare").GetAttribute("href")));
        Assert.Contains("Compare (2)", page.Find("#runs-compare").TextContent);
        page.Find($"[data-testid=run-pick][data-run-id='{b}']").Change(false);
        page.WaitForAssertion(() => Assert.Contains("Compare (1)", page.Find("#runs-compare").TextContent));
    }

    [Fact]
    public void Compare_takes_crossgen_runs_and_overlays_the_training_curves_of_several_trainings()
    {
        var crossgen = AddRun(CrossGeneratorJob.KindName, "{\"datasetId\":1,\"checkpoint\":\"a.pth\"}");
        AddMetric(crossgen, "acc/sdv4", 0, 0.8);
        AddMetric(crossgen, "ap/sdv4", 0, 0.9);
        var aligned = AddRun(TrainingJob.KindName, "{\"trainDatasetId\":1,\"mode\":\"aligned\"}", ["aligned"]);
        var usual = AddRun(TrainingJob.KindName, "{\"trainDatasetId\":1,\"mode\":\"usual\"}", ["usual"]);
        foreach (var (run, offset) in new[] { (aligned, 0.1), (usual, 0.0) })
            for (var epoch = 1; epoch <= 3; epoch++)
            {
                AddMetric(run, "val_balanced_acc", epoch, 0.5 + offset + 0.1 * epoch);
                AddMetric(run, "train_loss", epoch, 1.0 / epoch);
            }

        Nav.NavigateTo("compare");
        var picker = Render<Compare>();
        var offered = picker.FindAll("#run-picker option").Select(o => o.GetAttribute("value")).ToList();
        Assert.Contains(crossgen.ToString(), offered);
        Assert.Contains(aligned.ToString(), offered);

        Nav.NavigateTo($"compare?runs={crossgen},{aligned},{usual}");
        var page = Render<Compare>();
        page.WaitForAssertion(() => Assert.NotNull(page.Find("[data-testid=compare-training]")));
        var training = page.Find("[data-testid=compare-training]");
        Assert.Contains("val_balanced_acc", training.TextContent);
        Assert.Contains("train_loss", training.TextContent);
        Assert.Contains($"#{aligned} aligned", training.InnerHtml);
        Assert.Contains($"#{usual} usual", training.InnerHtml);
        Assert.NotNull(page.Find("[data-testid=compare-evaluations]"));
        Assert.Contains($"#{crossgen} acc", page.Find("[data-testid=compare-evaluations]").InnerHtml);
    }
}
