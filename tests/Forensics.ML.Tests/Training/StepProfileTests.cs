using Forensics.ML.Benchmarks;
using Forensics.ML.Lare2;
using Forensics.ML.Models;
using Forensics.ML.Models.Clip;
using Forensics.ML.Runtime;
using Forensics.ML.Training;

namespace Forensics.ML.Tests.Training;

public class StepProfileTests
{
    public StepProfileTests() => TorchRuntime.EnsureLoaded();

    [Fact]
    public void Phases_add_up_to_the_measured_time_and_name_every_part_of_a_step()
    {
        var profile = new StepProfile();
        profile.Start();
        Thread.Sleep(20);
        profile.Mark(StepPhase.Forward);
        Thread.Sleep(40);
        profile.Mark(StepPhase.Backward);
        profile.EndStep(8);

        Assert.Equal(1, profile.Steps);
        Assert.Equal(8, profile.Images);
        Assert.InRange(profile.Seconds(StepPhase.Forward), 0.015, 1);
        Assert.True(profile.Seconds(StepPhase.Backward) > profile.Seconds(StepPhase.Forward));
        Assert.Equal(profile.TotalSeconds, profile.Breakdown().Sum(b => b.Seconds), 9);
        Assert.Equal(1, profile.Breakdown().Sum(b => b.Fraction), 6);
        var line = profile.Summary();
        foreach (var name in Enum.GetValues<StepPhase>().Select(StepProfile.Name)) Assert.Contains(name, line);
    }

    [Fact]
    public void The_trainers_own_steps_are_profiled_for_the_detector_and_LaRE2()
    {
        var detector = TrainStepProfiler.Detector(ResNetOptions.Res50NoDown() with { BaseWidth = 4, Layers = [1, 1, 1, 1] }, batch: 4, size: 32, steps: 2);
        Assert.Equal(2, detector.Steps);
        Assert.Equal(8, detector.Images);
        Assert.True(detector.Seconds(StepPhase.Forward) > 0 && detector.Seconds(StepPhase.Backward) > 0 && detector.Seconds(StepPhase.Optimizer) > 0);
        Assert.Equal(0, detector.Seconds(StepPhase.DataWait));

        var backbone = new ModifiedResNetOptions { Width = 8, Layers = [1, 1, 1, 1], Heads = 2, OutputDim = 16, InputResolution = 32 };
        var lare = TrainStepProfiler.Lare2(Lare2Options.For(backbone, heads: 2, keyDim: 8, valueDim: 8, hidden: 8), batch: 4, steps: 2);
        Assert.Equal(2, lare.Steps);
        Assert.True(lare.Seconds(StepPhase.Forward) > 0 && lare.Seconds(StepPhase.Backward) > 0);
    }

    [Fact]
    public void The_peak_reference_is_the_best_of_its_sizes_with_the_load_average()
    {
        var peak = MachinePeak.Measure([64, 128], TimeSpan.FromMilliseconds(60));
        Assert.Equal(2, peak.Sizes.Count);
        Assert.Equal(peak.Sizes.Max(r => r.Gflops), peak.Gflops);
        Assert.True(peak.Gflops > 0);
        if (File.Exists("/proc/loadavg")) Assert.Matches(@"^[0-9.]+ [0-9.]+ [0-9.]+$", peak.LoadAverage);
        Assert.Equal(0, MachinePeak.Spread(peak, peak));
        Assert.Contains("128x128", peak.Describe());
    }
}
