using Forensics.ML.Data;
using Forensics.ML.Datasets;
using Forensics.ML.Detectors;
using Forensics.ML.Runtime;
using Forensics.ML.Training;
using Forensics.ML.Weights;
using TorchSharp;
using Xunit.Abstractions;
using static Forensics.ML.Tests.Training.TrainingFixtures;
using static TorchSharp.torch;

namespace Forensics.ML.Tests.Training;

/// <summary>
/// <see cref="TorchScriptTrainer"/>: a TorchScript detector made by PyTorch (fixtures/detectors/make_trainable_fixtures.py)
/// trained with res50nodown's recipe, loop and checkpoints, saved back as TorchScript; and the modules it refuses.
/// </summary>
public class TorchScriptTrainerTests
{
    private readonly ITestOutputHelper log;

    public TorchScriptTrainerTests(ITestOutputHelper log)
    {
        this.log = log;
        Assert.True(TorchRuntime.EnsureLoaded().Loaded, TorchRuntime.Status?.Error);
        torch.set_num_threads(1);
    }

    private static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "fixtures", "detectors", name);

    private static readonly string Scripted = Fixture("trainable_scripted.pt");

    private static TrainOptions Options(int epochs) => new()
    {
        LearningRate = 1e-2,
        PairsPerBatch = 8,
        MaxEpochs = epochs,
        CropSize = 24,
        Augmentation = AugmentationChoice.None,
        ValidationBatchSize = 16,
        Workers = 1,
    };

    private static ImageSet Scan(string dir) => ImageSet.FromManifest(DatasetScanner.Scan(dir, new ScanOptions { Parallelism = 2 }));

    private static TrainingData Synced(TempFolder dir, int pairs = 24)
    {
        WriteAligned(dir["train"], pairs, 32, seed: 3);
        WriteUnpaired(dir["val"], 8, 32, seed: 4);
        return TrainingData.Paired(PairedSet.FromFolders(dir["train"], dir["train"]), Scan(dir["val"]));
    }

    private static StateDict Checkpoint(string dir) => SafeTensors.Load(Path.Combine(dir, TrainingCheckpoint.FileName), upcastHalf: false);

    /// <summary>The fake-vs-real logits of a detector on a fixed batch.</summary>
    private static float[] Logits(Detector detector, Tensor batch)
    {
        using var _ = no_grad();
        using var output = detector.Forward(batch);
        using var logits = detector.FakeLogit(output);
        return logits.data<float>().ToArray();
    }

    [Fact]
    public void A_scripted_detector_learns_in_synced_mode_and_is_saved_back_as_torchscript_that_scores_as_trained()
    {
        using var dir = new TempFolder();
        WriteAligned(dir["train"], 64, 32, seed: 3);
        WriteUnpaired(dir["val"], 16, 32, seed: 4);
        var data = TrainingData.Paired(PairedSet.FromFolders(dir["train"], dir["train"]), Scan(dir["val"]));
        using var cts = new CancellationTokenSource();
        // Stop once the detector is clearly good: the test is about learning, not about running every epoch.
        RecordingObserver? observer = null;
        observer = new RecordingObserver { AfterEpoch = _ => { if (observer!.Epochs[^1].Validation.BalancedAcc >= 0.95) cts.Cancel(); } };

        try { TorchScriptTrainer.Train(Options(30) with { PairsPerBatch = 16 }, Scripted, null, data, dir["out"], observer, cts.Token); }
        catch (OperationCanceledException) { }
        var result = TorchScriptTrainer.Train(Options(observer.Epochs.Count) with { PairsPerBatch = 16 }, Scripted, null, data, dir["out"]);

        var losses = observer.Epochs.Select(e => e.Loss).ToList();
        log.WriteLine("epoch losses: " + string.Join(", ", losses.Select(l => l.ToString("F4"))) + "; val balanced acc: " +
                      string.Join(", ", observer.Epochs.Select(e => e.Validation.BalancedAcc.ToString("F4"))));
        Assert.Equal(observer.Epochs.Count, result.EpochsRun);
        Assert.True(losses.Skip(1).Min() < losses[0] - 0.1, $"the loss should fall: {string.Join(", ", losses)}");
        Assert.True(result.BestBalancedAcc > 0.85, $"best validation balanced accuracy {result.BestBalancedAcc:F4}");
        Assert.Contains(observer.Logs, l => l.Contains("TorchScript detector") && l.Contains("trainable tensor(s)"));
        Assert.DoesNotContain(observer.Logs, l => l.Contains("frozen"));
        Assert.Equal(Path.Combine(dir["out"], "best.pt"), result.BestWeightsPath);
        Assert.True(File.Exists(Path.Combine(dir["out"], "best.card.json")));

        // The saved module is TorchScript that the evaluation path loads (its card beside it), with trained weights.
        using var initial = DetectorCheckpoint.Load(Scripted, "torchscript");
        using var best = DetectorCheckpoint.Load(result.BestWeightsPath, "torchscript");
        Assert.Equal("torchscript", best.Architecture.Name);
        Assert.Equal(Path.Combine(dir["out"], "best.card.json"), best.CardPath);
        Assert.Equal(initial.Card.ToJson(), best.Card.ToJson());
        var before = ((TorchScriptNetwork)initial.Network).Module.state_dict();
        var after = ((TorchScriptNetwork)best.Network).Module.state_dict();
        Assert.Equal(before.Keys.Order(), after.Keys.Order());
        Assert.False(Same(before["conv1.weight"], after["conv1.weight"]), "conv1 should have trained");
        Assert.False(Same(before["bn1.running_mean"], after["bn1.running_mean"]), "scripted batch norm should update its statistics in training");
        using var checkpoint = Checkpoint(dir["out"]);
        Assert.Contains("adam.conv1.weight.exp_avg", checkpoint.Names);
        Assert.DoesNotContain("rng.dropout", checkpoint.Names);
    }

    [Fact]
    public void The_saved_module_scores_like_the_trained_weights_in_memory()
    {
        using var dir = new TempFolder();
        var data = Synced(dir, pairs: 12);
        // One epoch: the best module and the checkpoint hold the same weights.
        var result = TorchScriptTrainer.Train(Options(1), Scripted, null, data, dir["out"]);
        Assert.Equal(1, result.BestEpoch);

        using var trained = DetectorCheckpoint.Load(Scripted, "torchscript");
        using (var checkpoint = Checkpoint(dir["out"]))
        using (var model = new StateDict())
        {
            foreach (var name in checkpoint.Names.Where(n => n.StartsWith("model.", StringComparison.Ordinal)).ToList())
                if (checkpoint.Remove(name, out var t)) model.Add(name["model.".Length..], t);
            Assert.True(StateDictLoader.Load(((TorchScriptNetwork)trained.Network).Module, model, strict: true).IsClean);
        }
        using var saved = DetectorCheckpoint.Load(result.BestWeightsPath, "torchscript");
        using var generator = new Generator(5);
        using var batch = randn([4, 3, 29, 37], generator: generator);
        var inMemory = Logits(trained, batch);
        var reloaded = Logits(saved, batch);
        log.WriteLine("logits in memory: " + string.Join(", ", inMemory) + "; reloaded: " + string.Join(", ", reloaded));
        Assert.Equal(inMemory, reloaded);
        using var untouched = DetectorCheckpoint.Load(Scripted, "torchscript");
        Assert.NotEqual(Logits(untouched, batch), reloaded);
    }

    [Fact]
    public void Resuming_after_a_cancel_reaches_bit_identical_weights_and_optimizer_state()
    {
        using var dir = new TempFolder();
        var data = Synced(dir, pairs: 16);
        // The reference chain (synced) and a schedule that drops the lr within the run; the module has dropout.
        var options = Options(4) with
        {
            Augmentation = AugmentationChoice.Reference, Augment = AugmentationOptions.ForCrop(24), Patience = 1, MinDelta = 0.3,
            MinLearningRate = 1e-4,
        };
        var a = new RecordingObserver();
        var resultA = TorchScriptTrainer.Train(options, Scripted, null, data, dir["a"], a);

        using var cts = new CancellationTokenSource();
        var b1 = new RecordingObserver { AfterEpoch = e => { if (e == 2) cts.Cancel(); } };
        Assert.ThrowsAny<OperationCanceledException>(() => TorchScriptTrainer.Train(options, Scripted, null, data, dir["b"], b1, cts.Token));
        var b2 = new RecordingObserver();
        var resultB = TorchScriptTrainer.Train(options, Scripted, null, data, dir["b"], b2);

        Assert.Contains(b2.Logs, l => l.StartsWith("Resuming from", StringComparison.Ordinal) && l.Contains("2 epoch(s) done"));
        Assert.Equal(resultA with { BestWeightsPath = "", CheckpointPath = "", ResumedFromEpoch = 0 },
            resultB with { BestWeightsPath = "", CheckpointPath = "", ResumedFromEpoch = 0 });
        Assert.Equal(a.Steps.Select(s => s.Loss), b1.Steps.Concat(b2.Steps).Select(s => s.Loss));
        Assert.True(a.Epochs.Select(e => e.Lr).Distinct().Count() > 1, "the schedule should have dropped the lr during the run");
        using var ca = Checkpoint(dir["a"]);
        using var cb = Checkpoint(dir["b"]);
        Assert.Equal(ca.Names, cb.Names);
        foreach (var name in ca.Names)
            Assert.True(Same(ca[name], cb[name]), $"{name} differs between the uninterrupted and the resumed run");
        Assert.Equal(ca.Metadata, cb.Metadata);
        using var bestA = DetectorCheckpoint.Load(resultA.BestWeightsPath, "torchscript");
        using var bestB = DetectorCheckpoint.Load(resultB.BestWeightsPath, "torchscript");
        var sa = ((TorchScriptNetwork)bestA.Network).Module.state_dict();
        var sb = ((TorchScriptNetwork)bestB.Network).Module.state_dict();
        foreach (var (name, t) in sa) Assert.True(Same(t, sb[name]), $"best {name} differs");

        // Another module in the same folder is not resumed.
        var other = Record.Exception(() => TorchScriptTrainer.Train(options, Fixture("tinycnn_traced.pt"), Fixture("cards/none.one.card.json"), data, dir["a"]));
        Assert.IsType<InvalidDataException>(other);
        Assert.Contains("other training options", other.Message);
    }

    [Fact]
    public void A_two_class_module_trains_on_the_fake_index_logit_and_an_eval_mode_trace_trains_with_frozen_batch_norm()
    {
        using var dir = new TempFolder();
        var data = Synced(dir, pairs: 8);
        var two = TorchScriptTrainer.Train(Options(1), Fixture("tinycnn_scripted.pt"), Fixture("cards/none.two.card.json"), data, dir["two"]);
        Assert.Equal(1, two.EpochsRun);
        using (var saved = DetectorCheckpoint.Load(two.BestWeightsPath, "torchscript"))
        {
            Assert.Equal(OutputKind.TwoClass, saved.Card.Output);
            Assert.Equal(0, saved.Card.FakeIndex);
        }

        var observer = new RecordingObserver();
        var traced = TorchScriptTrainer.Train(Options(2), Fixture("tinycnn_traced.pt"), Fixture("cards/none.one.card.json"), data, dir["traced"], observer);
        Assert.Contains(observer.Logs, l => l.Contains("batch norm does not follow train()") && l.Contains("traced in eval mode"));
        var check = TorchScriptTrainer.Check(Fixture("tinycnn_traced.pt"), Fixture("cards/none.one.card.json"), 16);
        Assert.True(check.FrozenBatchNorm);
        Assert.False(TorchScriptTrainer.Check(Scripted, null, 16).FrozenBatchNorm);
        using var initial = DetectorCheckpoint.Load(Fixture("tinycnn_traced.pt"), "torchscript", null, Fixture("cards/none.one.card.json"));
        using var trained = DetectorCheckpoint.Load(traced.BestWeightsPath, "torchscript");
        var before = ((TorchScriptNetwork)initial.Network).Module.state_dict();
        var after = ((TorchScriptNetwork)trained.Network).Module.state_dict();
        Assert.True(Same(before["bn1.running_mean"], after["bn1.running_mean"]), "frozen batch norm keeps its exported statistics");
        Assert.False(Same(before["conv1.weight"], after["conv1.weight"]), "the weights still train");
    }

    [Theory]
    [InlineData("tinycnn_prob_traced.pt", "cards/none.prob.card.json", "training needs logits")]
    [InlineData("trainable_frozen.pt", null, "no trainable parameters")]
    [InlineData("trainable_traced_train.pt", null, "traced in train mode")]
    [InlineData("tinycnn_dynamic.onnx", null, "is not a TorchScript file")]
    public void Modules_that_cannot_be_trained_are_refused_naming_the_file_and_why(string model, string? card, string expected)
    {
        using var dir = new TempFolder();
        var data = Synced(dir, pairs: 4);
        var path = Fixture(model);
        var e = Record.Exception(() => TorchScriptTrainer.Train(Options(1), path, card is null ? null : Fixture(card), data, dir["out"]));
        Assert.NotNull(e);
        Assert.True(e is InvalidDataException or IOException, e.ToString());
        Assert.Contains(path, e.Message);
        Assert.Contains(expected, e.Message);
        Assert.False(File.Exists(Path.Combine(dir["out"], TrainingCheckpoint.FileName)));

        var fixedCard = dir["fixed.card.json"];
        File.WriteAllText(fixedCard, """{"batching": {"mode": "fixed", "size": 3}, "output": {"kind": "one-logit"}}""");
        var batching = Assert.Throws<InvalidDataException>(() => TorchScriptTrainer.Check(Scripted, fixedCard, 16));
        Assert.Contains("training batch of 16 images", batching.Message);
        Assert.Throws<ArgumentException>(() => TorchScriptTrainer.Train(Options(1) with { InitWeights = Scripted }, Scripted, null, data, dir["x"]));
    }
}
