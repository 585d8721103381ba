using System.Text.Json;
using Forensics.ML.Runtime;
using static TorchSharp.torch;

namespace Forensics.ML.Models.Diffusion;

/// <summary>
/// The noise schedule shared by diffusers' DDPM and DDIM schedulers, as in a scheduler/scheduler_config.json.
/// Defaults are Stable Diffusion 1.5's: 1000 steps, scaled_linear betas from 0.00085 to 0.012, epsilon prediction.
/// </summary>
public sealed record DiffusionScheduleConfig
{
    /// <summary>Training timesteps T.</summary>
    public int NumTrainTimesteps { get; init; } = 1000;

    /// <summary>β of the first timestep.</summary>
    public double BetaStart { get; init; } = 0.00085;

    /// <summary>β of the last timestep.</summary>
    public double BetaEnd { get; init; } = 0.012;

    /// <summary>"scaled_linear" (linspace of √β, squared: SD) or "linear".</summary>
    public string BetaSchedule { get; init; } = "scaled_linear";

    /// <summary>"epsilon" (SD 1.x, SD 2 base), "v_prediction" (SD 2.x 768) or "sample".</summary>
    public string PredictionType { get; init; } = "epsilon";

    /// <summary>DDIM: offset added to the inference timesteps (1 in SD).</summary>
    public int StepsOffset { get; init; } = 1;

    /// <summary>DDIM: when true the step after timestep 0 uses ᾱ = 1, otherwise ᾱ_0 (false in SD).</summary>
    public bool SetAlphaToOne { get; init; }

    /// <summary>DDIM: "leading" (SD's default), "trailing" or "linspace".</summary>
    public string TimestepSpacing { get; init; } = "leading";

    /// <summary>Stable Diffusion 1.5's scheduler settings.</summary>
    public static DiffusionScheduleConfig StableDiffusion15 => new();

    /// <summary>Throws an error naming the first unsupported field.</summary>
    public void Validate()
    {
        if (NumTrainTimesteps < 2) throw new ArgumentException($"Scheduler config: num_train_timesteps must be at least 2, got {NumTrainTimesteps}.");
        if (BetaSchedule is not ("scaled_linear" or "linear"))
            throw new NotSupportedException($"Scheduler config: beta_schedule '{BetaSchedule}' is not supported (scaled_linear, linear).");
        if (PredictionType is not ("epsilon" or "v_prediction" or "sample"))
            throw new NotSupportedException($"Scheduler config: prediction_type '{PredictionType}' is not supported (epsilon, v_prediction, sample).");
        if (TimestepSpacing is not ("leading" or "trailing" or "linspace"))
            throw new NotSupportedException($"Scheduler config: timestep_spacing '{TimestepSpacing}' is not supported (leading, trailing, linspace).");
        if (!(BetaStart > 0 && BetaEnd >= BetaStart && BetaEnd < 1))
            throw new ArgumentException($"Scheduler config: beta_start {BetaStart} and beta_end {BetaEnd} must satisfy 0 < start <= end < 1.");
    }

    /// <summary>Reads a diffusers scheduler_config.json (any scheduler class: only the schedule fields are used).</summary>
    public static DiffusionScheduleConfig ReadConfig(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Scheduler config not found: {path}", path);
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(path));
            var root = doc.RootElement;
            // Absent fields take diffusers' class defaults (not SD's), as from_config would.
            if (root.TryGetProperty("trained_betas", out var tb) && tb.ValueKind != JsonValueKind.Null)
                throw new NotSupportedException("trained_betas is not supported (only null).");
            foreach (var field in new[] { "clip_sample", "thresholding", "rescale_betas_zero_snr" })
                if (root.TryGetProperty(field, out var v) && v.ValueKind == JsonValueKind.True)
                    throw new NotSupportedException($"{field} = true is not supported.");
            var config = new DiffusionScheduleConfig
            {
                NumTrainTimesteps = Get(root, "num_train_timesteps")?.GetInt32() ?? 1000,
                BetaStart = Get(root, "beta_start")?.GetDouble() ?? 0.0001,
                BetaEnd = Get(root, "beta_end")?.GetDouble() ?? 0.02,
                BetaSchedule = Get(root, "beta_schedule")?.GetString() ?? "linear",
                PredictionType = Get(root, "prediction_type")?.GetString() ?? "epsilon",
                StepsOffset = Get(root, "steps_offset")?.GetInt32() ?? 0,
                SetAlphaToOne = Get(root, "set_alpha_to_one")?.GetBoolean() ?? true,
                TimestepSpacing = Get(root, "timestep_spacing")?.GetString() ?? "leading",
            };
            config.Validate();
            return config;
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException or ArgumentException or NotSupportedException)
        {
            throw new InvalidDataException($"{path}: {e.Message}", e);
        }
    }

    private static JsonElement? Get(JsonElement root, string field) =>
        root.TryGetProperty(field, out var v) && v.ValueKind != JsonValueKind.Null ? v : null;
}

