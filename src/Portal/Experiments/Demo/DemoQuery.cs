using Microsoft.EntityFrameworkCore;
using Portal.Infrastructure;
using Portal.Store;

namespace Portal.Experiments;

/// <summary>The demo benchmark's reads for its page: its pipeline runs and its result tables, so the page asks instead of querying the store.</summary>
public sealed class DemoQuery(IDbContextFactory<PortalDb> dbFactory, PortalPaths paths, Portal.Zoo.ModelZooService zoo)
{
    /// <summary>The pipeline runs tagged as the demo benchmark's, oldest first.</summary>
    public async Task<List<Run>> PipelinesAsync()
    {
        await using var db = await dbFactory.CreateDbContextAsync();
        return await db.Runs.AsNoTracking().Where(r => r.Kind == PipelineJob.KindName && r.Tags.Contains("," + DemoBenchmark.Tag + ","))
            .OrderBy(r => r.Id).ToListAsync();
    }

    /// <summary>The demo's result tables from its finished runs.</summary>
    public async Task<DemoTables> TablesAsync() =>
        DemoResults.Tables(await DemoResults.LoadAsync(dbFactory, paths), await DemoResults.ShortcutAsync(dbFactory));

    /// <summary>The cost claim's MACs (aligning vs generating one 64 px image, counted, not timed); null without the demo's models.</summary>
    public Task<Portal.Zoo.ModelCost?> CostMacsAsync() => DemoCost.MacsAsync(dbFactory, zoo);
}
