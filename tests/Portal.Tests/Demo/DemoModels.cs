using System.Text.Json.Nodes;
using Forensics.ML.Generators;
using Forensics.ML.Runtime;
using Portal.Tests.Support;
using SkiaSharp;

namespace Portal.Tests.Demo;

/// <summary>
/// A models folder like the repository's, in miniature: demo/photos (three small photos, one per split, with their
/// catalogue), a tiny VAE, a tiny latent diffusion model (also copied as a second one) and a tiny DCGAN, each trained
/// for two or three steps, and a demo.json with 4/2/2 fakes per split. Trained once for the demo tests.
/// </summary>
public sealed class DemoModels : IDisposable
{
    readonly TempDir temp = new();

    /// <summary>The models folder (Portal:Demo:ModelsDir).</summary>
    public string ModelsDir => temp.Sub("models");
    public string DemoDir => Path.Combine(ModelsDir, "demo");
    public static readonly string[] Generators = ["ldm_nearest", "ldm_transpose", "dcgan"];
    public static readonly string[] ZooNames = ["vae-nearest", "ldm_nearest", "ldm_transpose", "dcgan"];

    public DemoModels()
    {
        TorchRuntime.EnsureLoaded();
        var threads = TorchSharp.torch.get_num_threads();
        // Tiny models gain nothing from a second thread; two spinning threads on a busy machine make each step slower.
        TorchSharp.torch.set_num_threads(1);
        try
        {
            WritePhotos(Path.Combine(DemoDir, "photos"));
            var data = temp.Sub("training-images");
            for (var i = 0; i < 8; i++) ImageFolders.Write(Path.Combine(data, $"img{i}.png"), ImageFolders.Encode(64, 64, SKEncodedImageFormat.Png, 100 + i));

            var vae = Path.Combine(DemoDir, "vae-nearest");
            VaeTrainer.Run(new VaeTrainOptions(data, vae)
            {
                BlockOutChannels = [8, 16, 16], NormNumGroups = 8, Steps = 2, BatchSize = 4, Seed = 7, ProgressEvery = 0, CheckpointEvery = 2, Source = "test",
            }, TextWriter.Null);
            var text = Path.Combine(AppContext.BaseDirectory, "fixtures", "sd");
            var ldm = Path.Combine(DemoDir, "ldm_nearest");
            LdmTrainer.Run(new LdmTrainOptions(data, vae, text, ldm)
            {
                Name = "ldm_nearest", BlockOutChannels = [16, 32], NormNumGroups = 8, AttentionHeads = 2, Steps = 2, BatchSize = 4,
                InferenceSteps = 2, Seed = 3, ProgressEvery = 0, Source = "test",
            }, TextWriter.Null);
            // The second latent diffusion model is a copy: its generator.json still says ldm_nearest, and the build names it after demo.json.
            CopyFolder(ldm, Path.Combine(DemoDir, "ldm_transpose"));
            GanTrainer.Run(new GanTrainOptions(data, Path.Combine(DemoDir, "dcgan"))
            {
                Model = new DcganConfig { LatentDim = 16, GeneratorWidth = 8, DiscriminatorWidth = 8, Resolution = 64 },
                Steps = 2, BatchSize = 4, Seed = 5, ProgressEvery = 0, Source = "test",
            }, TextWriter.Null);
        }
        finally
        {
            TorchSharp.torch.set_num_threads(threads);
        }
        WriteManifest(DemoManifestJson());
    }

    /// <summary>The demo.json of these models: every generator, 4/2/2 fakes per split, the VAE and the generators in the zoo.</summary>
    public static JsonObject DemoManifestJson() => new()
    {
        ["photos"] = "photos",
        ["dataset"] = new JsonObject
        {
            ["patchSize"] = 64, ["seed"] = 11, ["batchSize"] = 3,
            ["counts"] = new JsonObject { ["train"] = 4, ["val"] = 2, ["test"] = 2 },
        },
        ["generators"] = new JsonArray(Generators.Select(g => (JsonNode)new JsonObject { ["name"] = g, ["folder"] = g }).ToArray()),
        ["zoo"] = new JsonArray(
            new JsonObject { ["name"] = "vae-nearest", ["kind"] = "autoencoder", ["architecture"] = "autoencoder-kl", ["folder"] = "vae-nearest" },
            new JsonObject { ["name"] = "ldm_nearest", ["kind"] = "generator", ["architecture"] = "ldm", ["folder"] = "ldm_nearest" },
            new JsonObject { ["name"] = "ldm_transpose", ["kind"] = "generator", ["architecture"] = "ldm", ["folder"] = "ldm_transpose" },
            new JsonObject { ["name"] = "dcgan", ["kind"] = "generator", ["architecture"] = "dcgan", ["folder"] = "dcgan" }),
    };

    public void WriteManifest(JsonNode json) => File.WriteAllText(Path.Combine(DemoDir, "demo.json"), json.ToJsonString());

    /// <summary>Three 256 x 128 noisy photos (8 patches each: one split per photo) and their catalogue.</summary>
    static void WritePhotos(string dir)
    {
        var photos = new JsonArray();
        var splits = new[] { "train", "val", "test" };
        for (var i = 0; i < splits.Length; i++)
        {
            var file = $"photo_{splits[i]}.png";
            ImageFolders.Write(Path.Combine(dir, file), ImageFolders.Encode(256, 128, SKEncodedImageFormat.Png, 40 + i));
            photos.Add(new JsonObject
            {
                ["file"] = file, ["package"] = "test", ["version"] = "1", ["path"] = $"/test/{file}", ["sha256"] = new string('a', 64),
                ["license"] = "CC0-1.0", ["copyright"] = "test", ["downscale"] = 1, ["category"] = "object", ["split"] = splits[i],
            });
        }
        File.WriteAllText(Path.Combine(dir, "photos.json"), new JsonObject { ["name"] = "test photos", ["photos"] = photos }.ToJsonString());
    }

    static void CopyFolder(string from, string to)
    {
        foreach (var file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(to, Path.GetRelativePath(from, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
    }

    public void Dispose() => temp.Dispose();
}
