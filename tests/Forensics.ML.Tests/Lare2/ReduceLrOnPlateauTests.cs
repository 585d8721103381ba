using Forensics.ML.Lare2;
using Forensics.ML.Training;
using Forensics.ML.Tests.Training;

namespace Forensics.ML.Tests.Lare2;

/// <summary>ReduceLrOnPlateau against torch.optim.lr_scheduler.ReduceLROnPlateau's rules (threshold_mode 'rel').</summary>
public class ReduceLrOnPlateauTests
{
    [Fact]
    public void Max_mode_reduces_on_the_bad_step_after_patience_and_stops_at_min_lr()
    {
        var s = new ReduceLrOnPlateau(1.0, PlateauMode.Max, factor: 0.5, patience: 2, minLearningRate: 0.1);
        Assert.False(s.Step(1.0));            // first value always improves on -inf
        Assert.Equal(1.0, s.Best);
        Assert.False(s.Step(1.00005));        // within the 1e-4 relative threshold: a bad step
        Assert.Equal(1.0, s.Best);
        Assert.Equal(1, s.BadSteps);
        Assert.False(s.Step(0.9));            // bad 2 == patience: no reduction yet
        Assert.True(s.Step(0.9));             // bad 3 > patience: lr halves, counter resets
        Assert.Equal(0.5, s.LearningRate);
        Assert.Equal(0, s.BadSteps);
        var rates = new List<double>();
        for (var i = 0; i < 12; i++) { s.Step(0.9); rates.Add(s.LearningRate); }
        // Every third bad step: 0.25, 0.125, then max(0.0625, 0.1) = 0.1, then no change (0.1 - 0.1 <= eps).
        Assert.Equal([0.5, 0.5, 0.25, 0.25, 0.25, 0.125, 0.125, 0.125, 0.1, 0.1, 0.1, 0.1], rates);
        Assert.Equal(4, s.Reductions);
        Assert.False(s.Step(1.0002));         // above 1.0001: better, but no reduction either way
        Assert.Equal(1.0002, s.Best);
        Assert.Equal(0, s.BadSteps);
    }

    [Fact]
    public void Relative_threshold_uses_best_times_one_plus_threshold_also_for_negative_values()
    {
        var max = new ReduceLrOnPlateau(1e-4);
        max.Step(-1.0);
        // PyTorch compares with best * (1 + threshold) = -1.0001, so -0.99995 counts as an improvement.
        Assert.True(max.IsBetter(-0.99995));
        Assert.False(max.IsBetter(double.NaN));
        var min = new ReduceLrOnPlateau(1e-4, PlateauMode.Min);
        min.Step(1.0);
        Assert.False(min.IsBetter(0.99995));
        Assert.True(min.IsBetter(0.9998));
    }

    [Fact]
    public void Cooldown_ignores_bad_steps_after_a_reduction()
    {
        var s = new ReduceLrOnPlateau(1.0, PlateauMode.Max, factor: 0.5, patience: 0, minLearningRate: 0, cooldown: 1);
        s.Step(1);
        Assert.True(s.Step(0));               // bad 1 > 0: reduce, cooldown 1
        Assert.Equal(1, s.CooldownCounter);
        Assert.False(s.Step(0));              // in cooldown: counted then cleared
        Assert.Equal(0, s.BadSteps);
        Assert.True(s.Step(0));
        Assert.Equal(0.25, s.LearningRate);
    }

    [Fact]
    public void The_recipe_waits_four_bad_epochs_and_halves_on_the_fifth_down_to_1e7()
    {
        var s = new ReduceLrOnPlateau(1e-4);   // mode max, factor 0.5, patience 4, min 1e-7
        s.Step(0.8);
        for (var i = 0; i < 4; i++) Assert.False(s.Step(0.8));
        Assert.True(s.Step(0.8));
        Assert.Equal(5e-5, s.LearningRate);
        for (var i = 0; i < 100; i++) s.Step(0.5);
        Assert.Equal(1e-7, s.LearningRate);
    }

    [Fact]
    public void State_round_trips_through_save_and_restore()
    {
        var a = new ReduceLrOnPlateau(1e-4);
        foreach (var v in new[] { 0.5, 0.6, 0.55, 0.55, 0.55, 0.55, 0.55, 0.1 }) a.Step(v);
        var b = new ReduceLrOnPlateau(1e-4);
        b.Restore(a.Save());
        Assert.Equal((a.LearningRate, a.Best, a.BadSteps, a.CooldownCounter, a.Steps, a.Reductions),
            (b.LearningRate, b.Best, b.BadSteps, b.CooldownCounter, b.Steps, b.Reductions));
        foreach (var v in new[] { 0.3, 0.3, 0.3, 0.3, 0.61 }) Assert.Equal(a.Step(v), b.Step(v));
        Assert.Equal(a.LearningRate, b.LearningRate);
        var fresh = new ReduceLrOnPlateau(1e-4);
        fresh.Restore(new ReduceLrOnPlateau(1e-4).Save());
        Assert.Equal(double.NegativeInfinity, fresh.Best);
        Assert.Throws<InvalidDataException>(() => fresh.Restore(new Dictionary<string, string>()));
    }
}
