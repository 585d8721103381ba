using Forensics.ML.Runtime;
using TorchSharp;
using static TorchSharp.torch;
using Forensics.ML.Training;
using Forensics.ML.Evaluation;
using Forensics.ML.Models;

namespace Forensics.ML.Lare2;

/// <summary>
/// Dropout (torch.nn.Dropout's semantics: in training, each element is zeroed with probability p and the rest scaled by
/// 1/(1-p); identity in eval mode, so inference is unchanged) whose mask is drawn from <see cref="Generator"/> when one
/// is set, else from torch's global generator. A trainer that sets its own generator makes its dropout draws a function
/// of (seed, epoch, step) alone: another thread of the same process drawing from the global generator (a model being
/// built, another job) can no longer interleave with them, which would change a resumed run's weights.
/// </summary>
public sealed class SeededDropout : nn.Module<Tensor, Tensor>
{
    private readonly double p;

    /// <summary>The generator the masks are drawn from (null: torch's global generator).</summary>
    public Generator? Generator { get; set; }

    public SeededDropout(double p) : base("Dropout")
    {
        if (p is < 0 or > 1) throw new ArgumentOutOfRangeException(nameof(p), p, "dropout probability must be in [0, 1]");
        this.p = p;
    }

    public override Tensor forward(Tensor input)
    {
        if (!training || p == 0) return input.alias();
        if (p == 1) return zeros_like(input);
        using var keep = empty_like(input).bernoulli_(1 - p, Generator);
        using var kept = input.mul(keep);
        return kept.DividedBy(1 - p);
    }

    /// <summary>Sets <paramref name="generator"/> on every <see cref="SeededDropout"/> in <paramref name="model"/>; returns how many.</summary>
    public static int UseGenerator(nn.Module model, Generator? generator)
    {
        var count = 0;
        foreach (var (_, module) in model.named_modules())
            if (module is SeededDropout d) { d.Generator = generator; count++; }
        return count;
    }
}
