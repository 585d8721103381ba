using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using TorchSharp;

namespace Forensics.ML.Runtime;

/// <summary>Where torch runs: the device ("cpu" or "cuda[:n]") and the number of intra-op threads (0: libtorch's default).</summary>
public sealed record TorchOptions
{
    public string Device { get; init; } = "cpu";
    public int Threads { get; init; }

    /// <summary>
    /// Apply the host tuning (glibc malloc thresholds; NNPACK off where the CPU cannot run it). On by default; off only to
    /// measure what it brings (`forensics bench --no-tuning`). Numerics are the same either way.
    /// </summary>
    public bool Tuning { get; init; } = true;
}

/// <summary>What the loaded torch reports about itself.</summary>
public sealed record TorchStatus(bool Loaded, string? TorchSharpVersion, string Device, int Threads, bool CudaAvailable,
    string? Workaround, string? Error)
{
    /// <summary>Set when this host's oneDNN convolutions failed <see cref="MkldnnConvolutionCheck"/> and libtorch's own
    /// convolutions are used instead; null where oneDNN computes correctly (nothing is changed there).</summary>
    public string? ConvolutionWorkaround => ConvolutionCheck?.Message;

    /// <summary>The probe errors behind <see cref="ConvolutionWorkaround"/>; null where oneDNN computes correctly.</summary>
    public MkldnnWorkaround? ConvolutionCheck { get; init; }
}

/// <summary>
/// Loads TorchSharp's native libraries on any host, once per process. libLibTorchSharp.so of TorchSharp 0.107.0 lists a
/// need for GLIBCXX_3.4.32 (GCC 13's libstdc++) for one symbol, <c>_ZSt21ios_base_library_init</c>, that is referenced
/// but never called. Debian 12 ships libstdc++ up to 3.4.30, so the loader refuses the library. Where, and only where,
/// the host's libstdc++ lacks that version, the requirement is marked weak (VER_FLG_WEAK) in the copies that this
/// application loads; the loader then accepts it, and the missing symbol is never used.
/// </summary>
public static class TorchRuntime
{
    /// <summary>The version that TorchSharp 0.107.0's native glue needs and Debian 12 lacks.</summary>
    public const string MissingVersion = "GLIBCXX_3.4.32";
    const string GlueLibrary = "libLibTorchSharp.so";

    static readonly Lock Gate = new();
    static TorchStatus? status;

    /// <summary>
    /// The libtorch runtime this build references: "cpu" (TorchSharp's CPU libtorch, the default build) or "cuda" (built
    /// with <c>dotnet build -p:TorchDevice=cuda</c>, TorchSharp's CUDA 12.8 libtorch).
    /// </summary>
    public static string BuildDevice { get; } = typeof(TorchRuntime).Assembly.GetCustomAttributes(typeof(System.Reflection.AssemblyMetadataAttribute), false)
        .Cast<System.Reflection.AssemblyMetadataAttribute>().FirstOrDefault(a => a.Key == "TorchDevice")?.Value ?? "cpu";

    /// <summary>
    /// Why torch configured for <paramref name="device"/> cannot run from this build, or null when it can: a "cuda" device
    /// on a build that references only the CPU libtorch. Known before torch loads, so a process can stop at start.
    /// </summary>
    public static string? BuildMismatch(string device)
    {
        var d = (device ?? "cpu").Trim().ToLowerInvariant();
        if (BuildDevice == "cpu" && (d == "cuda" || d.StartsWith("cuda:", StringComparison.Ordinal)))
            return $"the device is '{device}' but this build references only TorchSharp's CPU runtime (libtorch-cpu); " +
                   "a CUDA device needs the CUDA build: dotnet build -c Release -p:TorchDevice=cuda (TorchSharp's libtorch-cuda-12.8 runtime packages)";
        return null;
    }

    /// <summary>The status after <see cref="EnsureLoaded"/>; null before the first call.</summary>
    public static TorchStatus? Status => status;

