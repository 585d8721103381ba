using Microsoft.EntityFrameworkCore;
using Portal.Store;

namespace Portal.Datasets;

/// <summary>A dataset as the datasets table lists it, with its registration run while it registers.</summary>
public sealed record DatasetRow(long Id, string Name, string Path, string? Layout, DatasetStatus Status, int Images, int Unreadable,
    DateTime? ScannedAt, long? RegistrationRunId)
{
    public Run? Run { get; set; }
}

/// <summary>The dataset reads the pages share (the forms' choices, the table, the overview), so pages ask instead of querying the store.</summary>
public sealed class DatasetQuery(IDbContextFactory<PortalDb> dbFactory)
{
    /// <summary>The ready datasets, by name: what a form may run on.</summary>
    public async Task<List<Dataset>> ReadyAsync()
    {
        await using var db = await dbFactory.CreateDbContextAsync();
        return await db.Datasets.AsNoTracking().Where(d => d.Status == DatasetStatus.Ready).OrderBy(d => d.Name).ToListAsync();
    }

    /// <summary>Every dataset by name, with the registration run of those still registering.</summary>
    public async Task<List<DatasetRow>> ListAsync()
    {
        await using var db = await dbFactory.CreateDbContextAsync();
        var list = await db.Datasets.AsNoTracking().OrderBy(d => d.Name)
            .Select(d => new DatasetRow(d.Id, d.Name, d.Path, d.Layout, d.Status, d.Images, d.Unreadable.Count, d.ScannedAt, d.RegistrationRunId))
            .ToListAsync();
        var runIds = list.Where(r => r.Status == DatasetStatus.Registering && r.RegistrationRunId is not null)
            .Select(r => r.RegistrationRunId!.Value).ToList();
        if (runIds.Count > 0)
        {
            var runs = await db.Runs.AsNoTracking().Where(r => runIds.Contains(r.Id)).ToDictionaryAsync(r => r.Id);
            foreach (var row in list)
                if (row.RegistrationRunId is { } id) row.Run = runs.GetValueOrDefault(id);
        }
        return list;
    }

    /// <summary>How many datasets are in each status, and the images of all of them.</summary>
    public async Task<(Dictionary<DatasetStatus, int> ByStatus, long Images)> CountsAsync()
    {
        await using var db = await dbFactory.CreateDbContextAsync();
        var byStatus = (await db.Datasets.GroupBy(d => d.Status).Select(g => new { g.Key, Count = g.Count() }).ToListAsync())
            .ToDictionary(x => x.Key, x => x.Count);
        return (byStatus, await db.Datasets.SumAsync(d => (long)d.Images));
    }

    /// <summary>The names of the datasets of <paramref name="ids"/> that exist, by id.</summary>
    public async Task<Dictionary<long, string>> NamesAsync(IReadOnlyCollection<long> ids)
    {
        await using var db = await dbFactory.CreateDbContextAsync();
        return await db.Datasets.Where(d => ids.Contains(d.Id)).ToDictionaryAsync(d => d.Id, d => d.Name);
    }

    /// <summary>The dataset named <paramref name="name"/> with its subsets, or null.</summary>
    public async Task<Dataset?> ByNameWithSubsetsAsync(string name)
    {
        await using var db = await dbFactory.CreateDbContextAsync();
        return await db.Datasets.AsNoTracking().Include(d => d.Subsets).SingleOrDefaultAsync(d => d.Name == name);
    }
}
