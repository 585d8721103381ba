using Forensics.ML.Runtime;
using static TorchSharp.torch;

namespace Forensics.ML.Tests.Runtime;

/// <summary>
/// libtorch's thread count is per OS thread and set the first time a thread uses it: a thread that starts while the
/// process count is lowered keeps the lower count. <see cref="TorchThreads.Ensure"/> gives it the process's count back.
/// </summary>
public class TorchThreadsTests
{
    [Fact]
    public void A_thread_that_first_ran_while_the_count_was_lowered_gets_the_process_count_back()
    {
        Assert.True(TorchRuntime.EnsureLoaded().Loaded);
        var process = TorchThreads.Count;
        Assert.Equal(get_num_threads(), process);
        // On a one-core host the process count is 1 and there is nothing lower to fall to: take 2 for the test.
        var wanted = Math.Max(2, process);
        TorchThreads.Set(wanted);
        try
        {
            int before = 0, kept = 0, after = 0;
            set_num_threads(1);
            var late = new Thread(() =>
            {
                before = get_num_threads();   // its first use: it takes the lowered count...
                gate.Wait();
                kept = get_num_threads();      // ...and keeps it after the process count is back
                TorchThreads.Ensure();
                after = get_num_threads();
            });
            late.Start();
            SpinWait.SpinUntil(() => before != 0, TimeSpan.FromSeconds(10));
            set_num_threads(wanted);
            gate.Set();
            late.Join();
            Assert.Equal(1, before);
            Assert.Equal(1, kept);
            Assert.Equal(wanted, after);
        }
        finally { TorchThreads.Set(process); }
    }

    readonly ManualResetEventSlim gate = new();
}
