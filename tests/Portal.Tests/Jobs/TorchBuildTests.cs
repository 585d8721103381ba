using System.Diagnostics;
using System.Reflection;
using Forensics.ML.Runtime;
using Microsoft.Extensions.Configuration;
using Portal.Infrastructure;
using Portal.Tests.Support;

namespace Portal.Tests.Jobs;

/// <summary>The TorchDevice build switch (cpu by default, cuda on request) and the start-up refusal of a cuda worker on a CPU build.</summary>
public class TorchBuildTests
{
    [Theory]
    [InlineData("worker")]
    [InlineData(null)]     // a portal that runs jobs
    public async Task A_process_configured_for_cuda_on_the_cpu_build_stops_at_start_naming_the_build_it_needs(string? verb)
    {
        using var tmp = new TempDir();
        using var process = WorkerProcess.Start(verb is null ? [] : [verb], tmp.Path, new Dictionary<string, string> { ["Portal:Torch:Device"] = "cuda" });
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        await process.Process.WaitForExitAsync(timeout.Token);
        process.Process.WaitForExit();
        Assert.True(process.Process.ExitCode == TorchBuildCheck.ExitCode, $"exit {process.Process.ExitCode}: {process.Output}");
        Assert.Contains("this build references only TorchSharp's CPU runtime", process.Output);
        Assert.Contains("dotnet build -c Release -p:TorchDevice=cuda", process.Output);
        // It stopped before opening the store: no job could have been taken.
        Assert.False(File.Exists(Path.Combine(tmp.Path, "portal.db")) && !PortalFactory.Postgres, "the refused process created the store");
    }

    [Fact]
    public void The_check_refuses_cuda_only_where_jobs_run_on_a_cpu_build()
    {
        static string? Problem(params (string Key, string Value)[] settings) =>
            TorchBuildCheck.Problem(new ConfigurationBuilder().AddInMemoryCollection(settings.Select(s => new KeyValuePair<string, string?>(s.Key, s.Value))).Build());
        Assert.Equal("cpu", TorchRuntime.BuildDevice);
        Assert.Contains(typeof(TorchRuntime).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>(), a => a is { Key: "TorchDevice", Value: "cpu" });
        Assert.NotNull(Problem(("Portal:Torch:Device", "cuda:1")));
        Assert.Null(Problem(("Portal:Torch:Device", "cpu")));
        Assert.Null(Problem());
        // A web node that only queues (Portal:Jobs:DefaultDevice=cuda for its GPU workers) runs no torch job.
        Assert.Null(Problem(("Portal:Torch:Device", "cuda"), ("Portal:Jobs:RunWorkers", "false")));
    }

    /// <summary>The PackageReference items of the ML library as MSBuild evaluates them (no restore, no build).</summary>
    static async Task<string> PackageReferencesAsync(params string[] properties)
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Portal.sln"))) dir = dir.Parent;
        Assert.NotNull(dir);
        var info = new ProcessStartInfo("dotnet", ["msbuild", Path.Combine(dir.FullName, "src", "Forensics.ML", "Forensics.ML.csproj"), "-getItem:PackageReference", .. properties])
        {
            RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = dir.FullName,
        };
        using var p = Process.Start(info)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        Assert.True(p.ExitCode == 0, await stdout + await stderr);
        return await stdout;
    }

    [Fact]
    public async Task The_default_build_references_the_cpu_libtorch_and_TorchDevice_cuda_the_cuda_runtime_instead()
    {
        var cpu = await PackageReferencesAsync();
        Assert.Contains("\"libtorch-cpu-linux-x64\"", cpu);
        Assert.DoesNotContain("libtorch-cuda", cpu);
        var cuda = await PackageReferencesAsync("-p:TorchDevice=cuda");
        Assert.Contains("\"libtorch-cuda-12.8-linux-x64\"", cuda);
        Assert.DoesNotContain("libtorch-cpu", cuda);
        Assert.Contains("\"TorchSharp\"", cuda);
    }
}
