using Forensics.ML.Runtime;
using Forensics.ML.Weights;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Forensics.ML.Models.Diffusion;

/// <summary>
/// diffusers' UNet2DConditionModel in the Stable Diffusion 1.x/2.x configuration (unet_2d_condition.py): sinusoidal
/// time_proj → time_embedding MLP; conv_in; down blocks (resnets, Transformer2DModels cross-attending to the text,
/// stride-2 downsamplers) keeping skip tensors; UNetMidBlock2DCrossAttn; up blocks consuming the skips; conv_norm_out →
/// SiLU → conv_out. Field names are diffusers', so state-dict keys equal those of a diffusers unet checkpoint.
/// Input: a noisy latent [B, in, h, w], timesteps (scalar or [B]) and text states [B, tokens, cross_attention_dim];
/// output: the prediction (the noise for SD's epsilon objective) [B, out, h, w].
/// </summary>
public sealed class UNet2DConditionModel : nn.Module
{
    private readonly Conv2d conv_in;
    private readonly UnetTimestepEmbedding time_embedding;
    private readonly ModuleList<UnetDownBlock2D> down_blocks;
    private readonly UnetMidBlock2DCrossAttn mid_block;
    private readonly ModuleList<UnetUpBlock2D> up_blocks;
    private readonly GroupNorm conv_norm_out;
    private readonly Conv2d conv_out;

    /// <summary>The configuration this network was built from.</summary>
    public UNet2DConditionConfig Config { get; }

