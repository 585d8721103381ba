using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Forensics.ML.Models.Clip;

/// <summary>Every stage's output of one <see cref="ModifiedResNet"/> forward; disposing it disposes them all.</summary>
/// <param name="Stem">Output of the 3-conv stem and its average pool [B, width, H/4, W/4].</param>
/// <param name="Layer1">Output of layer1 [B, width·4, H/4, W/4].</param>
/// <param name="Layer2">Output of layer2 [B, width·8, H/8, W/8].</param>
/// <param name="Layer3">Output of layer3 [B, width·16, H/16, W/16] (LaRE²'s EGRE reads this map).</param>
/// <param name="Layer4">Output of layer4 [B, width·32, H/32, W/32].</param>
/// <param name="Embedding">The attention-pooled embedding [B, OutputDim].</param>
public sealed record ModifiedResNetStages(Tensor Stem, Tensor Layer1, Tensor Layer2, Tensor Layer3, Tensor Layer4, Tensor Embedding)
    : IDisposable
{
    /// <summary>The stages by their state-dict module names (stem, layer1..layer4) and "embedding".</summary>
    public IEnumerable<(string Name, Tensor Tensor)> Named()
    {
        yield return ("stem", Stem);
        yield return ("layer1", Layer1);
        yield return ("layer2", Layer2);
        yield return ("layer3", Layer3);
        yield return ("layer4", Layer4);
        yield return ("embedding", Embedding);
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        foreach (var (_, tensor) in Named()) tensor.Dispose();
    }
}

/// <summary>
/// OpenAI CLIP's image tower for ResNets (clip/model.py, class ModifiedResNet): a 3-conv stem (3x3 stride 2, 3x3,
/// 3x3, each with BatchNorm and ReLU) and a 2x2 average pool instead of torchvision's 7x7 conv and max pool;
/// anti-aliased bottleneck stages layer1..layer4 (<see cref="ClipBottleneck"/>); and an attention pool
/// (<see cref="AttentionPool2d"/>) instead of global average pooling. Field names are OpenAI's, so state-dict keys
/// equal those of a CLIP checkpoint with its "visual." prefix removed.
/// Input: [B, 3, R, R] at the trained resolution R = <see cref="ModifiedResNetOptions.InputResolution"/>, normalised
/// as the caller's training did. Output: the embedding [B, OutputDim] and the layer3 map [B, width·16, R/16, R/16].
/// </summary>
public sealed class ModifiedResNet : nn.Module<Tensor, (Tensor Embedding, Tensor Layer3)>
{
    private readonly Conv2d conv1;
    private readonly KeptAliveBatchNorm2d bn1;
    private readonly ReLU relu1;
    private readonly Conv2d conv2;
    private readonly KeptAliveBatchNorm2d bn2;
    private readonly ReLU relu2;
    private readonly Conv2d conv3;
    private readonly KeptAliveBatchNorm2d bn3;
    private readonly ReLU relu3;
    private readonly AvgPool2d avgpool;
    private readonly Sequential layer1;
    private readonly Sequential layer2;
    private readonly Sequential layer3;
    private readonly Sequential layer4;
    private readonly AttentionPool2d attnpool;

    // The blocks of layer1..layer4, kept typed so forward can release each block's output once the next has run.
    private readonly ClipBottleneck[][] stages;

    /// <summary>The configuration this tower was built from.</summary>
    public ModifiedResNetOptions Options { get; }

    /// <summary>
    /// Builds the tower with CLIP's initialize_parameters for its visual part (attention-pool projections
    /// N(0, embed_dim^-0.5), every block's bn3 weight zero); convs keep PyTorch's default init, as in CLIP.
    /// </summary>
    public ModifiedResNet(ModifiedResNetOptions options) : base(nameof(ModifiedResNet))
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Options = options;
        long width = options.Width;

        conv1 = nn.Conv2d(3, width / 2, kernel_size: 3, stride: 2, padding: 1, bias: false);
        bn1 = new KeptAliveBatchNorm2d(width / 2);
        relu1 = nn.ReLU(inplace: true);
        conv2 = nn.Conv2d(width / 2, width / 2, kernel_size: 3, padding: 1, bias: false);
        bn2 = new KeptAliveBatchNorm2d(width / 2);
        relu2 = nn.ReLU(inplace: true);
        conv3 = nn.Conv2d(width / 2, width, kernel_size: 3, padding: 1, bias: false);
        bn3 = new KeptAliveBatchNorm2d(width);
        relu3 = nn.ReLU(inplace: true);
        avgpool = nn.AvgPool2d(2);

