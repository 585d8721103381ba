using Forensics.ML.Models;
using Forensics.ML.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Forensics.ML.Tests.Runtime;

/// <summary>A small conv + BatchNorm + linear model and a fixed regression task for the kept-alive Adam and BatchNorm tests.</summary>
internal static class KeptAliveFixtures
{
    /// <summary>
    /// Conv2d(3, 8) → BatchNorm2d(8) (ours or TorchSharp's) → ReLU → mean over H, W → Linear(8, 2). Weights are drawn from <paramref name="seed"/>.
    /// With <paramref name="hidden"/> &gt; 0 a Linear(channels, hidden) + ReLU sits before the head (large parameters make
    /// Adam's native calls long, for the GC stress test).
    /// </summary>
    public static Sequential Model(bool keptAliveBatchNorm, long seed = 7, int channels = 8, int hidden = 0)
    {
        TorchRuntime.EnsureLoaded();
        manual_seed(seed);
        nn.Module<Tensor, Tensor> norm = keptAliveBatchNorm ? new KeptAliveBatchNorm2d(channels) : nn.BatchNorm2d(channels);
        var model = nn.Sequential(
            ("conv", nn.Conv2d(3, channels, 3, padding: 1)),
            ("bn", norm),
            ("relu", nn.ReLU()),
            ("pool", new MeanPool()));
        if (hidden > 0)
        {
            model.append("hidden", nn.Linear(channels, hidden));
            model.append("hidden_relu", nn.ReLU());
        }
        model.append("fc", nn.Linear(hidden > 0 ? hidden : channels, 2));
        return model;
    }

    /// <summary>Input batch <paramref name="step"/> [4, 3, size, size] and its targets [4, 2], fixed by the step.</summary>
    public static (Tensor X, Tensor Y) Batch(int step, int size = 8)
    {
        using var generator = new Generator((ulong)(1000 + step));
        var x = randn([4, 3, size, size], generator: generator);
        var y = randn([4, 2], generator: generator);
        return (x, y);
    }

    /// <summary>One training step: MSE of the model's output against the batch's targets, backward, optimizer step.</summary>
    public static void Step(Sequential model, optim.Optimizer optimizer, int step, int size = 8)
    {
        using var scope = NewDisposeScope();
        var (x, y) = Batch(step, size);
        var loss = nn.functional.mse_loss(model.forward(x), y);
        optimizer.zero_grad();
        loss.backward();
        optimizer.step();
    }

    /// <summary>Copies of every state-dict entry (parameters and buffers), by name.</summary>
    public static Dictionary<string, Tensor> Snapshot(nn.Module model) =>
        model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());

    /// <summary>Asserts that two snapshots hold the same names, dtypes, shapes and bit-identical values.</summary>
    public static void AssertIdentical(IReadOnlyDictionary<string, Tensor> expected, IReadOnlyDictionary<string, Tensor> actual)
    {
        Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
        foreach (var (name, e) in expected)
        {
            var a = actual[name];
            Assert.Equal(e.dtype, a.dtype);
            Assert.Equal(e.shape, a.shape);
            Assert.True(e.Identical(a), $"{name} differs: max |diff| {(e.to_type(ScalarType.Float64) - a.to_type(ScalarType.Float64)).abs().max().item<double>()}");
        }
    }

    /// <summary>Whether two tensors have the same dtype, shape and elements (TorchSharp's equal is elementwise).</summary>
    public static bool Identical(this Tensor a, Tensor b)
    {
        if (a.dtype != b.dtype || !a.shape.SequenceEqual(b.shape)) return false;
        using var same = a.eq(b).all();
        return same.item<bool>();
    }

    /// <summary>Mean over the spatial dimensions: [N, C, H, W] → [N, C].</summary>
    private sealed class MeanPool() : nn.Module<Tensor, Tensor>("MeanPool")
    {
        public override Tensor forward(Tensor input) => input.mean([2L, 3L]);
    }
}
