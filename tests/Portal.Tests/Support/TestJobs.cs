using System.Collections.Concurrent;
using Portal.Experiments;
using Portal.Datasets;
using Portal.Zoo;
using Portal.Runs;

namespace Portal.Tests.Support;

/// <summary>Jobs that exist only in the tests, to drive the run machinery.</summary>
public static class TestJobs
{
    /// <summary>Config of the test jobs: how many steps of how many milliseconds, and an optional failure.</summary>
    public sealed record SleepConfig(int Steps, int StepMs, string? FailWith = null, string? Tag = null);

    /// <summary>Runs on the light queue; reports progress each step; honours cancellation; records what happened.</summary>
    public sealed class Sleep : IRunJob
    {
        public static readonly ConcurrentDictionary<long, string> Outcomes = new();
        public string Kind => "test-sleep";
        public string Queue => JobQueues.Light;

        public async Task ExecuteAsync(RunContext context)
        {
            var c = context.Config<SleepConfig>();
            try
            {
                for (var i = 0; i < c.Steps; i++)
                {
                    await Task.Delay(c.StepMs, context.CancellationToken);
                    context.ReportProgress((i + 1.0) / c.Steps, $"step {i + 1}/{c.Steps}");
                }
                if (c.FailWith is not null) throw new InvalidOperationException(c.FailWith);
                await context.MetricAsync("steps", 0, c.Steps);
                Outcomes[context.RunId] = "done";
            }
            catch (OperationCanceledException)
            {
                Outcomes[context.RunId] = "token canceled";
                throw;
            }
        }
    }

    /// <summary>Runs on the device queue and records how many device jobs ran at once.</summary>
    public sealed class DeviceProbe : IRunJob
    {
        static int current;
        public static int MaxConcurrent;
        public string Kind => "test-device";
        public string Queue => JobQueues.Device;

        public async Task ExecuteAsync(RunContext context)
        {
            var now = Interlocked.Increment(ref current);
            InterlockedMax(ref MaxConcurrent, now);
            try { await Task.Delay(context.Config<SleepConfig>().StepMs, context.CancellationToken); }
            finally { Interlocked.Decrement(ref current); }
        }

        static void InterlockedMax(ref int target, int value)
        {
            int seen;
            while ((seen = Volatile.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, seen) != seen) { }
        }
    }
}
