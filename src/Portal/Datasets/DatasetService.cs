using Microsoft.EntityFrameworkCore;
using Portal.Infrastructure;
using Portal.Store;
using Portal.Runs;
using Portal.Experiments;
using Portal.Zoo;

namespace Portal.Datasets;

/// <summary>Registers datasets and reads them back. Shared by the UI, the API and the jobs.</summary>
public sealed class DatasetService(IDbContextFactory<PortalDb> dbFactory, PortalPaths paths, RunService runs, Auth.AuditLog? audit = null)
{
    /// <summary>Validates the request, stores the dataset (status registering) and queues its registration run.</summary>
    public async Task<(Dataset Dataset, Run Run)> RegisterAsync(string? name, string? path)
    {
        var actor = await runs.ActorAsync();
        if (!actor.CanQueue) throw new Auth.AccessDeniedException($"{actor.Name} ({actor.Role ?? "no role"}) may not register datasets: it needs the researcher or admin role");
        name = name?.Trim();
        // Both fields are checked before anything is reported, so the form shows every problem at once.
        var errors = new List<KeyValuePair<string, string>>();
        if (string.IsNullOrEmpty(name)) errors.Add(new("name", "name is required"));
        else if (name.Length > 200) errors.Add(new("name", "name must be at most 200 characters"));
        string resolved = "";
        if (string.IsNullOrWhiteSpace(path)) errors.Add(new("path", "path is required"));
        else
        {
            try
            {
                resolved = paths.ResolveAllowed(path);
                if (!Directory.Exists(resolved))
                    errors.Add(new("path", File.Exists(resolved) ? $"'{path}' is a file, not a folder" : $"folder '{path}' does not exist"));
            }
            catch (PathNotAllowedException e) { errors.Add(new("path", e.Message)); }
        }
        FieldException.ThrowIfAny(errors);

        await using var db = await dbFactory.CreateDbContextAsync();
        if (await db.Datasets.AnyAsync(d => d.Name == name))
            throw new FieldException("name", $"a dataset named '{name}' already exists", 409);
        var dataset = new Dataset { Name = name!, Path = resolved, Status = DatasetStatus.Registering, CreatedAt = DateTime.UtcNow,
            RegisteredBy = actor.IsSystem ? null : actor.Name };
        db.Datasets.Add(dataset);
        try { await db.SaveChangesAsync(); }
        catch (DbUpdateException)
        {
            // Lost a race with a concurrent registration of the same name (unique index).
            throw new FieldException("name", $"a dataset named '{name}' already exists", 409);
        }
        try
        {
            var run = await QueueScanAsync(db, dataset);
            if (!actor.IsSystem && audit is not null) await audit.RecordAsync("dataset.register", $"dataset:{dataset.Id}", $"{name} at {resolved}", actor.Name);
            return (dataset, run);
        }
        catch
        {
            // No run could be queued: take the new row back, so the name stays free and nothing half-made remains.
            db.Datasets.Remove(dataset);
            await db.SaveChangesAsync();
            throw;
        }
    }

    /// <summary>Scans a registered dataset again (after its folder changed); the current counts stay until the scan succeeds.</summary>
    public async Task<Run?> RescanAsync(long id)
    {
        await using var db = await dbFactory.CreateDbContextAsync();
        var dataset = await db.Datasets.SingleOrDefaultAsync(d => d.Id == id);
        return dataset is null ? null : await QueueScanAsync(db, dataset);
    }

    // The status first, then the run: a worker may take the run (and fail it) before this method returns, so nothing
    // written after CreateAsync may undo what the job wrote. The run's id is claimed only if no newer run claimed it
    // (the job claims it too when it starts: DatasetRegistrationJob.ClaimAsync).
    async Task<Run> QueueScanAsync(PortalDb db, Dataset dataset)
    {
        if (dataset.Status == DatasetStatus.Failed)
        {
            dataset.Status = DatasetStatus.Registering;
            await db.SaveChangesAsync();
        }
        var run = await runs.CreateAsync(DatasetRegistrationJob.KindName, new DatasetRegistrationJob.Config(dataset.Id));
        await DatasetRegistrationJob.ClaimAsync(db, dataset.Id, run.Id);
        // The tracked row shows the claim too (the caller returns it), without writing it again.
        dataset.RegistrationRunId = run.Id;
        db.Entry(dataset).Property(d => d.RegistrationRunId).OriginalValue = run.Id;
        return run;
    }

    /// <summary>The dataset of this name when its registration failed, else null (the form offers to scan it again).</summary>
    public async Task<Dataset?> FailedNamedAsync(string? name)
    {
        name = name?.Trim();
        if (string.IsNullOrEmpty(name)) return null;
        await using var db = await dbFactory.CreateDbContextAsync();
        return await db.Datasets.AsNoTracking().SingleOrDefaultAsync(d => d.Name == name && d.Status == DatasetStatus.Failed);
    }

    public async Task<List<Dataset>> ListAsync()
    {
        await using var db = await dbFactory.CreateDbContextAsync();
        return await db.Datasets.AsNoTracking().Include(d => d.Subsets).OrderBy(d => d.Name).ToListAsync();
    }

    public async Task<Dataset?> GetAsync(long id)
    {
        await using var db = await dbFactory.CreateDbContextAsync();
        return await db.Datasets.AsNoTracking().Include(d => d.Subsets).Include(d => d.Unreadable)
            .AsSplitQuery().SingleOrDefaultAsync(d => d.Id == id);
    }
}
