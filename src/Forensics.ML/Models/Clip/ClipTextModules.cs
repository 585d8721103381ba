using Forensics.ML.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Forensics.ML.Models.Clip;

/// <summary>
/// transformers' CLIPTextEmbeddings: token_embedding[input_ids] + position_embedding[0..T-1]. The position_ids
/// buffer of older checkpoints is not a module tensor here (current transformers registers it non-persistent).
/// </summary>
public sealed class ClipTextEmbeddings : nn.Module<Tensor, Tensor>
{
    private readonly Embedding token_embedding;
    private readonly Embedding position_embedding;

    /// <summary>Embeddings sized by <paramref name="config"/>, allocated on <paramref name="device"/> (CPU when null).</summary>
    public ClipTextEmbeddings(ClipTextConfig config, Device? device = null) : base(nameof(ClipTextEmbeddings))
    {
        token_embedding = nn.Embedding(config.VocabSize, config.HiddenSize, device: device);
        position_embedding = nn.Embedding(config.MaxPositionEmbeddings, config.HiddenSize, device: device);
        RegisterComponents();
    }

    /// <summary>[B, T, C] embeddings of input ids [B, T] (T at most max_position_embeddings).</summary>
    public override Tensor forward(Tensor inputIds)
    {
        using var scope = NewDisposeScope();
        var length = inputIds.shape[^1];
        var positions = arange(length, dtype: ScalarType.Int64, device: inputIds.device).unsqueeze(0);
        return token_embedding.forward(inputIds).Plus(position_embedding.forward(positions)).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// transformers' CLIPAttention with the eager path: q/k/v/out_proj Linear layers, logits q·kᵀ·head_dim^-0.5 plus an
/// additive causal mask (the dtype's lowest value above the diagonal), softmax computed in float32.
/// </summary>
public sealed class ClipTextAttention : nn.Module<Tensor, Tensor>
{
    private readonly Linear k_proj;
    private readonly Linear v_proj;
    private readonly Linear q_proj;
    private readonly Linear out_proj;
    private readonly int heads;
    private readonly int headDim;

    /// <summary>An attention block sized by <paramref name="config"/>.</summary>
    public ClipTextAttention(ClipTextConfig config, Device? device = null) : base(nameof(ClipTextAttention))
    {
        heads = config.NumAttentionHeads;
        headDim = config.HeadDim;
        k_proj = nn.Linear(config.HiddenSize, config.HiddenSize, device: device);
        v_proj = nn.Linear(config.HiddenSize, config.HiddenSize, device: device);
        q_proj = nn.Linear(config.HiddenSize, config.HiddenSize, device: device);
        out_proj = nn.Linear(config.HiddenSize, config.HiddenSize, device: device);
        RegisterComponents();
    }

    /// <summary>Causal self-attention over hidden states [B, T, C].</summary>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], t = x.shape[1], c = x.shape[2];
        Tensor Heads(Linear proj) => proj.forward(x).view(b, t, heads, headDim).transpose(1, 2);
        var q = Heads(q_proj);
        var k = Heads(k_proj);
        var v = Heads(v_proj);
        var logits = matmul(q, k.transpose(2, 3)).Times(Math.Pow(headDim, -0.5));
        // transformers adds finfo(dtype).min above the diagonal rather than masking with -inf.
        var lowest = x.dtype == ScalarType.Float64 ? double.MinValue : float.MinValue;
        var mask = full(t, t, lowest, dtype: logits.dtype, device: logits.device).triu(1);
        logits = logits.Plus(mask);
        var weights = logits.softmax(-1, ScalarType.Float32).to(q.dtype);
        var context = matmul(weights, v).transpose(1, 2).reshape(b, t, c);
        return out_proj.forward(context).MoveToOuterDisposeScope();
    }
}

/// <summary>transformers' CLIPMLP: fc1, the activation (quick_gelu = x·sigmoid(1.702x), or exact gelu), fc2.</summary>
public sealed class ClipTextMlp : nn.Module<Tensor, Tensor>
{
    private readonly Linear fc1;
    private readonly Linear fc2;
    private readonly bool quickGelu;

