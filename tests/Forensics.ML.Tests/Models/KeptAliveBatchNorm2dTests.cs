using Forensics.ML.Generators;
using Forensics.ML.Models;
using Forensics.ML.Models.Clip;
using Forensics.ML.Runtime;
using Forensics.ML.Weights;
using TorchSharp;
using static Forensics.ML.Tests.Runtime.KeptAliveFixtures;
using static Forensics.ML.Tests.Weights.WeightsFixtures;
using static TorchSharp.torch;

namespace Forensics.ML.Tests.Models;

public class KeptAliveBatchNorm2dTests
{
    public KeptAliveBatchNorm2dTests() => TorchRuntime.EnsureLoaded();

    private static Tensor Input(int seed, float shift)
    {
        using var generator = new Generator((ulong)seed);
        using var x = randn([5, 4, 6, 7], generator: generator);
        return x.Plus(shift);
    }

    [Theory]
    [InlineData(0.1)]
    [InlineData(0.3)]
    [InlineData(null)]
    public void Training_and_eval_forwards_are_bit_identical_to_TorchSharps(double? momentum)
    {
        using var reference = nn.BatchNorm2d(4, eps: 1e-3, momentum: momentum ?? 0.1);
        reference.momentum = momentum;
        using var ours = new KeptAliveBatchNorm2d(4, eps: 1e-3, momentum: momentum);
        using (no_grad())
        {
            // Non-trivial affine parameters, the same in both.
            reference.weight.copy_(linspace(0.5, 2, 4));
            ours.weight.copy_(linspace(0.5, 2, 4));
            reference.bias!.copy_(linspace(-1, 1, 4));
            ours.bias!.copy_(linspace(-1, 1, 4));
        }
        for (var i = 0; i < 3; i++)
        {
            using var x = Input(i, shift: i);
            using var xRef = x.detach().requires_grad_();
            using var xOurs = x.detach().requires_grad_();
            using var expected = reference.forward(xRef);
            using var actual = ours.forward(xOurs);
            Assert.True(expected.Identical(actual), $"training forward {i} differs");
            // Gradients too: the same autograd graph.
            using var upstream = Input(100 + i, shift: 0);
            (expected * upstream).sum().backward();
            (actual * upstream).sum().backward();
            Assert.True(xRef.grad!.Identical(xOurs.grad!), $"input gradient {i} differs");
        }
        Assert.True(reference.weight.grad!.Identical(ours.weight.grad!));
        Assert.True(reference.bias.grad!.Identical(ours.bias!.grad!));
        Assert.Equal(3L, ours.num_batches_tracked!.item<long>());
        Assert.True(reference.running_mean!.Identical(ours.running_mean!));
        Assert.True(reference.running_var!.Identical(ours.running_var!));

        reference.eval();
        ours.eval();
        using var test = Input(50, shift: 0.5f);
        using var expectedEval = reference.forward(test);
        using var actualEval = ours.forward(test);
        Assert.True(expectedEval.Identical(actualEval), "eval forward differs");
        Assert.Equal(3L, ours.num_batches_tracked.item<long>());
    }

    [Fact]
    public void A_null_momentum_keeps_the_cumulative_average_of_the_batch_statistics()
    {
        using var bn = new KeptAliveBatchNorm2d(4, momentum: null);
        var means = new List<Tensor>();
        for (var i = 0; i < 3; i++)
        {
            using var x = Input(i, shift: 2 * i);
            means.Add(x.mean([0L, 2L, 3L]));
            bn.forward(x).Dispose();
        }
        using var average = stack(means).mean([0L]);
        Assert.True(average.allclose(bn.running_mean!, rtol: 1e-5, atol: 1e-6));
        foreach (var m in means) m.Dispose();
    }

    [Fact]
    public void Its_state_dict_has_TorchSharps_names_shapes_dtypes_and_initial_values()
    {
        using var reference = nn.BatchNorm2d(6);
        using var ours = new KeptAliveBatchNorm2d(6);
        Assert.Equal(reference.named_parameters().Select(p => p.name), ours.named_parameters().Select(p => p.name));
        Assert.Equal(reference.named_buffers().Select(b => b.name), ours.named_buffers().Select(b => b.name));
        var (expected, actual) = (reference.state_dict(), ours.state_dict());
        Assert.Equal(["weight", "bias", "running_mean", "running_var", "num_batches_tracked"], actual.Keys);
        foreach (var (name, e) in expected)
        {
            Assert.Equal(e.dtype, actual[name].dtype);
            Assert.Equal(e.shape, actual[name].shape);
            Assert.True(e.Identical(actual[name]), name);
        }
        Assert.Equal(ScalarType.Int64, actual["num_batches_tracked"].dtype);
        Assert.Empty(actual["num_batches_tracked"].shape);
    }

    [Fact]
    public void The_python_conv_bn_checkpoint_reproduces_the_python_modules_output()
    {
        EnsureTorch();
        var fixture = Expected.GetProperty("conv_bn");
        using var net = nn.Sequential(nn.Conv2d(3, 4, 3, padding: 1), new KeptAliveBatchNorm2d(4));
        using var weights = TorchCheckpoint.Load(PathOf("conv_bn.pth"));
        var report = StateDictLoader.Load(net, weights);
        Assert.True(report.IsClean, report.Describe());
        Assert.Equal(7, report.Loaded);
        net.eval();
        var input = fixture.GetProperty("input");
        var output = fixture.GetProperty("output");
        using var x = tensor(input.GetProperty("values").EnumerateArray().Select(v => (float)v.GetDouble()).ToArray()).reshape(Shape(input));
        using var expected = tensor(output.GetProperty("values").EnumerateArray().Select(v => (float)v.GetDouble()).ToArray()).reshape(Shape(output));
        using var y = net.forward(x);
        var diff = (y - expected).abs().max().item<float>();
        Assert.True(diff < 1e-5f, $"max |diff| = {diff}");
        Assert.Equal(3L, net.state_dict()["1.num_batches_tracked"].item<long>());
    }

    [Fact]
    public void A_3d_input_is_rejected_with_its_rank()
    {
        using var bn = new KeptAliveBatchNorm2d(4);
        using var x = zeros(2, 4, 5);
        var e = Assert.Throws<ArgumentException>(() => bn.forward(x));
        Assert.Contains("3D", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_models_use_it_instead_of_TorchSharps_BatchNorm2d()
    {
        using var resnet = new ResNet(ResNetOptions.ResNet50(2).Small(4, [1, 1, 1, 1]));
        using var clip = new ModifiedResNet(ModifiedResNetOptions.ReadConfig(
            Path.Combine(AppContext.BaseDirectory, "fixtures", "reference-small", "clip_rn_small", "config.json")));
        using var generator = new DcganGenerator(new DcganConfig());
        using var discriminator = new DcganDiscriminator(new DcganConfig());
        foreach (var module in new nn.Module[] { resnet, clip, generator, discriminator })
        {
            var norms = module.modules().OfType<TorchSharp.Modules.BatchNorm>().ToList();
            Assert.NotEmpty(norms);
            Assert.All(norms, n => Assert.IsType<KeptAliveBatchNorm2d>(n));
        }
    }
}
