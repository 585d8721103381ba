using System.Globalization;
using Forensics.ML.Data;
using Forensics.ML.Detectors;
using Forensics.ML.Evaluation;
using Forensics.ML.Tests.Datasets;
using Forensics.ML.Tests.Evaluation;
using Xunit.Abstractions;

namespace Forensics.ML.Tests.Detectors;

/// <summary>The files of fixtures/detectors (made by make_fixtures.py with PyTorch 1.13).</summary>
public static class PackageFixtures
{
    public static string Dir => Path.Combine(AppContext.BaseDirectory, "fixtures", "detectors");
    public static string File(string name) => Path.Combine(Dir, name);
    public static string Card(string name) => Path.Combine(Dir, "cards", name);

    /// <summary>The model file of each output kind, per format.</summary>
    public static (string Arch, string File) Model(string output, string format) => (output, format) switch
    {
        ("one", "onnx") => ("onnx", File("tinycnn_dynamic.onnx")),
        ("one", _) => ("torchscript", File("tinycnn_traced.pt")),
        ("two", _) => ("torchscript", File("tinycnn_scripted.pt")),
        ("prob", _) => ("torchscript", File("tinycnn_prob_traced.pt")),
        _ => throw new ArgumentException(output),
    };

    /// <summary>PyTorch's scores: case, model, card, image -> (logit, score).</summary>
    public static IReadOnlyList<(string Case, string Model, string Card, string Image, double Logit, double Score)> Expected() =>
        System.IO.File.ReadAllLines(File("expected_scores.csv")).Skip(1).Where(l => l.Length > 0).Select(l => l.Split(','))
            .Select(f => (f[0], f[1], f[2], f[3], double.Parse(f[4], CultureInfo.InvariantCulture), double.Parse(f[5], CultureInfo.InvariantCulture)))
            .ToList();

    /// <summary>A 0_real/1_fake folder of the fixture images (first half real).</summary>
    public static string BuildData(string root)
    {
        var images = Directory.GetFiles(Path.Combine(Dir, "images"), "*.png").Order(StringComparer.Ordinal).ToList();
        for (var i = 0; i < images.Count; i++)
        {
            var folder = Path.Combine(root, i < images.Count / 2 ? "0_real" : "1_fake");
            Directory.CreateDirectory(folder);
            System.IO.File.Copy(images[i], Path.Combine(folder, Path.GetFileName(images[i])));
        }
        return root;
    }
}

public sealed class DetectorPackageTests(ITestOutputHelper output) : IDisposable
{
    private readonly TempDir temp = Init();

    private static TempDir Init()
    {
        EvalFixtures.EnsureTorch();
        return new TempDir();
    }

    public void Dispose() => temp.Dispose();