    /// <summary>An MLP sized by <paramref name="config"/>.</summary>
    public ClipTextMlp(ClipTextConfig config, Device? device = null) : base(nameof(ClipTextMlp))
    {
        quickGelu = config.HiddenAct == "quick_gelu";
        fc1 = nn.Linear(config.HiddenSize, config.IntermediateSize, device: device);
        fc2 = nn.Linear(config.IntermediateSize, config.HiddenSize, device: device);
        RegisterComponents();
    }

    /// <summary>The MLP of hidden states [B, T, C].</summary>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = fc1.forward(x);
        h = quickGelu ? h * h.Times(1.702).sigmoid() : nn.functional.gelu(h);
        return fc2.forward(h).MoveToOuterDisposeScope();
    }
}

/// <summary>transformers' CLIPEncoderLayer (pre-LN): x + attn(layer_norm1(x)), then + mlp(layer_norm2(·)).</summary>
public sealed class ClipTextEncoderLayer : nn.Module<Tensor, Tensor>
{
    private readonly ClipTextAttention self_attn;
    private readonly LayerNorm layer_norm1;
    private readonly ClipTextMlp mlp;
    private readonly LayerNorm layer_norm2;

    /// <summary>A layer sized by <paramref name="config"/>.</summary>
    public ClipTextEncoderLayer(ClipTextConfig config, Device? device = null) : base(nameof(ClipTextEncoderLayer))
    {
        self_attn = new ClipTextAttention(config, device);
        layer_norm1 = nn.LayerNorm([config.HiddenSize], config.LayerNormEps, device: device);
        mlp = new ClipTextMlp(config, device);
        layer_norm2 = nn.LayerNorm([config.HiddenSize], config.LayerNormEps, device: device);
        RegisterComponents();
    }

    /// <summary>One layer over hidden states [B, T, C].</summary>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = x.Plus(self_attn.forward(layer_norm1.forward(x)));
        h = h.Plus(mlp.forward(layer_norm2.forward(h)));
        return h.MoveToOuterDisposeScope();
    }
}

/// <summary>transformers' CLIPEncoder: the list of <see cref="ClipTextEncoderLayer"/> named "layers".</summary>
public sealed class ClipTextEncoder : nn.Module<Tensor, Tensor>
{
    private readonly ModuleList<ClipTextEncoderLayer> layers;

    /// <summary>num_hidden_layers layers sized by <paramref name="config"/>.</summary>
    public ClipTextEncoder(ClipTextConfig config, Device? device = null) : base(nameof(ClipTextEncoder))
    {
        layers = nn.ModuleList(Enumerable.Range(0, config.NumHiddenLayers)
            .Select(_ => new ClipTextEncoderLayer(config, device)).ToArray());
        RegisterComponents();
    }

    /// <summary>The layers in order.</summary>
    public IReadOnlyList<ClipTextEncoderLayer> Layers => [.. layers];

    /// <summary>All layers applied to hidden states [B, T, C].</summary>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = x;
        foreach (var layer in layers) h = layer.forward(h);
        return h.MoveToOuterDisposeScope();
    }
}

/// <summary>transformers' CLIPTextTransformer: embeddings, encoder, final_layer_norm (the "text_model" of CLIPTextModel).</summary>
public sealed class ClipTextTransformer : nn.Module<Tensor, Tensor>
{
    private readonly ClipTextEmbeddings embeddings;
    private readonly ClipTextEncoder encoder;
    private readonly LayerNorm final_layer_norm;

    /// <summary>A text transformer sized by <paramref name="config"/>.</summary>
    public ClipTextTransformer(ClipTextConfig config, Device? device = null) : base(nameof(ClipTextTransformer))
    {
        embeddings = new ClipTextEmbeddings(config, device);
        encoder = new ClipTextEncoder(config, device);
        final_layer_norm = nn.LayerNorm([config.HiddenSize], config.LayerNormEps, device: device);
        RegisterComponents();
    }

    internal ClipTextEmbeddings Embeddings => embeddings;
    internal ClipTextEncoder Encoder => encoder;
    internal LayerNorm FinalLayerNorm => final_layer_norm;

    /// <summary>The last hidden state [B, T, C] (final_layer_norm output) of input ids [B, T].</summary>
    public override Tensor forward(Tensor inputIds)
    {
        using var scope = NewDisposeScope();
        return final_layer_norm.forward(encoder.forward(embeddings.forward(inputIds))).MoveToOuterDisposeScope();
    }
}
