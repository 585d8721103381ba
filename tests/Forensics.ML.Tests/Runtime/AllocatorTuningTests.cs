using System.Runtime.InteropServices;
using Forensics.ML.Runtime;

namespace Forensics.ML.Tests.Runtime;

/// <summary>The host tuning keeps large buffers in glibc's heap: an allocation over glibc's 32 MiB mmap threshold is no new mapping.</summary>
public class AllocatorTuningTests
{
    // glibc's struct mallinfo2: ten size_t fields; hblks is the number of chunks currently served by mmap.
    [StructLayout(LayoutKind.Sequential)]
    struct MallInfo2
    {
        public nuint Arena, Ordblks, Smblks, Hblks, Hblkhd, Usmblks, Fsmblks, Uordblks, Fordblks, Keepcost;
    }

    [DllImport("libc", EntryPoint = "mallinfo2")]
    static extern MallInfo2 MallInfo();

    [Fact]
    public void A_buffer_over_the_mmap_threshold_comes_from_the_heap_once_torch_is_loaded()
    {
        if (!OperatingSystem.IsLinux()) return;
        Assert.True(TorchRuntime.EnsureLoaded().Loaded, TorchRuntime.Status?.Error);
        var before = MallInfo().Hblks;
        // 40 MiB: over the 32 MiB threshold (glibc maps it afresh by default) and under a thread arena's 64 MiB heap.
        var buffer = Marshal.AllocHGlobal(40 << 20);
        try
        {
            Marshal.WriteByte(buffer, (40 << 20) - 1, 1);
            Assert.Equal(before, MallInfo().Hblks);
        }
        finally { Marshal.FreeHGlobal(buffer); }
    }
}
