using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Portal.Store;

namespace Portal.Experiments;

/// <summary>A succeeded LaRE extraction run: what a LaRE² form may take maps from.</summary>
public sealed record LareRun(long Id, LareExtractionJob.Config Config, DateTime? FinishedAt);

/// <summary>The LaRE reads the forms use, so pages ask instead of querying the store.</summary>
public sealed class LareQuery(IDbContextFactory<PortalDb> dbFactory)
{
    /// <summary>The succeeded "lare" runs, newest first, with their configs (a config that no longer parses is left out).</summary>
    public async Task<List<LareRun>> SucceededAsync()
    {
        await using var db = await dbFactory.CreateDbContextAsync();
        var lare = await db.Runs.AsNoTracking().Where(r => r.Kind == LareExtractionJob.KindName && r.Status == RunStatus.Succeeded)
            .OrderByDescending(r => r.Id).Select(r => new { r.Id, r.ConfigJson, r.FinishedAt }).ToListAsync();
        return lare.Select(r => (r, c: JsonSerializer.Deserialize<LareExtractionJob.Config>(r.ConfigJson, JobInputs.Json)))
            .Where(x => x.c is not null).Select(x => new LareRun(x.r.Id, x.c!, x.r.FinishedAt)).ToList();
    }
}
