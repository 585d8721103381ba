using Bunit;
using Bunit.TestDoubles;
using Microsoft.AspNetCore.Components;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Portal.Components.Pages;
using Portal.Store;

namespace Portal.Tests.Components;

public sealed class DatasetPagesTests : PortalComponentTest
{
    long SeedDataset(string name, DatasetStatus status = DatasetStatus.Ready, int unreadable = 0) => Add(new Dataset
    {
        Name = name, Path = Path.Combine(DataDir, name), Layout = "genimage", Status = status, CreatedAt = DateTime.UtcNow,
        ScannedAt = DateTime.UtcNow, Images = 1234, ContentHash = "f00d",
        FormatsJson = "{\"png\":1000,\"jpeg\":234}", SizesJson = "{\"minWidth\":64,\"maxWidth\":1024,\"byBucket\":{\"<=256\":10}}",
        Subsets =
        [
            new DatasetSubset { Generator = "sdv4", Split = "train", Label = "fake", Count = 700 },
            new DatasetSubset { Generator = "sdv4", Split = "train", Label = "real", Count = 500 },
            new DatasetSubset { Generator = "sdv4", Split = "val", Label = "real", Count = 34 },
        ],
        Unreadable = Enumerable.Range(0, unreadable)
            .Select(i => new UnreadableFile { Path = $"sdv4/train/ai/broken{i}.png", Reason = "truncated PNG stream" }).ToList(),
    });

    [Fact]
    public void Datasets_page_lists_the_stored_datasets()
    {
        var a = SeedDataset("alpha", unreadable: 2);
        SeedDataset("beta", DatasetStatus.Failed);

        var cut = Render<Portal.Components.Pages.Datasets>();

        var rows = cut.FindAll("[data-testid=dataset-row]");
        Assert.Equal(2, rows.Count);
        var alpha = cut.Find($"[data-testid=dataset-row][data-dataset-id='{a}']");
        Assert.Contains("alpha", alpha.TextContent);
        Assert.Equal($"datasets/{a}", alpha.QuerySelector("a[data-testid=dataset-link]")!.GetAttribute("href"));
        Assert.Equal("2", alpha.QuerySelector("[data-testid=dataset-unreadable]")!.TextContent.Trim());
        Assert.Equal("1,234", alpha.QuerySelector("[data-testid=dataset-images]")!.TextContent.Trim());
        Assert.Equal("ready", alpha.QuerySelector("[data-testid=dataset-status]")!.GetAttribute("data-status"));
        Assert.Equal("failed", rows[1].QuerySelector("[data-testid=dataset-status]")!.GetAttribute("data-status"));
    }

    [Fact]
    public void Registering_without_a_name_shows_the_name_error_and_stores_nothing()
    {
        var cut = Render<Portal.Components.Pages.Datasets>();
        cut.Find("#dataset-path").Input(DataDir);
        cut.Find("#register-dataset").Click();

        cut.WaitForAssertion(() => Assert.Contains("name is required", cut.Find("[data-testid=dataset-name-field]").TextContent));
        Assert.DoesNotContain("name is required", cut.Find("[data-testid=dataset-path-field]").TextContent);
        using var db = Db();
        Assert.Equal(0, db.Datasets.Count());
        Assert.Equal(0, db.Runs.Count());
        Assert.Empty(Queue.Enqueued);
    }

    [Fact]
    public void Registering_a_path_outside_the_allowed_roots_shows_the_path_error()
    {
        var outside = Directory.CreateTempSubdirectory("portal-ui-outside-").FullName;
        try
        {
            var cut = Render<Portal.Components.Pages.Datasets>();
            cut.Find("#dataset-name").Input("outside");
            cut.Find("#dataset-path").Input(outside);
            cut.Find("#register-dataset").Click();

            cut.WaitForAssertion(() => Assert.Contains("outside the allowed roots", PathFieldText(cut)));
            Assert.DoesNotContain("outside the allowed roots", cut.Find("[data-testid=dataset-name-field]").TextContent);
            using var db = Db();
            Assert.Equal(0, db.Datasets.Count());
        }
        finally { Directory.Delete(outside); }
    }