/// <summary>
/// diffusers' DDPMScheduler, forward (noising) part: β_t, ᾱ_t = Π_{s≤t}(1 - β_s) in float32 as diffusers computes
/// them, and add_noise: x_t = √ᾱ_t · x_0 + √(1 - ᾱ_t) · ε.
/// </summary>
public sealed class DdpmScheduler : IDisposable
{
    /// <summary>The schedule.</summary>
    public DiffusionScheduleConfig Config { get; }

    /// <summary>β_t, float32 [T].</summary>
    public Tensor Betas { get; }

    /// <summary>α_t = 1 - β_t, float32 [T].</summary>
    public Tensor Alphas { get; }

    /// <summary>ᾱ_t, float32 [T] (cumulative product in float32, as torch.cumprod does in diffusers).</summary>
    public Tensor AlphasCumprod { get; }

    /// <summary>A scheduler with <paramref name="config"/> (SD 1.5's defaults when null).</summary>
    public DdpmScheduler(DiffusionScheduleConfig? config = null)
    {
        Config = config ?? DiffusionScheduleConfig.StableDiffusion15;
        Config.Validate();
        (Betas, Alphas, AlphasCumprod) = MakeSchedule(Config);
    }

    /// <summary>A scheduler from a diffusers scheduler_config.json.</summary>
    public static DdpmScheduler FromConfigFile(string path) => new(DiffusionScheduleConfig.ReadConfig(path));

    /// <summary>
    /// The float32 β, α and ᾱ of <paramref name="config"/>: scaled_linear = linspace(√β_start, √β_end, T)² and
    /// linear = linspace(β_start, β_end, T), both with torch.linspace in float32 like diffusers.
    /// </summary>
    internal static (Tensor Betas, Tensor Alphas, Tensor AlphasCumprod) MakeSchedule(DiffusionScheduleConfig config)
    {
        using var scope = NewDisposeScope();
        var betas = config.BetaSchedule == "scaled_linear"
            ? linspace(Math.Sqrt(config.BetaStart), Math.Sqrt(config.BetaEnd), config.NumTrainTimesteps, ScalarType.Float32).pow(2)
            : linspace(config.BetaStart, config.BetaEnd, config.NumTrainTimesteps, ScalarType.Float32);
        var alphas = 1.0 - betas;
        var acp = alphas.cumprod(0);
        return (betas.MoveToOuterDisposeScope(), alphas.MoveToOuterDisposeScope(), acp.MoveToOuterDisposeScope());
    }

    /// <summary>ᾱ_t as a float (the float32 value).</summary>
    public float AlphaCumprodAt(long t)
    {
        if (t < 0 || t >= Config.NumTrainTimesteps)
            throw new ArgumentOutOfRangeException(nameof(t), t, $"Timesteps run from 0 to {Config.NumTrainTimesteps - 1}.");
        return AlphasCumprod[t].item<float>();
    }

    /// <summary>
    /// x_t = √ᾱ_t · x_0 + √(1 - ᾱ_t) · ε with <paramref name="timesteps"/> a scalar, [1] or [B] (one per sample).
    /// As in diffusers, ᾱ is cast to the sample's dtype before the square roots.
    /// </summary>
    public Tensor AddNoise(Tensor originalSamples, Tensor noise, Tensor timesteps)
    {
        ArgumentNullException.ThrowIfNull(originalSamples);
        ArgumentNullException.ThrowIfNull(noise);
        ArgumentNullException.ThrowIfNull(timesteps);
        if (!originalSamples.shape.SequenceEqual(noise.shape))
            throw new ArgumentException($"AddNoise: noise [{string.Join(", ", noise.shape)}] differs from the samples [{string.Join(", ", originalSamples.shape)}].", nameof(noise));
        using var scope = NewDisposeScope();
        var t = timesteps.to_type(ScalarType.Int64).to(originalSamples.device).flatten();
        var (min, max) = (t.min().item<long>(), t.max().item<long>());
        if (min < 0 || max >= Config.NumTrainTimesteps)
            throw new ArgumentOutOfRangeException(nameof(timesteps), $"Timesteps must lie in [0, {Config.NumTrainTimesteps - 1}], got {min}..{max}.");
        if (t.shape[0] != 1 && t.shape[0] != originalSamples.shape[0])
            throw new ArgumentException($"AddNoise: {t.shape[0]} timesteps for a batch of {originalSamples.shape[0]}.", nameof(timesteps));
        var acp = AlphasCumprod.to(originalSamples.device).to_type(originalSamples.dtype).index_select(0, t);
        var sqrtAlpha = acp.Power(0.5);
        var sqrtOneMinus = acp.SubtractedFrom(1.0).Power(0.5);
        var shape = new long[originalSamples.dim()];
        Array.Fill(shape, 1L);
        shape[0] = t.shape[0];
        var noisy = (sqrtAlpha.view(shape) * originalSamples).Plus(sqrtOneMinus.view(shape) * noise);
        return noisy.MoveToOuterDisposeScope();
    }

    /// <summary>x_t for one timestep shared by the batch.</summary>
    public Tensor AddNoise(Tensor originalSamples, Tensor noise, long timestep)
    {
        using var t = tensor(new[] { timestep }, ScalarType.Int64);
        return AddNoise(originalSamples, noise, t);
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        Betas.Dispose();
        Alphas.Dispose();
        AlphasCumprod.Dispose();
    }
}
