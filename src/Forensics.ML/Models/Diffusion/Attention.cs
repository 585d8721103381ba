using Forensics.ML.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Forensics.ML.Models.Diffusion;

/// <summary>
/// diffusers' <c>Attention</c> with the plain <c>AttnProcessor</c>, in both forms the models build: the VAE mid block's
/// spatial self-attention (group_norm over a [B, C, H, W] map, biased to_q/to_k/to_v, float32 softmax, residual
/// connection) and the UNet transformer's self- and cross-attention on tokens (no norm, unbiased projections, keys and
/// values from the context). Tokens go through to_q, to_k, to_v, heads of dim_head channels,
/// softmax(Q Kᵀ dim_head^-1/2) V, then to_out.0 (Linear with bias) and to_out.1 (dropout); a 4-D input is flattened to
/// H*W tokens and restored; the residual (when enabled) is added and the sum divided by rescale_output_factor.
/// </summary>
public sealed class Attention : nn.Module<Tensor, Tensor>
{
    /// <summary>
    /// Largest score matrix (batch x heads x query rows x keys) computed at once; longer inputs are processed in
    /// blocks of query rows. Softmax is per query row, so blocking gives the same result while bounding memory at
    /// 256 MB of float32 scores however large the image (a 1024x1024 SD image has 16384 latent pixels).
    /// </summary>
    internal long MaxScoreElements { get; set; } = 1L << 26;

    // Declaration order is registration order: group_norm's keys come first, as in diffusers' state dict.
    private readonly GroupNorm? group_norm;
    private readonly Linear to_q;
    private readonly Linear to_k;
    private readonly Linear to_v;
    private readonly ModuleList<nn.Module<Tensor, Tensor>> to_out;
    private readonly bool residualConnection;
    private readonly double rescaleOutputFactor;

    /// <summary>Number of heads.</summary>
    public long Heads { get; }

    /// <summary>Channels per head.</summary>
    public long DimHead { get; }

    /// <summary>When true, queries and keys (so the scores and softmax) are float32 whatever the input dtype.</summary>
    public bool UpcastAttention { get; }

    /// <summary>When true, the softmax is computed in float32 and its probabilities cast back.</summary>
    public bool UpcastSoftmax { get; }

    /// <summary>
    /// Attention over <paramref name="queryDim"/>-channel tokens with <paramref name="heads"/> heads of
    /// <paramref name="dimHead"/> channels; keys and values come from <paramref name="crossAttentionDim"/>-channel
    /// context, or from the input when null. <paramref name="normNumGroups"/> adds diffusers' group_norm (with
    /// <paramref name="eps"/>), <paramref name="bias"/> biases to_q/to_k/to_v, <paramref name="residualConnection"/>
    /// adds the input to the output.
    /// </summary>
    public Attention(long queryDim, long? crossAttentionDim = null, long heads = 8, long dimHead = 64, double dropout = 0.0,
        bool bias = false, bool upcastAttention = false, bool upcastSoftmax = false, long? normNumGroups = null, double eps = 1e-5,
        bool residualConnection = false, double rescaleOutputFactor = 1.0, Device? device = null) : base(nameof(Attention))
    {
        Heads = heads;
        DimHead = dimHead;
        UpcastAttention = upcastAttention;
        UpcastSoftmax = upcastSoftmax;
        var inner = heads * dimHead;
        var kvDim = crossAttentionDim ?? queryDim;
        if (normNumGroups is { } groups) group_norm = DiffusionLayers.GroupNorm(groups, queryDim, eps, device);
        to_q = nn.Linear(queryDim, inner, hasBias: bias, device: device);
        to_k = nn.Linear(kvDim, inner, hasBias: bias, device: device);
        to_v = nn.Linear(kvDim, inner, hasBias: bias, device: device);
        // to_out.1 is diffusers' Dropout: parameterless, so only index 0 carries weights.
        to_out = new ModuleList<nn.Module<Tensor, Tensor>>(nn.Linear(inner, queryDim, hasBias: true, device: device), nn.Dropout(dropout));
        this.residualConnection = residualConnection;
        this.rescaleOutputFactor = rescaleOutputFactor;
        RegisterComponents();
    }