    public static TheoryData<string, string, string> Cases()
    {
        var data = new TheoryData<string, string, string>();
        foreach (var policy in new[] { "none", "resize_bilinear", "resize_bicubic", "resize_nearest", "center_crop", "pad", "bgr_255" })
        {
            data.Add(policy, "one", "torchscript");
            data.Add(policy, "one", "onnx");
            data.Add(policy, "two", "torchscript");
            data.Add(policy, "prob", "torchscript");
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Scores_equal_pytorchs_on_odd_sized_images_under_every_size_policy(string policy, string outputKind, string format)
    {
        var (arch, file) = PackageFixtures.Model(outputKind, format);
        var cardName = $"{policy}.{outputKind}.card.json";
        var expected = PackageFixtures.Expected().Where(e => e.Card == cardName).ToDictionary(e => e.Image);
        Assert.Equal(6, expected.Count);
        using var detector = DetectorCheckpoint.Load(file, arch, null, PackageFixtures.Card(cardName));
        var set = EvaluationSet.Scan(PackageFixtures.BuildData(temp.Path));
        foreach (var batching in new[] { EvalBatching.Single, EvalBatching.BySize })
        {
            var result = DetectorEvaluator.Score(detector, set.Images, new EvalOptions { Batching = batching, MaxBatch = 4, Workers = 1 });
            Assert.Empty(result.Skipped);
            Assert.Equal(6, result.Scores.Count);
            var worst = 0.0;
            foreach (var s in result.Scores)
            {
                var e = expected[Path.GetFileName(s.RelativePath)];
                worst = Math.Max(worst, Math.Max(Math.Abs(e.Logit - s.Logit), Math.Abs(e.Score - s.Score)));
                Assert.True(Math.Abs(e.Score - s.Score) < 2e-6, $"{cardName} {format} {batching} {s.RelativePath}: score {s.Score:R} vs PyTorch {e.Score:R}");
                Assert.True(Math.Abs(e.Logit - s.Logit) < 2e-5 * Math.Max(1, Math.Abs(e.Logit)),
                    $"{cardName} {format} {batching} {s.RelativePath}: logit {s.Logit:R} vs PyTorch {e.Logit:R}");
            }
            output.WriteLine($"{cardName} {format} {batching}: max |diff| {worst:E2}");
        }
    }

    [Fact]
    public void A_fixed_shape_onnx_model_takes_batches_of_its_size_and_scores_as_pytorch()
    {
        var expected = PackageFixtures.Expected().Where(e => e.Case == "fixed").ToDictionary(e => e.Image);
        using var detector = DetectorCheckpoint.Load(PackageFixtures.File("tinycnn_fixed.onnx"), "onnx", null, PackageFixtures.Card("fixed.card.json"));
        Assert.Equal((2, 32, 32), (detector.Network.DeclaredInput.Batch, detector.Network.DeclaredInput.Height, detector.Network.DeclaredInput.Width));
        var set = EvaluationSet.Scan(PackageFixtures.BuildData(temp.Path));
        // Six images in batches of up to 2; Single batching still feeds the model pairs (filled with a copy).
        foreach (var batching in new[] { EvalBatching.Single, EvalBatching.BySize })
        {
            var result = DetectorEvaluator.Score(detector, set.Images, new EvalOptions { Batching = batching, MaxBatch = 16, Workers = 1 });
            foreach (var s in result.Scores)
                Assert.True(Math.Abs(expected[Path.GetFileName(s.RelativePath)].Score - s.Score) < 2e-6, $"{batching} {s.RelativePath}");
        }
    }

    [Fact]
    public void A_fixed_shape_onnx_model_without_a_card_takes_its_shape_from_the_file()
    {
        using var detector = DetectorPackage.Load(PackageFixtures.File("tinycnn_fixed.onnx"), DetectorArchitectures.Onnx, null, TorchSharp.torch.CPU);
        Assert.Equal(CardBatching.Fixed, detector.Card.Batching);
        Assert.Equal(2, detector.Card.BatchSize);
        Assert.Equal((32, 32), detector.Card.Size);
    }

    [Fact]
    public void A_card_that_contradicts_a_fixed_onnx_shape_is_refused_naming_the_field()
    {
        var e = Assert.Throws<DetectorCardException>(() =>
            DetectorCheckpoint.Load(PackageFixtures.File("tinycnn_fixed.onnx"), "onnx", null, PackageFixtures.Card("none.one.card.json")));
        Assert.Equal("batching", e.Field);
        var card = temp["fixed_wrong_size.card.json"];
        File.WriteAllText(card, """{"input": {"sizePolicy": "resize", "size": 40}, "batching": {"mode": "fixed", "size": 2}}""");
        var size = Assert.Throws<DetectorCardException>(() => DetectorCheckpoint.Load(PackageFixtures.File("tinycnn_fixed.onnx"), "onnx", null, card));
        Assert.Equal("input.size", size.Field);
        Assert.Contains("32x32", size.Message);
    }

    [Fact]
    public void The_probe_refuses_an_output_the_card_does_not_describe()
    {
        // A two-class network under a one-logit card.
        var e = Assert.Throws<DetectorCardException>(() =>
            DetectorCheckpoint.Load(PackageFixtures.File("tinycnn_scripted.pt"), "torchscript", null, PackageFixtures.Card("none.one.card.json")));
        Assert.Equal("output.kind", e.Field);
        Assert.Contains("gives 2", e.Message);
        // Two outputs and no card: which one is "fake" must be said.
        var none = Assert.Throws<DetectorCardException>(() =>
            DetectorPackage.Load(PackageFixtures.File("tinycnn_scripted.pt"), DetectorArchitectures.TorchScript, null, TorchSharp.torch.CPU));
        Assert.Equal("output", none.Field);
        // Logits declared as probabilities: on [0,255] inputs without normalisation the logits leave [0, 1].
        var card = temp["prob_of_logits.card.json"];
        File.WriteAllText(card, """{"input": {"valueRange": [0, 255], "mean": [0, 0, 0], "std": [1, 1, 1]}, "output": {"kind": "probability"}}""");
        var prob = Assert.Throws<DetectorCardException>(() => DetectorCheckpoint.Load(PackageFixtures.File("tinycnn_traced.pt"), "torchscript", null, card));
        Assert.Equal("output.kind", prob.Field);
    }

    [Fact]
    public void A_file_that_is_not_torchscript_or_onnx_is_refused_with_its_path()
    {
        var bogus = temp["bogus.pt"];
        File.WriteAllBytes(bogus, new byte[] { 1, 2, 3, 4, 5 });
        var e = Assert.Throws<DetectorCheckpointException>(() => DetectorCheckpoint.Load(bogus, "torchscript"));
        Assert.Contains("bogus.pt", e.Message);
        Assert.Contains("TorchScript", e.Message);
        var onnx = temp["bogus.onnx"];
        File.WriteAllBytes(onnx, new byte[] { 1, 2, 3, 4, 5 });
        var o = Assert.Throws<DetectorCheckpointException>(() => DetectorCheckpoint.Load(onnx, "onnx"));
        Assert.Contains("bogus.onnx", o.Message);
        // A state dict is not a TorchScript file either.
        Assert.Throws<DetectorCheckpointException>(() => DetectorCheckpoint.Load(EvalFixtures.Checkpoint, "torchscript"));
    }

    [Fact]
    public void Forensics_eval_scores_a_torchscript_package_as_pytorch_and_refuses_a_card_for_a_state_dict()
    {
        var data = PackageFixtures.BuildData(temp["data"]);
        var (exit, _, err) = EvalFixtures.RunCli("--arch", "torchscript", "--checkpoint", PackageFixtures.File("tinycnn_scripted.pt"),
            "--card", PackageFixtures.Card("pad.two.card.json"), "--data", data, "--out", temp["out"], "--bootstrap", "0");
        Assert.True(exit == 0, err);
        Assert.Contains("card", err);
        var expected = PackageFixtures.Expected().Where(e => e.Card == "pad.two.card.json").ToDictionary(e => e.Image, e => e.Score);
        var rows = File.ReadAllLines(Path.Combine(temp["out"], "scores.csv")).Skip(1).Select(l => l.Split(',')).ToList();
        Assert.Equal(6, rows.Count);
        foreach (var f in rows)
            Assert.True(Math.Abs(expected[Path.GetFileName(f[0])] - double.Parse(f[2], CultureInfo.InvariantCulture)) < 2e-6, string.Join(",", f));

        var (bad, _, badErr) = EvalFixtures.RunCli("--checkpoint", EvalFixtures.Checkpoint, "--card", PackageFixtures.Card("pad.two.card.json"),
            "--data", data, "--out", temp["out2"]);
        Assert.NotEqual(0, bad);
        Assert.Contains("--card is only used with --arch torchscript or onnx", badErr);
        var (wrong, _, wrongErr) = EvalFixtures.RunCli("--arch", "onnx", "--checkpoint", PackageFixtures.File("tinycnn_fixed.onnx"),
            "--card", PackageFixtures.Card("pad.one.card.json"), "--data", data, "--out", temp["out3"]);
        Assert.NotEqual(0, wrong);
        Assert.Contains("batching", wrongErr);
    }

    [Fact]
    public void A_card_beside_the_model_is_found_by_name()
    {
        var model = temp["mine.pt"];
        File.Copy(PackageFixtures.File("tinycnn_scripted.pt"), model);
        File.Copy(PackageFixtures.Card("center_crop.two.card.json"), temp["mine.card.json"]);
        using var detector = DetectorCheckpoint.Load(model, "torchscript");
        Assert.Equal(temp["mine.card.json"], detector.CardPath);
        Assert.Equal(OutputKind.TwoClass, detector.Card.Output);
        Assert.Equal(0, detector.Card.FakeIndex);
        Assert.Equal(SizePolicy.CenterCrop, detector.Card.SizePolicy);
    }
}

public sealed class DetectorCardTests
{
    [Theory]
    [InlineData("""{"input": {"sizePolicy": "squash", "size": 3}}""", "input.sizePolicy")]
    [InlineData("""{"input": {"sizePolicy": "resize"}}""", "input.size")]
    [InlineData("""{"input": {"sizePolicy": "resize", "size": [0, 3]}}""", "input.size[0]")]
    [InlineData("""{"input": {"sizePolicy": "resize", "size": 8, "interpolation": "lanczos"}}""", "input.interpolation")]
    [InlineData("""{"input": {"valueRange": [0, 2]}}""", "input.valueRange")]
    [InlineData("""{"input": {"mean": [0.5, 0.5]}}""", "input.mean")]
    [InlineData("""{"input": {"std": [0.5, 0, 0.5]}}""", "input.std")]
    [InlineData("""{"input": {"channelOrder": "grb"}}""", "input.channelOrder")]
    [InlineData("""{"input": {"meen": [0, 0, 0]}}""", "input.meen")]
    [InlineData("""{"batching": {"mode": "fixed"}}""", "batching.size")]
    [InlineData("""{"batching": {"mode": "some"}}""", "batching.mode")]
    [InlineData("""{"output": {"kind": "two-class"}}""", "output.fakeIndex")]
    [InlineData("""{"output": {"kind": "two-class", "fakeIndex": 2}}""", "output.fakeIndex")]
    [InlineData("""{"output": {"kind": "logits"}}""", "output.kind")]
    [InlineData("""{"output": {}}""", "output.kind")]
    [InlineData("""{"inputs": {}}""", "inputs")]
    [InlineData("""[1, 2]""", "(root)")]
    [InlineData("""{"input": """, "(json)")]
    public void A_bad_card_is_refused_naming_the_field(string json, string field)
    {
        var e = Assert.Throws<DetectorCardException>(() => DetectorCard.Parse(json, "card.json"));
        Assert.Equal(field, e.Field);
        Assert.StartsWith($"card.json: {field}: ", e.Message);
    }

    [Fact]
    public void A_card_round_trips_through_its_json()
    {
        var card = DetectorCard.Parse("""
            {"input": {"sizePolicy": "center-crop", "size": [224, 200], "interpolation": "bicubic", "valueRange": [0, 255],
                       "mean": [1, 2, 3], "std": [4, 5, 6], "channelOrder": "bgr"},
             "batching": {"mode": "fixed", "size": 8}, "output": {"kind": "two-class", "fakeIndex": 0}}
            """);
        Assert.Equal(SizePolicy.CenterCrop, card.SizePolicy);
        Assert.Equal((224, 200), card.Size);
        Assert.Equal(255, card.ValueRangeMax);
        Assert.True(card.Bgr);
        Assert.Equal(8, card.BatchSize);
        var again = DetectorCard.Parse(card.ToJson());
        Assert.Equal(card.ToJson(), again.ToJson());
        Assert.Equal(card.Mean, again.Mean);
    }
}
