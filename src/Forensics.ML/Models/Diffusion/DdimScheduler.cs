using Forensics.ML.Runtime;
using static TorchSharp.torch;

namespace Forensics.ML.Models.Diffusion;

/// <summary>One DDIM update: the sample at the next noise level and the clean-sample estimate it was built from.</summary>
public sealed record DdimStepOutput(Tensor PrevSample, Tensor PredOriginalSample) : IDisposable
{
    /// <inheritdoc/>
    public void Dispose()
    {
        PrevSample.Dispose();
        PredOriginalSample.Dispose();
    }
}

/// <summary>
/// diffusers' DDIMScheduler with η = 0 (deterministic) and its inverse (DDIMInverseScheduler), for sampling and for
/// DIRE-style inversion. Both move a sample between two noise levels ᾱ_from → ᾱ_to along the deterministic DDIM
/// path given the model output at the current sample:
/// <code>
///   x̂0 = (x_from − √(1 − ᾱ_from) · ε̂) / √ᾱ_from          (epsilon prediction)
///   x_to = √ᾱ_to · x̂0 + √(1 − ᾱ_to) · ε̂
/// </code>
/// The generation step goes from ᾱ_t to ᾱ_{t − T/S} (or the final ᾱ after the last step); the inverse step goes the
/// other way. Coefficients are float32 like diffusers'.
/// </summary>
public sealed class DdimScheduler : IDisposable
{
    private readonly Tensor alphasCumprod;
    private long[] timesteps = [];

    /// <summary>The schedule.</summary>
    public DiffusionScheduleConfig Config { get; }

    /// <summary>ᾱ_t, float32 [T].</summary>
    public Tensor AlphasCumprod => alphasCumprod;

    /// <summary>ᾱ used past the end of sampling (after timestep 0) and before the first inversion step: 1 when set_alpha_to_one, else ᾱ_0.</summary>
    public float FinalAlphaCumprod { get; }

    /// <summary>Inference steps S set by <see cref="SetTimesteps"/> (0 before).</summary>
    public int NumInferenceSteps { get; private set; }

    /// <summary>The inference timesteps in sampling order (descending).</summary>
    public IReadOnlyList<long> Timesteps => timesteps;

    /// <summary>The inference timesteps in inversion order (ascending).</summary>
    public IReadOnlyList<long> InverseTimesteps => timesteps.Reverse().ToArray();

    /// <summary>A scheduler with <paramref name="config"/> (SD 1.5's defaults when null: steps_offset 1, set_alpha_to_one false).</summary>
    public DdimScheduler(DiffusionScheduleConfig? config = null)
    {
        Config = config ?? DiffusionScheduleConfig.StableDiffusion15;
        Config.Validate();
        var (betas, alphas, acp) = DdpmScheduler.MakeSchedule(Config);
        betas.Dispose();
        alphas.Dispose();
        alphasCumprod = acp;
        FinalAlphaCumprod = Config.SetAlphaToOne ? 1f : acp[0].item<float>();
    }

    /// <summary>A scheduler from a diffusers scheduler_config.json.</summary>
    public static DdimScheduler FromConfigFile(string path) => new(DiffusionScheduleConfig.ReadConfig(path));

    /// <summary>The gap T / S (integer division) between consecutive inference timesteps.</summary>
    public long StepRatio => NumInferenceSteps == 0
        ? throw new InvalidOperationException("Call SetTimesteps before stepping.")
        : Config.NumTrainTimesteps / NumInferenceSteps;

    /// <summary>
    /// Chooses S inference timesteps. "leading" (SD): t_i = i·(T div S) + steps_offset, i = S−1..0 (for SD at S = 50:
    /// 981, 961, ..., 1); "trailing": round(T − i·T/S) − 1; "linspace": round(linspace(0, T−1, S)), descending.
    /// </summary>
    public void SetTimesteps(int numInferenceSteps)
    {
        var t = Config.NumTrainTimesteps;
        if (numInferenceSteps < 1 || numInferenceSteps > t)
            throw new ArgumentOutOfRangeException(nameof(numInferenceSteps), numInferenceSteps, $"Inference steps must lie in [1, {t}] (num_train_timesteps).");
        NumInferenceSteps = numInferenceSteps;
        long[] steps;
        switch (Config.TimestepSpacing)
        {
            case "leading":
                var ratio = t / numInferenceSteps;
                steps = Enumerable.Range(0, numInferenceSteps).Select(i => (long)i * ratio + Config.StepsOffset).Reverse().ToArray();
                break;
            case "trailing":
                var fratio = (double)t / numInferenceSteps;
                steps = Enumerable.Range(0, numInferenceSteps).Select(i => (long)Math.Round(t - i * fratio, MidpointRounding.ToEven) - 1).ToArray();
                break;
            default:
                steps = Enumerable.Range(0, numInferenceSteps)
                    .Select(i => (long)Math.Round(numInferenceSteps == 1 ? 0 : i * (t - 1.0) / (numInferenceSteps - 1), MidpointRounding.ToEven))
                    .Reverse().ToArray();
                break;
        }
        if (steps.Any(s => s < 0 || s >= t))
            throw new ArgumentException($"Scheduler config: steps_offset {Config.StepsOffset} puts inference timesteps outside [0, {t - 1}].");
        timesteps = steps;
    }

