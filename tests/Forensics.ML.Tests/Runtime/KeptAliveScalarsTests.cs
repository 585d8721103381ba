using Forensics.ML.Runtime;
using TorchSharp;
using static Forensics.ML.Tests.Runtime.KeptAliveFixtures;
using static TorchSharp.torch;

namespace Forensics.ML.Tests.Runtime;

public class KeptAliveScalarsTests
{
    public KeptAliveScalarsTests() => TorchRuntime.EnsureLoaded();

    private static Tensor Sample(ulong seed)
    {
        using var generator = new Generator(seed);
        return randn([3, 5, 7], generator: generator);
    }

    [Fact]
    public void Each_helper_equals_the_TorchSharp_operator_it_replaces_bit_for_bit()
    {
        using var a = Sample(1);
        using var b = Sample(2);
        using var positive = a.abs().Plus(0.1);
        var pairs = new (string Name, Func<Tensor> Helper, Func<Tensor> Operator)[]
        {
            ("Plus(tensor)", () => a.Plus(b), () => a + b),
            ("Plus(number)", () => a.Plus(0.37), () => a + 0.37),
            ("Minus", () => a.Minus(1), () => a - 1),
            ("SubtractedFrom", () => a.SubtractedFrom(1.0), () => 1.0 - a),
            ("Times", () => a.Times(0.7f), () => a * 0.7f),
            ("DividedBy", () => a.DividedBy(0.18215), () => a / 0.18215),
            ("Power", () => positive.Power(0.5), () => positive.pow(0.5)),
            ("ClampTo", () => a.ClampTo(-0.5, 0.5), () => a.clamp(-0.5, 0.5)),
            ("AddInPlace(tensor)", () => a.clone().AddInPlace(b), () => a.clone().add_(b)),
            ("AddInPlace(number)", () => a.clone().AddInPlace(0.5), () => a.clone().add_(0.5)),
            ("SubInPlace", () => a.clone().SubInPlace(1), () => a.clone().sub_(1)),
            ("MulInPlace", () => a.clone().MulInPlace(255), () => a.clone().mul_(255)),
            ("DivInPlace", () => a.clone().DivInPlace(255f), () => a.clone().div_(255f)),
            ("ClampInPlace", () => a.clone().ClampInPlace(0f, 1f), () => a.clone().clamp_(0f, 1f)),
        };
        foreach (var (name, helper, op) in pairs)
        {
            using var expected = op();
            using var actual = helper();
            Assert.True(expected.Identical(actual), name);
        }
        using var one = tensor(2.5);
        Assert.Equal(2.5, one.ItemAsDouble());
        Assert.Equal(2.5f, one.ItemAsSingle());
    }
}
