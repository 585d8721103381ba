using Forensics.ML.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Forensics.ML.Models;

/// <summary>
/// torchvision's ResNet v1.5 bottleneck: 1x1 conv → 3x3 conv (carrying the stride) → 1x1 conv widening by
/// <see cref="ResNetOptions.Expansion"/>, each followed by BatchNorm (eps 1e-5, momentum 0.1), plus a shortcut that is
/// the identity or, when the shape changes, <c>downsample</c> = Sequential(conv1x1 with the stride, BatchNorm2d).
/// Field names are torchvision's attribute names, so state-dict keys read conv1.weight, bn1.running_mean, downsample.0.weight…
/// </summary>
public sealed class Bottleneck : nn.Module<Tensor, Tensor>
{
    private readonly Conv2d conv1;
    private readonly KeptAliveBatchNorm2d bn1;
    private readonly Conv2d conv2;
    private readonly KeptAliveBatchNorm2d bn2;
    private readonly Conv2d conv3;
    private readonly KeptAliveBatchNorm2d bn3;
    private readonly ReLU relu;
    private readonly Sequential? downsample;

    /// <summary>A block reading <paramref name="inplanes"/> channels and writing planes · 4, striding its 3x3 conv.</summary>
    public Bottleneck(long inplanes, long planes, long stride = 1) : base(nameof(Bottleneck))
    {
        var outplanes = planes * ResNetOptions.Expansion;
        conv1 = nn.Conv2d(inplanes, planes, kernel_size: 1, bias: false);
        bn1 = new KeptAliveBatchNorm2d(planes, eps: 1e-5, momentum: 0.1);
        conv2 = nn.Conv2d(planes, planes, kernel_size: 3, stride: stride, padding: 1, bias: false);
        bn2 = new KeptAliveBatchNorm2d(planes, eps: 1e-5, momentum: 0.1);
        conv3 = nn.Conv2d(planes, outplanes, kernel_size: 1, bias: false);
        bn3 = new KeptAliveBatchNorm2d(outplanes, eps: 1e-5, momentum: 0.1);
        relu = nn.ReLU(inplace: true);
        if (stride != 1 || inplanes != outplanes)
            downsample = nn.Sequential(
                nn.Conv2d(inplanes, outplanes, kernel_size: 1, stride: stride, bias: false),
                new KeptAliveBatchNorm2d(outplanes, eps: 1e-5, momentum: 0.1));
        RegisterComponents();
    }

    /// <summary>Zeroes bn3's weight so the residual branch starts at zero and the block starts as its shortcut.</summary>
    public void ZeroInitLastNorm()
    {
        using var _ = no_grad();
        bn3.weight.zero_();
    }

    /// <inheritdoc/>
    public override Tensor forward(Tensor x)
    {
        // Intermediates are released as soon as the next op has run: full-resolution inputs make them large, and
        // autograd keeps its own references to whatever backward needs.
        var a = conv1.call(x);
        var t = bn1.call(a); a.Dispose();
        relu.call(t);
        a = conv2.call(t); t.Dispose();
        t = bn2.call(a); a.Dispose();
        relu.call(t);
        a = conv3.call(t); t.Dispose();
        var output = bn3.call(a); a.Dispose();
        if (downsample is null)
            output.AddInPlace(x);
        else
            using (var shortcut = downsample.call(x))
                output.AddInPlace(shortcut);
        return relu.call(output);
    }
}
