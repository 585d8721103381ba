using System.Globalization;
using System.Text.Json.Nodes;
using Forensics.ML.Imaging;
using Forensics.ML.Lare2;
using Forensics.ML.Metrics;
using Forensics.ML.Runtime;
using Forensics.ML.Training;
using static TorchSharp.torch;
using Forensics.ML.Tests.Evaluation;

namespace Forensics.ML.Tests.Lare2;

/// <summary>`forensics eval --arch lare2` end to end.</summary>
public sealed class Lare2EvalTests : IDisposable
{
    private readonly string root = Path.Combine(Path.GetTempPath(), "lare2eval-" + Guid.NewGuid().ToString("N"));

    public Lare2EvalTests() => Assert.True(TorchRuntime.EnsureLoaded().Loaded);

    public void Dispose()
    {
        if (Directory.Exists(root)) Directory.Delete(root, recursive: true);
    }

    // A saved small model and a data folder of odd sizes (some smaller than the crop: padded) with their maps.
    private (string Checkpoint, string Data, string Lare) Setup()
    {
        var data = Path.Combine(root, "data");
        var lare = Path.Combine(root, "lare");
        Lare2Fixtures.Write(data, lare, perClass: 3, size: 80, seed: 11);
        Lare2Fixtures.Write(data, lare, perClass: 1, size: 70, seed: 12, height: 50, prefix: "s");
        var checkpoint = Path.Combine(root, "model.safetensors");
        using var model = new Lare2Classifier(Lare2Fixtures.Small());
        model.Save(checkpoint);
        return (checkpoint, data, lare);
    }

    [Fact]
    public void Scores_csv_equals_direct_score_calls_and_a_missing_map_is_skipped_and_listed()
    {
        var (checkpoint, data, lare) = Setup();
        File.Delete(Path.Combine(lare, "1_fake", "f001.safetensors"));
        var output = Path.Combine(root, "out");
        var (exit, stdout, stderr) = EvalFixtures.RunCli("--checkpoint", checkpoint, "--arch", "lare2", "--lare", lare, "--data", data,
            "--out", output, "--crop", "64", "--bootstrap", "0", "--workers", "1");
        Assert.True(exit == 0, stderr + stdout);

        var table = ScoresCsv.Read(Path.Combine(output, "scores.csv"));
        var scored = table.Rows.ToDictionary(r => r.Path!, r => r);
        Assert.DoesNotContain("1_fake/f001.png", scored.Keys);
        Assert.Equal(7, scored.Count);

        using var model = Lare2Classifier.Load(checkpoint);
        var maps = new LareMapFolder(lare);
        foreach (var (path, row) in scored)
        {
            using var scope = NewDisposeScope();
            var image = ImageDecoder.Decode(Path.Combine(data, path));
            var input = Lare2Transforms.TestInput(image, 64).unsqueeze(0);
            var map = maps.Read(path).unsqueeze(0);
            double expected;
            using (no_grad()) expected = model.Score(input, map).item<float>();
            // The CLI batches equal-size images (the default): equal to batch 1 up to float rounding (about 3e-8 here).
            Assert.True(Math.Abs(expected - row.Score) < 1e-6, $"{path}: {row.Score:R} vs batch 1's {expected:R}");
            Assert.Equal(path.Contains("1_fake") ? 1 : 0, row.Label);
        }

        var metrics = JsonNode.Parse(File.ReadAllText(Path.Combine(output, "metrics.json")))!;
        Assert.Equal("lare2", metrics["checkpoint"]!["arch"]!.GetValue<string>());
        Assert.Equal(Path.GetFullPath(lare), metrics["lare"]!.GetValue<string>());
        Assert.Equal(64, metrics["input_crop"]!.GetValue<int>());
        Assert.Equal(16, metrics["checkpoint"]!["base_width"]!.GetValue<int>());
        var skipped = metrics["skipped"]!.AsArray();
        var entry = Assert.Single(skipped);
        Assert.Equal("1_fake/f001.png", entry!["path"]!.GetValue<string>());
        Assert.Contains("no LaRE map at", entry["reason"]!.GetValue<string>());
        Assert.Contains("f001.safetensors", entry["reason"]!.GetValue<string>());
        Assert.Equal(7, metrics["n_scored"]!.GetValue<int>());
    }