    /// <summary>Loads torch (applying the host workaround when needed) and applies the options. Safe to call many times.</summary>
    public static TorchStatus EnsureLoaded(TorchOptions? options = null, ILogger? logger = null)
    {
        logger ??= NullLogger.Instance;
        lock (Gate)
        {
            if (status is { Loaded: true }) return status;
            options ??= new TorchOptions();
            string? workaround = null;
            try
            {
                workaround = PrepareNativeLibraries(logger);
                if (options.Tuning) TuneAllocator();
                if (options.Threads > 0) torch.set_num_threads(options.Threads);
                TorchThreads.Init(torch.get_num_threads());
                var device = ResolveDevice(options.Device);
                using (var probe = torch.ones(2, 2, device: device)) _ = probe.sum().item<float>();
                if (options.Tuning) DisableUnusableNnpack(logger);
                var convolutionWorkaround = MkldnnConvolutionCheck.DisableIfWrong(logger);
                status = new TorchStatus(true, typeof(torch).Assembly.GetName().Version?.ToString(), device.ToString(),
                    torch.get_num_threads(), torch.cuda.is_available(), workaround, null)
                { ConvolutionCheck = convolutionWorkaround };
                logger.LogInformation("Torch loaded: device {Device}, {Threads} threads", status.Device, status.Threads);
            }
            catch (Exception e)
            {
                var message = e is TypeInitializationException { InnerException: { } inner } ? inner.Message : e.Message;
                status = new TorchStatus(false, null, options.Device, 0, false, workaround, message);
                logger.LogError(e, "Torch failed to load: {Message}", message);
            }
            return status;
        }
    }

    /// <summary>Parses "cpu", "cuda" or "cuda:N"; cuda on a host without it is a clear error.</summary>
    public static torch.Device ResolveDevice(string name)
    {
        var d = (name ?? "cpu").Trim().ToLowerInvariant();
        if (d == "cpu") return torch.CPU;
        if (d == "cuda" || d.StartsWith("cuda:", StringComparison.Ordinal))
        {
            if (!torch.cuda.is_available())
                throw new InvalidOperationException($"Torch:Device is '{name}' but CUDA is not available " +
                    (BuildDevice == "cpu" ? "(this build references TorchSharp's CPU runtime; build with -p:TorchDevice=cuda)" : "(no usable GPU or driver on this host)"));
            return torch.device(d);
        }
        throw new ArgumentException($"Torch:Device must be 'cpu', 'cuda' or 'cuda:N', not '{name}'");
    }

    /// <summary>
    /// Applies the GLIBCXX workaround where the host needs it. Returns a description of what was done, or null when the
    /// host's libstdc++ already has the version (or this is not Linux).
    /// </summary>
    internal static string? PrepareNativeLibraries(ILogger logger)
    {
        if (!OperatingSystem.IsLinux()) return null;
        var host = HostLibStdCxx();
        if (host is null || ElfVersionNeeds.DefinesVersion(host, MissingVersion)) return null;
        var patched = new List<string>();
        foreach (var lib in GlueLibraryCandidates())
            if (PatchIfNeeded(lib)) patched.Add(lib);
        var what = $"host libstdc++ ({host}) lacks {MissingVersion}; its need in {GlueLibrary} is marked weak " +
                   $"(only the never-called _ZSt21ios_base_library_init uses it)";
        if (patched.Count > 0)
            logger.LogWarning("TorchSharp workaround applied: {What}; patched {Files}", what, string.Join(", ", patched));
        else
            logger.LogInformation("TorchSharp workaround in place: {What}", what);
        return what;
    }

    /// <summary>Marks the need weak in one copy of the glue library; true when the file changed.</summary>
    internal static bool PatchIfNeeded(string library)
    {
        var needs = ElfVersionNeeds.Read(library);
        if (!needs.Any(n => n.Version == MissingVersion && !n.IsWeak)) return false;
        // Patch a private copy and move it over the original, so a concurrent process never sees a half-written file.
        var temp = library + $".{Environment.ProcessId}.tmp";
        File.Copy(library, temp, overwrite: true);
        ElfVersionNeeds.MarkWeak(temp, MissingVersion);
        File.Move(temp, library, overwrite: true);
        return true;
    }

    /// <summary>Every copy of the glue library this process may load: next to the app, and TorchSharp's consolidated cpu/ folder.</summary>
    internal static IEnumerable<string> GlueLibraryCandidates()
    {
        var dirs = new[] { AppContext.BaseDirectory, Path.GetDirectoryName(typeof(torch).Assembly.Location) ?? "" }
            .Where(d => d.Length > 0).Select(Path.GetFullPath).Distinct();
        foreach (var dir in dirs)
            foreach (var sub in new[] { Path.Combine("runtimes", "linux-x64", "native"), "cpu", "" })
            {
                var p = Path.Combine(dir, sub, GlueLibrary);
                if (File.Exists(p)) yield return p;
            }
    }

