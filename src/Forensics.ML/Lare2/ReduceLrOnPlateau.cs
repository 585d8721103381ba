using System.Globalization;
using Forensics.ML.Training;
using Forensics.ML.Evaluation;
using Forensics.ML.Models;

namespace Forensics.ML.Lare2;

/// <summary>Whether a larger or a smaller monitored value is better (PyTorch's mode).</summary>
public enum PlateauMode
{
    /// <summary>Larger is better (accuracy, AUC).</summary>
    Max,
    /// <summary>Smaller is better (loss).</summary>
    Min,
}

/// <summary>
/// torch.optim.lr_scheduler.ReduceLROnPlateau with threshold_mode 'rel', one parameter group: after each
/// <see cref="Step"/>, when the value has not beaten best · (1 ± threshold) for more than <see cref="Patience"/> steps
/// in a row, the lr becomes max(lr · factor, min_lr) (a change of at most eps is not applied), the bad-step counter
/// resets and <see cref="Cooldown"/> steps follow in which bad steps are not counted. Unlike <see cref="PlateauSchedule"/>
/// it never stops training. LaRE² uses mode max, factor 0.5, patience 4, min_lr 1e-7, threshold 1e-4, cooldown 0.
/// </summary>
public sealed class ReduceLrOnPlateau
{
    /// <summary>A fresh scheduler at <paramref name="learningRate"/>, PyTorch's defaults for the unnamed arguments.</summary>
    public ReduceLrOnPlateau(double learningRate, PlateauMode mode = PlateauMode.Max, double factor = 0.5, int patience = 4,
        double minLearningRate = 1e-7, double threshold = 1e-4, int cooldown = 0, double eps = 1e-8)
    {
        if (!(learningRate > 0)) throw new ArgumentOutOfRangeException(nameof(learningRate), learningRate, "must be positive");
        if (!(factor < 1) || !(factor >= 0)) throw new ArgumentOutOfRangeException(nameof(factor), factor, "must be in [0, 1) (PyTorch: 'Factor should be < 1.0')");
        if (patience < 0) throw new ArgumentOutOfRangeException(nameof(patience), patience, "must be >= 0");
        if (!(minLearningRate >= 0)) throw new ArgumentOutOfRangeException(nameof(minLearningRate), minLearningRate, "must be >= 0");
        if (!(threshold >= 0)) throw new ArgumentOutOfRangeException(nameof(threshold), threshold, "must be >= 0");
        if (cooldown < 0) throw new ArgumentOutOfRangeException(nameof(cooldown), cooldown, "must be >= 0");
        LearningRate = learningRate;
        Mode = mode;
        Factor = factor;
        Patience = patience;
        MinLearningRate = minLearningRate;
        Threshold = threshold;
        Cooldown = cooldown;
        Eps = eps;
        Best = mode == PlateauMode.Max ? double.NegativeInfinity : double.PositiveInfinity;
    }

    /// <summary>Max or min.</summary>
    public PlateauMode Mode { get; }
    /// <summary>Multiplier of a reduction.</summary>
    public double Factor { get; }
    /// <summary>Bad steps tolerated; the reduction comes on bad step Patience + 1.</summary>
    public int Patience { get; }
    /// <summary>Lower bound of the lr.</summary>
    public double MinLearningRate { get; }
    /// <summary>Relative margin a value must beat the best by.</summary>
    public double Threshold { get; }
    /// <summary>Steps after a reduction in which bad steps are not counted.</summary>
    public int Cooldown { get; }
    /// <summary>Smallest lr change that is applied.</summary>
    public double Eps { get; }

    /// <summary>The lr to use next.</summary>
    public double LearningRate { get; private set; }
    /// <summary>Best value so far (±infinity before the first step).</summary>
    public double Best { get; private set; }
    /// <summary>Consecutive steps without improvement (PyTorch's num_bad_epochs).</summary>
    public int BadSteps { get; private set; }
    /// <summary>Cooldown steps left.</summary>
    public int CooldownCounter { get; private set; }
    /// <summary>Steps taken (PyTorch's last_epoch).</summary>
    public int Steps { get; private set; }
    /// <summary>Reductions applied.</summary>
    public int Reductions { get; private set; }

    /// <summary>True when <paramref name="value"/> beats <see cref="Best"/> by the relative threshold (NaN never does).</summary>
    public bool IsBetter(double value) => Mode == PlateauMode.Max
        ? value > Best * (1 + Threshold)
        : value < Best * (1 - Threshold);

    /// <summary>Feeds one monitored value; returns true when the lr was reduced by this step.</summary>
    public bool Step(double value)
    {
        Steps++;
        if (IsBetter(value))
        {
            Best = value;
            BadSteps = 0;
        }
        else BadSteps++;
        if (CooldownCounter > 0)
        {
            CooldownCounter--;
            BadSteps = 0;
        }
        if (BadSteps <= Patience) return false;
        var reduced = false;
        var next = Math.Max(LearningRate * Factor, MinLearningRate);
        if (LearningRate - next > Eps)
        {
            LearningRate = next;
            Reductions++;
            reduced = true;
        }
        CooldownCounter = Cooldown;
        BadSteps = 0;
        return reduced;
    }

    /// <summary>The state as strings (doubles round-trip), for a checkpoint's metadata.</summary>
    public IReadOnlyDictionary<string, string> Save() => new Dictionary<string, string>
    {
        ["plateau.lr"] = LearningRate.ToString("R", CultureInfo.InvariantCulture),
        ["plateau.best"] = Best.ToString("R", CultureInfo.InvariantCulture),
        ["plateau.bad"] = BadSteps.ToString(CultureInfo.InvariantCulture),
        ["plateau.cooldown"] = CooldownCounter.ToString(CultureInfo.InvariantCulture),
        ["plateau.steps"] = Steps.ToString(CultureInfo.InvariantCulture),
        ["plateau.reductions"] = Reductions.ToString(CultureInfo.InvariantCulture),
    };

    /// <summary>Restores a state written by <see cref="Save"/>.</summary>
    /// <exception cref="InvalidDataException">A field is missing or unreadable (named).</exception>
    public void Restore(IReadOnlyDictionary<string, string> state)
    {
        ArgumentNullException.ThrowIfNull(state);
        string Field(string key) => state.TryGetValue(key, out var v) ? v : throw new InvalidDataException($"plateau state lacks '{key}'.");
        try
        {
            LearningRate = double.Parse(Field("plateau.lr"), CultureInfo.InvariantCulture);
            Best = double.Parse(Field("plateau.best"), CultureInfo.InvariantCulture);
            BadSteps = int.Parse(Field("plateau.bad"), CultureInfo.InvariantCulture);
            CooldownCounter = int.Parse(Field("plateau.cooldown"), CultureInfo.InvariantCulture);
            Steps = int.Parse(Field("plateau.steps"), CultureInfo.InvariantCulture);
            Reductions = int.Parse(Field("plateau.reductions"), CultureInfo.InvariantCulture);
        }
        catch (FormatException e)
        {
            throw new InvalidDataException($"unreadable plateau state: {e.Message}", e);
        }
    }
}