    [Fact]
    public void A_malformed_map_is_skipped_with_its_reason_and_batches_give_the_same_scores()
    {
        var (checkpoint, data, lare) = Setup();
        File.WriteAllText(Path.Combine(lare, "0_real", "r002.safetensors"), "not a safetensors file");
        using (var wrong = zeros(3, 8, 8))
            Forensics.ML.Weights.SafeTensors.Save(Path.Combine(lare, "1_fake", "f002.safetensors"), [("lare", wrong)]);
        var single = Path.Combine(root, "single");
        var batched = Path.Combine(root, "batched");
        var common = new[] { "--checkpoint", checkpoint, "--arch", "lare2", "--lare", lare, "--data", data, "--crop", "64", "--bootstrap", "0" };
        var (exit1, _, err1) = EvalFixtures.RunCli([.. common, "--out", single, "--batching", "single"]);
        var (exit2, _, err2) = EvalFixtures.RunCli([.. common, "--out", batched, "--batching", "size", "--batch", "4"]);
        Assert.True(exit1 == 0, err1);
        Assert.True(exit2 == 0, err2);
        var metrics = JsonNode.Parse(File.ReadAllText(Path.Combine(single, "metrics.json")))!;
        var reasons = metrics["skipped"]!.AsArray().ToDictionary(s => s!["path"]!.GetValue<string>(), s => s!["reason"]!.GetValue<string>());
        Assert.Equal(["0_real/r002.png", "1_fake/f002.png"], reasons.Keys.Order().ToArray());
        Assert.Contains("r002.safetensors", reasons["0_real/r002.png"]);
        Assert.Contains("[4, h, w]", reasons["1_fake/f002.png"]);
        var a = ScoresCsv.Read(Path.Combine(single, "scores.csv")).Rows;
        var b = ScoresCsv.Read(Path.Combine(batched, "scores.csv")).Rows;
        Assert.Equal(a.Select(r => r.Path), b.Select(r => r.Path));
        // Equal up to float rounding (batched matmuls may sum in another order; about 3e-8 here).
        foreach (var (x, y) in a.Zip(b)) Assert.True(Math.Abs(x.Score - y.Score) < 1e-6, $"{x.Path}: {x.Score:R} vs {y.Score:R}");
    }

    [Fact]
    public void A_checkpoint_of_another_architecture_is_refused_naming_keys()
    {
        var (_, data, lare) = Setup();
        var (exit, _, stderr) = EvalFixtures.RunCli("--checkpoint", EvalFixtures.Checkpoint, "--arch", "lare2", "--lare", lare, "--data", data,
            "--out", Path.Combine(root, "out"), "--crop", "64");
        Assert.Equal(2, exit);
        Assert.Contains("not a LaRE² checkpoint", stderr);
        Assert.Contains("clip_model.visual.", stderr);
        Assert.Contains("conv1.weight", stderr);
        Assert.False(File.Exists(Path.Combine(root, "out", "scores.csv")));
    }

    [Fact]
    public void Lare2_needs_its_map_folder_and_a_matching_crop()
    {
        var (checkpoint, data, lare) = Setup();
        var (exit, _, stderr) = EvalFixtures.RunCli("--checkpoint", checkpoint, "--arch", "lare2", "--data", data, "--out", Path.Combine(root, "o1"));
        Assert.Equal(2, exit);
        Assert.Contains("--lare", stderr);
        (exit, _, stderr) = EvalFixtures.RunCli("--checkpoint", checkpoint, "--arch", "lare2", "--lare", lare, "--data", data, "--out", Path.Combine(root, "o2"));
        Assert.Equal(2, exit);
        Assert.Contains("64x64", stderr);
        (exit, _, stderr) = EvalFixtures.RunCli("--checkpoint", checkpoint, "--lare", lare, "--data", data, "--out", Path.Combine(root, "o3"));
        Assert.Equal(2, exit);
        Assert.Contains("--arch lare2", stderr);
    }
}
