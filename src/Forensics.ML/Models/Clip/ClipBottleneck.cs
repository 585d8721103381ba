using Forensics.ML.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Forensics.ML.Models.Clip;

/// <summary>
/// CLIP's anti-aliased bottleneck (clip/model.py, class Bottleneck): 1x1 conv → 3x3 conv, both at stride 1, then a
/// 2x2 average pool when the block down-samples, then a 1x1 conv widening by 4; each conv is followed by BatchNorm.
/// The shortcut, when the shape changes, is <c>downsample</c> = Sequential("-1": AvgPool2d(stride), "0": 1x1 conv,
/// "1": BatchNorm2d), so its state-dict keys read downsample.0.weight and downsample.1.running_mean as in OpenAI's files.
/// </summary>
public sealed class ClipBottleneck : nn.Module<Tensor, Tensor>
{
    private readonly Conv2d conv1;
    private readonly KeptAliveBatchNorm2d bn1;
    private readonly ReLU relu1;
    private readonly Conv2d conv2;
    private readonly KeptAliveBatchNorm2d bn2;
    private readonly ReLU relu2;
    private readonly AvgPool2d? avgpool;
    private readonly Conv2d conv3;
    private readonly KeptAliveBatchNorm2d bn3;
    private readonly ReLU relu3;
    private readonly Sequential? downsample;

    /// <summary>A block reading <paramref name="inplanes"/> channels and writing planes · 4, average-pooling by <paramref name="stride"/>.</summary>
    public ClipBottleneck(long inplanes, long planes, long stride = 1) : base("Bottleneck")
    {
        var outplanes = planes * ModifiedResNetOptions.Expansion;
        conv1 = nn.Conv2d(inplanes, planes, kernel_size: 1, bias: false);
        bn1 = new KeptAliveBatchNorm2d(planes);
        relu1 = nn.ReLU(inplace: true);
        conv2 = nn.Conv2d(planes, planes, kernel_size: 3, padding: 1, bias: false);
        bn2 = new KeptAliveBatchNorm2d(planes);
        relu2 = nn.ReLU(inplace: true);
        if (stride > 1) avgpool = nn.AvgPool2d(stride);
        conv3 = nn.Conv2d(planes, outplanes, kernel_size: 1, bias: false);
        bn3 = new KeptAliveBatchNorm2d(outplanes);
        relu3 = nn.ReLU(inplace: true);
        if (stride > 1 || inplanes != outplanes)
            downsample = nn.Sequential(
                ("-1", (nn.Module<Tensor, Tensor>)nn.AvgPool2d(stride)),
                ("0", nn.Conv2d(inplanes, outplanes, kernel_size: 1, bias: false)),
                ("1", new KeptAliveBatchNorm2d(outplanes)));
        RegisterComponents();
    }

    /// <summary>The last BatchNorm, which CLIP's initialize_parameters zeroes so each block starts as its shortcut.</summary>
    internal KeptAliveBatchNorm2d LastNorm => bn3;

    /// <inheritdoc/>
    public override Tensor forward(Tensor x)
    {
        // Each intermediate is released once the next op has consumed it: at 224 and above they are large.
        var a = conv1.call(x);
        var t = bn1.call(a); a.Dispose();
        relu1.call(t);
        a = conv2.call(t); t.Dispose();
        t = bn2.call(a); a.Dispose();
        relu2.call(t);
        if (avgpool is not null)
        {
            a = avgpool.call(t); t.Dispose();
            t = a;
        }
        a = conv3.call(t); t.Dispose();
        var output = bn3.call(a); a.Dispose();
        if (downsample is null)
            output.AddInPlace(x);
        else
            using (var identity = downsample.call(x))
                output.AddInPlace(identity);
        return relu3.call(output);
    }
}
