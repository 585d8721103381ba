using System.Text.Json;

namespace Forensics.ML.Models.Diffusion;

/// <summary>
/// The constructor arguments of diffusers' <c>AutoencoderKL</c> as its <c>config.json</c> stores them. Defaults are
/// diffusers' own, so a config.json that omits a key means the same here as there. Property names follow the JSON
/// keys (in_channels -> InChannels, ...).
/// </summary>
public sealed partial record AutoencoderKLConfig
{
    /// <summary>The only down block an AutoencoderKL encoder uses.</summary>
    public const string DownEncoderBlock2D = "DownEncoderBlock2D";

    /// <summary>The only up block an AutoencoderKL decoder uses.</summary>
    public const string UpDecoderBlock2D = "UpDecoderBlock2D";

    /// <summary>Decoder upsampler of diffusers' layout: nearest-neighbour x2 then a 3x3 conv (the default).</summary>
    public const string UpsampleNearest = "nearest";

    /// <summary>Decoder upsampler as diffusers' Upsample2D(use_conv_transpose=True): ConvTranspose2d, kernel 4, stride 2, padding 1.</summary>
    public const string UpsampleConvTranspose = "conv_transpose";

    /// <summary>
    /// The config.json key of <see cref="DecoderUpsample"/>. Not a diffusers key (diffusers' AutoencoderKL always uses
    /// nearest + conv), so it is written only for the transposed variant and a default config's JSON is unchanged.
    /// </summary>
    public const string DecoderUpsampleKey = "decoder_upsample";

    /// <summary>Image channels read by the encoder.</summary>
    public int InChannels { get; init; } = 3;

    /// <summary>Image channels written by the decoder.</summary>
    public int OutChannels { get; init; } = 3;

    /// <summary>One entry per encoder resolution level; only <see cref="DownEncoderBlock2D"/> is known.</summary>
    public IReadOnlyList<string> DownBlockTypes { get; init; } = [DownEncoderBlock2D];

    /// <summary>One entry per decoder resolution level; only <see cref="UpDecoderBlock2D"/> is known.</summary>
    public IReadOnlyList<string> UpBlockTypes { get; init; } = [UpDecoderBlock2D];

    /// <summary>Channels of each level, highest resolution first.</summary>
    public IReadOnlyList<int> BlockOutChannels { get; init; } = [64];

    /// <summary>Resnets per encoder block; decoder blocks have one more.</summary>
    public int LayersPerBlock { get; init; } = 1;

    /// <summary>Activation of the resnets and before conv_out (silu, swish, gelu, relu, mish).</summary>
    public string ActFn { get; init; } = "silu";

    /// <summary>Channels of the latent (the posterior mean and log-variance each have this many).</summary>
    public int LatentChannels { get; init; } = 4;

    /// <summary>Groups of every GroupNorm.</summary>
    public int NormNumGroups { get; init; } = 32;

    /// <summary>Image size the model was trained at (informational: any size divisible by the downsampling factor works).</summary>
    public int SampleSize { get; init; } = 32;

    /// <summary>Latent scale a diffusion model expects (z * ScalingFactor); stored only, never applied by encode or decode.</summary>
    public double ScalingFactor { get; init; } = 0.18215;

    /// <summary>Latent shift used by some later models ((z - shift) * scale); null for the SD family.</summary>
    public double? ShiftFactor { get; init; }

    /// <summary>Whether a 1x1 quant_conv follows the encoder.</summary>
    public bool UseQuantConv { get; init; } = true;

    /// <summary>Whether a 1x1 post_quant_conv precedes the decoder.</summary>
    public bool UsePostQuantConv { get; init; } = true;

    /// <summary>Whether the encoder and decoder mid blocks have their self-attention layer.</summary>
    public bool MidBlockAddAttention { get; init; } = true;

    /// <summary>
    /// How the decoder doubles its resolution: <see cref="UpsampleNearest"/> (diffusers' layout, the default) or
    /// <see cref="UpsampleConvTranspose"/>. Both name their weights upsamplers.0.conv.{weight,bias}; the transposed
    /// weight is [in, out, 4, 4] instead of [out, in, 3, 3].
    /// </summary>
    public string DecoderUpsample { get; init; } = UpsampleNearest;

