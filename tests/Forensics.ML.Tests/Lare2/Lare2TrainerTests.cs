using Forensics.ML.Data;
using Forensics.ML.Evaluation;
using Forensics.ML.Lare2;
using Forensics.ML.Metrics;
using Forensics.ML.Runtime;
using Forensics.ML.Training;
using Forensics.ML.Weights;
using static TorchSharp.torch;
using Forensics.ML.Tests.Training;

namespace Forensics.ML.Tests.Lare2;

/// <summary>Lare2Trainer on data whose label is only in the LaRE maps.</summary>
public sealed class Lare2TrainerTests : IDisposable
{
    private readonly string root = Path.Combine(Path.GetTempPath(), "lare2train-" + Guid.NewGuid().ToString("N"));

    public Lare2TrainerTests() => Assert.True(TorchRuntime.EnsureLoaded().Loaded);

    public void Dispose()
    {
        if (Directory.Exists(root)) Directory.Delete(root, recursive: true);
    }

    private (Lare2TrainingData Data, ImageSet Test, string Lare) Data(int trainPerClass, int valPerClass, int testPerClass)
    {
        var lare = Path.Combine(root, "lare");
        Lare2Fixtures.Write(Path.Combine(root, "train"), Path.Combine(lare, "train"), trainPerClass, 72, seed: 1);
        Lare2Fixtures.Write(Path.Combine(root, "val"), Path.Combine(lare, "val"), valPerClass, 72, seed: 2);
        Lare2Fixtures.Write(Path.Combine(root, "test"), Path.Combine(lare, "test"), testPerClass, 72, seed: 3);
        var data = new Lare2TrainingData(Lare2Fixtures.Images(Path.Combine(root, "train")), Lare2Fixtures.Images(Path.Combine(root, "val")),
            Path.Combine(lare, "train")) { ValidationLareFolder = Path.Combine(lare, "val") };
        return (data, Lare2Fixtures.Images(Path.Combine(root, "test")), Path.Combine(lare, "test"));
    }

    private static Lare2TrainOptions Options(EgreAblation ablation, int epochs, double dropout = 0.1) => new()
    {
        Model = Lare2Fixtures.Small(ablation, dropout),
        LearningRate = 2e-3,
        BatchSize = 8,
        ValidationBatchSize = 32,
        MaxEpochs = epochs,
        BestMetric = Lare2Metric.BalancedAccuracy,
        Workers = 1,
    };

    private static double BalancedAccuracy(string best, ImageSet test, string lare)
    {
        using var model = Lare2Classifier.Load(best);
        var result = Lare2Evaluator.Score(model, test, new LareMapFolder(lare), new Lare2EvalOptions { CropSize = 64, BatchSize = 32, Workers = 1 });
        Assert.Empty(result.Skipped);
        var report = DetectionMetrics.Compute(result.Scores.Select(s => s.Label).ToArray(), result.Scores.Select(s => s.Score).ToArray(),
            new MetricsOptions { BootstrapSamples = 0 });
        return report.BalancedAcc!.Value;
    }

    [Fact]
    public void Learns_the_label_from_the_map_alone_and_stays_at_chance_without_it()
    {
        var (data, test, testLare) = Data(trainPerClass: 32, valPerClass: 16, testPerClass: 32);

        var withMap = Lare2Trainer.Train(Options(EgreAblation.None, epochs: 5), data, Path.Combine(root, "map"));
        var mapAccuracy = BalancedAccuracy(withMap.BestWeightsPath, test, testLare);
        Assert.True(mapAccuracy > 0.75, $"with the LaRE map: balanced accuracy {mapAccuracy:F3} on held-out images");

        var zeroed = Lare2Trainer.Train(Options(EgreAblation.ZeroLare, epochs: 5), data, Path.Combine(root, "zero"));
        using (var model = Lare2Classifier.Load(zeroed.BestWeightsPath))
        {
            // The ablation is a forward-time switch: the saved weights alone do not carry it, so score with it on.
            model.Ablation = EgreAblation.ZeroLare;
            var result = Lare2Evaluator.Score(model, test, new LareMapFolder(testLare), new Lare2EvalOptions { CropSize = 64, BatchSize = 32, Workers = 1 });
            var report = DetectionMetrics.Compute(result.Scores.Select(s => s.Label).ToArray(), result.Scores.Select(s => s.Score).ToArray(),
                new MetricsOptions { BootstrapSamples = 0 });
            Assert.True(report.BalancedAcc < 0.68, $"with zeroed maps: balanced accuracy {report.BalancedAcc:F3} should be near chance");
            Assert.True(report.Auc < 0.72, $"with zeroed maps: AUC {report.Auc:F3} should be near 0.5");
        }
    }

