using System.Diagnostics;
using Forensics.ML.Models;
using Forensics.ML.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Forensics.ML.Benchmarks;

/// <summary>One measured rate: items per second over the measured repetitions, with the work per item.</summary>
public sealed record Rate(string Name, double ItemsPerSecond, double FlopsPerItem, int Repetitions, double Seconds)
{
    /// <summary>Achieved GFLOP/s (0 when the work per item is unknown).</summary>
    public double Gflops => ItemsPerSecond * FlopsPerItem / 1e9;
}

/// <summary>
/// Throughput measurements reported as ratios within one run: the machine's measured fp32 matmul rate is the
/// reference, and model rates are expressed as the fraction of it they reach.
/// </summary>
public static class Throughput
{
    /// <summary>Measures <paramref name="action"/> (after one warm-up call) until <paramref name="budget"/> is spent; best-of-3 rounds.</summary>
    public static (int Repetitions, double Seconds) Time(Action action, TimeSpan budget)
    {
        action();
        var best = double.MaxValue;
        var bestReps = 0;
        for (var round = 0; round < 3; round++)
        {
            var reps = 0;
            var sw = Stopwatch.StartNew();
            do { action(); reps++; } while (sw.Elapsed < budget / 3);
            var perRep = sw.Elapsed.TotalSeconds / reps;
            if (perRep < best) { best = perRep; bestReps = reps; }
        }
        return (bestReps, best * bestReps);
    }

    /// <summary>The same values with channels-last (NHWC) strides: the layout torch.channels_last gives a 4-d tensor.</summary>
    public static Tensor ChannelsLast(Tensor t) { using var nhwc = t.permute(0, 2, 3, 1).contiguous(); return nhwc.permute(0, 3, 1, 2); }

    /// <summary>fp32 matrix multiply rate (n x n by n x n), the reference for the other figures.</summary>
    public static Rate Matmul(int n, TimeSpan budget, Device? device = null)
    {
        device ??= CPU;
        using var a = randn(n, n, device: device);
        using var b = randn(n, n, device: device);
        var (reps, seconds) = Time(() =>
        {
            using var c = a.matmul(b);
            if (device.type == DeviceType.CUDA) cuda.synchronize();
        }, budget);
        return new Rate($"matmul fp32 {n}x{n}", reps / seconds, 2.0 * n * n * n, reps, seconds);
    }

    /// <summary>Forward (eval, no grad) and training-step (forward, BCE loss, backward, Adam) rates of a detector, in images/s.</summary>
    /// <param name="channelsLast">Inputs and 4-d weights with NHWC strides (channels-last), which oneDNN's convolutions may prefer.</param>
    public static (Rate Forward, Rate Train) Detector(ResNet model, int batch, int size, TimeSpan budget, Device? device = null, bool channelsLast = false)
    {
        device ??= CPU;
        model.to(device);
        using var nchw = randn(batch, 3, size, size, device: device);
        using var x = channelsLast ? ChannelsLast(nchw) : nchw.alias();
        if (channelsLast)
            using (no_grad())
                foreach (var p in model.parameters().Where(p => p.dim() == 4))
                    using (var nhwc = ChannelsLast(p)) p.set_(nhwc);
        using var y = ones(batch, model.Options.NumClasses, device: device);
        model.eval();
        var macs = MacCounter.PerSample(model, x[..1]);
        var (fReps, fSeconds) = Time(() =>
        {
            using var _ = no_grad();
            using var scope = NewDisposeScope();
            model.forward(x);
            if (device.type == DeviceType.CUDA) cuda.synchronize();
        }, budget);

        model.train();
        using var optimizer = new KeptAliveAdam(model.parameters(), lr: 1e-4);
        var (tReps, tSeconds) = Time(() =>
        {
            using var scope = NewDisposeScope();
            optimizer.zero_grad();
            var loss = nn.functional.binary_cross_entropy_with_logits(model.forward(x), y);
            loss.backward();
            optimizer.step();
            if (device.type == DeviceType.CUDA) cuda.synchronize();
        }, budget);
        // A training step is one forward and a backward of about twice its cost: ~3x the forward FLOPs.
        return (new Rate("forward", fReps * batch / fSeconds, 2.0 * macs, fReps, fSeconds),
                new Rate("train step", tReps * batch / tSeconds, 6.0 * macs, tReps, tSeconds));
    }
}

/// <summary>Throughput of the training data pipeline and of the dataset alignment's reconstruction.</summary>
public static class PipelineThroughput
{
    /// <summary>
    /// Images/s of the training data pipeline (decode, the reference augmentation chain, random crop, ImageNet
    /// normalisation, collation) on background workers, over <paramref name="count"/> synthetic JPEGs of
    /// <paramref name="size"/> pixels written to a temporary folder (deleted afterwards).
    /// </summary>
    public static Rate DataPipeline(int count, int size, int crop, int batch, int workers, TimeSpan budget)
    {
        var dir = Directory.CreateTempSubdirectory("forensics-bench-").FullName;
        try
        {
            var samples = new List<Data.ImageSample>();
            using (var noise = rand(count, 3, size, size))
                for (var i = 0; i < count; i++)
                {
                    var path = Path.Combine(dir, $"{i:D5}.jpg");
                    using (var img = noise[i]) File.WriteAllBytes(path, Imaging.ImageEncoder.EncodeJpeg(img, 90));
                    samples.Add(new Data.ImageSample(path, Path.GetFileName(path), i % 2, "bench", "train"));
                }
            var set = new Data.ImageSet(samples);
            var work = new Training.TrainingSamples(new Training.TrainOptions { CropSize = crop, Workers = workers });
            var sampler = new Data.BalancedSampler(set, new Data.BalancedSamplerOptions { BatchSize = batch });
            using var loader = new Data.BatchLoader(sampler, work.LoadTraining, new Data.LoaderOptions { Workers = workers });
            var images = 0;
            var epoch = 0;
            var (reps, seconds) = Throughput.Time(() =>
            {
                foreach (var b in loader.Epoch(epoch++)) using (b) images += b.Count;
            }, budget);
            return new Rate($"data pipeline ({size}px JPEG -> {crop} crop, {workers} workers)", sampler.PerClass * 2.0 * reps / seconds, 0, reps, seconds);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>Reconstructions/s (encode, posterior sample, decode) of an autoencoder at <paramref name="size"/> x <paramref name="size"/>.</summary>
    public static Rate Reconstruction(Models.Diffusion.AutoencoderKL vae, int size, TimeSpan budget, Device? device = null)
    {
        device ??= CPU;
        vae.to(device);
        using var x = rand(1, 3, size, size, device: device) * 2 - 1;
        var macs = vae.MacsPerImage(size, size);
        var (reps, seconds) = Throughput.Time(() =>
        {
            using var _ = no_grad();
            using var scope = NewDisposeScope();
            using var g = new Generator(42, device);
            vae.Reconstruct(x, sample: true, g);
            if (device.type == DeviceType.CUDA) cuda.synchronize();
        }, budget);
        return new Rate($"reconstruction {size}x{size}", reps / seconds, 2.0 * macs, reps, seconds);
    }
}
