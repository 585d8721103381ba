using Forensics.ML.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Forensics.ML.Models.Clip;

/// <summary>
/// CLIP's attention pooling (clip/model.py, class AttentionPool2d): the feature map's H·W tokens with their mean
/// prepended, plus a learned positional embedding [H·W + 1, embed_dim], go through one multi-head attention whose
/// only output kept is the mean token's (query = mean token, keys and values = all tokens), projected by c_proj.
/// Parameter names are OpenAI's: positional_embedding, q_proj, k_proj, v_proj, c_proj.
/// </summary>
public sealed class AttentionPool2d : nn.Module<Tensor, Tensor>
{
    private readonly Parameter positional_embedding;
    private readonly Linear k_proj;
    private readonly Linear q_proj;
    private readonly Linear v_proj;
    private readonly Linear c_proj;

    /// <summary>Number of attention heads; embed_dim / heads channels each.</summary>
    public int NumHeads { get; }

    /// <summary>Channels of the input tokens.</summary>
    public int EmbedDim { get; }

    /// <summary>Rows of the positional embedding: spacial_dim² + 1 (the grid plus the mean token).</summary>
    public long Tokens => positional_embedding.shape[0];

    /// <summary>
    /// A pool over a <paramref name="spacialDim"/>² grid of <paramref name="embedDim"/>-channel tokens with
    /// <paramref name="numHeads"/> heads, writing <paramref name="outputDim"/> channels. Initialised as CLIP's
    /// initialize_parameters does: positional embedding N(0,1)/sqrt(embed_dim), q/k/v/c_proj weights N(0, embed_dim^-0.5).
    /// </summary>
    public AttentionPool2d(int spacialDim, int embedDim, int numHeads, int outputDim) : base(nameof(AttentionPool2d))
    {
        if (spacialDim < 1) throw new ArgumentOutOfRangeException(nameof(spacialDim), spacialDim, "The token grid needs at least one cell.");
        if (numHeads < 1 || embedDim % numHeads != 0)
            throw new ArgumentException($"{numHeads} heads do not divide the embedding width {embedDim}.", nameof(numHeads));
        NumHeads = numHeads;
        EmbedDim = embedDim;
        positional_embedding = new Parameter(randn(spacialDim * spacialDim + 1, embedDim).div_(Math.Sqrt(embedDim)));
        k_proj = nn.Linear(embedDim, embedDim);
        q_proj = nn.Linear(embedDim, embedDim);
        v_proj = nn.Linear(embedDim, embedDim);
        c_proj = nn.Linear(embedDim, outputDim);
        RegisterComponents();

        var std = Math.Pow(embedDim, -0.5);
        foreach (var proj in new[] { q_proj, k_proj, v_proj, c_proj })
            nn.init.normal_(proj.weight, 0, std);
    }

    /// <summary>The pooled embedding [N, outputDim] of a feature map [N, embed_dim, H, W] with H·W + 1 = <see cref="Tokens"/>.</summary>
    public override Tensor forward(Tensor x)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (x.dim() != 4 || x.shape[1] != EmbedDim)
            throw new ArgumentException($"AttentionPool2d input must be [N, {EmbedDim}, H, W], got [{string.Join(", ", x.shape)}].", nameof(x));
        if (x.shape[2] * x.shape[3] + 1 != Tokens)
            throw new ArgumentException(
                $"AttentionPool2d: a {x.shape[2]}x{x.shape[3]} feature map gives {x.shape[2] * x.shape[3] + 1} tokens, but the " +
                $"positional embedding has {Tokens} rows; OpenAI's CLIP does not interpolate it, so the input must have the " +
                "resolution the tower was built for.", nameof(x));

        using var scope = NewDisposeScope();
        long n = x.shape[0], c = EmbedDim, heads = NumHeads, headDim = c / heads;
        var grid = x.flatten(2).transpose(1, 2);                                      // [N, HW, C]
        var tokens = cat([grid.mean([1], keepdim: true), grid], 1);                   // [N, HW+1, C]
        tokens = tokens.Plus(positional_embedding.to(tokens.dtype));
        var length = tokens.shape[1];

        // Only the mean token's output is kept, and attention rows are independent, so only its query is computed.
        var q = q_proj.call(tokens.narrow(1, 0, 1)).view(n, 1, heads, headDim).transpose(1, 2);
        var k = k_proj.call(tokens).view(n, length, heads, headDim).transpose(1, 2);
        var v = v_proj.call(tokens).view(n, length, heads, headDim).transpose(1, 2);
        q = q.DividedBy(Math.Sqrt(headDim));
        var weights = matmul(q, k.transpose(-2, -1)).softmax(-1);                      // [N, heads, 1, HW+1]
        var pooled = matmul(weights, v).transpose(1, 2).reshape(n, c);                 // [N, C]
        return c_proj.call(pooled).MoveToOuterDisposeScope();
    }
}
