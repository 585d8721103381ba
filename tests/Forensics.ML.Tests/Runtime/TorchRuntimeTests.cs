using Forensics.ML.Runtime;
using TorchSharp;

namespace Forensics.ML.Tests.Runtime;

public class TorchRuntimeTests
{
    [Fact]
    public void Torch_runs_an_operation_after_EnsureLoaded()
    {
        var status = TorchRuntime.EnsureLoaded();
        Assert.True(status.Loaded, status.Error);
        using var a = torch.arange(6, dtype: torch.float32).reshape(2, 3);
        using var b = a.matmul(a.t());
        Assert.Equal(new float[] { 5, 14, 14, 50 }, b.data<float>().ToArray());
    }

    [Fact]
    public void The_glue_library_shipped_with_TorchSharp_needs_the_missing_version()
    {
        var lib = TorchRuntime.GlueLibraryCandidates().First();
        var need = ElfVersionNeeds.Read(lib).Single(n => n.Version == TorchRuntime.MissingVersion);
        Assert.Equal("libstdc++.so.6", need.File);
    }

    [Fact]
    public void MarkWeak_sets_the_weak_flag_on_that_need_only_and_is_idempotent()
    {
        var source = TorchRuntime.GlueLibraryCandidates().First();
        var copy = Path.Combine(Path.GetTempPath(), $"glue-{Guid.NewGuid():N}.so");
        File.Copy(source, copy);
        try
        {
            ClearWeak(copy, TorchRuntime.MissingVersion);
            var before = ElfVersionNeeds.Read(copy);
            Assert.False(before.Single(n => n.Version == TorchRuntime.MissingVersion).IsWeak);

            Assert.True(ElfVersionNeeds.MarkWeak(copy, TorchRuntime.MissingVersion));
            var after = ElfVersionNeeds.Read(copy);
            Assert.True(after.Single(n => n.Version == TorchRuntime.MissingVersion).IsWeak);
            // Every other need is untouched.
            Assert.Equal(before.Where(n => n.Version != TorchRuntime.MissingVersion).Select(n => (n.Version, n.Flags)),
                after.Where(n => n.Version != TorchRuntime.MissingVersion).Select(n => (n.Version, n.Flags)));
            Assert.False(ElfVersionNeeds.MarkWeak(copy, TorchRuntime.MissingVersion));
            Assert.Throws<InvalidOperationException>(() => ElfVersionNeeds.MarkWeak(copy, "GLIBCXX_9.9.99"));
        }
        finally { File.Delete(copy); }
    }

    [Fact]
    public void The_workaround_is_applied_exactly_when_the_host_lacks_the_version()
    {
        var host = TorchRuntime.HostLibStdCxx();
        Assert.NotNull(host);
        var hostHasIt = ElfVersionNeeds.DefinesVersion(host!, TorchRuntime.MissingVersion);
        var what = TorchRuntime.PrepareNativeLibraries(Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);
        Assert.Equal(!hostHasIt, what is not null);
        // After preparation every copy this process can load is loadable: weak where the host lacks the version.
        foreach (var lib in TorchRuntime.GlueLibraryCandidates())
            Assert.Equal(!hostHasIt, ElfVersionNeeds.Read(lib).Single(n => n.Version == TorchRuntime.MissingVersion).IsWeak);
    }

    [Fact]
    public void Reading_a_file_that_is_not_ELF_is_a_clear_error()
    {
        var path = Path.GetTempFileName();
        File.WriteAllText(path, "not a library");
        var e = Assert.Throws<InvalidDataException>(() => ElfVersionNeeds.Read(path));
        Assert.Contains(path, e.Message);
        File.Delete(path);
    }

    [Fact]
    public void An_unknown_device_is_a_clear_error()
    {
        TorchRuntime.EnsureLoaded();
        var e = Assert.Throws<ArgumentException>(() => TorchRuntime.ResolveDevice("tpu"));
        Assert.Contains("Torch:Device", e.Message);
    }

    static void ClearWeak(string path, string version)
    {
        foreach (var n in ElfVersionNeeds.Read(path).Where(n => n.Version == version))
        {
            using var fs = new FileStream(path, FileMode.Open, FileAccess.Write);
            fs.Position = n.FlagsOffset;
            fs.Write(BitConverter.GetBytes((ushort)(n.Flags & ~ElfVersionNeeds.VerFlagWeak)));
        }
    }
}

public class TorchTuningTests
{
    [Fact]
    public void NNPACK_is_off_on_x64_where_it_cannot_run_so_convolutions_print_no_warning()
    {
        Assert.True(TorchRuntime.EnsureLoaded().Loaded);
        if (System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture != System.Runtime.InteropServices.Architecture.X64) return;
        Assert.False(TorchRuntime.NnpackEnabled);
    }
}
