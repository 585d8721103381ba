using Forensics.ML.Data;
using Forensics.ML.Lare2;
using Forensics.ML.Models;
using Forensics.ML.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Forensics.ML.Benchmarks;

/// <summary>
/// Where a training step spends its time: runs the trainers' own step functions (<see cref="DetectorTrainer"/>'s and
/// <see cref="Lare2Trainer"/>'s) on a fixed synthetic batch and returns their <see cref="StepProfile"/>. Data loading
/// is not part of it (the batch is ready): a training run's log has the same profile with the loader's wait included.
/// </summary>
public static class TrainStepProfiler
{
    /// <summary>Profiles <paramref name="steps"/> res50nodown training steps (after two warm-up steps).</summary>
    public static StepProfile Detector(ResNetOptions options, int batch, int size, int steps, Device? device = null)
    {
        device ??= CPU;
        using var model = new ResNet(options);
        model.to(device);
        model.train();
        var fc = model.named_children().Single(c => c.name == "fc").module as Linear
            ?? throw new InvalidOperationException("The ResNet has no Linear 'fc' head.");
        using var optimizer = new KeptAliveAdam(model.parameters(), lr: 1e-4);
        using var dropoutRng = new Generator(7);
        using var images = randn(batch, 3, size, size);
        using var labels = cat([zeros(batch / 2), ones(batch - batch / 2)]);
        using var network = new DetectorTrainer.ResNetTrainee(model, fc, dropoutRng, device);
        return Run(steps, batch, profile =>
        {
            using var b = new Batch(0, 0, images.alias(), labels.alias(), [], []);
            return DetectorTrainer.Step(network, optimizer, b, profile);
        });
    }

    /// <summary>Profiles <paramref name="steps"/> LaRE² training steps (EGRE on a CLIP ModifiedResNet tower).</summary>
    public static StepProfile Lare2(Lare2Options options, int batch, int steps, Device? device = null)
    {
        device ??= CPU;
        using var model = new Lare2Classifier(options);
        model.to(device);
        model.train();
        using var optimizer = new KeptAliveAdam(model.parameters(), lr: 1e-4);
        var size = options.Backbone.InputResolution;
        using var images = randn(batch, 3, size, size);
        // The LaRE map of a size x size image is the SD latent's: 4 channels at size / 8.
        using var maps = randn(batch, options.Egre.LareChannels, Math.Max(1, size / 8), Math.Max(1, size / 8));
        using var labels = cat([zeros(batch / 2, ScalarType.Int64), ones(batch - batch / 2, ScalarType.Int64)]);
        return Run(steps, batch, profile =>
        {
            using var b = new Lare2Batch(images.alias(), maps.alias(), labels.alias(), []);
            return Lare2Trainer.Step(model, optimizer, b, device, clip: 1.0, profile);
        });
    }

    static StepProfile Run(int steps, int batch, Func<StepProfile, double> step)
    {
        var warmUp = new StepProfile();
        warmUp.Start();
        for (var i = 0; i < 2; i++) step(warmUp);
        var profile = new StepProfile();
        profile.Start();
        for (var i = 0; i < steps; i++)
        {
            step(profile);
            profile.EndStep(batch);
        }
        return profile;
    }
}