    /// <summary>diffusers runs the VAE in float32 even in half-precision pipelines when true (informational here).</summary>
    public bool ForceUpcast { get; init; } = true;

    /// <summary>Spatial factor between image and latent: 2 per downsampler, one downsampler per block but the last.</summary>
    public int DownsampleFactor => 1 << (BlockOutChannels.Count - 1);

    /// <summary>
    /// Stable Diffusion 1.x and 2.x (stabilityai/sd-vae-ft-mse and the vae folders of SD 1.5 / 2.1): four levels of
    /// 128, 256, 512, 512 channels, two resnets per encoder block, 32 groups, 4 latent channels, scaling 0.18215.
    /// SDXL's VAE has the same architecture and keys and differs only in <see cref="ScalingFactor"/> (0.13025) and its
    /// weights: see <see cref="StableDiffusionXL"/>.
    /// </summary>
    public static AutoencoderKLConfig StableDiffusion { get; } = new()
    {
        DownBlockTypes = [DownEncoderBlock2D, DownEncoderBlock2D, DownEncoderBlock2D, DownEncoderBlock2D],
        UpBlockTypes = [UpDecoderBlock2D, UpDecoderBlock2D, UpDecoderBlock2D, UpDecoderBlock2D],
        BlockOutChannels = [128, 256, 512, 512],
        LayersPerBlock = 2,
        NormNumGroups = 32,
        LatentChannels = 4,
        SampleSize = 512,
        ScalingFactor = 0.18215,
    };

    /// <summary>SDXL's VAE: <see cref="StableDiffusion"/> with scaling factor 0.13025 and a 1024 sample size.</summary>
    public static AutoencoderKLConfig StableDiffusionXL { get; } = StableDiffusion with { ScalingFactor = 0.13025, SampleSize = 1024 };

    /// <summary>
    /// The reduced test configuration of the reference fixtures: levels of 32 and 64 channels, one resnet per encoder
    /// block, 8 groups, 4 latent channels, mid-block attention kept.
    /// </summary>
    public static AutoencoderKLConfig SmallTest { get; } = new()
    {
        DownBlockTypes = [DownEncoderBlock2D, DownEncoderBlock2D],
        UpBlockTypes = [UpDecoderBlock2D, UpDecoderBlock2D],
        BlockOutChannels = [32, 64],
        LayersPerBlock = 1,
        NormNumGroups = 8,
        LatentChannels = 4,
        SampleSize = 32,
    };

