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
/// A model's page connects the zoo with evaluation: the card as Markdown, the source run as a link, a rename, and
/// Evaluate / Cross-generator / Sweep actions that open those forms with the model chosen. The evaluation form refuses a
/// checkpoint that does not load into the chosen architecture on its field.
/// </summary>
public sealed class ModelActionsTests : PortalComponentTest
{
    static string Fixture(params string[] parts) => Path.Combine([AppContext.BaseDirectory, "fixtures", .. parts]);

    NavigationManager Nav => Services.GetRequiredService<NavigationManager>();

    long AddDetector(string name, string? card = null, long? sourceRun = null, string? path = null) => Add(new ModelWeights
    {
        Name = name, Kind = ModelZooService.Detector, Architecture = "res50nodown", Path = path ?? Path.Combine(DataDir, name + ".pth"),
        Card = card, SourceRunId = sourceRun, CreatedAt = DateTime.UtcNow,
    });

    long SeedReadyDataset() => Add(new Dataset
    {
        Name = "eval-set", Path = Path.Combine(DataDir, "eval-set"), Layout = "real-fake", Status = DatasetStatus.Ready,
        CreatedAt = DateTime.UtcNow, ScannedAt = DateTime.UtcNow, Images = 8, ManifestPath = "datasets/1/manifest.json.gz",
        Subsets = [new DatasetSubset { Generator = "eval-set", Split = "all", Label = "real", Count = 4 }],
    });

    [Fact]
    public void The_card_renders_as_markdown_without_running_its_html_or_script_links()
    {
        var id = AddDetector("card-model", """
            # Training card

            Trained **by** run 7 on `minigenimage` with a very-long-token-that-must-wrap-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.

            | seed | acc |
            |------|-----|
            | 0    | 0.9 |

            <script>alert(1)</script>

            [bad](javascript:alert(1)) and [paper](https://arxiv.org/abs/2306.08571)
            """);
        var page = Render<ModelDetail>(p => p.Add(x => x.Id, id));
        page.WaitForAssertion(() => Assert.NotNull(page.Find("[data-testid=model-card] h1")));

        var card = page.Find("[data-testid=model-card]");
        Assert.Equal("Training card", card.QuerySelector("h1")!.TextContent);
        Assert.Equal("by", card.QuerySelector("strong")!.TextContent);
        Assert.Equal("minigenimage", card.QuerySelector("code")!.TextContent);
        Assert.Equal(["seed", "acc"], card.QuerySelectorAll("table th").Select(th => th.TextContent));
        Assert.Empty(card.QuerySelectorAll("script"));
        Assert.Contains("<script>alert(1)</script>", card.TextContent);   // shown as text
        Assert.Equal("#", card.QuerySelectorAll("a").Single(a => a.TextContent == "bad").GetAttribute("href"));
        Assert.Equal("https://arxiv.org/abs/2306.08571", card.QuerySelectorAll("a").Single(a => a.TextContent == "paper").GetAttribute("href"));
        Assert.Empty(page.FindAll("pre.card-text"));
    }

    [Fact]
    public void A_detector_page_offers_evaluate_crossgen_and_sweep_and_links_its_source_run()
    {
        var run = Add(NewRun(RunStatus.Succeeded, 1));
        var id = AddDetector("trained", "card", sourceRun: run);
        var page = Render<ModelDetail>(p => p.Add(x => x.Id, id));
        page.WaitForAssertion(() => Assert.NotNull(page.Find("#model-evaluate")));

        Assert.Equal($"evaluate?model={id}", page.Find("#model-evaluate").GetAttribute("href"));
        Assert.Equal($"crossgen?model={id}", page.Find("#model-crossgen").GetAttribute("href"));
        Assert.Equal($"sweep?model={id}", page.Find("#model-sweep").GetAttribute("href"));
        Assert.Equal($"runs/{run}", page.Find("#model-source-run").GetAttribute("href"));
    }

    [Fact]
    public void A_model_is_renamed_on_its_page_and_a_taken_name_is_refused_on_the_field()
    {
        AddDetector("taken");
        var id = AddDetector("res50nodown-run7");
        var page = Render<ModelDetail>(p => p.Add(x => x.Id, id));
        page.WaitForAssertion(() => Assert.NotNull(page.Find("#model-rename")));

        page.Find("#model-rename").Click();
        page.Find("#model-rename-name").Change("taken");
        page.Find("#model-rename-save").Click();
        page.WaitForAssertion(() => Assert.Contains("already exists", page.Markup));
        using (var db = Db()) Assert.Equal("res50nodown-run7", db.Weights.Single(w => w.Id == id).Name);

        page.Find("#model-rename-name").Change("ResNet-50 on MiniGenImage");
        page.Find("#model-rename-save").Click();
        page.WaitForAssertion(() => Assert.Equal("ResNet-50 on MiniGenImage", page.Find("[data-testid=model-name]").TextContent));
        using (var db = Db()) Assert.Equal("ResNet-50 on MiniGenImage", db.Weights.Single(w => w.Id == id).Name);
    }

    [Theory]
    [InlineData("evaluate", "#eval-checkpoint")]
    [InlineData("crossgen", "#crossgen-checkpoint")]
    [InlineData("sweep", "#sweep-checkpoint")]
    public void The_forms_open_with_the_models_detector_chosen(string form, string checkpointField)
    {
        SeedReadyDataset();
        AddDetector("other");
        var id = AddDetector("chosen");
        Nav.NavigateTo($"{form}?model={id}");
        switch (form)
        {
            case "evaluate": Chosen(Render<Evaluate>(), checkpointField); break;
            case "crossgen": Chosen(Render<CrossGen>(), checkpointField); break;
            default: Chosen(Render<Sweep>(), checkpointField); break;
        }
    }

    void Chosen<T>(IRenderedComponent<T> page, string checkpointField) where T : IComponent
    {
        page.WaitForAssertion(() => Assert.Equal(Path.Combine(DataDir, "chosen.pth"), page.Find(checkpointField).GetAttribute("value")));
        Assert.True(page.Find(checkpointField).HasAttribute("disabled"));
    }

    [Fact]
    public void Evaluate_refuses_a_checkpoint_of_another_network_on_its_field_and_queues_one_that_loads()
    {
        SeedReadyDataset();
        File.Copy(Fixture("sd", "vae", "diffusion_pytorch_model.safetensors"), Path.Combine(DataDir, "vae.safetensors"));
        File.Copy(Fixture("eval", "tiny_res50nodown_ckpt.pth"), Path.Combine(DataDir, "detector.pth"));
        var page = Render<Evaluate>();

        page.Find("#eval-checkpoint").Change("vae.safetensors");
        page.Find("#queue-evaluation").Click();
        page.WaitForAssertion(() => Assert.Contains("does not load into res50nodown", page.Markup), TimeSpan.FromSeconds(30));
        Assert.Empty(Queue.Enqueued);

        page.Find("#eval-checkpoint").Change("detector.pth");
        page.Find("#queue-evaluation").Click();
        page.WaitForAssertion(() => Assert.Single(Queue.Enqueued), TimeSpan.FromSeconds(30));
    }
}