    /// <summary>
    /// The VAE mid block's attention (diffusers' UNetMidBlock2D with an attention_head_dim): spatial self-attention
    /// over <paramref name="channels"/> channels in heads of <paramref name="headDim"/>, with a group norm, biased
    /// projections, a float32 softmax and the residual connection.
    /// </summary>
    public static Attention SpatialSelfAttention(long channels, long headDim, long groups, double eps, double rescaleOutputFactor = 1.0)
    {
        if (channels % headDim != 0) throw new ArgumentException($"{channels} channels do not split into heads of {headDim}");
        return new Attention(channels, heads: channels / headDim, dimHead: headDim, bias: true, upcastSoftmax: true,
            normNumGroups: groups, eps: eps, residualConnection: true, rescaleOutputFactor: rescaleOutputFactor);
    }

    /// <summary>Self-attention of <paramref name="x"/> ([B, C, H, W] or tokens [B, N, C]).</summary>
    public override Tensor forward(Tensor x) => Forward(x, null);

    /// <summary>
    /// Attends <paramref name="x"/> (tokens [B, N, queryDim] or a map [B, queryDim, H, W]) to
    /// <paramref name="context"/> [B, M, kvDim], or to itself when null; the output has the shape of the input.
    /// </summary>
    public Tensor Forward(Tensor x, Tensor? context)
    {
        using var scope = NewDisposeScope();
        var spatial = x.dim() == 4;
        long b = x.shape[0], c = x.shape[1], h = spatial ? x.shape[2] : 0, w = spatial ? x.shape[3] : 0;
        // GroupNorm over [B, C, H*W] (diffusers' transpose-normalise-transpose) equals GroupNorm over [B, C, H, W].
        var normed = group_norm is null ? x : group_norm.call(x);
        var tokens = spatial ? normed.reshape(b, c, h * w).transpose(1, 2) : normed;
        var kv = context ?? tokens;
        long n = tokens.shape[1], m = kv.shape[1];
        var q = SplitHeads(to_q.call(tokens), b, n);
        var k = SplitHeads(to_k.call(kv), b, m);
        var v = SplitHeads(to_v.call(kv), b, m);
        var dtype = q.dtype;
        if (UpcastAttention && dtype != ScalarType.Float32)
        {
            q = q.to_type(ScalarType.Float32);
            k = k.to_type(ScalarType.Float32);
        }
        var scale = Math.Pow(DimHead, -0.5);
        var kt = k.transpose(1, 2);
        var rows = Math.Max(1, MaxScoreElements / Math.Max(1, b * Heads * m));
        var parts = new List<Tensor>();
        for (long start = 0; start < n; start += rows)
        {
            var qi = q.narrow(1, start, Math.Min(rows, n - start));
            // diffusers' baddbmm with beta 0 and alpha = scale is this product scaled.
            var scores = bmm(qi, kt).mul_(scale);
            var softmaxInput = UpcastSoftmax ? scores.to_type(ScalarType.Float32) : scores;
            var probs = softmaxInput.softmax(-1).to_type(dtype);
            if (!ReferenceEquals(softmaxInput, scores)) softmaxInput.Dispose();
            scores.Dispose();
            parts.Add(bmm(probs, v));
            probs.Dispose();
        }
        var attended = parts.Count == 1 ? parts[0] : cat(parts, 1);
        var output = attended.view(b, Heads, n, DimHead).permute(0, 2, 1, 3).reshape(b, n, Heads * DimHead);
        foreach (var layer in to_out) output = layer.call(output);
        if (spatial) output = output.transpose(1, 2).reshape(b, c, h, w);
        if (residualConnection) output = output.Plus(x);
        if (rescaleOutputFactor != 1.0) output = output.div(rescaleOutputFactor);
        return output.MoveToOuterDisposeScope();
    }

    /// <summary>Multiply-accumulates of the two attention products (Q·Kᵀ and P·V) for N queries over M keys, per sample.</summary>
    public long MatmulMacs(long queries, long keys) => 2 * queries * keys * Heads * DimHead;

    private Tensor SplitHeads(Tensor t, long batch, long length) =>
        t.view(batch, length, Heads, DimHead).permute(0, 2, 1, 3).reshape(batch * Heads, length, DimHead);
}
