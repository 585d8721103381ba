using System.Diagnostics;
using Forensics.ML.Data;
using Forensics.ML.Datasets;
using Forensics.ML.Imaging;
using Forensics.ML.Models;
using Forensics.ML.Runtime;
using Forensics.ML.Training;
using Forensics.ML.Weights;
using TorchSharp;
using Xunit.Abstractions;
using static Forensics.ML.Tests.Training.TrainingFixtures;
using static TorchSharp.torch;

namespace Forensics.ML.Tests.Training;

public class DetectorTrainerTests
{
    private readonly ITestOutputHelper log;

    public DetectorTrainerTests(ITestOutputHelper log)
    {
        this.log = log;
        Assert.True(TorchRuntime.EnsureLoaded().Loaded, TorchRuntime.Status?.Error);
        // One intra-op thread: fixed for the determinism checks, and far faster than spinning OpenMP threads on a busy
        // 2-core machine (the setting belongs to the calling thread, which runs the training loop).
        torch.set_num_threads(1);
    }

    // A miniature res50nodown (stride-1 stem, dropout 0.5, one logit) with the recipe's loss, optimiser and schedule.
    private static TrainOptions Tiny(int epochs) => new()
    {
        Arch = ResNetOptions.Res50NoDown().Small(8, [1, 1, 1, 1]),
        LearningRate = 3e-3,
        PairsPerBatch = 16,
        MaxEpochs = epochs,
        CropSize = 24,
        ResizeSize = 32,
        Augmentation = AugmentationChoice.None,
        ValidationBatchSize = 32,
        Workers = 1,
    };

    private static ImageSet Scan(string dir) => ImageSet.FromManifest(DatasetScanner.Scan(dir, new ScanOptions { Parallelism = 2 }));

    private static StateDict Checkpoint(string dir) => SafeTensors.Load(Path.Combine(dir, TrainingCheckpoint.FileName), upcastHalf: false);

    [Fact]
    public void Small_res50nodown_learns_a_faint_checkerboard_artefact_from_scratch()
    {
        using var dir = new TempFolder();
        WriteUnpaired(dir["train"], 96, 32, seed: 1);
        WriteUnpaired(dir["val"], 32, 32, seed: 2);
        var validation = Scan(dir["val"]);
        var data = TrainingData.Unpaired(Scan(dir["train"]), validation);
        using var cts = new CancellationTokenSource();
        // Stop as soon as the detector is clearly good: the test is about learning, not about running every epoch.
        RecordingObserver? stopping = null;
        stopping = new RecordingObserver { AfterEpoch = _ => { if (stopping!.Epochs[^1].Validation.BalancedAcc >= 0.97) cts.Cancel(); } };
        var watch = Stopwatch.StartNew();

        try { DetectorTrainer.Train(Tiny(15) with { Mode = PairMode.Independent }, data, dir["out"], stopping, cts.Token); }
        catch (OperationCanceledException) { }

        foreach (var e in stopping.Epochs)
            log.WriteLine($"epoch {e.Epoch}: loss {e.Loss:F4} balanced {e.Validation.BalancedAcc:F4} real {e.Validation.RealAcc:F3} fake {e.Validation.FakeAcc:F3} AP {e.Validation.Ap:F3}");
        log.WriteLine($"{watch.Elapsed.TotalSeconds:F1} s, {stopping.Steps.Count} steps");
        Assert.Equal(64, stopping.Epochs[0].Validation.Images);
        Assert.True(stopping.Epochs.Max(e => e.Validation.BalancedAcc) > 0.9,
            $"best balanced accuracy {stopping.Epochs.Max(e => e.Validation.BalancedAcc):F3}");

        // best.safetensors holds torchvision-named weights that alone reproduce the accuracy on the validation crops.
        using var model = new ResNet(Tiny(1).Arch);
        using (var best = SafeTensors.Load(Path.Combine(dir["out"], TrainingCheckpoint.BestFileName)))
            StateDictLoader.Load(model, best, strict: true);
        model.eval();
        int realRight = 0, fakeRight = 0;
        var samples = new TrainingSamples(Tiny(1));
        using (no_grad())
            foreach (var s in validation)
            {
                using var x = samples.LoadValidation(s, default);
                using var batch = x.unsqueeze(0);
                using var logit = model.forward(batch);
                var fake = logit.item<float>() > 0;
                if (s.Label == ImageSample.FakeLabel && fake) fakeRight++;
                if (s.Label == ImageSample.RealLabel && !fake) realRight++;
            }
        var balanced = (realRight / 32.0 + fakeRight / 32.0) / 2;
        Assert.True(balanced > 0.9, $"best.safetensors scores balanced accuracy {balanced:F3}");
        var bestEpoch = stopping.Epochs.Where(e => e.IsBest).Last();
        Assert.Equal(bestEpoch.Validation.BalancedAcc, balanced, 1e-9);
    }

