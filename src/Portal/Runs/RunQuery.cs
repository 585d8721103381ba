using Microsoft.EntityFrameworkCore;
using Portal.Store;

namespace Portal.Runs;

/// <summary>One metric series of a run summarised: its last value (highest step), range and number of points.</summary>
public sealed record RunMetricSummary(string Name, double Last, long LastStep, double Min, double Max, int Points);

/// <summary>
/// What the run page shows, read in one context: the run, its owner's name, the log tail, the metric summaries, every metric
/// point (only when <paramref name="Points"/> changed since the caller's last read: metrics are only appended), the
/// artifacts and the datasets the run registered.
/// </summary>
public sealed record RunDetailView(Run Run, string? Owner, IReadOnlyList<RunLogLine> Log, IReadOnlyList<RunMetricSummary> Metrics,
    int Points, IReadOnlyList<RunMetric>? AllPoints, IReadOnlyList<Artifact> Artifacts, IReadOnlyList<(long Id, string Name)> Datasets);

/// <summary>One page of the runs table: the page shown (clamped to the last), the runs, the total under the filter, the counts by status and the kinds stored.</summary>
public sealed record RunListPage(int Page, IReadOnlyList<Run> Runs, int Total, IReadOnlyDictionary<RunStatus, int> Counts, IReadOnlyList<string> Kinds,
    IReadOnlyDictionary<long, Dictionary<string, double>> LastMetrics);

/// <summary>The run reads the pages and the API share, so pages ask instead of querying the store.</summary>
public sealed class RunQuery(IDbContextFactory<PortalDb> dbFactory)
{
    /// <summary>A run, or null.</summary>
    public async Task<Run?> FindAsync(long id)
    {
        await using var db = await dbFactory.CreateDbContextAsync();
        return await db.Runs.AsNoTracking().SingleOrDefaultAsync(r => r.Id == id);
    }

    /// <summary>The runs of <paramref name="ids"/> that exist.</summary>
    public async Task<List<Run>> FindAsync(IReadOnlyCollection<long> ids)
    {
        await using var db = await dbFactory.CreateDbContextAsync();
        return await db.Runs.AsNoTracking().Where(r => ids.Contains(r.Id)).ToListAsync();
    }

    /// <summary>True while the run is queued or running.</summary>
    public async Task<bool> IsLiveAsync(long id)
    {
        await using var db = await dbFactory.CreateDbContextAsync();
        return await db.Runs.AnyAsync(r => r.Id == id && (r.Status == RunStatus.Queued || r.Status == RunStatus.Running));
    }

    /// <summary>How many runs are in each status.</summary>
    public async Task<Dictionary<RunStatus, int>> CountsByStatusAsync()
    {
        await using var db = await dbFactory.CreateDbContextAsync();
        return await CountsByStatusAsync(db);
    }

    static async Task<Dictionary<RunStatus, int>> CountsByStatusAsync(PortalDb db) =>
        (await db.Runs.GroupBy(r => r.Status).Select(g => new { g.Key, Count = g.Count() }).ToListAsync()).ToDictionary(x => x.Key, x => x.Count);

    /// <summary>The newest <paramref name="count"/> runs, optionally of one kind.</summary>
    public async Task<List<Run>> RecentAsync(int count, string? kind = null)
    {
        await using var db = await dbFactory.CreateDbContextAsync();
        var q = db.Runs.AsNoTracking();
        if (kind is not null) q = q.Where(r => r.Kind == kind);
        return await q.OrderByDescending(r => r.Id).Take(count).ToListAsync();
    }

    /// <summary>The newest <paramref name="count"/> succeeded runs of <paramref name="kinds"/>: id, kind, finish time.</summary>
    public async Task<List<(long Id, string Kind, DateTime? FinishedAt)>> SucceededAsync(IReadOnlyCollection<string> kinds, int count)
    {
        await using var db = await dbFactory.CreateDbContextAsync();
        return (await db.Runs.AsNoTracking().Where(r => kinds.Contains(r.Kind) && r.Status == RunStatus.Succeeded)
                .OrderByDescending(r => r.Id).Take(count).Select(r => new { r.Id, r.Kind, r.FinishedAt }).ToListAsync())
            .Select(r => (r.Id, r.Kind, r.FinishedAt)).ToList();
    }

    /// <summary>The last <paramref name="tail"/> log lines of a run, oldest first (the run page and GET /api/runs/{id}/log).</summary>
    public async Task<List<RunLogLine>> LogTailAsync(long runId, int tail)
    {
        await using var db = await dbFactory.CreateDbContextAsync();
        return await LogTailAsync(db, runId, tail);
    }

