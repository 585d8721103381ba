using Forensics.ML.Runtime;
using Forensics.ML.Training;
using TorchSharp;
using static Forensics.ML.Tests.Runtime.KeptAliveFixtures;
using static TorchSharp.torch;

namespace Forensics.ML.Tests.Runtime;

/// <summary>
/// Training while another thread forces garbage collections: the situation (background loaders, HTTP polling) in which
/// TorchSharp 0.107's implicit Scalars were freed by their finalizer during the native call that read them.
/// </summary>
public class ScalarLifetimeStressTests
{
    // With TorchSharp's Adam and BatchNorm2d in place of the kept-alive ones, 4 of 5 such runs of 200 steps failed in
    // c10::Scalar::toFloat ("Expected false to be true") on a 2-core machine; 10 of 10 kept-alive runs were exact.
    private const int Steps = 100;

    /// <summary>Adam steps with BatchNorm training forwards on a model whose large Linear makes each Adam call long.</summary>
    internal static Dictionary<string, Tensor> Train(int steps)
    {
        using var model = Model(keptAliveBatchNorm: true, channels: 16, hidden: 1024);
        model.train();
        using var adam = new KeptAliveAdam(model.parameters(), lr: 1e-3, weight_decay: 1e-4);
        for (var step = 0; step < steps; step++) Step(model, adam, step, size: 16);
        return Snapshot(model);
    }

    /// <summary>
    /// Runs <paramref name="work"/> while a second thread allocates and calls GC.Collect in a loop (started before the
    /// work begins); returns the work's result and the collections completed while it ran.
    /// </summary>
    internal static (T Result, int Collections) UnderGcPressure<T>(Func<T> work)
    {
        var stop = 0;
        var collections = 0;
        using var running = new ManualResetEventSlim();
        var pressure = new Thread(() =>
        {
            var keep = new List<byte[]>();
            while (Volatile.Read(ref stop) == 0)
            {
                for (var i = 0; i < 64; i++) keep.Add(new byte[16 * 1024]);
                keep.Clear();
                GC.Collect();
                GC.WaitForPendingFinalizers();
                Interlocked.Increment(ref collections);
                running.Set();
            }
        }) { IsBackground = true, Name = "gc-pressure" };
        pressure.Start();
        try
        {
            running.Wait();
            var before = Volatile.Read(ref collections);
            var result = work();
            return (result, Volatile.Read(ref collections) - before);
        }
        finally
        {
            Volatile.Write(ref stop, 1);
            pressure.Join();
        }
    }

    [Fact]
    public void Training_under_collections_from_another_thread_gives_the_weights_of_a_quiet_run()
    {
        TorchRuntime.EnsureLoaded();
        var expected = Train(Steps);
        var (actual, collections) = UnderGcPressure(() => Train(Steps));
        // The pressure thread must really have overlapped the training (many collections during it).
        Assert.True(collections >= 3, $"only {collections} collections ran during training");
        AssertIdentical(expected, actual);
        Assert.Equal(Steps, actual["bn.num_batches_tracked"].item<long>());
    }
}
