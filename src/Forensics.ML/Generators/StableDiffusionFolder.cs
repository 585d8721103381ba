using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Forensics.ML.Models.Diffusion;

namespace Forensics.ML.Generators;

/// <summary>
/// Writes the configuration files of a diffusers Stable Diffusion folder: unet/config.json (every key
/// <see cref="UNet2DConditionConfig.Parse"/> reads, plus the options it requires to be off), scheduler/scheduler_config.json
/// and model_index.json, and copies component folders.
/// </summary>
public static class StableDiffusionFolder
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    /// <summary>A diffusers unet/config.json for <paramref name="c"/>.</summary>
    public static string UnetConfigJson(UNet2DConditionConfig c)
    {
        JsonArray Ints(IEnumerable<int> v) => new(v.Select(i => (JsonNode?)i).ToArray());
        JsonArray Strings(IEnumerable<string> v) => new(v.Select(s => (JsonNode?)s).ToArray());
        var o = new JsonObject
        {
            ["_class_name"] = "UNet2DConditionModel",
            ["act_fn"] = "silu",
            ["addition_embed_type"] = null,
            ["attention_head_dim"] = Ints(c.AttentionHeadDim),
            ["attention_type"] = "default",
            ["block_out_channels"] = Ints(c.BlockOutChannels),
            ["center_input_sample"] = c.CenterInputSample,
            ["class_embed_type"] = null,
            ["conv_in_kernel"] = c.ConvInKernel,
            ["conv_out_kernel"] = c.ConvOutKernel,
            ["cross_attention_dim"] = c.CrossAttentionDim,
            ["cross_attention_norm"] = null,
            ["down_block_types"] = Strings(c.DownBlockTypes),
            ["downsample_padding"] = c.DownsamplePadding,
            ["dropout"] = c.Dropout,
            ["dual_cross_attention"] = false,
            ["encoder_hid_dim"] = null,
            ["flip_sin_to_cos"] = c.FlipSinToCos,
            ["freq_shift"] = c.FreqShift,
            ["in_channels"] = c.InChannels,
            ["layers_per_block"] = Ints(c.LayersPerBlock),
            ["mid_block_scale_factor"] = c.MidBlockScaleFactor,
            ["mid_block_type"] = "UNetMidBlock2DCrossAttn",
            ["norm_eps"] = c.NormEps,
            ["norm_num_groups"] = c.NormNumGroups,
            ["num_attention_heads"] = null,
            ["num_class_embeds"] = null,
            ["only_cross_attention"] = false,
            ["out_channels"] = c.OutChannels,
            ["resnet_time_scale_shift"] = "default",
            ["sample_size"] = c.SampleSize,
            ["time_embedding_dim"] = c.TimeEmbeddingDim,
            ["time_embedding_type"] = "positional",
            ["transformer_layers_per_block"] = Ints(c.TransformerLayersPerBlock),
            ["up_block_types"] = Strings(c.UpBlockTypes),
            ["upcast_attention"] = c.UpcastAttention,
            ["use_linear_projection"] = c.UseLinearProjection,
        };
        return o.ToJsonString(Indented) + "\n";
    }

    /// <summary>A diffusers DDIMScheduler config of <paramref name="s"/> (clip_sample off, as Stable Diffusion's).</summary>
    public static string SchedulerConfigJson(DiffusionScheduleConfig s) => new JsonObject
    {
        ["_class_name"] = "DDIMScheduler",
        ["beta_end"] = s.BetaEnd,
        ["beta_schedule"] = s.BetaSchedule,
        ["beta_start"] = s.BetaStart,
        ["clip_sample"] = false,
        ["num_train_timesteps"] = s.NumTrainTimesteps,
        ["prediction_type"] = s.PredictionType,
        ["set_alpha_to_one"] = s.SetAlphaToOne,
        ["steps_offset"] = s.StepsOffset,
        ["timestep_spacing"] = s.TimestepSpacing,
        ["trained_betas"] = null,
    }.ToJsonString(Indented) + "\n";

    /// <summary>model_index.json of a StableDiffusionPipeline without safety checker.</summary>
    public static string ModelIndexJson() => new JsonObject
    {
        ["_class_name"] = "StableDiffusionPipeline",
        ["feature_extractor"] = new JsonArray(null, null),
        ["requires_safety_checker"] = false,
        ["safety_checker"] = new JsonArray(null, null),
        ["scheduler"] = new JsonArray("diffusers", "DDIMScheduler"),
        ["text_encoder"] = new JsonArray("transformers", "CLIPTextModel"),
        ["tokenizer"] = new JsonArray("transformers", "CLIPTokenizer"),
        ["unet"] = new JsonArray("diffusers", "UNet2DConditionModel"),
        ["vae"] = new JsonArray("diffusers", "AutoencoderKL"),
    }.ToJsonString(Indented) + "\n";

    /// <summary>Copies the files of <paramref name="from"/> (not its sub-folders) into <paramref name="to"/>.</summary>
    public static void CopyFiles(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var file in Directory.EnumerateFiles(from))
            File.Copy(file, Path.Combine(to, Path.GetFileName(file)), overwrite: true);
    }

    /// <summary>Invariant text of a double for cards.</summary>
    internal static string Num(double v) => v.ToString("G6", CultureInfo.InvariantCulture);
}
