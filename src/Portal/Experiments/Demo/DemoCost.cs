using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Forensics.ML.Generators;
using Forensics.ML.Imaging;
using Forensics.ML.Models.Diffusion;
using Microsoft.EntityFrameworkCore;
using Portal.Infrastructure;
using Portal.Experiments;
using Portal.Datasets;
using Portal.Zoo;
using Portal.Runs;
using Portal.Store;

namespace Portal.Experiments;

/// <summary>
/// The alignment paper's cost claim on the demo's own pair: aligning one 64 px image (vae-nearest encode + decode) vs
/// generating one with ldm_nearest (its DDIM steps of its UNet + one decode), in MACs (the model zoo's count) and in wall
/// time per image measured here (reconstructions of test reals, samples of the generator; one process, this machine).
/// The paper: 2.32 vs 25.2 GMACs, about 10.9x.
/// </summary>
/// <param name="Images">Images timed on each side.</param>
public sealed record DemoCost(ModelCost Macs, double AlignSecondsPerImage, double GenerateSecondsPerImage, int Images)
{
    /// <summary>Images timed per side.</summary>
    public const int TimedImages = 8;

    /// <summary>Generation / alignment wall time.</summary>
    public double TimeRatio => GenerateSecondsPerImage / AlignSecondsPerImage;

    /// <summary>The cost object of the JSON document.</summary>
    public JsonObject ToJson() => new()
    {
        ["alignment_macs"] = Macs.AlignmentMacs, ["generation_macs"] = Macs.GenerationMacs, ["macs_ratio"] = Math.Round(Macs.Ratio, 4),
        ["alignment_seconds_per_image"] = Math.Round(AlignSecondsPerImage, 5), ["generation_seconds_per_image"] = Math.Round(GenerateSecondsPerImage, 5),
        ["seconds_ratio"] = Math.Round(TimeRatio, 4), ["steps"] = Macs.Steps, ["image_size"] = Macs.ImageSize, ["images_timed"] = Images,
    };

    /// <summary>The line that sets the demo's ratio beside the paper's.</summary>
    public const string PaperLine = "Paper (SD 1.x at 256 px): 2.32 vs 25.2 GMACs, 10.9x.";

    /// <summary>The cost table's header: an empty corner, alignment, generation (with its DDIM steps), ratio.</summary>
    public static IReadOnlyList<string> Header(ModelCost macs) =>
        ["", "alignment (vae-nearest encode + decode)", $"generation (ldm_nearest, {macs.Steps.ToString(CultureInfo.InvariantCulture)} DDIM steps + decode)", "ratio"];

    /// <summary>The MACs row: GMACs per image on each side and their ratio.</summary>
    public static IReadOnlyList<string> MacsCells(ModelCost m) =>
        [$"GMACs per {m.ImageSize} px image", G(m.AlignmentMacs), G(m.GenerationMacs), $"{m.Ratio.ToString("0.0", CultureInfo.InvariantCulture)}x"];

    /// <summary>The wall-time row: milliseconds per image on each side and their ratio.</summary>
    public IReadOnlyList<string> TimeCells() =>
        [$"ms per image (wall, {Images} images)", Ms(AlignSecondsPerImage), Ms(GenerateSecondsPerImage), $"{TimeRatio.ToString("0.0", CultureInfo.InvariantCulture)}x"];

    static string G(long macs) => (macs / 1e9).ToString("0.000", CultureInfo.InvariantCulture);
    static string Ms(double seconds) => (1000 * seconds).ToString("0.0", CultureInfo.InvariantCulture);

    /// <summary>The cost table as markdown; a line saying why when it could not be measured.</summary>
    public static string ToMarkdown(DemoCost? c)
    {
        var text = new StringBuilder("### Cost: aligning vs generating one image").AppendLine().AppendLine();
        if (c is null) return text.AppendLine("not measured: the zoo has no vae-nearest or ldm_nearest").ToString();
        static string Row(IEnumerable<string> cells) => "|" + string.Concat(cells.Select(x => x.Length == 0 ? " |" : $" {x} |"));
        text.AppendLine(Row(Header(c.Macs)));
        text.AppendLine("|---|---:|---:|---:|");
        text.AppendLine(Row(MacsCells(c.Macs)));
        text.AppendLine(Row(c.TimeCells()));
        text.AppendLine().AppendLine(PaperLine);
        return text.ToString();
    }

