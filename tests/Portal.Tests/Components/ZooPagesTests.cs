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

/// <summary>The Align, Models and ModelDetail pages over the real services (the queue records instead of running).</summary>
public sealed class ZooPagesTests : PortalComponentTest
{
    static string Fixture(params string[] parts) => Path.Combine([AppContext.BaseDirectory, "fixtures", .. parts]);

    string CopyVae()
    {
        var to = Path.Combine(DataDir, "vae");
        Directory.CreateDirectory(to);
        foreach (var name in new[] { "config.json", "diffusion_pytorch_model.safetensors" }) File.Copy(Fixture("sd", "vae", name), Path.Combine(to, name));
        return to;
    }

    long SeedReadyDataset() => Add(new Dataset
    {
        Name = "reals", Path = Path.Combine(DataDir, "reals"), Layout = "real-fake", Status = DatasetStatus.Ready,
        CreatedAt = DateTime.UtcNow, ScannedAt = DateTime.UtcNow, Images = 4, ManifestPath = "datasets/1/manifest.json.gz", ContentHash = "abc",
    });

    [Fact]
    public void Align_queues_a_device_run_with_the_chosen_settings_and_opens_it()
    {
        SeedReadyDataset();
        CopyVae();
        var cut = Render<Align>();
        cut.Find("#align-vae").Change("vae");
        cut.Find("#align-name").Change("reals-aligned");
        cut.Find("#queue-alignment").Click();

        cut.WaitForAssertion(() => Assert.Single(Queue.Enqueued));
        Assert.True(Queue.Enqueued.TryPeek(out var queued));
        Assert.Equal(JobQueues.DeviceCpu, queued.Queue);
        using var db = Db();
        var run = db.Runs.Single(r => r.Id == queued.RunId);
        Assert.Equal("align", run.Kind);
        Assert.Contains("\"name\":\"reals-aligned\"", run.ConfigJson);
        Assert.Contains("\"posterior\":\"sample\"", run.ConfigJson);
        Assert.EndsWith($"runs/{run.Id}", Services.GetRequiredService<NavigationManager>().Uri);
    }

    [Fact]
    public void Align_reports_a_folder_without_a_VAE_on_its_field()
    {
        SeedReadyDataset();
        Directory.CreateDirectory(Path.Combine(DataDir, "empty"));
        var cut = Render<Align>();
        cut.Find("#align-vae").Change("empty");
        cut.Find("#queue-alignment").Click();
        cut.WaitForAssertion(() => Assert.Contains("has no config.json", cut.Markup));
        Assert.Empty(Queue.Enqueued);
    }

    [Fact]
    public async Task Models_lists_the_zoo_and_the_detail_shows_card_keys_and_cost()
    {
        CopyVae();
        var unet = Path.Combine(DataDir, "unet");
        Directory.CreateDirectory(unet);
        foreach (var name in new[] { "config.json", "diffusion_pytorch_model.safetensors" }) File.Copy(Fixture("sd", "unet", name), Path.Combine(unet, name));
        var zoo = Services.GetRequiredService<ModelZooService>();
        var (vae, _) = await zoo.RegisterAsync("tiny-vae", "vae");
        await zoo.RegisterAsync("tiny-unet", "unet");

        var list = Render<Models>();
        list.WaitForAssertion(() => Assert.Equal(2, list.FindAll("[data-testid=model-row]").Count));
        Assert.Contains("autoencoder", list.Markup);

        var detail = Render<ModelDetail>(p => p.Add(x => x.Id, vae.Id));
        detail.WaitForAssertion(() => Assert.Contains("tiny-vae", detail.Find("[data-testid=model-name]").TextContent));
        Assert.Contains(vae.Sha256!, detail.Find("[data-testid=model-card]").TextContent);
        Assert.Contains("tensors loaded", detail.Find("[data-testid=model-keys]").TextContent);
        Assert.Contains("GMACs", detail.Find("[data-testid=model-macs]").TextContent);
        detail.Find("#compute-cost").Click();
        detail.WaitForAssertion(() => Assert.Contains("generation costs", detail.Find("[data-testid=cost-result]").TextContent), TimeSpan.FromSeconds(30));
    }

    [Fact]
    public void Models_reports_a_path_outside_the_roots_on_its_field()
    {
        var cut = Render<Models>();
        cut.Find("#model-name").Change("etc");
        cut.Find("#model-path").Change("/etc/hostname");
        cut.Find("#register-model").Click();
        cut.WaitForAssertion(() => Assert.Contains("outside the allowed roots", cut.Markup));
        using var db = Db();
        Assert.Empty(db.Weights);
    }
}