    static async Task<List<RunLogLine>> LogTailAsync(PortalDb db, long runId, int tail)
    {
        var lines = await db.RunLog.AsNoTracking().Where(l => l.RunId == runId).OrderByDescending(l => l.Id).Take(tail).ToListAsync();
        lines.Reverse();
        return lines;
    }

    /// <summary>Every metric row of <paramref name="runIds"/> named in <paramref name="names"/>.</summary>
    public async Task<List<RunMetric>> MetricsAsync(IReadOnlyCollection<long> runIds, IReadOnlyCollection<string> names)
    {
        await using var db = await dbFactory.CreateDbContextAsync();
        return await db.RunMetrics.AsNoTracking().Where(m => runIds.Contains(m.RunId) && names.Contains(m.Name)).ToListAsync();
    }

    /// <summary>The run page's reads, in one context; null when the run does not exist.</summary>
    public async Task<RunDetailView?> DetailAsync(long id, int logTail, int? pointsKnown)
    {
        await using var db = await dbFactory.CreateDbContextAsync();
        var r = await db.Runs.AsNoTracking().SingleOrDefaultAsync(x => x.Id == id);
        if (r is null) return null;
        var owner = r.OwnerId is { } ownerId ? await db.Users.Where(u => u.Id == ownerId).Select(u => u.UserName).SingleOrDefaultAsync() : null;
        var log = await LogTailAsync(db, id, logTail);
        var metrics = (await db.RunMetrics.Where(m => m.RunId == id).GroupBy(m => m.Name)
                .Select(g => new
                {
                    Name = g.Key,
                    Last = g.OrderByDescending(m => m.Step).ThenByDescending(m => m.Id).Select(m => m.Value).First(),
                    LastStep = g.Max(m => m.Step),
                    Min = g.Min(m => m.Value),
                    Max = g.Max(m => m.Value),
                    Points = g.Count(),
                }).ToListAsync())
            .OrderBy(m => m.Name, StringComparer.Ordinal)
            .Select(m => new RunMetricSummary(m.Name, m.Last, m.LastStep, m.Min, m.Max, m.Points)).ToList();
        // Metrics are only ever appended, so an unchanged count means unchanged curves.
        var points = metrics.Sum(m => m.Points);
        var all = pointsKnown == points ? null : await db.RunMetrics.AsNoTracking().Where(m => m.RunId == id).ToListAsync();
        var artifacts = await db.Artifacts.AsNoTracking().Where(a => a.RunId == id).OrderBy(a => a.Id).ToListAsync();
        var datasets = (await db.Datasets.Where(d => d.RegistrationRunId == id).Select(d => new { d.Id, d.Name }).ToListAsync())
            .Select(d => (d.Id, d.Name)).ToList();
        return new RunDetailView(r, owner, log, metrics, points, all, artifacts, datasets);
    }

    /// <summary>
    /// The runs table: a page of <paramref name="pageSize"/> runs (newest first) under the status, kind and tag filters,
    /// with the counts by status, the kinds stored and the last value of each run's overall metrics (names without "/").
    /// </summary>
    public async Task<RunListPage> ListAsync(RunStatus? status, string? kind, string? tag, int page, int pageSize)
    {
        await using var db = await dbFactory.CreateDbContextAsync();
        var counts = await CountsByStatusAsync(db);
        var kinds = await db.Runs.Select(r => r.Kind).Distinct().OrderBy(k => k).ToListAsync();
        var q = db.Runs.AsNoTracking();
        if (status is { } f) q = q.Where(r => r.Status == f);
        if (!string.IsNullOrWhiteSpace(kind)) q = q.Where(r => r.Kind == kind);
        if (!string.IsNullOrWhiteSpace(tag))
        {
            var stored = "," + tag.Trim().ToLowerInvariant() + ",";
            q = q.Where(r => r.Tags.Contains(stored));
        }
        var total = await q.CountAsync();
        var pages = Math.Max(1, (total + pageSize - 1) / pageSize);
        page = Math.Clamp(page, 1, pages);
        var runs = await q.OrderByDescending(r => r.Id).Skip((page - 1) * pageSize).Take(pageSize).ToListAsync();
        var ids = runs.Select(r => r.Id).ToList();
        var last = await db.RunMetrics.AsNoTracking().Where(m => ids.Contains(m.RunId) && !m.Name.Contains("/"))
            .GroupBy(m => new { m.RunId, m.Name })
            .Select(g => new { g.Key.RunId, g.Key.Name, Value = g.OrderByDescending(m => m.Step).ThenByDescending(m => m.Id).Select(m => m.Value).First() })
            .ToListAsync();
        var metrics = last.GroupBy(m => m.RunId).ToDictionary(g => g.Key, g => g.ToDictionary(m => m.Name, m => m.Value));
        return new RunListPage(page, runs, total, counts, kinds, metrics);
    }
}
