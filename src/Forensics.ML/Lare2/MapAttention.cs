using Forensics.ML.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using Forensics.ML.Training;
using Forensics.ML.Evaluation;
using Forensics.ML.Models;

namespace Forensics.ML.Lare2;

/// <summary>
/// The authors' ScaledDotProductWithMapAttention (LaRE model_base.py): multi-head scaled dot-product attention whose
/// logits QKᵀ/√d_k get a per-head, per-key map ADDED before the softmax (the projected LaRE map), then dropout on the
/// weights, weights · V, and the output projection. Parameter names are theirs: fc_q, fc_k, fc_v (d_model → h·d_k,
/// h·d_k, h·d_v) and fc_o (h·d_v → d_model), all xavier-uniform with zero bias as in their init_weights.
/// </summary>
public sealed class MapAttention : nn.Module<Tensor, Tensor, Tensor, Tensor, Tensor>
{
    private readonly Linear fc_q;
    private readonly Linear fc_k;
    private readonly Linear fc_v;
    private readonly Linear fc_o;
    private readonly SeededDropout dropout;

    /// <summary>Heads (their h).</summary>
    public int Heads { get; }

    /// <summary>Query/key width per head (their d_k).</summary>
    public int KeyDim { get; }

    /// <summary>Value width per head (their d_v).</summary>
    public int ValueDim { get; }

    /// <summary>Input and output channels (their d_in = d_out).</summary>
    public int ModelDim { get; }

    /// <summary>An attention over <paramref name="modelDim"/>-channel tokens with the given heads and widths.</summary>
    public MapAttention(int modelDim, int heads, int keyDim, int valueDim, double attentionDropout) : base("ScaledDotProductWithMapAttention")
    {
        ModelDim = modelDim;
        Heads = heads;
        KeyDim = keyDim;
        ValueDim = valueDim;
        fc_q = nn.Linear(modelDim, heads * keyDim);
        fc_k = nn.Linear(modelDim, heads * keyDim);
        fc_v = nn.Linear(modelDim, heads * valueDim);
        fc_o = nn.Linear(heads * valueDim, modelDim);
        dropout = new SeededDropout(attentionDropout);
        RegisterComponents();

        using var _ = no_grad();
        foreach (var linear in new[] { fc_q, fc_k, fc_v, fc_o })
        {
            nn.init.xavier_uniform_(linear.weight);
            linear.bias!.zero_();
        }
    }

    /// <summary>
    /// Attention of <paramref name="queries"/> [B, nq, d_model] over <paramref name="keys"/> and
    /// <paramref name="values"/> [B, nk, d_model], with <paramref name="map"/> [B, nk, h] added to every query's logits
    /// of head h (their w_g = map.permute(0, 2, 1).unsqueeze(2)). Returns [B, nq, d_model].
    /// </summary>
    public override Tensor forward(Tensor queries, Tensor keys, Tensor values, Tensor map)
    {
        long b = queries.shape[0], nq = queries.shape[1], nk = keys.shape[1];
        if (map.dim() != 3 || map.shape[0] != b || map.shape[1] != nk || map.shape[2] != Heads)
            throw new ArgumentException(
                $"MapAttention: the map must be [B={b}, keys={nk}, heads={Heads}], got [{string.Join(", ", map.shape)}].", nameof(map));

        using var scope = NewDisposeScope();
        var q = fc_q.call(queries).view(b, nq, Heads, KeyDim).permute(0, 2, 1, 3);   // [B, h, nq, d_k]
        var k = fc_k.call(keys).view(b, nk, Heads, KeyDim).permute(0, 2, 3, 1);      // [B, h, d_k, nk]
        var v = fc_v.call(values).view(b, nk, Heads, ValueDim).permute(0, 2, 1, 3);  // [B, h, nk, d_v]
        var logits = matmul(q, k).DividedBy(Math.Sqrt(KeyDim));                                // [B, h, nq, nk]
        var guide = map.permute(0, 2, 1).unsqueeze(2);                                // [B, h, 1, nk]
        var weights = dropout.call(logits.Plus(guide).softmax(-1));
        var output = matmul(weights, v).permute(0, 2, 1, 3).contiguous().view(b, nq, Heads * ValueDim);
        return fc_o.call(output).MoveToOuterDisposeScope();
    }
}