    /// <summary>
    /// The MACs of aligning vs generating one 64 px image (the model zoo's count, no image is run); null when the zoo has no
    /// vae-nearest or ldm_nearest.
    /// </summary>
    public static async Task<ModelCost?> MacsAsync(IDbContextFactory<PortalDb> dbFactory, ModelZooService zoo, CancellationToken ct = default)
    {
        var (vae, ldm) = await ZooPairAsync(dbFactory, ct);
        return vae is null || ldm is null ? null : await zoo.CostAsync(vae.Id, ldm.Id, (int?)null, 64, ct);
    }

    static async Task<(ModelWeights? Vae, ModelWeights? Ldm)> ZooPairAsync(IDbContextFactory<PortalDb> dbFactory, CancellationToken ct)
    {
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        return (await db.Weights.AsNoTracking().SingleOrDefaultAsync(w => w.Name == DemoBenchmark.VaeName, ct),
            await db.Weights.AsNoTracking().SingleOrDefaultAsync(w => w.Name == DemoBenchmark.TrainGenerator, ct));
    }

    /// <summary>Measures the cost; null when the zoo lacks vae-nearest or ldm_nearest (or MiniGenImage's test reals are missing).</summary>
    public static async Task<DemoCost?> MeasureAsync(IServiceProvider services, CancellationToken ct = default)
    {
        var dbFactory = services.GetRequiredService<IDbContextFactory<PortalDb>>();
        var zoo = services.GetRequiredService<ModelZooService>();
        var (vae, ldm) = await ZooPairAsync(dbFactory, ct);
        Dataset? minigen;
        await using (var db = await dbFactory.CreateDbContextAsync(ct))
            minigen = await db.Datasets.AsNoTracking().SingleOrDefaultAsync(d => d.Name == DemoBenchmark.DatasetName && d.Status == DatasetStatus.Ready, ct);
        if (vae is null || ldm is null || minigen is null) return null;
        var macs = await zoo.CostAsync(vae.Id, ldm.Id, (int?)null, 64, ct);
        var reals = Directory.EnumerateFiles(Path.Combine(minigen.Path, DemoBenchmark.TrainGenerator, DemoBenchmark.TestSplit, "nature")).Order(StringComparer.Ordinal).Take(TimedImages).ToList();
        if (reals.Count == 0) return null;
        return await Task.Run(() =>
        {
            using var scope = TorchSharp.torch.NewDisposeScope();
            using var autoencoder = AutoencoderKL.FromPretrained(vae.Path);
            var images = reals.Select(p => ImageDecoder.Decode(p)).ToList();
            using (TorchSharp.torch.no_grad()) autoencoder.Reconstruct(images[0].unsqueeze(0) * 2 - 1, sample: false).Dispose(); // warm-up
            var clock = Stopwatch.StartNew();
            using (TorchSharp.torch.no_grad())
                foreach (var image in images) autoencoder.Reconstruct(image.unsqueeze(0) * 2 - 1, sample: false).Dispose();
            var align = clock.Elapsed.TotalSeconds / images.Count;
            var generator = GeneratorFolder.Load(ldm.Path);
            try
            {
                using (TorchSharp.torch.no_grad()) generator.Sample(0, 0, 1).Dispose(); // warm-up
                clock.Restart();
                using (TorchSharp.torch.no_grad()) generator.Sample(0, 1, images.Count).Dispose();
                var generate = clock.Elapsed.TotalSeconds / images.Count;
                return new DemoCost(macs, align, generate, images.Count);
            }
            finally { (generator as IDisposable)?.Dispose(); }
        }, ct);
    }
}