    /// <summary>
    /// Builds the network with PyTorch's default initialisation. <paramref name="device"/> may be "meta" to build the
    /// module tree (names and shapes) without allocating weights.
    /// </summary>
    public UNet2DConditionModel(UNet2DConditionConfig config, Device? device = null) : base(nameof(UNet2DConditionModel))
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        Config = config;
        var boc = config.BlockOutChannels;
        var n = boc.Count;
        conv_in = nn.Conv2d(config.InChannels, boc[0], config.ConvInKernel, padding: (config.ConvInKernel - 1) / 2, device: device);
        time_embedding = new UnetTimestepEmbedding(boc[0], config.TimeEmbedDim, device);
        var downs = new UnetDownBlock2D[n];
        long channels = boc[0];
        for (var i = 0; i < n; i++)
        {
            downs[i] = new UnetDownBlock2D(config, i, channels, device);
            channels = boc[i];
        }
        down_blocks = new ModuleList<UnetDownBlock2D>(downs);
        mid_block = new UnetMidBlock2DCrossAttn(config, device);
        up_blocks = new ModuleList<UnetUpBlock2D>(Enumerable.Range(0, n).Select(i => new UnetUpBlock2D(config, i, device)).ToArray());
        conv_norm_out = DiffusionLayers.GroupNorm(config.NormNumGroups, boc[0], config.NormEps, device);
        conv_out = nn.Conv2d(boc[0], config.OutChannels, config.ConvOutKernel, padding: (config.ConvOutKernel - 1) / 2, device: device);
        RegisterComponents();
    }

    /// <summary>
    /// The names under which <see cref="Forward(Tensor, Tensor, Tensor, IDictionary{string, Tensor}?)"/> stores
    /// intermediates, in execution order (the module names of diffusers' forward hooks).
    /// </summary>
    public IReadOnlyList<string> IntermediateNames =>
    [
        "time_proj", "time_embedding", "conv_in",
        .. Enumerable.Range(0, down_blocks.Count).Select(i => $"down_blocks.{i}"),
        "mid_block",
        .. Enumerable.Range(0, up_blocks.Count).Select(i => $"up_blocks.{i}"),
        "conv_norm_out", "conv_out",
    ];

    /// <summary>
    /// Loads a diffusers unet folder: config.json and diffusion_pytorch_model.safetensors (F16/BF16 weights are
    /// upcast to float32), strictly (every key present with its shape, nothing left over). The model is in eval mode.
    /// </summary>
    public static UNet2DConditionModel FromPretrained(string folder) => FromPretrained(folder, out _);

    /// <inheritdoc cref="FromPretrained(string)"/>
    public static UNet2DConditionModel FromPretrained(string folder, out LoadReport report)
    {
        var configPath = Path.Combine(folder, "config.json");
        var weightsPath = Path.Combine(folder, "diffusion_pytorch_model.safetensors");
        if (!File.Exists(weightsPath))
            throw new FileNotFoundException($"UNet weights not found: {weightsPath} (expected a diffusers unet folder).", weightsPath);
        var config = UNet2DConditionConfig.ReadConfig(configPath);
        var model = new UNet2DConditionModel(config);
        try
        {
            using var weights = SafeTensors.Load(weightsPath, upcastHalf: true);
            try
            {
                report = StateDictLoader.Load(model, weights, strict: true);
            }
            catch (WeightsMismatchException e)
            {
                throw new InvalidDataException($"{weightsPath}: {e.Message}", e);
            }
            model.eval();
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>The noise prediction for one timestep shared by the whole batch.</summary>
    public Tensor Forward(Tensor sample, long timestep, Tensor encoderHiddenStates, IDictionary<string, Tensor>? intermediates = null)
    {
        using var t = tensor(new[] { timestep }, ScalarType.Int64, sample.device);
        return Forward(sample, t, encoderHiddenStates, intermediates);
    }

    /// <summary>
    /// The prediction [B, out, h, w] for <paramref name="sample"/> [B, in, h, w], <paramref name="timesteps"/>
    /// (0-dim, [1] or [B]; broadcast to the batch) and <paramref name="encoderHiddenStates"/> [B, tokens, cross_dim].
    /// When <paramref name="intermediates"/> is given, copies of the module outputs are stored in it under the names
    /// time_proj, time_embedding, conv_in, down_blocks.N, mid_block, up_blocks.N, conv_norm_out and conv_out (the
    /// caller disposes them).
    /// </summary>
    public Tensor Forward(Tensor sample, Tensor timesteps, Tensor encoderHiddenStates, IDictionary<string, Tensor>? intermediates = null)
    {
        ArgumentNullException.ThrowIfNull(sample);
        ArgumentNullException.ThrowIfNull(timesteps);
        ArgumentNullException.ThrowIfNull(encoderHiddenStates);
        CheckInputs(sample, timesteps, encoderHiddenStates);
        var batch = sample.shape[0];
        using var scope = NewDisposeScope();
        void Keep(string name, Tensor value)
        {
            if (intermediates is null) return;
            if (intermediates.TryGetValue(name, out var old)) old.Dispose();
            intermediates[name] = value.detach().clone().MoveToOuterDisposeScope();
        }

        var steps = timesteps.dim() == 0 ? timesteps.unsqueeze(0) : timesteps;
        steps = steps.to(sample.device).expand(batch);
        var tEmb = UnetTimesteps.Embed(steps, Config.BlockOutChannels[0], Config.FlipSinToCos, Config.FreqShift).to_type(sample.dtype);
        Keep("time_proj", tEmb);
        var emb = time_embedding.forward(tEmb);
        Keep("time_embedding", emb);

        var x = Config.CenterInputSample ? sample.Times(2.0).Minus(1.0) : sample;
        x = conv_in.forward(x);
        Keep("conv_in", x);
        var skips = new List<Tensor> { x };
        for (var i = 0; i < down_blocks.Count; i++)
        {
            x = down_blocks[i].Forward(x, emb, encoderHiddenStates, skips);
            Keep($"down_blocks.{i}", x);
        }
        x = mid_block.Forward(x, emb, encoderHiddenStates);
        Keep("mid_block", x);

        // diffusers forces the upsample sizes when the input side is not a multiple of 2^(number of upsamplers).
        var factor = 1L << up_blocks.Count(b => b.HasUpsampler);
        var forwardUpsampleSize = sample.shape[2] % factor != 0 || sample.shape[3] % factor != 0;
        for (var i = 0; i < up_blocks.Count; i++)
        {
            var block = up_blocks[i];
            long[]? size = null;
            if (forwardUpsampleSize && block.HasUpsampler)
            {
                var next = skips[skips.Count - block.SkipCount - 1];
                size = [next.shape[2], next.shape[3]];
            }
            x = block.Forward(x, emb, encoderHiddenStates, skips, size);
            Keep($"up_blocks.{i}", x);
        }
        x = conv_norm_out.forward(x);
        Keep("conv_norm_out", x);
        x = conv_out.forward(nn.functional.silu(x));
        Keep("conv_out", x);
        return x.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Multiply-accumulates per sample of one forward at a <paramref name="height"/>x<paramref name="width"/> latent
    /// with <paramref name="contextTokens"/> text tokens: the conv and linear layers counted by <see cref="MacCounter"/>
    /// on a real forward (batch 1) plus the attention products Q·Kᵀ and P·V counted analytically.
    /// </summary>
    public long MacsPerSample(long height, long width, long contextTokens = 77)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var device = conv_in.weight!.device;
        var dtype = conv_in.weight!.dtype;
        var sample = zeros([1, Config.InChannels, height, width], dtype, device);
        var context = zeros([1, contextTokens, Config.CrossAttentionDim], dtype, device);
        using var wrapper = new FixedConditionUnet(this, context);
        return MacCounter.PerSample(wrapper, sample) + AttentionMatmulMacs(height, width, contextTokens);
    }

    /// <summary>Attention products' MACs per sample (Q·Kᵀ and P·V of every self- and cross-attention) at an h x w latent.</summary>
    public long AttentionMatmulMacs(long height, long width, long contextTokens = 77)
    {
        long total = 0, h = height, w = width;
        var sizes = new List<(long H, long W)>();
        foreach (var block in down_blocks)
        {
            total += block.AttentionMatmulMacs(h, w, contextTokens);
            sizes.Add((h, w));
            if (block.SkipCount > Config.LayersPerBlock[sizes.Count - 1])
            {
                // A 3x3 stride-2 conv with padding p: floor((h + 2p - 3) / 2) + 1 (padding 0 pads one row and column first).
                var pad = Config.DownsamplePadding == 0 ? 1 : 2;
                h = (h + pad - 3) / 2 + 1;
                w = (w + pad - 3) / 2 + 1;
            }
        }
        total += mid_block.AttentionMatmulMacs(h, w, contextTokens);
        for (var i = 0; i < up_blocks.Count; i++)
        {
            total += up_blocks[i].AttentionMatmulMacs(h, w, contextTokens);
            if (up_blocks[i].HasUpsampler) (h, w) = sizes[sizes.Count - 2 - i];
        }
        return total;
    }

    private void CheckInputs(Tensor sample, Tensor timesteps, Tensor context)
    {
        if (sample.dim() != 4 || sample.shape[1] != Config.InChannels)
            throw new ArgumentException($"UNet sample must be [B, {Config.InChannels}, h, w], got [{string.Join(", ", sample.shape)}].", nameof(sample));
        if (!sample.is_floating_point())
            throw new ArgumentException($"UNet sample must be floating point, got {sample.dtype}.", nameof(sample));
        if (timesteps.dim() > 1 || (timesteps.dim() == 1 && timesteps.shape[0] != 1 && timesteps.shape[0] != sample.shape[0]))
            throw new ArgumentException($"UNet timesteps must be a scalar, [1] or [B = {sample.shape[0]}], got [{string.Join(", ", timesteps.shape)}].", nameof(timesteps));
        if (context.dim() != 3 || context.shape[0] != sample.shape[0] || context.shape[2] != Config.CrossAttentionDim)
            throw new ArgumentException($"UNet encoder_hidden_states must be [B = {sample.shape[0]}, tokens, {Config.CrossAttentionDim}], got [{string.Join(", ", context.shape)}].", nameof(context));
    }

    // MacCounter hooks the conv/linear modules of a Module<Tensor, Tensor>; this adapter fixes timestep and text.
    private sealed class FixedConditionUnet : nn.Module<Tensor, Tensor>
    {
        private readonly UNet2DConditionModel unet;
        private readonly Tensor context;

        public FixedConditionUnet(UNet2DConditionModel unet, Tensor context) : base(nameof(FixedConditionUnet))
        {
            this.unet = unet;
            this.context = context;
            RegisterComponents();
        }

        public override Tensor forward(Tensor x) => unet.Forward(x, 500, context.expand(x.shape[0], -1, -1));

        // The wrapped UNet belongs to the caller.
        protected override void Dispose(bool disposing) { }
    }
}