    [Fact]
    public void Resuming_after_a_cancel_reaches_bit_identical_weights_optimizer_and_rng_state()
    {
        using var dir = new TempFolder();
        WriteAligned(dir["train"], 24, 32, seed: 3);
        WriteUnpaired(dir["val"], 8, 32, seed: 4);
        var data = TrainingData.Paired(PairedSet.FromFolders(dir["train"], dir["train"]), Scan(dir["val"]));
        // The full reference chain (synced), and a schedule that drops the lr and stops within the run: the patience
        // counter, lr and best score must survive the resume too.
        var options = Tiny(5) with
        {
            Mode = PairMode.Synced, PairsPerBatch = 8, Augmentation = AugmentationChoice.Reference,
            LearningRate = 1e-3, Patience = 1, MinDelta = 0.3, MinLearningRate = 1e-5,
        };

        var a = new RecordingObserver();
        var resultA = DetectorTrainer.Train(options, data, dir["a"], a);

        using var cts = new CancellationTokenSource();
        var b1 = new RecordingObserver { AfterEpoch = e => { if (e == 2) cts.Cancel(); } };
        Assert.ThrowsAny<OperationCanceledException>(() => DetectorTrainer.Train(options, data, dir["b"], b1, cts.Token));
        Assert.Equal(2, b1.Epochs.Count);
        Assert.Equal(2, TrainingCheckpoint.ReadInfo(Path.Combine(dir["b"], TrainingCheckpoint.FileName)).Epoch);
        var b2 = new RecordingObserver();
        var resultB = DetectorTrainer.Train(options, data, dir["b"], b2);

        Assert.Contains(b2.Logs, l => l.StartsWith("Resuming from", StringComparison.Ordinal) && l.Contains("2 epoch(s) done"));
        // Every epoch logs where its steps spent their time, data wait included.
        Assert.Equal(a.Epochs.Count, a.Logs.Count(l => l.StartsWith("Epoch ", StringComparison.Ordinal) && l.Contains(" step profile: ") &&
            l.Contains("data wait") && l.Contains("forward") && l.Contains("backward") && l.Contains("optimizer")));
        Assert.Equal(2, resultB.ResumedFromEpoch);
        Assert.Equal(resultA with { BestWeightsPath = "", CheckpointPath = "", ResumedFromEpoch = 0 },
            resultB with { BestWeightsPath = "", CheckpointPath = "", ResumedFromEpoch = 0 });
        Assert.Equal(a.Steps.Select(s => s.Loss), b1.Steps.Concat(b2.Steps).Select(s => s.Loss));
        Assert.Equal(a.Epochs.Select(e => (e.Epoch, e.Lr, e.IsBest)), b1.Epochs.Concat(b2.Epochs).Select(e => (e.Epoch, e.Lr, e.IsBest)));
        Assert.True(a.Epochs.Select(e => e.Lr).Distinct().Count() > 1, "the schedule should have dropped the lr during the run");

        using var ca = Checkpoint(dir["a"]);
        using var cb = Checkpoint(dir["b"]);
        Assert.Equal(ca.Names, cb.Names);
        Assert.Contains("model.conv1.weight", ca.Names);
        Assert.Contains("adam.fc.weight.exp_avg_sq", ca.Names);
        Assert.Contains("rng.dropout", ca.Names);
        foreach (var name in ca.Names)
            Assert.True(Same(ca[name], cb[name]), $"{name} differs between the uninterrupted and the resumed run");
        Assert.Equal(ca.Metadata, cb.Metadata);
        using var bestA = SafeTensors.Load(resultA.BestWeightsPath);
        using var bestB = SafeTensors.Load(resultB.BestWeightsPath);
        foreach (var name in bestA.Names) Assert.True(Same(bestA[name], bestB[name]), $"best {name} differs");
        Assert.False(File.Exists(Path.Combine(dir["b"], TrainingCheckpoint.FileName + ".tmp")));

        // A finished run is not trained again.
        var again = new RecordingObserver();
        var resultC = DetectorTrainer.Train(options, data, dir["a"], again);
        Assert.Empty(again.Steps);
        Assert.Equal(resultA.EpochsRun, resultC.EpochsRun);
    }

