using Forensics.ML.Lare2;
using Forensics.ML.Runtime;
using static TorchSharp.torch;
using Forensics.ML.Tests.Models;

namespace Forensics.ML.Tests.Lare2;

/// <summary>LaRE²'s dropout: nn.Dropout's semantics, masks from the trainer's generator whatever else draws from the global one.</summary>
public class SeededDropoutTests
{
    public SeededDropoutTests() => TorchRuntime.EnsureLoaded();

    [Fact]
    public void Masks_follow_the_generator_alone_and_keep_dropouts_semantics()
    {
        using var x = ones(200, 50);
        using var dropout = new SeededDropout(0.25);
        using var rng = new Generator(7);
        dropout.Generator = rng;
        dropout.train();

        rng.manual_seed(11);
        using var a = dropout.call(x);
        rng.manual_seed(11);
        using (randn(1000)) { } // another user of torch's global generator in between
        manual_seed(12345);
        using var b = dropout.call(x);
        Assert.True(a.eq(b).all().item<bool>(), "the same generator seed gave another mask");

        // Zeroed with probability 0.25, the rest scaled by 1/(1-p).
        var values = a.data<float>().ToArray();
        var zeroed = values.Count(v => v == 0) / (double)values.Length;
        Assert.InRange(zeroed, 0.22, 0.28);
        Assert.All(values.Where(v => v != 0), v => Assert.Equal(1 / 0.75f, v, 5));

        rng.manual_seed(12);
        using var c = dropout.call(x);
        Assert.False(a.eq(c).all().item<bool>(), "another seed gave the same mask");

        dropout.eval();
        using var e = dropout.call(x);
        Assert.True(e.eq(x).all().item<bool>(), "eval mode must be the identity");
    }

    [Fact]
    public void Every_LaRE2_dropout_gets_the_trainers_generator()
    {
        using var model = new Lare2Classifier(Lare2Fixtures.Small());
        using var rng = new Generator(1);
        Assert.True(SeededDropout.UseGenerator(model, rng) >= 2);
        Assert.DoesNotContain(model.named_modules(), m => m.module is TorchSharp.Modules.Dropout);
    }
}
