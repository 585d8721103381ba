using System.Text.Json;
using System.Text.Json.Nodes;

namespace Forensics.ML.Models.Diffusion;

public sealed partial record AutoencoderKLConfig
{
    /// <summary>The configuration as a diffusers config.json (keys sorted, as diffusers' to_json_string writes them).</summary>
    public string ToJson()
    {
        var o = new JsonObject
        {
            ["_class_name"] = "AutoencoderKL",
            ["act_fn"] = ActFn,
            ["block_out_channels"] = new JsonArray(BlockOutChannels.Select(c => (JsonNode?)c).ToArray()),
            ["down_block_types"] = new JsonArray(DownBlockTypes.Select(t => (JsonNode?)t).ToArray()),
            ["force_upcast"] = ForceUpcast,
            ["in_channels"] = InChannels,
            ["latent_channels"] = LatentChannels,
            ["latents_mean"] = null,
            ["latents_std"] = null,
            ["layers_per_block"] = LayersPerBlock,
            ["mid_block_add_attention"] = MidBlockAddAttention,
            ["norm_num_groups"] = NormNumGroups,
            ["out_channels"] = OutChannels,
            ["sample_size"] = SampleSize,
            ["scaling_factor"] = ScalingFactor,
            ["shift_factor"] = ShiftFactor,
            ["up_block_types"] = new JsonArray(UpBlockTypes.Select(t => (JsonNode?)t).ToArray()),
            ["use_post_quant_conv"] = UsePostQuantConv,
            ["use_quant_conv"] = UseQuantConv,
        };
        if (DecoderUpsample != UpsampleNearest) o[DecoderUpsampleKey] = DecoderUpsample;
        return o.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    /// <summary>Value equality over the lists' contents too (records compare list references otherwise).</summary>
    public bool Equals(AutoencoderKLConfig? other) =>
        other is not null && InChannels == other.InChannels && OutChannels == other.OutChannels
        && DownBlockTypes.SequenceEqual(other.DownBlockTypes) && UpBlockTypes.SequenceEqual(other.UpBlockTypes)
        && BlockOutChannels.SequenceEqual(other.BlockOutChannels) && LayersPerBlock == other.LayersPerBlock
        && ActFn == other.ActFn && LatentChannels == other.LatentChannels && NormNumGroups == other.NormNumGroups
        && SampleSize == other.SampleSize && ScalingFactor.Equals(other.ScalingFactor) && Nullable.Equals(ShiftFactor, other.ShiftFactor)
        && UseQuantConv == other.UseQuantConv && UsePostQuantConv == other.UsePostQuantConv
        && MidBlockAddAttention == other.MidBlockAddAttention && ForceUpcast == other.ForceUpcast
        && DecoderUpsample == other.DecoderUpsample;

    /// <inheritdoc/>
    public override int GetHashCode() =>
        HashCode.Combine(InChannels, OutChannels, string.Join(",", BlockOutChannels), LayersPerBlock, LatentChannels,
            NormNumGroups, ScalingFactor, ActFn);
}