    [Fact]
    public void Synced_pairs_get_identical_augmentation_and_unsynced_pairs_do_not()
    {
        using var dir = new TempFolder();
        // Identical files on both sides: any difference between the two outputs can only come from the augmentation draw.
        Directory.CreateDirectory(dir["set/0_real"]);
        Directory.CreateDirectory(dir["set/1_fake"]);
        for (var i = 0; i < 6; i++)
        {
            using var image = Texture((ulong)(50 + i), 40);
            ImageEncoder.SavePng(image, dir[$"set/0_real/p{i}.png"]);
            File.Copy(dir[$"set/0_real/p{i}.png"], dir[$"set/1_fake/p{i}.png"]);
        }
        var pairs = PairedSet.FromFolders(dir["set"], dir["set"]);
        var samples = new TrainingSamples(Tiny(1) with { Augmentation = AugmentationChoice.Reference, ResizeSize = 48 });

        int EqualPairs(PairMode mode)
        {
            var plan = new PairSampler(pairs, new PairSamplerOptions { PairsPerBatch = 6, Mode = mode, Seed = 17 }).Plan(1);
            var drawn = plan.SelectMany(b => b.Samples).ToList();
            var equal = 0;
            for (var k = 0; k < drawn.Count; k += 2)
            {
                Assert.Equal(drawn[k].Sample.PairKey, drawn[k + 1].Sample.PairKey);
                using var real = samples.LoadTraining(drawn[k].Sample, drawn[k].Context);
                using var fake = samples.LoadTraining(drawn[k + 1].Sample, drawn[k + 1].Context);
                Assert.Equal([3L, 24, 24], real.shape);
                if (Same(real, fake)) equal++;
            }
            return equal;
        }

        Assert.Equal(6, EqualPairs(PairMode.Synced));
        Assert.Equal(0, EqualPairs(PairMode.Unsynced));
    }

    [Fact]
    public void A_corrupt_training_image_is_skipped_counted_and_reported()
    {
        using var dir = new TempFolder();
        WriteUnpaired(dir["train"], 8, 32, seed: 5);
        WriteUnpaired(dir["val"], 4, 32, seed: 6);
        var train = Scan(dir["train"]);
        // Corrupted after the scan (the scanner would have left it out): the loader must cope.
        File.WriteAllBytes(dir["train/0_real/r003.png"], "this is not a PNG file"u8.ToArray());
        var observer = new RecordingObserver();

        var result = DetectorTrainer.Train(Tiny(2) with { Mode = PairMode.Independent, PairsPerBatch = 4 },
            TrainingData.Unpaired(train, Scan(dir["val"])), dir["out"], observer);

        Assert.Equal(2, result.EpochsRun);
        Assert.Equal(2, result.SkippedImages); // drawn once per epoch
        Assert.Contains(observer.Logs, l => l.Contains("Skipped 1 unreadable") && l.Contains("r003.png"));
        Assert.Equal(2, observer.Epochs.Count);
        Assert.True(File.Exists(result.BestWeightsPath));
    }

    [Fact]
    public void Full_image_validation_scores_every_image_at_its_own_size()
    {
        using var dir = new TempFolder();
        WriteUnpaired(dir["train"], 4, 32, seed: 9);
        WriteUnpaired(dir["val/a"], 2, 28, seed: 10);
        WriteUnpaired(dir["val/b"], 3, 40, seed: 11);
        var validation = new ImageSet(Scan(dir["val/a"]).Concat(Scan(dir["val/b"])));
        var observer = new RecordingObserver();

        DetectorTrainer.Train(Tiny(1) with { Mode = PairMode.Independent, PairsPerBatch = 4, Validation = ValidationInput.FullImage },
            TrainingData.Unpaired(Scan(dir["train"]), validation), dir["out"], observer);

        Assert.Equal(10, observer.Epochs.Single().Validation.Images);
    }

    [Fact]
    public void Bad_data_and_changed_options_are_refused_with_clear_messages()
    {
        using var dir = new TempFolder();
        WriteAligned(dir["train"], 4, 32, seed: 7);
        WriteUnpaired(dir["val"], 2, 32, seed: 8);
        var train = Scan(dir["train"]);
        var val = Scan(dir["val"]);

        var synced = Assert.Throws<ArgumentException>(() => DetectorTrainer.Train(Tiny(1), TrainingData.Unpaired(train, val), dir["x"]));
        Assert.Contains("needs (real, reconstruction) pairs", synced.Message);
        var noFakes = Assert.Throws<ArgumentException>(() => DetectorTrainer.Train(Tiny(1) with { Mode = PairMode.Independent },
            TrainingData.Unpaired(train, val.WithLabel(ImageSample.RealLabel)), dir["x"]));
        Assert.Contains("validation set needs reals and fakes", noFakes.Message);
        var badCrop = Assert.Throws<ArgumentException>(() => DetectorTrainer.Train(Tiny(1) with { CropSize = 0 }, TrainingData.Unpaired(train, val), dir["x"]));
        Assert.Contains("CropSize", badCrop.Message);

        var pairs = TrainingData.Paired(PairedSet.Match(train, train), val);
        DetectorTrainer.Train(Tiny(1) with { PairsPerBatch = 2 }, pairs, dir["out"]);
        var changed = Assert.Throws<InvalidDataException>(() => DetectorTrainer.Train(Tiny(2) with { PairsPerBatch = 2, Seed = 18 }, pairs, dir["out"]));
        Assert.Contains("other training options", changed.Message);
        Assert.Contains("seed=17", changed.Message);
    }
}

