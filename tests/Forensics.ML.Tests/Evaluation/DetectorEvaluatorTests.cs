using Forensics.ML.Data;
using Forensics.ML.Detectors;
using Forensics.ML.Evaluation;
using Forensics.ML.Imaging;
using Forensics.ML.Metrics;
using Forensics.ML.Tests.Datasets;

namespace Forensics.ML.Tests.Evaluation;

public sealed class DetectorEvaluatorTests : IDisposable
{
    private readonly TempDir temp = new();

    public DetectorEvaluatorTests() => EvalFixtures.EnsureTorch();

    public void Dispose() => temp.Dispose();

    [Fact]
    public void Batching_by_size_gives_the_scores_of_batch_1()
    {
        // Fixture data (two 64x64 images) plus GenImage images of repeated sizes (8x8, 16x8, 12x12).
        DatasetFixtures.BuildGenImage(temp.Path);
        EvalFixtures.CopyTree(EvalFixtures.Data, temp["imagenet_extra/val/mixed"]);
        using var detector = DetectorCheckpoint.Load(EvalFixtures.Checkpoint);
        var set = EvaluationSet.Scan(temp.Path);
        var single = DetectorEvaluator.Score(detector, set.Images, new EvalOptions { Batching = EvalBatching.Single, Workers = 2 });
        // Batching by size is the default.
        var bySize = DetectorEvaluator.Score(detector, set.Images, new EvalOptions { MaxBatch = 3, Workers = 2 });
        Assert.Equal(EvalBatching.BySize, new EvalOptions().Batching);

        Assert.Equal(single.Scores.Select(s => s.RelativePath), bySize.Scores.Select(s => s.RelativePath));
        Assert.Equal(set.Images.Select(s => s.RelativePath), single.Scores.Select(s => s.RelativePath));
        Assert.True(set.Images.GroupBy(s => (s.Width, s.Height)).Any(g => g.Count() > 1), "the set needs repeated sizes");
        // In eval mode each image of a batch is scored on its own; batched kernels may sum in another order, so the scores
        // are equal up to float32 rounding, far inside the 1e-4 reference tolerance.
        var logitDiff = single.Scores.Zip(bySize.Scores, (a, b) => Math.Abs(a.Logit - b.Logit)).Max();
        Assert.True(logitDiff < 1e-5, $"largest |logit difference| {logitDiff:G3}");
        for (var i = 0; i < single.Scores.Count; i++)
            Assert.True(Math.Abs(single.Scores[i].Score - bySize.Scores[i].Score) < 1e-5,
                $"{single.Scores[i].RelativePath}: {single.Scores[i].Score:R} vs {bySize.Scores[i].Score:R}");

    }

    [Fact]
    public void Per_generator_reports_on_a_genimage_folder_with_unreadable_files_listed()
    {
        DatasetFixtures.BuildGenImage(temp.Path);
        using var detector = DetectorCheckpoint.Load(EvalFixtures.Checkpoint);
        var set = EvaluationSet.Scan(temp.Path);
        var options = new EvalOptions();
        var result = DetectorEvaluator.Score(detector, set.Images, options);
        var metrics = new MetricsOptions { BootstrapSamples = 20 };
        var report = EvaluationReport.Create(detector, set, result, options, metrics);

        Assert.Equal(new[] { DatasetFixtures.Sdv4, DatasetFixtures.Glide }.Order(StringComparer.Ordinal), report.PerGenerator.Keys);
        foreach (var (generator, r) in report.PerGenerator)
        {
            var mine = result.Scores.Where(s => s.Generator == generator).ToList();
            Assert.Equal(set.Images.ByGenerator[generator], new LabelCounts(r.NReal, r.NFake));
            var direct = DetectionMetrics.Compute(mine.Select(s => s.Label).ToArray(), mine.Select(s => s.Score).ToArray(), metrics);
            Assert.Equal(direct.Acc, r.Acc);
            Assert.Equal(direct.Ap, r.Ap);
        }
        Assert.Equal(12, report.NScored);
        // The GenImage fixture's zero-byte png, truncated JPEG and text file named .png.
        Assert.Equal(3, report.Skipped.Count);
        Assert.Contains(report.Skipped, s => s.RelativePath == $"{DatasetFixtures.Sdv4}/val/nature/truncated.JPEG");

        // One split only: 'valid' is an alias of 'val'.
        var val = EvaluationSet.Scan(temp.Path, "valid");
        Assert.All(val.Images, s => Assert.Equal("val", s.Split));
        Assert.Equal(2, val.Unreadable.Count);
    }

    [Fact]
    public void A_file_that_fails_to_decode_while_scoring_is_skipped_with_its_reason()
    {
        var good = Path.Combine(EvalFixtures.Data, "0_real", "r_37x53.png");
        var broken = temp["broken.png"];
        File.WriteAllBytes(broken, File.ReadAllBytes(good)[..200]);
        var set = new ImageSet([
            new ImageSample(good, "0_real/r_37x53.png", 0, "g", "all"),
            new ImageSample(broken, "1_fake/broken.png", 1, "g", "all"),
        ]);
        using var detector = DetectorCheckpoint.Load(EvalFixtures.Checkpoint);
        var progress = new List<EvalProgress>();
        var result = DetectorEvaluator.Score(detector, set, new EvalOptions(), new SyncProgress(progress.Add));

        var scored = Assert.Single(result.Scores);
        Assert.Equal("0_real/r_37x53.png", scored.RelativePath);
        Assert.Equal(EvalFixtures.Expected()["0_real/r_37x53.png"].Score, scored.Score, 4);
        var skipped = Assert.Single(result.Skipped);
        Assert.Equal("1_fake/broken.png", skipped.RelativePath);
        Assert.Contains("truncated", skipped.Reason);
        Assert.Equal(new EvalProgress(2, 2, 1), progress[^1]);
    }

    [Fact]
    public void Random_perturbations_are_seeded_per_image_and_run()
    {
        using var detector = DetectorCheckpoint.Load(EvalFixtures.Checkpoint);
        var set = EvaluationSet.Scan(EvalFixtures.Data).Images;
        var noise = PerturbationSpec.Parse("noise:8");
        double[] Run(ulong seed) => DetectorEvaluator.Score(detector, set, new EvalOptions { Perturbation = noise, Seed = seed })
            .Scores.Select(s => s.Score).ToArray();

        var a = Run(1);
        Assert.Equal(a, Run(1));
        Assert.NotEqual(a, Run(2));
    }

    [Fact]
    public void Logit_and_score_agree_and_a_set_with_nothing_scorable_is_a_clear_error()
    {
        using var detector = DetectorCheckpoint.Load(EvalFixtures.Checkpoint);
        var data = EvaluationSet.Scan(EvalFixtures.Data);
        var result = DetectorEvaluator.Score(detector, data.Images);
        var expected = EvalFixtures.Expected();
        Assert.All(result.Scores, s =>
        {
            Assert.Equal(1 / (1 + Math.Exp(-s.Logit)), s.Score, 12);
            Assert.Equal(expected[s.RelativePath].Logit, s.Logit, 4);
        });

        var empty = new ScoringResult([], [new SkippedImage("1_fake/x.png", "truncated")]);
        var e = Assert.Throws<InvalidOperationException>(() => EvaluationReport.Create(detector, data, empty, new EvalOptions()));
        Assert.Contains("No image", e.Message);
        Assert.Contains("1_fake/x.png", e.Message);
    }

    private sealed class SyncProgress(Action<EvalProgress> report) : IProgress<EvalProgress>
    {
        public void Report(EvalProgress value) => report(value);
    }
}