    /// <summary>ᾱ at timestep <paramref name="t"/>; a negative t means "past the end" (<see cref="FinalAlphaCumprod"/>).</summary>
    public float AlphaCumprodAt(long t)
    {
        if (t >= Config.NumTrainTimesteps)
            throw new ArgumentOutOfRangeException(nameof(t), t, $"Timesteps run up to {Config.NumTrainTimesteps - 1}.");
        return t < 0 ? FinalAlphaCumprod : alphasCumprod[t].item<float>();
    }

    /// <summary>
    /// diffusers' DDIMScheduler.step with η = 0: from <paramref name="sample"/> x_t at <paramref name="timestep"/> t
    /// and the model output at (x_t, t), the sample at t − T/S (ᾱ_prev = <see cref="FinalAlphaCumprod"/> when that is
    /// negative) and the x̂0 estimate.
    /// </summary>
    public DdimStepOutput Step(Tensor modelOutput, long timestep, Tensor sample)
    {
        var prev = timestep - StepRatio;
        return Move(modelOutput, sample, AlphaCumprodAt(timestep), AlphaCumprodAt(prev));
    }

    /// <summary>
    /// diffusers' DDIMInverseScheduler.step: <paramref name="sample"/> is at the noise level of the previous inversion
    /// timestep t − T/S (ᾱ = <see cref="FinalAlphaCumprod"/> when negative, i.e. the clean latent of the first step)
    /// and is moved to <paramref name="timestep"/> t using the model output predicted for it; iterate over
    /// <see cref="InverseTimesteps"/>. Equivalent to DIRE's reverse DDIM step (x_{t+1} from x_t and ε̂(x_t)) on the
    /// inference grid: x_t = √ᾱ_t · x̂0 + √(1 − ᾱ_t) · ε̂ with x̂0 = (x_prev − √(1 − ᾱ_prev) · ε̂) / √ᾱ_prev.
    /// </summary>
    public DdimStepOutput InverseStep(Tensor modelOutput, long timestep, Tensor sample)
    {
        var from = Math.Min(timestep - StepRatio, Config.NumTrainTimesteps - 1);
        return Move(modelOutput, sample, AlphaCumprodAt(from), AlphaCumprodAt(timestep));
    }

    /// <summary>
    /// The deterministic DDIM move of <paramref name="sample"/> from noise level ᾱ_from to ᾱ_to given the model output
    /// there (interpreted per prediction_type: ε, v, or x0). Both <see cref="Step"/> and <see cref="InverseStep"/> are
    /// this with neighbouring levels.
    /// </summary>
    public DdimStepOutput Move(Tensor modelOutput, Tensor sample, float alphaProdFrom, float alphaProdTo)
    {
        ArgumentNullException.ThrowIfNull(modelOutput);
        ArgumentNullException.ThrowIfNull(sample);
        if (!modelOutput.shape.SequenceEqual(sample.shape))
            throw new ArgumentException($"DDIM: model output [{string.Join(", ", modelOutput.shape)}] differs from the sample [{string.Join(", ", sample.shape)}].", nameof(modelOutput));
        if (!(alphaProdFrom > 0 && alphaProdFrom <= 1 && alphaProdTo > 0 && alphaProdTo <= 1))
            throw new ArgumentOutOfRangeException(nameof(alphaProdFrom), $"ᾱ must lie in (0, 1], got {alphaProdFrom} and {alphaProdTo}.");
        using var scope = NewDisposeScope();
        // float32 coefficients as diffusers' 0-dim float32 tensors give (sqrt is correctly rounded in both).
        var sqrtA = MathF.Sqrt(alphaProdFrom);
        var sqrtB = MathF.Sqrt(1f - alphaProdFrom);
        Tensor predOriginal, predEpsilon;
        switch (Config.PredictionType)
        {
            case "epsilon":
                predOriginal = (sample - modelOutput.Times(sqrtB)).DividedBy(sqrtA);
                predEpsilon = modelOutput;
                break;
            case "sample":
                predOriginal = modelOutput;
                predEpsilon = (sample - modelOutput.Times(sqrtA)).DividedBy(sqrtB);
                break;
            default: // v_prediction
                predOriginal = sample.Times(sqrtA) - modelOutput.Times(sqrtB);
                predEpsilon = modelOutput.Times(sqrtA).Plus(sample.Times(sqrtB));
                break;
        }
        var prevSample = predOriginal.Times(MathF.Sqrt(alphaProdTo)).Plus(predEpsilon.Times(MathF.Sqrt(1f - alphaProdTo)));
        return new DdimStepOutput(prevSample.MoveToOuterDisposeScope(), predOriginal.alias().MoveToOuterDisposeScope());
    }

    /// <inheritdoc/>
    public void Dispose() => alphasCumprod.Dispose();
}