    /// <summary>The path of the libstdc++.so.6 the dynamic loader gives this process, read from /proc/self/maps.</summary>
    internal static string? HostLibStdCxx()
    {
        if (!NativeLibrary.TryLoad("libstdc++.so.6", out _)) return null;
        foreach (var line in File.ReadLines("/proc/self/maps"))
        {
            var i = line.IndexOf('/');
            if (i >= 0 && line.AsSpan(i).Contains("libstdc++.so.6", StringComparison.Ordinal)) return line[i..].Trim();
        }
        return null;
    }

    // at::globalContext() and its NNPACK switch (torch.backends.nnpack.enabled in Python), which TorchSharp does not wrap.
    // Resolved in the libtorch_cpu.so this process already mapped (a DllImport by name could load a second copy).
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] delegate IntPtr GlobalContextFn();
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] delegate void SetBoolFn(IntPtr context, [MarshalAs(UnmanagedType.U1)] bool value);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] [return: MarshalAs(UnmanagedType.U1)] delegate bool GetBoolFn(IntPtr context);

    static T? TorchExport<T>(string symbol) where T : Delegate
    {
        if (!OperatingSystem.IsLinux()) return null;
        string? path;
        try
        {
            path = File.ReadLines("/proc/self/maps").Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
                .Where(f => f.Length >= 6 && f[^1].EndsWith("/libtorch_cpu.so", StringComparison.Ordinal)).Select(f => f[^1]).FirstOrDefault();
        }
        catch (IOException) { return null; }
        if (path is null || !NativeLibrary.TryLoad(path, out var handle) || !NativeLibrary.TryGetExport(handle, symbol, out var address)) return null;
        return Marshal.GetDelegateForFunctionPointer<T>(address);
    }

    /// <summary>Whether libtorch may try NNPACK for convolutions (null before torch is loaded or where the switch cannot be reached).</summary>
    public static bool? NnpackEnabled =>
        TorchExport<GlobalContextFn>("_ZN2at13globalContextEv") is { } context && TorchExport<GetBoolFn>("_ZNK2at7Context17userEnabledNNPACKEv") is { } get
            ? get(context())
            : null;

    /// <summary>
    /// Turns NNPACK off on x86-64, where libtorch's NNPACK reports "unsupported hardware": its convolution dispatch then
    /// tries to initialise it again and prints "Could not initialize NNPACK!" for many convolutions (dozens of lines per
    /// training step, in every run log), and oneDNN does the work anyway. Same results: NNPACK never ran here.
    /// </summary>
    static void DisableUnusableNnpack(ILogger logger)
    {
        if (RuntimeInformation.ProcessArchitecture != Architecture.X64) return;
        if (TorchExport<GlobalContextFn>("_ZN2at13globalContextEv") is { } context && TorchExport<SetBoolFn>("_ZN2at7Context20setUserEnabledNNPACKEb") is { } set)
            set(context(), false);
        else
            logger.LogDebug("libtorch's NNPACK switch not found; left as it is");
    }

    [DllImport("libc", EntryPoint = "mallopt")]
    static extern int Mallopt(int param, int value);

    /// <summary>
    /// Keeps large tensors in glibc's heap instead of fresh mmaps. By default every allocation of 32 MiB or more (glibc's
    /// highest mmap threshold on 64-bit) is a new mapping, whose pages the kernel faults in and zeroes on first touch and
    /// unmaps on free: im2col buffers and activations of a res50nodown batch are that large, so training and scoring spent
    /// as much time in the kernel as in user code. With mmap off for malloc (M_MMAP_MAX 0) and the trim threshold at 1 GiB,
    /// a freed buffer is reused by the next step. Measured with `forensics bench` on this 2-core Zen 5 (README,
    /// Benchmarks, one quiet session): res50nodown at 96 px, batch 16, 1.38 -> 5.47 img/s forward and 0.56 -> 1.53 img/s
    /// per train step. The price is memory: the heap keeps what a step freed (the bench's peak RSS 4.8 -> 9.2 GB). Off with
    /// <see cref="TorchRuntimeOptions.Tuning"/> = false. Numerics are unchanged: only where the bytes live differs.
    /// </summary>
    static void TuneAllocator()
    {
        if (!OperatingSystem.IsLinux()) return;
        try
        {
            const int mTrimThreshold = -1, mMmapThreshold = -3, mMmapMax = -4;
            Mallopt(mMmapThreshold, 32 << 20); // glibc caps this at 32 MiB on 64-bit
            Mallopt(mTrimThreshold, 1 << 30);
            Mallopt(mMmapMax, 0);
        }
        catch (EntryPointNotFoundException) { }
        catch (DllNotFoundException) { }
    }
}
