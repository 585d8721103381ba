using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Portal.Jobs;

namespace Portal.Tests.Support;

/// <summary>
/// The real portal (store, queue, jobs, API, UI) on a temporary data directory that is also the only allowed root.
/// Two factories over the same directory, one after the other, are a restart. The demo is off unless
/// <c>settings</c> turn it on; <c>settings</c> are applied last.
/// </summary>
public sealed class PortalFactory(string dataDir, Action<IServiceCollection>? services = null, IReadOnlyDictionary<string, string>? settings = null)
    : WebApplicationFactory<Program>
{
    public string DataDir { get; } = dataDir;

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseSetting("Portal:DataDir", DataDir);
        builder.UseSetting("Portal:Jobs:HeartbeatSeconds", "0.2");
        // No MiniGenImage build or demo zoo entries unless a test asks for them (the demo tests).
        builder.UseSetting("Portal:Demo:Enabled", "false");
        foreach (var (key, value) in settings ?? new Dictionary<string, string>()) builder.UseSetting(key, value);
        builder.ConfigureTestServices(s =>
        {
            s.AddTransient<IRunJob, TestJobs.Sleep>();
            s.AddTransient<IRunJob, TestJobs.DeviceProbe>();
            services?.Invoke(s);
        });
    }
}

/// <summary>A fresh temporary folder, deleted on dispose.</summary>
public sealed class TempDir : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("portal-test-").FullName;
    public string Sub(params string[] parts) => System.IO.Path.Combine([Path, .. parts]);
    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
