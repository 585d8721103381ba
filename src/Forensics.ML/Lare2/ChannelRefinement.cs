using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using Forensics.ML.Training;
using Forensics.ML.Evaluation;
using Forensics.ML.Models;

namespace Forensics.ML.Lare2;

/// <summary>
/// EGRE's channel refinement, the authors' ChannelAlignLayer (LaRE model.py): a gate from the globally averaged LaRE
/// map, fc = Sequential(Linear(lare_channels → hidden, no bias), ReLU, Linear(hidden → d_model, no bias), Sigmoid),
/// multiplies the globally averaged layer3 features. Names are theirs (fc.0.weight, fc.2.weight).
/// </summary>
public sealed class ChannelRefinement : nn.Module<Tensor, Tensor, Tensor>
{
    private readonly Sequential fc;

    /// <summary>The sizes this branch was built from.</summary>
    public EgreOptions Options { get; }

    /// <summary>Builds the gate with PyTorch's default Linear initialisation, as the authors do.</summary>
    public ChannelRefinement(EgreOptions options) : base("ChannelAlignLayer")
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Options = options;
        fc = nn.Sequential(
            nn.Linear(options.LareChannels, options.Hidden, hasBias: false),
            nn.ReLU(inplace: true),
            nn.Linear(options.Hidden, options.ModelDim, hasBias: false),
            nn.Sigmoid());
        RegisterComponents();
    }

    /// <summary>
    /// GAP(<paramref name="featureMap"/>) [B, d_model] times the gate of GAP(<paramref name="lare"/>) [B, lare_channels];
    /// the LaRE map is averaged at its own resolution (the authors pass the unpooled map here).
    /// </summary>
    public override Tensor forward(Tensor featureMap, Tensor lare)
    {
        ArgumentNullException.ThrowIfNull(featureMap);
        ArgumentNullException.ThrowIfNull(lare);
        if (featureMap.dim() != 4 || featureMap.shape[1] != Options.ModelDim)
            throw new ArgumentException(
                $"ChannelRefinement: the feature map must be [B, {Options.ModelDim}, H, W], got [{string.Join(", ", featureMap.shape)}].",
                nameof(featureMap));
        if (lare.dim() != 4 || lare.shape[0] != featureMap.shape[0] || lare.shape[1] != Options.LareChannels)
            throw new ArgumentException(
                $"ChannelRefinement: the LaRE map must be [B={featureMap.shape[0]}, {Options.LareChannels}, h, w], got " +
                $"[{string.Join(", ", lare.shape)}].", nameof(lare));

        using var scope = NewDisposeScope();
        var pooledFeatures = featureMap.mean([2, 3]);   // [B, d_model]
        var gate = fc.call(lare.mean([2, 3]));          // [B, d_model]
        return (pooledFeatures * gate).MoveToOuterDisposeScope();
    }
}