    [Fact]
    public void A_valid_registration_stores_the_dataset_and_a_queued_run_then_opens_the_dataset()
    {
        var folder = Directory.CreateDirectory(Path.Combine(DataDir, "images", "genimage-tiny")).FullName;
        var nav = Services.GetRequiredService<NavigationManager>();

        var cut = Render<Portal.Components.Pages.Datasets>();
        cut.Find("#dataset-name").Input("tiny");
        cut.Find("#dataset-path").Input("images/genimage-tiny");
        cut.Find("#register-dataset").Click();

        cut.WaitForAssertion(() => Assert.Matches(@"/datasets/\d+$", nav.Uri));
        using var db = Db();
        var dataset = db.Datasets.Single();
        Assert.Equal("tiny", dataset.Name);
        Assert.Equal(folder, dataset.Path);
        Assert.Equal(DatasetStatus.Registering, dataset.Status);
        var run = db.Runs.Single();
        Assert.Equal(RunStatus.Queued, run.Status);
        Assert.Equal("register-dataset", run.Kind);
        Assert.Equal(run.Id, dataset.RegistrationRunId);
        Assert.Equal((run.Id, "light"), Assert.Single(Queue.Enqueued));
        Assert.EndsWith($"/datasets/{dataset.Id}", nav.Uri);
    }

    [Fact]
    public void A_duplicate_name_is_reported_on_the_name_field()
    {
        SeedDataset("taken");
        var cut = Render<Portal.Components.Pages.Datasets>();
        cut.Find("#dataset-name").Input("taken");
        cut.Find("#dataset-path").Input(DataDir);
        cut.Find("#register-dataset").Click();

        cut.WaitForAssertion(() => Assert.Contains("already exists", cut.Find("[data-testid=dataset-name-field]").TextContent));
        using var db = Db();
        Assert.Equal(1, db.Datasets.Count());
    }

    [Fact]
    public void Dataset_detail_shows_counts_totals_formats_and_unreadable_files()
    {
        var id = SeedDataset("gen", unreadable: 3);

        var cut = Render<DatasetDetail>(p => p.Add(x => x.Id, id));

        var counts = cut.FindAll("[data-testid=counts-table] tbody tr");
        Assert.Equal(3, counts.Count);
        Assert.Equal(["sdv4", "train", "fake", "700"], counts[0].QuerySelectorAll("td").Select(td => td.TextContent.Trim()));
        var real = cut.Find("[data-testid=label-total][data-label=real]");
        Assert.Contains("534", real.TextContent);
        Assert.Contains("1,234", cut.Find("[data-testid=label-total][data-label=all]").TextContent);
        Assert.Contains("jpeg", cut.Find("[data-testid=formats-table]").TextContent);
        Assert.Contains("{\"<=256\":10}", cut.Find("[data-testid=sizes-table]").TextContent);
        var unreadable = cut.FindAll("[data-testid=unreadable-table] tbody tr");
        Assert.Equal(3, unreadable.Count);
        Assert.Contains("sdv4/train/ai/broken0.png", unreadable[0].TextContent);
        Assert.Contains("truncated PNG stream", unreadable[0].TextContent);
        Assert.Equal("f00d", cut.Find("[data-testid=dataset-hash]").TextContent.Trim());
    }

    [Fact]
    public void Dataset_detail_follows_the_registration_run_and_scans_again()
    {
        var runId = Add(NewRun(RunStatus.Running, 0.25, "decoding 25/100"));
        var id = SeedDataset("live", DatasetStatus.Registering);
        using (var db = Db()) db.Datasets.Where(d => d.Id == id).ExecuteUpdate(s => s.SetProperty(d => d.RegistrationRunId, runId));

        var cut = Render<DatasetDetail>(p => p.Add(x => x.Id, id));
        Assert.Equal("25%", cut.Find($"[data-testid=registration-run] [data-testid=run-progress-percent]").TextContent.Trim());
        Assert.True(cut.Find("#rescan-dataset").HasAttribute("disabled"));

        using (var db = Db())
            db.Runs.Where(r => r.Id == runId).ExecuteUpdate(s => s.SetProperty(r => r.Status, RunStatus.Succeeded)
                .SetProperty(r => r.Progress, 1.0).SetProperty(r => r.Phase, "done"));
        cut.WaitForAssertion(() => Assert.Equal("100%", cut.Find("[data-testid=registration-run] [data-testid=run-progress-percent]").TextContent.Trim()),
            TimeSpan.FromSeconds(5));

        cut.Find("#rescan-dataset").Click();
        cut.WaitForAssertion(() =>
        {
            using var db = Db();
            var newRun = db.Datasets.Single(d => d.Id == id).RegistrationRunId;
            Assert.NotEqual(runId, newRun);
            Assert.Equal($"runs/{newRun}", cut.Find("[data-testid=registration-run-link]").GetAttribute("href"));
        });
        Assert.Single(Queue.Enqueued);
    }

    [Fact]
    public void Dataset_detail_reports_an_unknown_id()
    {
        var cut = Render<DatasetDetail>(p => p.Add(x => x.Id, 999));
        Assert.Contains("No dataset with id 999", cut.Find("[data-testid=not-found]").TextContent);
    }

    static string PathFieldText(IRenderedComponent<Portal.Components.Pages.Datasets> cut) => cut.Find("[data-testid=dataset-path-field]").TextContent;
}
