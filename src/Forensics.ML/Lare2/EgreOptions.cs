using Forensics.ML.Models.Clip;
using Forensics.ML.Training;
using Forensics.ML.Evaluation;
using Forensics.ML.Models;

namespace Forensics.ML.Lare2;

/// <summary>
/// Sizes of LaRE²'s error-guided refinement (EGRE), named after the authors' MultiHeadMapAttention /
/// ScaledDotProductWithMapAttention / ChannelAlignLayer arguments. The defaults are the released model's: CLIP RN50's
/// layer3 (1024 channels on a 14x14 grid), 8 heads of d_k = d_v = 64, dropout 0.1, a 4-channel LaRE map and a 128-wide
/// channel gate. <see cref="For"/> sizes it from any <see cref="ModifiedResNetOptions"/>.
/// </summary>
public sealed record EgreOptions
{
    /// <summary>Channels of the refined feature map (their d_in = d_out): the backbone's layer3 channels.</summary>
    public int ModelDim { get; init; } = 1024;

    /// <summary>Attention heads (their h); the LaRE map is projected to one logit map per head.</summary>
    public int Heads { get; init; } = 8;

    /// <summary>Query/key width per head (their d_k).</summary>
    public int KeyDim { get; init; } = 64;

    /// <summary>Value width per head (their d_v).</summary>
    public int ValueDim { get; init; } = 64;

    /// <summary>Dropout after the attention's output projection (MultiHeadMapAttention's dropout argument).</summary>
    public double Dropout { get; init; } = 0.1;

    /// <summary>
    /// Dropout on the attention weights after the softmax. The authors' MultiHeadMapAttention does not pass its dropout
    /// to ScaledDotProductWithMapAttention, whose own default 0.1 applies, so this is a separate setting.
    /// </summary>
    public double AttentionDropout { get; init; } = 0.1;

    /// <summary>Channels of the LaRE map (the SD latent's 4).</summary>
    public int LareChannels { get; init; } = 4;

    /// <summary>Hidden width of the channel gate (ChannelAlignLayer's mid_dim).</summary>
    public int Hidden { get; init; } = 128;

    /// <summary>Side of the layer3 grid (their spacial_dim, 14 at 224): the positional embedding has GridSize² + 1 rows.</summary>
    public int GridSize { get; init; } = 14;

    /// <summary>Tokens the attention sees: the grid plus the mean token prepended.</summary>
    public int Tokens => GridSize * GridSize + 1;

    /// <summary>The released model's sizes, for CLIP RN50 at 224x224.</summary>
    public static EgreOptions RN50 => new();

    /// <summary>
    /// EGRE sized from a backbone: <see cref="ModelDim"/> = its layer3 channels, <see cref="GridSize"/> = the side of its
    /// layer3 map at its input resolution; heads, d_k, d_v and hidden width keep the authors' values unless given.
    /// </summary>
    public static EgreOptions For(ModifiedResNetOptions backbone, int heads = 8, int keyDim = 64, int valueDim = 64, int hidden = 128)
    {
        ArgumentNullException.ThrowIfNull(backbone);
        return new EgreOptions
        {
            ModelDim = backbone.Layer3Channels,
            GridSize = checked((int)Layer3Grid(backbone.InputResolution)),
            Heads = heads,
            KeyDim = keyDim,
            ValueDim = valueDim,
            Hidden = hidden,
        };
    }

    /// <summary>
    /// The side of a ModifiedResNet's layer3 map for an input side of <paramref name="size"/> pixels: the stem conv
    /// (3x3, stride 2, padding 1) then three floor-halvings (stem pool, layer2, layer3); 14 for 224.
    /// </summary>
    public static long Layer3Grid(long size)
    {
        var side = size < 1 ? 0 : (size - 1) / 2 + 1;
        for (var i = 0; i < 3; i++) side /= 2;
        return side;
    }

    /// <summary>Throws an <see cref="ArgumentException"/> naming the first field that cannot build EGRE.</summary>
    public void Validate()
    {
        static void Positive(int value, string name)
        {
            if (value < 1) throw new ArgumentException($"EgreOptions.{name} must be positive, got {value}.");
        }
        Positive(ModelDim, nameof(ModelDim));
        Positive(Heads, nameof(Heads));
        Positive(KeyDim, nameof(KeyDim));
        Positive(ValueDim, nameof(ValueDim));
        Positive(LareChannels, nameof(LareChannels));
        Positive(Hidden, nameof(Hidden));
        Positive(GridSize, nameof(GridSize));
        if (Dropout is < 0 or >= 1 || double.IsNaN(Dropout))
            throw new ArgumentException($"EgreOptions.Dropout must be in [0, 1), got {Dropout}.");
        if (AttentionDropout is < 0 or >= 1 || double.IsNaN(AttentionDropout))
            throw new ArgumentException($"EgreOptions.AttentionDropout must be in [0, 1), got {AttentionDropout}.");
    }
}

