using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Forensics.ML.Models;

/// <summary>
/// A bottleneck ResNet in torchvision's exact layout (ResNet-50 by default) or the alignment paper's res50nodown
/// variant, chosen by <see cref="ResNetOptions"/>. Field names equal torchvision's attribute names, so
/// <c>state_dict()</c> keys and shapes equal torchvision's (conv1, bn1, layer1.0.downsample.1.num_batches_tracked, …,
/// fc.weight, fc.bias); relu, maxpool, avgpool and dropout hold no state and add no keys.
/// Input: an ImageNet-normalised float32 batch [B, 3, H, W] of any size (the head pools globally, so full images need
/// no resizing). Output: logits [B, NumClasses].
/// </summary>
public sealed class ResNet : nn.Module<Tensor, Tensor>
{
    private readonly Conv2d conv1;
    private readonly KeptAliveBatchNorm2d bn1;
    private readonly ReLU relu;
    private readonly MaxPool2d maxpool;
    private readonly Sequential layer1;
    private readonly Sequential layer2;
    private readonly Sequential layer3;
    private readonly Sequential layer4;
    private readonly AdaptiveAvgPool2d avgpool;
    private readonly Dropout? dropout;
    private readonly Linear fc;

    // The same blocks as layer1..layer4, kept typed so forward can release each block's output as soon as it is used.
    private readonly Bottleneck[][] stages;

    /// <summary>The configuration this network was built from.</summary>
    public ResNetOptions Options { get; }

    /// <summary>Length of the pooled feature vector (<see cref="Features"/>): 2048 for ResNet-50.</summary>
    public int FeatureCount => Options.FeatureCount;

    /// <summary>Builds the network with torchvision's init: conv weights kaiming-normal (fan_out, relu), BatchNorm 1/0,
    /// optional zero-init of each block's bn3, and fc per <see cref="ResNetOptions.FcInitStd"/>.</summary>
    public ResNet(ResNetOptions options) : base(nameof(ResNet))
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Options = options;
        long width = options.BaseWidth;

        conv1 = nn.Conv2d(3, width, kernel_size: 7, stride: options.StemStride, padding: 3, bias: false);
        bn1 = new KeptAliveBatchNorm2d(width, eps: 1e-5, momentum: 0.1);
        relu = nn.ReLU(inplace: true);
        maxpool = nn.MaxPool2d(kernel_size: 3, stride: options.MaxPoolStride, padding: 1);

        var inplanes = width;
        stages = new Bottleneck[4][];
        for (var s = 0; s < 4; s++)
        {
            var planes = width << s;
            var blocks = new Bottleneck[options.Layers[s]];
            for (var b = 0; b < blocks.Length; b++)
            {
                // v1.5: the first block of stages 2-4 halves the resolution in its 3x3 conv.
                blocks[b] = new Bottleneck(inplanes, planes, stride: b == 0 && s > 0 ? 2 : 1);
                inplanes = planes * ResNetOptions.Expansion;
            }
            stages[s] = blocks;
        }
        layer1 = nn.Sequential(stages[0]);
        layer2 = nn.Sequential(stages[1]);
        layer3 = nn.Sequential(stages[2]);
        layer4 = nn.Sequential(stages[3]);
        avgpool = nn.AdaptiveAvgPool2d(1);
        if (options.Dropout > 0) dropout = nn.Dropout(options.Dropout);
        fc = nn.Linear(options.FeatureCount, options.NumClasses);
        RegisterComponents();

        foreach (var module in modules())
            if (module is Conv2d conv)
                nn.init.kaiming_normal_(conv.weight, mode: nn.init.FanInOut.FanOut, nonlinearity: nn.init.NonlinearityType.ReLU);
        if (options.ZeroInitResidual)
            foreach (var block in stages.SelectMany(blocks => blocks))
                block.ZeroInitLastNorm();
        if (options.FcInitStd is { } std)
            nn.init.normal_(fc.weight, 0, std);
    }

    /// <summary>The globally average-pooled last-stage features [B, FeatureCount] of an input [B, 3, H, W].</summary>
    public Tensor Features(Tensor x)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (x.dim() != 4 || x.shape[1] != 3)
            throw new ArgumentException($"ResNet input must be [B, 3, H, W], got [{string.Join(", ", x.shape)}].", nameof(x));
        if (!x.is_floating_point())
            throw new ArgumentException($"ResNet input must be a floating-point tensor, got {x.dtype}.", nameof(x));

        var a = conv1.call(x);
        var t = bn1.call(a); a.Dispose();
        relu.call(t);
        a = maxpool.call(t); t.Dispose();
        foreach (var block in stages.SelectMany(blocks => blocks))
        {
            t = block.call(a); a.Dispose();
            a = t;
        }
        t = avgpool.call(a); a.Dispose();
        a = t.flatten(1); t.Dispose();
        return a;
    }

    /// <summary>Logits [B, NumClasses] of an ImageNet-normalised batch [B, 3, H, W] of any size.</summary>
    public override Tensor forward(Tensor x)
    {
        using var features = Features(x);
        if (dropout is null) return fc.call(features);
        using var dropped = dropout.call(features);
        return fc.call(dropped);
    }
}