    [Fact]
    public void Resuming_after_cancellation_reaches_the_uninterrupted_weights()
    {
        var (data, _, _) = Data(trainPerClass: 8, valPerClass: 4, testPerClass: 1);
        var threads = get_num_threads();
        set_num_threads(1);
        try
        {
            // Dropout 0: the masks come from torch's global generator, which parallel tests may draw from too.
            var options = Options(EgreAblation.None, epochs: 3, dropout: 0) with { PlateauPatience = 0, ScheduleMetric = Lare2Metric.Accuracy };
            var straight = Lare2Trainer.Train(options, data, Path.Combine(root, "straight"));

            var resumedDir = Path.Combine(root, "resumed");
            using (var cts = new CancellationTokenSource())
            {
                var observer = new CancelAfterEpoch(1, cts);
                Assert.ThrowsAny<OperationCanceledException>(() => Lare2Trainer.Train(options, data, resumedDir, observer, cts.Token));
            }
            Assert.Equal(1, Lare2Checkpoint.ReadInfo(Path.Combine(resumedDir, Lare2Trainer.CheckpointFileName)).Epoch);
            var resumed = Lare2Trainer.Train(options, data, resumedDir);
            Assert.Equal(1, resumed.ResumedFromEpoch);
            Assert.Equal(3, resumed.EpochsRun);
            Assert.Equal(straight.FinalLearningRate, resumed.FinalLearningRate);
            Assert.Equal(straight.BestEpoch, resumed.BestEpoch);

            using var a = SafeTensors.Load(straight.CheckpointPath, upcastHalf: false);
            using var b = SafeTensors.Load(resumed.CheckpointPath, upcastHalf: false);
            Assert.Equal(a.Names, b.Names);
            foreach (var name in a.Names)
                Assert.True(a[name].eq(b[name]).all().item<bool>(), $"{name} differs after resume");
            foreach (var key in new[] { "plateau.lr", "plateau.best", "plateau.bad", "best", "best_epoch" })
                Assert.Equal(a.Metadata[key], b.Metadata[key]);

            // A checkpoint of other options is refused rather than silently continued.
            var other = options with { LearningRate = 5e-4, MaxEpochs = 4 };
            var error = Assert.Throws<InvalidDataException>(() => Lare2Trainer.Train(other, data, resumedDir));
            Assert.Contains("other training options", error.Message);
        }
        finally
        {
            set_num_threads(threads);
        }
    }

    [Fact]
    public void Best_weights_load_with_the_authors_names_and_a_missing_map_is_skipped_not_zeroed()
    {
        var (data, _, _) = Data(trainPerClass: 8, valPerClass: 4, testPerClass: 1);
        var missing = Path.Combine(data.LareFolder, "1_fake", "f000.safetensors");
        File.Delete(missing);
        var logs = new List<string>();
        var result = Lare2Trainer.Train(Options(EgreAblation.None, epochs: 1), data, Path.Combine(root, "best"), new LogObserver(logs));
        Assert.True(result.SkippedImages >= 1);
        Assert.Contains(logs, l => l.Contains("no LaRE map at") && l.Contains("f000.safetensors"));
        using var model = Lare2Classifier.Load(result.BestWeightsPath, out var report);
        Assert.Equal(Lare2Fixtures.Small().Backbone, model.Options.Backbone);
        var names = SafeTensors.ReadHeader(result.BestWeightsPath).Entries.Select(t => t.Name).ToList();
        Assert.Contains("clip_model.visual.conv1.weight", names);
        Assert.Contains("attn_pool.attention.fc_q.weight", names);
        Assert.Contains("channel_align.fc.0.weight", names);
    }

    private sealed class CancelAfterEpoch(int epoch, CancellationTokenSource cts) : ITrainingObserver
    {
        public void OnProgress(double fraction, TrainingPhase phase) { }
        public void OnStep(int e, int step, double loss, double learningRate) { }
        public void OnEpoch(int e, double trainLoss, ValidationMetrics validation, double learningRate, bool isBest)
        {
            if (e == epoch) cts.Cancel();
        }
        public void OnLog(string message) { }
    }

    private sealed class LogObserver(List<string> logs) : ITrainingObserver
    {
        public void OnProgress(double fraction, TrainingPhase phase) { }
        public void OnStep(int e, int step, double loss, double learningRate) { }
        public void OnEpoch(int e, double trainLoss, ValidationMetrics validation, double learningRate, bool isBest) { }
        public void OnLog(string message) => logs.Add(message);
    }
}