/// <summary>
/// Ablations of the LaRE² classifier, applied at forward time so that a trained checkpoint can be evaluated with them.
/// The head always keeps its full input (embedding, spatial, channel): a switched-off branch contributes zeros of its
/// shape [B, ModelDim], so checkpoints of the authors' layout load and run unchanged.
/// </summary>
[Flags]
public enum EgreAblation
{
    /// <summary>The released model: both branches, the real LaRE map.</summary>
    None = 0,

    /// <summary>The spatial branch (LaRE-guided attention pooling) is not run; its 1024 head inputs are zeros.</summary>
    NoSpatial = 1,

    /// <summary>The channel branch (LaRE-gated pooled features) is not run; its 1024 head inputs are zeros.</summary>
    NoChannel = 2,

    /// <summary>
    /// The LaRE map is replaced by zeros before both branches. The spatial branch then adds the same per-head conv bias to
    /// every token's logit, which the softmax ignores (plain attention pooling), and the channel gate becomes
    /// sigmoid(0) = 0.5 for every channel (its linears have no bias).
    /// </summary>
    ZeroLare = 4,
}

/// <summary>
/// The whole LaRE² classifier: OpenAI CLIP's ModifiedResNet image tower (<see cref="Backbone"/>) and EGRE
/// (<see cref="Egre"/>), whose head reads Backbone.OutputDim + 2 · ModelDim features (3072 for RN50) and writes
/// <see cref="NumClasses"/> logits.
/// </summary>
public sealed record Lare2Options
{
    /// <summary>Logits of the head: real, fake (score = softmax[:, 1]), as in the authors' nn.Linear(1024 * 3, 2).</summary>
    public const int NumClasses = 2;

    /// <summary>The image tower (CLIP RN50 by default).</summary>
    public ModifiedResNetOptions Backbone { get; init; } = ModifiedResNetOptions.RN50;

    /// <summary>The refinement sizes; must agree with <see cref="Backbone"/>'s layer3 (see <see cref="Validate"/>).</summary>
    public EgreOptions Egre { get; init; } = EgreOptions.RN50;

    /// <summary>Ablation applied by a freshly built classifier's forward (changeable later on the classifier).</summary>
    public EgreAblation Ablation { get; init; } = EgreAblation.None;

    /// <summary>Inputs of the head: the attention-pooled embedding, the spatial and the channel branch, concatenated.</summary>
    public int HeadInputs => Backbone.OutputDim + 2 * Egre.ModelDim;

    /// <summary>The released configuration: CLIP RN50 at 224x224 with EGRE on its 1024x14x14 layer3.</summary>
    public static Lare2Options RN50 => new();

    /// <summary>A classifier on <paramref name="backbone"/> with EGRE sized from it (<see cref="EgreOptions.For"/>).</summary>
    public static Lare2Options For(ModifiedResNetOptions backbone, int heads = 8, int keyDim = 64, int valueDim = 64, int hidden = 128) =>
        new() { Backbone = backbone, Egre = EgreOptions.For(backbone, heads, keyDim, valueDim, hidden) };

    /// <summary>Throws an <see cref="ArgumentException"/> when a part is invalid or EGRE does not fit the backbone's layer3.</summary>
    public void Validate()
    {
        ArgumentNullException.ThrowIfNull(Backbone, nameof(Backbone));
        ArgumentNullException.ThrowIfNull(Egre, nameof(Egre));
        Backbone.Validate();
        Egre.Validate();
        if (Egre.ModelDim != Backbone.Layer3Channels)
            throw new ArgumentException(
                $"Lare2Options: EGRE's ModelDim {Egre.ModelDim} must equal the backbone's layer3 channels {Backbone.Layer3Channels}.");
        var grid = EgreOptions.Layer3Grid(Backbone.InputResolution);
        if (Egre.GridSize != grid)
            throw new ArgumentException(
                $"Lare2Options: EGRE's GridSize {Egre.GridSize} must equal the backbone's layer3 side {grid} at " +
                $"{Backbone.InputResolution}x{Backbone.InputResolution} inputs.");
    }
}