        var inplanes = width;
        stages = new ClipBottleneck[4][];
        for (var s = 0; s < 4; s++)
        {
            var planes = width << s;
            var blocks = new ClipBottleneck[options.Layers[s]];
            for (var b = 0; b < blocks.Length; b++)
            {
                // Stages 2-4 halve the resolution in their first block.
                blocks[b] = new ClipBottleneck(inplanes, planes, stride: b == 0 && s > 0 ? 2 : 1);
                inplanes = planes * ModifiedResNetOptions.Expansion;
            }
            stages[s] = blocks;
        }
        layer1 = nn.Sequential(stages[0]);
        layer2 = nn.Sequential(stages[1]);
        layer3 = nn.Sequential(stages[2]);
        layer4 = nn.Sequential(stages[3]);
        attnpool = new AttentionPool2d(options.GridSize, options.EmbedDim, options.Heads, options.OutputDim);
        RegisterComponents();

        using var _ = no_grad();
        foreach (var block in stages.SelectMany(blocks => blocks))
            block.LastNorm.weight.zero_();
    }

    /// <summary>The embedding [B, OutputDim] and the layer3 feature map of an input [B, 3, R, R].</summary>
    public override (Tensor Embedding, Tensor Layer3) forward(Tensor x)
    {
        var (embedding, layer3Out, _) = Run(x, keepAll: false);
        return (embedding, layer3Out);
    }

    /// <summary>The attention-pooled embedding [B, OutputDim] alone (CLIP's encode_image).</summary>
    public Tensor Encode(Tensor x)
    {
        var (embedding, layer3Out) = forward(x);
        layer3Out.Dispose();
        return embedding;
    }

    /// <summary>Every stage's output (stem, layer1..layer4, embedding) of one forward, for inspection and tests.</summary>
    public ModifiedResNetStages ForwardStages(Tensor x)
    {
        var (embedding, _, kept) = Run(x, keepAll: true);
        return new ModifiedResNetStages(kept![0], kept[1], kept[2], kept[3], kept[4], embedding);
    }

    /// <summary>
    /// The side of the token grid an input side of <paramref name="size"/> pixels reaches after layer4: the stem conv
    /// (3x3, stride 2, padding 1) then four floor-halvings (stem pool, layer2..4 pools).
    /// </summary>
    public static long GridAfterLayer4(long size)
    {
        var side = size < 1 ? 0 : (size - 1) / 2 + 1;
        for (var i = 0; i < 4; i++) side /= 2;
        return side;
    }

    private (Tensor Embedding, Tensor Layer3, Tensor[]? Kept) Run(Tensor x, bool keepAll)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (x.dim() != 4 || x.shape[1] != 3)
            throw new ArgumentException($"ModifiedResNet input must be [B, 3, H, W], got [{string.Join(", ", x.shape)}].", nameof(x));
        if (!x.is_floating_point())
            throw new ArgumentException($"ModifiedResNet input must be a floating-point tensor, got {x.dtype}.", nameof(x));
        CheckGrid(x.shape[2], x.shape[3]);

        var kept = keepAll ? new Tensor[5] : null;
        var layer3Out = (Tensor?)null;
        // OpenAI casts the input to the weights' dtype (float16 checkpoints run in half precision).
        var weightType = conv1.weight.dtype;
        var a = x.dtype == weightType ? conv1.call(x) : ConvertedConv(x, weightType);
        var t = bn1.call(a); a.Dispose();
        relu1.call(t);
        a = conv2.call(t); t.Dispose();
        t = bn2.call(a); a.Dispose();
        relu2.call(t);
        a = conv3.call(t); t.Dispose();
        t = bn3.call(a); a.Dispose();
        relu3.call(t);
        a = avgpool.call(t); t.Dispose();
        if (kept is not null) kept[0] = a;

        // True while `a` is a stage output handed to the caller, which a later block must not dispose.
        var aIsKept = kept is not null;
        for (var s = 0; s < stages.Length; s++)
        {
            foreach (var block in stages[s])
            {
                t = block.call(a);
                if (!aIsKept) a.Dispose();
                a = t;
                aIsKept = false;
            }
            if (kept is not null) kept[s + 1] = a;
            if (s == 2) layer3Out = a;
            aIsKept = kept is not null || s == 2;
        }
        var embedding = attnpool.call(a);
        if (!aIsKept) a.Dispose();
        return (embedding, layer3Out!, kept);
    }

    private Tensor ConvertedConv(Tensor x, ScalarType weightType)
    {
        using var converted = x.to_type(weightType);
        return conv1.call(converted);
    }

    private void CheckGrid(long height, long width)
    {
        long gridH = GridAfterLayer4(height), gridW = GridAfterLayer4(width);
        var tokens = attnpool.Tokens;
        // OpenAI's code only needs the token count to match the positional embedding's rows.
        if (gridH * gridW + 1 == tokens) return;
        var grid = Options.GridSize;
        throw new ArgumentException(
            $"ModifiedResNet: a {height}x{width} input gives a {gridH}x{gridW} grid after layer4 ({gridH * gridW + 1} tokens with " +
            $"the mean token), but the attention pool's positional embedding has {tokens} rows, for a {grid}x{grid} grid: " +
            $"the tower was built for {Options.InputResolution}x{Options.InputResolution} inputs. OpenAI's CLIP does not " +
            "interpolate the positional embedding; resize or crop the input to the trained resolution.");
    }
}
