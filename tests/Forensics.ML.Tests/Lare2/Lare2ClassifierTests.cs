using Forensics.ML.Lare2;
using Forensics.ML.Models.Clip;
using Forensics.ML.Runtime;
using Forensics.ML.Weights;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;
using Forensics.ML.Tests.Models;

namespace Forensics.ML.Tests.Lare2;

public class Lare2ClassifierTests
{
    private readonly ITestOutputHelper output;

    public Lare2ClassifierTests(ITestOutputHelper output)
    {
        this.output = output;
        Assert.True(TorchRuntime.EnsureLoaded().Loaded, TorchRuntime.Status?.Error);
    }

    static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "fixtures", "lare", name);

    /// <summary>name → shape of a make_fixture.py key listing, in file order; '#' lines are comments.</summary>
    static List<(string Name, long[] Shape)> ReadKeys(string file) =>
        File.ReadLines(Fixture(file))
            .Where(l => l.Length > 0 && !l.StartsWith('#'))
            .Select(l => l.Split('\t'))
            .Select(p => (p[0], p[1].Length == 0 ? Array.Empty<long>() : p[1].Split(',').Select(long.Parse).ToArray()))
            .ToList();

    static double MaxAbsDiff(Tensor a, Tensor b)
    {
        Assert.Equal(a.shape, b.shape);
        using var diff = (a.to_type(ScalarType.Float64) - b.to_type(ScalarType.Float64)).abs().max();
        return diff.item<double>();
    }

    static Lare2Classifier LoadSmall() => Lare2Classifier.Load(Fixture("lare2_small.pth"));

    static StateDict LoadIo() => WeightsFile.Load(Fixture("lare2_small_io.pth"));

    [Fact]
    public void Rn50_state_dict_has_the_authors_names_and_shapes()
    {
        var expected = ReadKeys("lare2_rn50_keys.tsv");
        using var model = new Lare2Classifier(Lare2Options.RN50);
        var actual = model.state_dict();

        Assert.Equal(358, expected.Count);
        Assert.Equal(expected.Count, actual.Count);
        var missing = expected.Where(e => !actual.ContainsKey(e.Name)).Select(e => e.Name).ToList();
        var extra = actual.Keys.Except(expected.Select(e => e.Name)).ToList();
        Assert.True(missing.Count == 0 && extra.Count == 0, $"missing: {string.Join(", ", missing)}; extra: {string.Join(", ", extra)}");
        foreach (var (name, shape) in expected)
            Assert.True(shape.SequenceEqual(actual[name].shape), $"{name}: authors [{string.Join(", ", shape)}], ours [{string.Join(", ", actual[name].shape)}]");

        Assert.Equal([197L, 1024L], actual["attn_pool.positional_embedding"].shape);
        Assert.Equal([8L, 4L, 1L, 1L], actual["conv.weight"].shape);
        foreach (var proj in new[] { "fc_q", "fc_k", "fc_v" })
            Assert.Equal([512L, 1024L], actual[$"attn_pool.attention.{proj}.weight"].shape);
        Assert.Equal([1024L, 512L], actual["attn_pool.attention.fc_o.weight"].shape);
        Assert.Equal([2L, 3072L], actual["fc.weight"].shape);
        Assert.Equal([128L, 4L], actual["channel_align.fc.0.weight"].shape);
        Assert.Equal([1024L, 128L], actual["channel_align.fc.2.weight"].shape);
        Assert.Equal(3072, model.Options.HeadInputs);
        Assert.Equal(14, model.Options.Egre.GridSize);
        Assert.Equal(1024, model.Options.Egre.ModelDim);
        Assert.Equal(19, actual.Keys.Count(k => !k.StartsWith(Lare2Classifier.BackbonePrefix, StringComparison.Ordinal)));

        // Their checkpoints also carry CLIP's text tower; those names, and only those, are recognised as ignorable.
        var textTower = ReadKeys("lare2_rn50_text_tower.tsv");
        Assert.Equal(150, textTower.Count);
        Assert.All(textTower, t => Assert.True(Lare2Classifier.IsTextTower(t.Name), t.Name));
        Assert.All(expected, e => Assert.False(Lare2Classifier.IsTextTower(e.Name), e.Name));
    }

    [Fact]
    public void Authors_checkpoint_with_module_prefixes_loads_strictly_with_inferred_options()
    {
        using var model = Lare2Classifier.Load(Fixture("lare2_small.pth"), out var report);
        Assert.True(report.Report.IsClean, report.Report.Describe());
        Assert.Equal(model.state_dict().Count, report.Report.Loaded);
        Assert.Equal(142, report.Report.Loaded);
        // CLIP's text tower of the fixture: 6 top-level tensors and 12 for its one residual attention block.
        Assert.Equal(18, report.IgnoredTextTower.Count);
        Assert.Contains("clip_model.transformer.resblocks.0.attn.in_proj_weight", report.IgnoredTextTower);
        Assert.Contains("clip_model.logit_scale", report.IgnoredTextTower);
        Assert.False(model.training);

        var o = model.Options;
        Assert.Equal(new ModifiedResNetOptions { Layers = [1, 1, 1, 1], Width = 8, Heads = 4, OutputDim = 32, InputResolution = 64 }, o.Backbone);
        Assert.Equal(128, o.Egre.ModelDim);
        Assert.Equal(8, o.Egre.Heads);
        Assert.Equal(8, o.Egre.KeyDim);
        Assert.Equal(8, o.Egre.ValueDim);
        Assert.Equal(4, o.Egre.LareChannels);
        Assert.Equal(16, o.Egre.Hidden);
        Assert.Equal(4, o.Egre.GridSize);
        Assert.Equal(32 + 2 * 128, o.HeadInputs);
    }

    [Fact]
    public void Logits_and_branches_match_the_authors_code()
    {
        using var io = LoadIo();
        using var model = LoadSmall();
        using var _ = no_grad();
        using (var features = model.ForwardFeatures(io["image"], io["lare"]))
        {
            foreach (var (name, actual) in new[] { ("embedding", features.Embedding), ("layer3", features.Layer3),
                         ("spatial", features.Spatial), ("channel", features.Channel) })
            {
                var diff = MaxAbsDiff(actual, io[name]);
                output.WriteLine($"{name}: max abs difference {diff:g3}");
                Assert.True(diff < 1e-4, $"{name}: max abs difference {diff:g3} from the authors' modules");
            }
        }
        using var logits = model.forward(io["image"], io["lare"]);
        var logitDiff = MaxAbsDiff(logits, io["logits"]);
        output.WriteLine($"logits: max abs difference {logitDiff:g3}");
        Assert.True(logitDiff < 1e-4, $"logits: max abs difference {logitDiff:g3}");
        // The reference is not degenerate: images get clearly different logits.
        Assert.True(MaxAbsDiff(io["logits"][0], io["logits"][1]) > 0.5);

        using var score = model.Score(io["image"], io["lare"]);
        using var expectedScore = io["logits"].softmax(1).select(1, 1);
        Assert.Equal([3L], score.shape);
        Assert.True(MaxAbsDiff(score, expectedScore) < 1e-5);
    }

    [Theory]
    [InlineData(EgreAblation.NoSpatial, "logits_no_spatial")]
    [InlineData(EgreAblation.NoChannel, "logits_no_channel")]
    [InlineData(EgreAblation.ZeroLare, "logits_zero_lare")]
    public void Each_ablation_changes_the_output_as_documented(EgreAblation ablation, string expectedName)
    {
        using var io = LoadIo();
        using var model = LoadSmall();
        using var _ = no_grad();
        using var full = model.forward(io["image"], io["lare"]);
        model.Ablation = ablation;
        using var ablated = model.forward(io["image"], io["lare"]);
        var diff = MaxAbsDiff(ablated, io[expectedName]);
        output.WriteLine($"{ablation}: max abs difference {diff:g3}, change from the full model {MaxAbsDiff(ablated, full):g3}");
        Assert.True(diff < 1e-4, $"{ablation}: max abs difference {diff:g3} from {expectedName}");
        Assert.True(MaxAbsDiff(ablated, full) > 0.1, $"{ablation} left the logits unchanged");

        // The head keeps its full input: the switched-off branch is zeros of its shape.
        using var features = model.ForwardFeatures(io["image"], io["lare"]);
        Assert.Equal([3L, 128L], features.Spatial.shape);
        Assert.Equal([3L, 128L], features.Channel.shape);
        if (ablation.HasFlag(EgreAblation.NoSpatial)) Assert.Equal(0.0, features.Spatial.abs().max().item<float>());
        if (ablation.HasFlag(EgreAblation.NoChannel)) Assert.Equal(0.0, features.Channel.abs().max().item<float>());
        if (ablation.HasFlag(EgreAblation.ZeroLare))
        {
            // Zero LaRE: every gate is sigmoid(0) = 0.5 (the gate's linears have no bias).
            using var pooled = features.Layer3.mean([2, 3]);
            Assert.True(MaxAbsDiff(features.Channel, pooled * 0.5) < 1e-6);
        }
    }

    [Fact]
    public void The_lare_map_steers_the_attention_and_the_gate()
    {
        using var io = LoadIo();
        using var model = LoadSmall();
        using var _ = no_grad();
        var image = io["image"];
        var lare = io["lare"];
        using var zero = zeros_like(lare);
        using var constant = full_like(lare, 0.7);

        using var withLare = model.ForwardFeatures(image, lare);
        using var withZero = model.ForwardFeatures(image, zero);
        using var withConstant = model.ForwardFeatures(image, constant);
        Assert.True(MaxAbsDiff(withLare.Spatial, withZero.Spatial) > 0.1, "the LaRE map did not change the spatial branch");
        Assert.True(MaxAbsDiff(withLare.Channel, withZero.Channel) > 1e-3, "the LaRE map did not change the channel branch");
        Assert.Equal(0.0, MaxAbsDiff(withLare.Embedding, withZero.Embedding));

        // A spatially constant map adds the same logit to every token of a head, which the softmax ignores: the
        // spatial branch equals the zero-map one, while the channel gate still sees the map's mean.
        Assert.True(MaxAbsDiff(withConstant.Spatial, withZero.Spatial) < 1e-5);
        Assert.True(MaxAbsDiff(withConstant.Channel, withZero.Channel) > 1e-3);

        // With one branch switched off, the LaRE map still reaches the logits through the other.
        foreach (var ablation in new[] { EgreAblation.NoChannel, EgreAblation.NoSpatial })
        {
            model.Ablation = ablation;
            using var a = model.forward(image, lare);
            using var b = model.forward(image, zero);
            Assert.True(MaxAbsDiff(a, b) > 1e-3, $"under {ablation} the LaRE map no longer changes the logits");
        }
        model.Ablation = EgreAblation.NoChannel | EgreAblation.NoSpatial;
        using var c = model.forward(image, lare);
        using var d = model.forward(image, zero);
        Assert.Equal(0.0, MaxAbsDiff(c, d));
    }

    [Fact]
    public void One_image_gives_the_same_logits_as_in_a_batch()
    {
        // The authors' .squeeze() calls drop the batch dimension of a single image (their forward then fails); ours keeps it.
        using var io = LoadIo();
        using var model = LoadSmall();
        using var _ = no_grad();
        using var image = io["image"].narrow(0, 1, 1);
        using var lare = io["lare"].narrow(0, 1, 1);
        using var logits = model.forward(image, lare);
        Assert.Equal([1L, 2L], logits.shape);
        Assert.True(MaxAbsDiff(logits, io["logits"].narrow(0, 1, 1)) < 1e-4);
    }

    [Fact]
    public void Save_writes_the_same_names_and_loads_back_to_the_same_logits()
    {
        using var io = LoadIo();
        using var model = LoadSmall();
        var path = Path.Combine(Path.GetTempPath(), $"lare2_{Guid.NewGuid():N}.safetensors");
        try
        {
            model.Save(path);
            using (var saved = WeightsFile.Load(path))
                Assert.Equal(model.state_dict().Keys, saved.Names);
            using var reloaded = Lare2Classifier.Load(path, out var report);
            Assert.True(report.Report.IsClean);
            Assert.Empty(report.IgnoredTextTower);
            Assert.Equal(model.Options.Backbone, reloaded.Options.Backbone);
            Assert.Equal(model.Options.Egre, reloaded.Options.Egre);
            using var _ = no_grad();
            using var a = model.forward(io["image"], io["lare"]);
            using var b = reloaded.forward(io["image"], io["lare"]);
            Assert.Equal(0.0, MaxAbsDiff(a, b));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Small_options_sized_from_a_width_16_tower_build_and_run()
    {
        var backbone = new ModifiedResNetOptions { Layers = [1, 1, 1, 1], Width = 16, Heads = 8, OutputDim = 64, InputResolution = 64 };
        var options = Lare2Options.For(backbone, keyDim: 8, valueDim: 8, hidden: 16);
        Assert.Equal(256, options.Egre.ModelDim);
        Assert.Equal(4, options.Egre.GridSize);
        Assert.Equal(64 + 512, options.HeadInputs);
        using var model = new Lare2Classifier(options);
        model.eval();
        using var _ = no_grad();
        using var image = randn(2, 3, 64, 64);
        using var lare = rand(2, 4, 32, 32);
        using var logits = model.forward(image, lare);
        Assert.Equal([2L, 2L], logits.shape);
        Assert.Equal([17L, 256L], model.state_dict()["attn_pool.positional_embedding"].shape);

        var mismatch = Assert.Throws<ArgumentException>(() => new Lare2Classifier(options with { Egre = options.Egre with { GridSize = 5 } }));
        Assert.Contains("GridSize 5", mismatch.Message);
    }

    [Fact]
    public void Rn50_egre_sizes_derive_from_the_tower()
    {
        Assert.Equal(EgreOptions.RN50, EgreOptions.For(ModifiedResNetOptions.RN50));
        Assert.Equal(14, EgreOptions.Layer3Grid(224));
        Assert.Equal(197, EgreOptions.RN50.Tokens);
        Assert.Equal(0.1, EgreOptions.RN50.Dropout);
        Assert.Equal(0.1, EgreOptions.RN50.AttentionDropout);
    }

    [Fact]
    public void Dropout_acts_in_training_only()
    {
        using var io = LoadIo();
        using var model = LoadSmall();
        using var _ = no_grad();
        model.train();
        // Only EGRE's two dropouts are stochastic; BatchNorm in train mode is deterministic for a fixed batch.
        using var a = model.ForwardFeatures(io["image"], io["lare"]);
        using var b = model.ForwardFeatures(io["image"], io["lare"]);
        Assert.True(MaxAbsDiff(a.Spatial, b.Spatial) > 1e-4, "dropout did not act in training mode");
        Assert.Equal(0.0, MaxAbsDiff(a.Channel, b.Channel));
        model.eval();
        using var c = model.ForwardFeatures(io["image"], io["lare"]);
        using var d = model.ForwardFeatures(io["image"], io["lare"]);
        Assert.Equal(0.0, MaxAbsDiff(c.Spatial, d.Spatial));
    }

    [Theory]
    [InlineData(new long[] { 3, 3, 32, 32 }, "[B, 4, h, w]")]
    [InlineData(new long[] { 3, 4, 32 }, "[B, 4, h, w]")]
    [InlineData(new long[] { 2, 4, 32, 32 }, "3 images but 2 LaRE maps")]
    public void A_wrong_lare_shape_is_a_clear_error(long[] shape, string message)
    {
        using var io = LoadIo();
        using var model = LoadSmall();
        using var lare = rand(shape);
        var e = Assert.Throws<ArgumentException>(() => model.forward(io["image"], lare));
        Assert.Contains(message, e.Message);
        Assert.Equal("lare", e.ParamName);
    }

    [Fact]
    public void An_integer_lare_map_is_a_clear_error()
    {
        using var io = LoadIo();
        using var model = LoadSmall();
        using var lare = ones([3, 4, 32, 32], ScalarType.Int64);
        var e = Assert.Throws<ArgumentException>(() => model.forward(io["image"], lare));
        Assert.Contains("floating-point", e.Message);
    }

    [Fact]
    public void A_checkpoint_that_does_not_fit_names_the_file_and_the_keys()
    {
        var path = Path.Combine(Path.GetTempPath(), $"lare2_bad_{Guid.NewGuid():N}.safetensors");
        try
        {
            void WriteModified(Action<StateDict> edit)
            {
                using var weights = WeightsFile.Load(Fixture("lare2_small.pth"));
                edit(weights);
                SafeTensors.Save(path, weights);
            }

            WriteModified(w => { w.Remove("attn_pool.layer_norm.bias", out var t); t!.Dispose(); w.Add("attn_pool.extra.weight", zeros(3)); });
            var e = Assert.Throws<InvalidDataException>(() => Lare2Classifier.Load(path));
            Assert.Contains(path, e.Message);
            Assert.Contains("attn_pool.layer_norm.bias", e.Message);
            Assert.Contains("attn_pool.extra.weight", e.Message);

            WriteModified(w => { w.Remove("fc.weight", out var t); t!.Dispose(); w.Add("fc.weight", zeros(2, 100)); });
            e = Assert.Throws<InvalidDataException>(() => Lare2Classifier.Load(path));
            Assert.Contains("fc.weight", e.Message);

            WriteModified(w => { w.Remove("conv.weight", out var t); t!.Dispose(); });
            e = Assert.Throws<InvalidDataException>(() => Lare2Classifier.Load(path));
            Assert.Contains("'conv.weight'", e.Message);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
