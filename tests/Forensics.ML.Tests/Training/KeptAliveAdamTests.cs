using Forensics.ML.Generators;
using Forensics.ML.Training;
using TorchSharp;
using TorchSharp.Modules;
using static Forensics.ML.Tests.Runtime.KeptAliveFixtures;
using static TorchSharp.torch;

namespace Forensics.ML.Tests.Training;

public class KeptAliveAdamTests
{
    private static IReadOnlyList<Adam.State> States(Adam optimizer) => optimizer.state_dict().State.Cast<Adam.State>().ToList();

    [Theory]
    [InlineData(0.0)]
    [InlineData(0.01)]
    public void Steps_are_bit_identical_to_TorchSharps_Adam(double weightDecay)
    {
        using var reference = Model(keptAliveBatchNorm: false);
        using var model = Model(keptAliveBatchNorm: false);
        // Each optimizer also holds a parameter outside the model that never gets a gradient: Adam must skip it.
        using var unusedByReference = nn.Parameter(ones(3));
        using var unused = nn.Parameter(ones(3));
        using var torchAdam = new Adam(reference.parameters().Append(unusedByReference), lr: 3e-3, beta1: 0.8, beta2: 0.95, eps: 1e-6, weight_decay: weightDecay);
        using var ours = new KeptAliveAdam(model.parameters().Append(unused), lr: 3e-3, beta1: 0.8, beta2: 0.95, eps: 1e-6, weight_decay: weightDecay);
        for (var step = 0; step < 6; step++)
        {
            // A learning-rate change mid-run, as the trainers' schedules make through ParamGroups.
            if (step == 3)
            {
                TrainingLoop.SetLearningRate(torchAdam, 1e-3);
                TrainingLoop.SetLearningRate(ours, 1e-3);
            }
            Step(reference, torchAdam, step);
            Step(model, ours, step);
        }
        AssertIdentical(Snapshot(reference), Snapshot(model));
        var (expected, actual) = (States(torchAdam), States(ours));
        Assert.Equal(expected.Count, actual.Count);
        for (var i = 0; i < expected.Count; i++)
        {
            Assert.Equal(expected[i].step, actual[i].step);
            Assert.True(expected[i].exp_avg.Identical(actual[i].exp_avg), $"exp_avg of parameter {i} differs");
            Assert.True(expected[i].exp_avg_sq.Identical(actual[i].exp_avg_sq), $"exp_avg_sq of parameter {i} differs");
        }
        // The unused parameter never had a gradient: its state never stepped; every other one stepped 6 times.
        Assert.Equal(1, actual.Count(s => s.step == 0));
        Assert.All(actual.Where(s => s.step != 0), s => Assert.Equal(6, s.step));
        // The model did learn something: Adam moved the weights.
        using var fresh = Model(keptAliveBatchNorm: false);
        Assert.False(fresh.state_dict()["fc.weight"].Identical(model.state_dict()["fc.weight"]));
    }

    [Fact]
    public void A_parameter_group_asking_for_amsgrad_or_maximize_is_rejected_by_name()
    {
        using var model = Model(keptAliveBatchNorm: true);
        var conv = model.named_parameters().Where(p => p.name.StartsWith("conv.", StringComparison.Ordinal)).Select(p => p.parameter).ToList();
        var fc = model.named_parameters().Where(p => p.name.StartsWith("fc.", StringComparison.Ordinal)).Select(p => p.parameter).ToList();
        using var amsgrad = new KeptAliveAdam(conv);
        amsgrad.add_param_group(new Adam.ParamGroup(fc, amsgrad: true));
        var e = Assert.Throws<NotSupportedException>(() => Step(model, amsgrad, 0));
        Assert.Contains("amsgrad", e.Message, StringComparison.Ordinal);

        using var maximize = new KeptAliveAdam(conv);
        maximize.add_param_group(new Adam.ParamGroup(fc, maximize: true));
        e = Assert.Throws<NotSupportedException>(() => Step(model, maximize, 0));
        Assert.Contains("maximize", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_checkpoint_round_trips_and_the_resumed_run_equals_the_uninterrupted_one()
    {
        var dir = Directory.CreateTempSubdirectory("kept-alive-adam-");
        try
        {
            var path = Path.Combine(dir.FullName, GeneratorCheckpoint.FileName);
            using var model = Model(keptAliveBatchNorm: true);
            var part = GeneratorCheckpoint.Part("net/", model, 2e-3, 0.9, 0.999);
            Assert.IsType<KeptAliveAdam>(part.Optimizer);
            using var adam = part.Optimizer;
            for (var step = 0; step < 3; step++) Step(model, adam, step);
            GeneratorCheckpoint.Save(path, [part], 3, "fingerprint", [1.0, 2.0, 3.0]);

            // A fresh model (other seed) and optimizer restored from the file.
            using var resumed = Model(keptAliveBatchNorm: true, seed: 99);
            var resumedPart = GeneratorCheckpoint.Part("net/", resumed, 2e-3, 0.9, 0.999);
            using var resumedAdam = resumedPart.Optimizer;
            var (done, losses) = GeneratorCheckpoint.Load(path, [resumedPart], "fingerprint");
            Assert.Equal(3, done);
            Assert.Equal([1.0, 2.0, 3.0], losses);
            AssertIdentical(Snapshot(model), Snapshot(resumed));
            var (saved, loaded) = (States(adam), States(resumedAdam));
            for (var i = 0; i < saved.Count; i++)
            {
                Assert.Equal(saved[i].step, loaded[i].step);
                Assert.True(saved[i].exp_avg.Identical(loaded[i].exp_avg));
                Assert.True(saved[i].exp_avg_sq.Identical(loaded[i].exp_avg_sq));
            }

            for (var step = 3; step < 5; step++)
            {
                Step(model, adam, step);
                Step(resumed, resumedAdam, step);
            }
            AssertIdentical(Snapshot(model), Snapshot(resumed));
        }
        finally { dir.Delete(recursive: true); }
    }
}