public class TrainerInitialisationTests
{
    public TrainerInitialisationTests() => Assert.True(TorchRuntime.EnsureLoaded().Loaded, TorchRuntime.Status?.Error);

    private static readonly ResNetOptions Arch = ResNetOptions.Res50NoDown().Small(4, [1, 1, 1, 1]);

    private static TorchSharp.Modules.Linear Fc(ResNet model) => (TorchSharp.Modules.Linear)model.named_children().Single(c => c.name == "fc").module;

    [Fact]
    public void Pretrained_weights_load_everything_but_fc_which_is_redrawn_from_the_seed()
    {
        using var dir = new TempFolder();
        // An "ImageNet" checkpoint: the same backbone with a 1000-class head, as torchvision's resnet50 has.
        using (var imagenet = new ResNet(ResNetOptions.ResNet50().Small(4, [1, 1, 1, 1])))
            SafeTensors.Save(dir["imagenet.safetensors"], imagenet.state_dict().Select(p => (p.Key, p.Value)));
        var options = new TrainOptions { Arch = Arch, InitWeights = dir["imagenet.safetensors"] };
        var observer = new RecordingObserver();

        using var a = new ResNet(Arch);
        DetectorTrainer.Initialise(a, Fc(a), options, observer);
        using var b = new ResNet(Arch);
        DetectorTrainer.Initialise(b, Fc(b), options, new RecordingObserver());

        using var file = SafeTensors.Load(dir["imagenet.safetensors"]);
        var state = a.state_dict();
        foreach (var (name, tensor) in state.Where(p => !p.Key.StartsWith("fc.", StringComparison.Ordinal)))
            Assert.True(Same(file[name], tensor), $"{name} was not taken from the file");
        var fcWeight = state["fc.weight"];
        Assert.Equal([1L, 128], fcWeight.shape);
        Assert.InRange(fcWeight.std().item<float>(), 0.015, 0.025); // N(0, 0.02)
        Assert.True(Same(fcWeight, b.state_dict()["fc.weight"]), "the head must follow from the seed alone");
        Assert.True(Same(state["fc.bias"], b.state_dict()["fc.bias"]));
        Assert.Contains(observer.Logs, l => l.Contains("fc re-initialised"));
    }

    [Fact]
    public void From_scratch_init_depends_only_on_the_seed_and_mismatched_weights_are_refused()
    {
        var options = new TrainOptions { Arch = Arch };
        using var a = new ResNet(Arch);
        DetectorTrainer.Initialise(a, Fc(a), options, new RecordingObserver());
        torch.manual_seed(12345); // the global generator plays no part
        using var b = new ResNet(Arch);
        DetectorTrainer.Initialise(b, Fc(b), options, new RecordingObserver());
        using var c = new ResNet(Arch);
        DetectorTrainer.Initialise(c, Fc(c), options with { Seed = 18 }, new RecordingObserver());
        foreach (var (name, tensor) in a.state_dict())
            Assert.True(Same(tensor, b.state_dict()[name]), $"{name} differs for the same seed");
        Assert.False(Same(a.state_dict()["conv1.weight"], c.state_dict()["conv1.weight"]));

        using var dir = new TempFolder();
        using (var wider = new ResNet(ResNetOptions.ResNet50().Small(8, [1, 1, 1, 1])))
            SafeTensors.Save(dir["wide.safetensors"], wider.state_dict().Select(p => (p.Key, p.Value)));
        using var d = new ResNet(Arch);
        var error = Assert.Throws<InvalidDataException>(() =>
            DetectorTrainer.Initialise(d, Fc(d), options with { InitWeights = dir["wide.safetensors"] }, new RecordingObserver()));
        Assert.Contains("wide.safetensors", error.Message);
        Assert.Contains("conv1.weight", error.Message);
    }
}
