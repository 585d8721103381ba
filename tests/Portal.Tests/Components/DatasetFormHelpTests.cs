using Bunit;
using Microsoft.AspNetCore.Components;
using Microsoft.Extensions.DependencyInjection;
using Forensics.ML.Datasets;
using Portal.Components.Pages;
using Portal.Components.Shared;

namespace Portal.Tests.Components;

/// <summary>
/// The registration form describes exactly the layouts the scanner accepts (each example it shows is accepted as that
/// layout), shows every field error at once, and offers to scan again a dataset whose registration failed under the name.
/// </summary>
public sealed class DatasetFormHelpTests : PortalComponentTest
{
    [Fact]
    public void Every_field_error_shows_at_once()
    {
        var cut = Render<Portal.Components.Pages.Datasets>();
        cut.Find("#dataset-path").Input("no-such-folder");
        cut.Find("#register-dataset").Click();
        cut.WaitForAssertion(() => Assert.Contains("name is required", cut.Find("[data-testid=dataset-name-field]").TextContent));
        Assert.Contains("folder 'no-such-folder' does not exist", cut.Find("[data-testid=dataset-path-field]").TextContent);
        using var db = Db();
        Assert.Equal(0, db.Datasets.Count());
    }

    [Fact]
    public void A_name_taken_by_a_failed_registration_offers_to_scan_that_dataset_again()
    {
        var folder = Directory.CreateDirectory(Path.Combine(DataDir, "broken")).FullName;
        var failed = Add(new Portal.Store.Dataset
        {
            Name = "broken", Path = folder, Status = Portal.Store.DatasetStatus.Failed, CreatedAt = DateTime.UtcNow,
        });
        var nav = Services.GetRequiredService<NavigationManager>();
        var cut = Render<Portal.Components.Pages.Datasets>();
        cut.Find("#dataset-name").Input("broken");
        cut.Find("#dataset-path").Input(folder);
        cut.Find("#register-dataset").Click();

        cut.WaitForAssertion(() => Assert.Contains("already exists", cut.Find("[data-testid=dataset-name-field]").TextContent));
        Assert.Contains("failed earlier", cut.Find("[data-testid=failed-namesake]").TextContent);
        cut.Find("#rescan-namesake").Click();
        cut.WaitForAssertion(() => Assert.EndsWith($"datasets/{failed}", nav.Uri));
        using var db = Db();
        Assert.Equal(Portal.Store.DatasetStatus.Registering, db.Datasets.Single(d => d.Id == failed).Status);
        Assert.Single(Queue.Enqueued);
    }

    [Fact]
    public void Every_layout_the_form_describes_is_one_the_scanner_accepts()
    {
        foreach (var item in DatasetLayoutHelp.Layouts)
        {
            var root = Directory.CreateDirectory(Path.Combine(DataDir, "layout-" + Guid.NewGuid().ToString("N"), "set")).FullName;
            foreach (var example in item.Examples)
            {
                var file = Path.Combine(root, example);
                Directory.CreateDirectory(Path.GetDirectoryName(file)!);
                File.WriteAllBytes(file, [0x89, 0x50, 0x4e, 0x47]);
            }
            var structure = DatasetLayouts.Resolve(root);
            Assert.True(item.Layout == structure.Layout, $"{item.Title}: scanned as {structure.Layout}");
            Assert.Contains(structure.Parts, p => p.Label == DatasetLayouts.Real);
            Assert.Contains(structure.Parts, p => p.Label == DatasetLayouts.Fake);
        }
        // What the form used to promise ("real/ and fake/ subfolders") is refused by the scanner: the form no longer says it.
        var wrong = Directory.CreateDirectory(Path.Combine(DataDir, "wrong")).FullName;
        Directory.CreateDirectory(Path.Combine(wrong, "real"));
        Directory.CreateDirectory(Path.Combine(wrong, "fake"));
        Assert.Throws<DatasetLayoutException>(() => DatasetLayouts.Resolve(wrong));

        var form = Render<Portal.Components.Pages.Datasets>();
        var help = form.Find("[data-testid=layout-help]");
        Assert.Equal(DatasetLayoutHelp.Layouts.Count, help.QuerySelectorAll("li").Length);
        Assert.Contains("0_real/ and 1_fake/", help.TextContent);
        Assert.DoesNotContain("real/ and fake/ subfolders", form.Markup);
    }
}
