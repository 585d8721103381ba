using Bunit;
using Hangfire;
using Hangfire.InMemory;
using Microsoft.AspNetCore.Components;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using MudBlazor.Services;
using Portal.Infrastructure;
using Portal.Experiments;
using Portal.Datasets;
using Portal.Zoo;
using Portal.Runs;
using Portal.Store;
using Portal.Tests.Components;
using Portal.Tests.Support;
using SkiaSharp;

namespace Portal.Tests.Demo;

/// <summary>
/// The portal's services over a store that holds a tiny MiniGenImage (3 generators x train/val/test, a few 64x64 PNGs,
/// registered as "minigenimage", and its ldm_nearest folder as "minigenimage-ldm_nearest") and the demo's zoo entries (a tiny VAE as vae-nearest, an SD folder as ldm_nearest, a CLIP
/// row); the queue records runs instead of running them. Like <see cref="PortalComponentTest"/>, with the demo's jobs and services
/// registered before the provider is built.
/// </summary>
public abstract class DemoBenchmarkTestBase : PortalComponentTest
{
    protected const int PerCell = 2;

    protected long DatasetId { get; }
    /// <summary>ldm_nearest's folder registered alone, as the demo registers it before aligning.</summary>
    protected long AlignSourceId { get; }

    protected DemoBenchmarkTestBase()
    {
        var root = Path.Combine(DataDir, "minigenimage");
        var seed = 0;
        var subsets = new List<DatasetSubset>();
        foreach (var g in DemoBenchmark.Generators)
            foreach (var split in new[] { "train", "val", "test" })
                foreach (var (folder, label) in new[] { ("ai", "fake"), ("nature", "real") })
                {
                    for (var i = 0; i < PerCell; i++)
                        ImageFolders.Write(Path.Combine(root, g, split, folder, $"{g}_{split}_{i}.png"), ImageFolders.Encode(64, 64, SKEncodedImageFormat.Png, seed++));
                    subsets.Add(new DatasetSubset { Generator = g, Split = split, Label = label, Count = PerCell });
                }
        DatasetId = Add(new Dataset
        {
            Name = DemoBenchmark.DatasetName, Path = root, Layout = "genimage", Status = DatasetStatus.Ready, CreatedAt = DateTime.UtcNow,
            Images = subsets.Sum(s => s.Count), ManifestPath = "datasets/1/manifest.json.gz", Subsets = subsets,
        });
        AlignSourceId = Add(new Dataset
        {
            Name = DemoBenchmark.AlignSourceName, Path = Path.Combine(root, "ldm_nearest"), Layout = "genimage", Status = DatasetStatus.Ready,
            CreatedAt = DateTime.UtcNow, Images = 6 * PerCell, ManifestPath = "datasets/2/manifest.json.gz",
            Subsets = subsets.Where(x => x.Generator == "ldm_nearest").Select(x => new DatasetSubset { Generator = x.Generator, Split = x.Split, Label = x.Label, Count = x.Count }).ToList(),
        });
        var vae = Path.Combine(DataDir, "vae-nearest");
        Directory.CreateDirectory(vae);
        foreach (var name in new[] { "config.json", "diffusion_pytorch_model.safetensors" })
            File.Copy(Path.Combine(AppContext.BaseDirectory, "fixtures", "sd", "vae", name), Path.Combine(vae, name));
        var sd = Path.Combine(DataDir, "ldm_nearest");
        foreach (var part in new[] { "unet", "vae", "text_encoder", "tokenizer", "scheduler" }) Directory.CreateDirectory(Path.Combine(sd, part));
        Add(Weights("vae-nearest", ModelZooService.Autoencoder, vae));
        Add(Weights("ldm_nearest", ModelZooService.Unet, sd));
        Add(Weights("clip-rn-test", ModelZooService.Clip, Path.Combine(DataDir, "clip.safetensors")));
    }

    static ModelWeights Weights(string name, string kind, string path) => new()
    {
        Name = name, Kind = kind, Architecture = kind, Path = path, Format = "safetensors", CreatedAt = DateTime.UtcNow, Sha256 = "0", Card = name,
    };

    protected DemoBenchmark Demo => Services.GetRequiredService<DemoBenchmark>();

    protected async Task<List<Run>> RunsAsync()
    {
        await using var db = Db();
        return await db.Runs.AsNoTracking().OrderBy(r => r.Id).ToListAsync();
    }
}