    /// <summary>Reads a diffusers config.json; errors name the file and the offending key.</summary>
    public static AutoencoderKLConfig FromJsonFile(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"No AutoencoderKL config at {path}", path);
        return Parse(File.ReadAllText(path), path);
    }

    /// <summary>Parses config.json text; <paramref name="source"/> names it in error messages.</summary>
    public static AutoencoderKLConfig Parse(string json, string source = "config.json")
    {
        using var doc = JsonConfigFields.ParseDocument(json, source);
        var fields = JsonConfigFields.Of(doc.RootElement, source);
        if (fields.Has("_class_name", out var cls) && cls.GetString() != "AutoencoderKL")
            throw fields.Bad("_class_name", $"is '{cls}', not AutoencoderKL");
        var d = new AutoencoderKLConfig();
        var config = new AutoencoderKLConfig
        {
            InChannels = fields.Int("in_channels", d.InChannels),
            OutChannels = fields.Int("out_channels", d.OutChannels),
            DownBlockTypes = fields.List("down_block_types", d.DownBlockTypes, JsonValueKind.String, e => e.GetString()!),
            UpBlockTypes = fields.List("up_block_types", d.UpBlockTypes, JsonValueKind.String, e => e.GetString()!),
            BlockOutChannels = fields.List("block_out_channels", d.BlockOutChannels, JsonValueKind.Number,
                e => e.TryGetInt32(out var n) ? n : throw fields.Bad("block_out_channels", $"has the non-integer entry {e}")),
            LayersPerBlock = fields.Int("layers_per_block", d.LayersPerBlock),
            ActFn = fields.String("act_fn", d.ActFn),
            LatentChannels = fields.Int("latent_channels", d.LatentChannels),
            NormNumGroups = fields.Int("norm_num_groups", d.NormNumGroups),
            SampleSize = fields.Has("sample_size", out var ss) && ss.ValueKind == JsonValueKind.Array
                ? ss.EnumerateArray().First().GetInt32() // some configs store [height, width]
                : fields.Int("sample_size", d.SampleSize),
            ScalingFactor = fields.Double("scaling_factor", d.ScalingFactor)!.Value,
            ShiftFactor = fields.Double("shift_factor", null),
            UseQuantConv = fields.Bool("use_quant_conv", d.UseQuantConv),
            UsePostQuantConv = fields.Bool("use_post_quant_conv", d.UsePostQuantConv),
            MidBlockAddAttention = fields.Bool("mid_block_add_attention", d.MidBlockAddAttention),
            ForceUpcast = fields.Bool("force_upcast", d.ForceUpcast),
            DecoderUpsample = fields.String(DecoderUpsampleKey, d.DecoderUpsample),
        };
        config.Validate(source);
        return config;
    }

    /// <summary>
    /// Checks what the modules need: known block types, one block type per channel entry on both sides, channel
    /// counts divisible by the group count, a known activation. Errors name the field and <paramref name="source"/>.
    /// </summary>
    public void Validate(string source = "AutoencoderKLConfig")
    {
        InvalidDataException Bad(string key, string what) => new($"{source}: '{key}' {what}");
        for (var i = 0; i < DownBlockTypes.Count; i++)
            if (DownBlockTypes[i] != DownEncoderBlock2D)
                throw Bad("down_block_types", $"entry {i} is the unknown block type '{DownBlockTypes[i]}' (AutoencoderKL supports {DownEncoderBlock2D})");
        for (var i = 0; i < UpBlockTypes.Count; i++)
            if (UpBlockTypes[i] != UpDecoderBlock2D)
                throw Bad("up_block_types", $"entry {i} is the unknown block type '{UpBlockTypes[i]}' (AutoencoderKL supports {UpDecoderBlock2D})");
        if (BlockOutChannels.Count == 0) throw Bad("block_out_channels", "is empty");
        if (DownBlockTypes.Count != BlockOutChannels.Count)
            throw Bad("down_block_types", $"has {DownBlockTypes.Count} entries but block_out_channels has {BlockOutChannels.Count}");
        if (UpBlockTypes.Count != BlockOutChannels.Count)
            throw Bad("up_block_types", $"has {UpBlockTypes.Count} entries but block_out_channels has {BlockOutChannels.Count}");
        if (NormNumGroups <= 0) throw Bad("norm_num_groups", $"must be positive, not {NormNumGroups}");
        foreach (var c in BlockOutChannels)
            if (c <= 0 || c % NormNumGroups != 0)
                throw Bad("block_out_channels", $"entry {c} is not a positive multiple of norm_num_groups {NormNumGroups}");
        if (LayersPerBlock < 1) throw Bad("layers_per_block", $"must be at least 1, not {LayersPerBlock}");
        if (InChannels < 1) throw Bad("in_channels", $"must be positive, not {InChannels}");
        if (OutChannels < 1) throw Bad("out_channels", $"must be positive, not {OutChannels}");
        if (LatentChannels < 1) throw Bad("latent_channels", $"must be positive, not {LatentChannels}");
        if (DecoderUpsample is not (UpsampleNearest or UpsampleConvTranspose))
            throw Bad(DecoderUpsampleKey, $"is '{DecoderUpsample}', not {UpsampleNearest} or {UpsampleConvTranspose}");
        if (!DiffusionLayers.IsKnown(ActFn))
            throw Bad("act_fn", $"is the unknown activation '{ActFn}' (known: {string.Join(", ", DiffusionLayers.Names)})");
    }
}
