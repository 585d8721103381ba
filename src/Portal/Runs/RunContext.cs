using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Portal.Infrastructure;
using Portal.Store;

namespace Portal.Runs;

/// <summary>What a job sees of its run: its config, progress and log reporting, metrics, the data directory, cancellation.</summary>
public sealed class RunContext(long runId, string kind, string configJson, int attempt, PortalPaths paths,
    IDbContextFactory<PortalDb> dbFactory, IServiceProvider services, CancellationToken cancellationToken)
{
    static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);
    readonly Lock gate = new();
    double progress;
    string? phase;
    bool dirty;
    IRunProgressObserver[]? observers;

    public long RunId { get; } = runId;
    public string Kind { get; } = kind;
    public string ConfigJson { get; } = configJson;
    /// <summary>1 on the first claim; more when the run is taken up again after a crash or restart.</summary>
    public int Attempt { get; } = attempt;
    public PortalPaths Paths { get; } = paths;
    public IServiceProvider Services { get; } = services;
    public CancellationToken CancellationToken { get; } = cancellationToken;

    /// <summary>The config deserialised (web defaults: camelCase, case-insensitive).</summary>
    public T Config<T>() => JsonSerializer.Deserialize<T>(ConfigJson, Json)
                            ?? throw new InvalidOperationException($"run {RunId}: config is empty");

    /// <summary>A working folder for this run under the data directory (checkpoints, partial results).</summary>
    public string WorkDir
    {
        get
        {
            var dir = Paths.Data("runs", RunId.ToString());
            Directory.CreateDirectory(dir);
            return dir;
        }
    }

    /// <summary>Records progress (0..1) and the current phase; written to the store by the executor's heartbeat.</summary>
    public void ReportProgress(double fraction, string? currentPhase = null)
    {
        double reported;
        string? reportedPhase;
        lock (gate)
        {
            reported = progress = Math.Clamp(double.IsFinite(fraction) ? fraction : 0, 0, 1);
            if (currentPhase is not null) phase = currentPhase;
            reportedPhase = phase;
            dirty = true;
        }
        observers ??= Services.GetServices<IRunProgressObserver>().ToArray();
        foreach (var observer in observers) observer.Reported(RunId, Kind, reported, reportedPhase);
    }

    /// <summary>Marks the progress unwritten again: the write that took it failed, so the next flush repeats it.</summary>
    internal void ProgressNotWritten()
    {
        lock (gate) dirty = true;
    }

    internal bool TakeProgress(out double fraction, out string? currentPhase)
    {
        lock (gate)
        {
            fraction = progress;
            currentPhase = phase;
            var was = dirty;
            dirty = false;
            return was;
        }
    }

    /// <summary>Appends a line to the run's log.</summary>
    public async Task LogAsync(string message, string level = "info")
    {
        await using var db = await dbFactory.CreateDbContextAsync(CancellationToken.None);
        db.RunLog.Add(new RunLogLine { RunId = RunId, At = DateTime.UtcNow, Level = level, Message = message });
        await db.SaveChangesAsync(CancellationToken.None);
    }

    /// <summary>Records one point of a named metric series.</summary>
    public Task MetricAsync(string name, long step, double value) => MetricsAsync([(name, step, value)]);

    /// <summary>Records several points (of one or more series) in one write.</summary>
    public async Task MetricsAsync(IReadOnlyCollection<(string Name, long Step, double Value)> points)
    {
        if (points.Count == 0) return;
        await using var db = await dbFactory.CreateDbContextAsync(CancellationToken.None);
        var at = DateTime.UtcNow;
        foreach (var (name, step, value) in points)
            db.RunMetrics.Add(new RunMetric { RunId = RunId, Name = name, Step = step, Value = value, At = at });
        await db.SaveChangesAsync(CancellationToken.None);
    }

    /// <summary>Records a file under the data directory as an artifact of this run, with its size and SHA-256.</summary>
    public async Task<Artifact> ArtifactAsync(string kind, string path)
    {
        string sha256;
        await using (var stream = File.OpenRead(path))
            sha256 = Convert.ToHexStringLower(await System.Security.Cryptography.SHA256.HashDataAsync(stream));
        await using var db = await dbFactory.CreateDbContextAsync(CancellationToken.None);
        var a = new Artifact
        {
            RunId = RunId, Kind = kind, RelativePath = Paths.RelativeToData(path), Bytes = new FileInfo(path).Length,
            Sha256 = sha256, CreatedAt = DateTime.UtcNow,
        };
        db.Artifacts.Add(a);
        await db.SaveChangesAsync(CancellationToken.None);
        return a;
    }
}
