using Forensics.ML.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using Forensics.ML.Training;
using Forensics.ML.Evaluation;
using Forensics.ML.Models;

namespace Forensics.ML.Lare2;

/// <summary>
/// EGRE's spatial refinement, the authors' MultiHeadMapAttention (LaRE model_base.py): the layer3 map's G² tokens with
/// their mean prepended, plus a learned positional embedding [G² + 1, d_model] (randn / √d_model), give one query (the
/// mean token) attending over all G² + 1 tokens through <see cref="MapAttention"/>, whose logits get the per-head LaRE
/// logit map (also mean-prepended); then dropout and LayerNorm(query + output). Names are theirs: attention,
/// dropout, layer_norm, positional_embedding. (Their identity_map_reordering option defaults to off and is not used.)
/// </summary>
public sealed class SpatialRefinement : nn.Module<Tensor, Tensor, Tensor>
{
    private readonly MapAttention attention;
    private readonly SeededDropout dropout;
    private readonly LayerNorm layer_norm;
    private readonly Parameter positional_embedding;

    /// <summary>The sizes this branch was built from.</summary>
    public EgreOptions Options { get; }

    /// <summary>Builds the branch with the authors' initialisation.</summary>
    public SpatialRefinement(EgreOptions options) : base("MultiHeadMapAttention")
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Options = options;
        attention = new MapAttention(options.ModelDim, options.Heads, options.KeyDim, options.ValueDim, options.AttentionDropout);
        dropout = new SeededDropout(options.Dropout);
        layer_norm = nn.LayerNorm(options.ModelDim);
        positional_embedding = new Parameter(randn(options.Tokens, options.ModelDim).div_(Math.Sqrt(options.ModelDim)));
        RegisterComponents();
    }

    /// <summary>
    /// The refined feature [B, d_model] of a layer3 map <paramref name="featureMap"/> [B, d_model, G, G] guided by
    /// <paramref name="lareLogits"/> [B, heads, G, G] (the pooled LaRE map after the 1x1 conv).
    /// </summary>
    public override Tensor forward(Tensor featureMap, Tensor lareLogits)
    {
        ArgumentNullException.ThrowIfNull(featureMap);
        ArgumentNullException.ThrowIfNull(lareLogits);
        long g = Options.GridSize;
        if (featureMap.dim() != 4 || featureMap.shape[1] != Options.ModelDim || featureMap.shape[2] != g || featureMap.shape[3] != g)
            throw new ArgumentException(
                $"SpatialRefinement: the feature map must be [B, {Options.ModelDim}, {g}, {g}], got [{string.Join(", ", featureMap.shape)}].",
                nameof(featureMap));
        if (lareLogits.dim() != 4 || lareLogits.shape[0] != featureMap.shape[0] || lareLogits.shape[1] != Options.Heads
            || lareLogits.shape[2] != g || lareLogits.shape[3] != g)
            throw new ArgumentException(
                $"SpatialRefinement: the LaRE logit map must be [B={featureMap.shape[0]}, {Options.Heads}, {g}, {g}], got " +
                $"[{string.Join(", ", lareLogits.shape)}].", nameof(lareLogits));

        using var scope = NewDisposeScope();
        var tokens = featureMap.flatten(2).permute(0, 2, 1);                        // [B, G², C]
        tokens = cat([tokens.mean([1], keepdim: true), tokens], 1);                 // [B, G²+1, C]
        var guide = lareLogits.flatten(2).permute(0, 2, 1);                         // [B, G², h]
        guide = cat([guide.mean([1], keepdim: true), guide], 1);                    // [B, G²+1, h]
        tokens = tokens.Plus(positional_embedding.unsqueeze(0).to(tokens.dtype));
        var query = tokens.narrow(1, 0, 1);                                         // the mean token, position included
        var output = dropout.call(attention.call(query, tokens, tokens, guide));
        return layer_norm.call(query.Plus(output)).squeeze(1).MoveToOuterDisposeScope();
    }
}
