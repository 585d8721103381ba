using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Portal.Infrastructure;
using Portal.Store;

namespace Portal.Runs;

/// <summary>
/// Creates, cancels, re-runs, tags and deletes runs. Shared by the UI, the API and other jobs. The acting user (none in a
/// job: the portal itself) must be a researcher or admin to queue, and the run's owner or an admin to change a run;
/// otherwise an <see cref="Auth.AccessDeniedException"/> and nothing changes.
/// </summary>
public sealed class RunService(IDbContextFactory<PortalDb> dbFactory, IRunQueue queue, RunCancellations cancellations, IEnumerable<IRunJob> jobs,
    IOptions<PortalOptions> options, Auth.CurrentUser? currentUser = null, Auth.AuditLog? audit = null)
{
    /// <summary>The acting user; the portal itself where no user context is registered.</summary>
    public async Task<Auth.Actor> ActorAsync() => currentUser is null ? Auth.Actor.System : await currentUser.GetAsync();

    async Task<Auth.Actor> RequireChangeAsync(string verb, long runId, string? ownerId)
    {
        var actor = await ActorAsync();
        if (!actor.CanChange(ownerId))
            throw new Auth.AccessDeniedException(ownerId is null
                ? $"{actor.Name} may not {verb} run {runId}: it was queued by the portal itself, and only an admin may"
                : $"{actor.Name} may not {verb} run {runId}: only its owner or an admin may");
        return actor;
    }

    async Task AuditAsync(Auth.Actor actor, string action, long runId, string? detail = null)
    {
        // The portal's own runs (demo, pipeline stages) are not audited: the log says what people did.
        if (!actor.IsSystem && audit is not null) await audit.RecordAsync(action, $"run:{runId}", detail, actor.Name);
    }

    static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    /// <summary>The code version recorded on every run: the assembly's informational version (includes the source revision).</summary>
    public static readonly string CodeVersion =
        typeof(RunService).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";

    /// <summary>
    /// Stores a queued run of <paramref name="kind"/> and enqueues it on its job's queue (a device-heavy job: the queue of the
    /// config's "device" kind, else of Portal:Jobs:DefaultDevice); tags label it (not part of the config hash).
    /// </summary>
    public async Task<Run> CreateAsync(string kind, object config, long? seed = null, long? rerunOf = null, IEnumerable<string>? tags = null)
    {
        var actor = await ActorAsync();
        if (!actor.CanQueue) throw new Auth.AccessDeniedException($"{actor.Name} ({actor.Role ?? "no role"}) may not queue runs: it needs the researcher or admin role");
        var job = jobs.FirstOrDefault(j => j.Kind == kind) ?? throw new ArgumentException($"unknown run kind '{kind}'", nameof(kind));
        string storedTags;
        try { storedTags = RunTags.Format(tags); }
        catch (ArgumentException e) { throw new FieldException("tags", e.Message); }
        var configJson = config as string ?? JsonSerializer.Serialize(config, Json);
        var device = DeviceOf(configJson);
        await job.ValidateAsync(configJson);
        var runQueue = job.Queue == JobQueues.Device ? JobQueues.ForDevice(device ?? JobQueues.DefaultDeviceKind(options.Value)) : job.Queue;
        var run = new Run
        {
            Kind = kind, Queue = runQueue, ConfigJson = configJson, ConfigHash = ConfigHash(kind, configJson),
            Status = RunStatus.Queued, CreatedAt = DateTime.UtcNow, Seed = seed, CodeVersion = CodeVersion, RerunOf = rerunOf, Tags = storedTags,
            OwnerId = actor.UserId,
        };
        await using (var db = await dbFactory.CreateDbContextAsync())
        {
            db.Runs.Add(run);
            await db.SaveChangesAsync();
        }
        queue.Enqueue(run.Id, run.Queue);
        await AuditAsync(actor, "run.queue", run.Id, rerunOf is { } of ? $"{kind} (re-run of run {of})" : kind);
        return run;
    }

    /// <summary>Replaces a run's tags; null when there is no such run, a FieldException naming "tags" for a bad tag.</summary>
    public async Task<Run?> SetTagsAsync(long id, IEnumerable<string>? tags)
    {
        string stored;
        try { stored = RunTags.Format(tags); }
        catch (ArgumentException e) { throw new FieldException("tags", e.Message); }
        await using var db = await dbFactory.CreateDbContextAsync();
        var run = await db.Runs.SingleOrDefaultAsync(r => r.Id == id);
        if (run is null) return null;
        var actor = await RequireChangeAsync("tag", id, run.OwnerId);
        run.Tags = stored;
        await db.SaveChangesAsync();
        await AuditAsync(actor, "run.tag", id, string.Join(",", RunTags.Parse(stored)));
        return run;
    }

    /// <summary>
    /// Cancels a run: a queued one at once (atomically, so a worker cannot claim it after), a running one by request,
    /// which reaches the job's token here at once, or on another worker at its next heartbeat.
    /// </summary>
    public async Task<CancelOutcome> CancelAsync(long runId)
    {
        await using var db = await dbFactory.CreateDbContextAsync();
        var target = await db.Runs.AsNoTracking().Where(r => r.Id == runId).Select(r => new { r.OwnerId }).SingleOrDefaultAsync();
        if (target is null) return CancelOutcome.NotFound;
        var actor = await RequireChangeAsync("cancel", runId, target.OwnerId);
        var now = DateTime.UtcNow;
        var canceledQueued = await db.Runs.Where(r => r.Id == runId && r.Status == RunStatus.Queued)
            .ExecuteUpdateAsync(s => s.SetProperty(r => r.Status, RunStatus.Canceled).SetProperty(r => r.CancelRequested, true)
                .SetProperty(r => r.FinishedAt, now).SetProperty(r => r.Error, "canceled by request"));
        if (canceledQueued > 0)
        {
            await AuditAsync(actor, "run.cancel", runId, "canceled while queued");
            var run = await db.Runs.AsNoTracking().SingleAsync(r => r.Id == runId);
            foreach (var hook in jobs.OfType<ICancelHook>().Where(h => h.Kind == run.Kind)) await hook.OnCanceledAsync(run);
            return CancelOutcome.Canceled;
        }
        var requested = await db.Runs.Where(r => r.Id == runId && r.Status == RunStatus.Running)
            .ExecuteUpdateAsync(s => s.SetProperty(r => r.CancelRequested, true));
        if (requested > 0)
        {
            cancellations.TryCancel(runId);
            await AuditAsync(actor, "run.cancel", runId, "cancel requested while running");
            return CancelOutcome.Requested;
        }
        return await db.Runs.AnyAsync(r => r.Id == runId) ? CancelOutcome.AlreadyFinished : CancelOutcome.NotFound;
    }

    /// <summary>
    /// Deletes a finished run's row with its metrics, log lines, leaderboard entries and artifact rows. Its files under
    /// data/runs/{id} stay on disk: registered weights or datasets may point into them; remove them by hand if unneeded.
    /// </summary>
    public async Task<DeleteOutcome> DeleteAsync(long runId)
    {
        await using var db = await dbFactory.CreateDbContextAsync();
        var run = await db.Runs.SingleOrDefaultAsync(r => r.Id == runId);
        if (run is null) return DeleteOutcome.NotFound;
        var actor = await RequireChangeAsync("delete", runId, run.OwnerId);
        if (!run.IsFinished) return DeleteOutcome.NotFinished;
        // One transaction, run through the store's execution strategy (PostgreSQL's retrying strategy refuses a
        // transaction begun outside it, and retries the whole unit after a dropped connection).
        await db.Database.CreateExecutionStrategy().ExecuteAsync(async () =>
        {
            await using var tx = await db.Database.BeginTransactionAsync();
            await db.Artifacts.Where(a => a.RunId == runId).ExecuteDeleteAsync();
            await db.RunMetrics.Where(m => m.RunId == runId).ExecuteDeleteAsync();
            await db.RunLog.Where(l => l.RunId == runId).ExecuteDeleteAsync();
            await db.LeaderboardEntries.Where(e => e.RunId == runId).ExecuteDeleteAsync();
            await db.Runs.Where(r => r.Id == runId).ExecuteDeleteAsync();
            await tx.CommitAsync();
        });
        await AuditAsync(actor, "run.delete", runId, $"{run.Kind}, {run.Status.ToString().ToLowerInvariant()}");
        return DeleteOutcome.Deleted;
    }

    /// <summary>Queues a new run with the same kind, config and seed; the old run stays as it was.</summary>
    /// <summary>
    /// The runs ahead of a queued run on its queue: those running there now, then those queued there before it (the queue
    /// hands runs out in order). Null when the run does not exist or is not queued.
    /// </summary>
    public async Task<QueuePlace?> QueuePlaceAsync(long runId, int show = 5)
    {
        await using var db = await dbFactory.CreateDbContextAsync();
        var run = await db.Runs.AsNoTracking().Where(r => r.Id == runId).Select(r => new { r.Id, r.Queue, r.Status }).SingleOrDefaultAsync();
        if (run is null || run.Status != RunStatus.Queued) return null;
        var ahead = db.Runs.AsNoTracking().Where(r => r.Queue == run.Queue &&
            (r.Status == RunStatus.Running || (r.Status == RunStatus.Queued && r.Id < run.Id)));
        var count = await ahead.CountAsync();
        // Running first, then the queued ones in the order they will start.
        var first = await ahead.OrderBy(r => r.Status == RunStatus.Running ? 0 : 1).ThenBy(r => r.Id).Take(show)
            .Select(r => new QueuedAhead(r.Id, r.Kind, r.Status, r.Progress, r.StartedAt)).ToListAsync();
        var running = await ahead.CountAsync(r => r.Status == RunStatus.Running);
        return new QueuePlace(run.Queue, count - running + 1, running, first, count);
    }

    public async Task<Run?> RerunAsync(long runId)
    {
        Run? old;
        await using (var db = await dbFactory.CreateDbContextAsync())
            old = await db.Runs.AsNoTracking().SingleOrDefaultAsync(r => r.Id == runId);
        if (old is null) return null;
        // A run still queued or running has no outcome to repeat yet; re-running it would only queue a duplicate.
        if (!old.IsFinished)
            throw new FieldException("id", $"run {runId} is {old.Status.ToString().ToLowerInvariant()}: only a finished run can be re-run", 409);
        var rerun = await CreateAsync(old.Kind, old.ConfigJson, old.Seed, old.Id, RunTags.Parse(old.Tags));
        foreach (var hook in jobs.OfType<IRerunHook>().Where(h => h.Kind == old.Kind)) await hook.OnRerunAsync(old, rerun);
        return rerun;
    }

    /// <summary>The config's "device" field ("cpu" or "cuda"), null when absent; anything else is a 400 naming "device".</summary>
    static string? DeviceOf(string configJson)
    {
        JsonNode? node;
        try { node = JsonNode.Parse(configJson); }
        catch (JsonException e) { throw new FieldException("config", $"config is not valid JSON: {e.Message}"); }
        if (node is not JsonObject config || !config.TryGetPropertyValue("device", out var value) || value is null) return null;
        var kinds = string.Join(" or ", JobQueues.DeviceKinds.Select(k => $"\"{k}\""));
        if (value.GetValueKind() != JsonValueKind.String)
            throw new FieldException("device", $"device must be a string, {kinds}, not {value.ToJsonString()}");
        var device = value.GetValue<string>();
        return JobQueues.DeviceKinds.Contains(device) ? device : throw new FieldException("device", $"device must be {kinds}, not \"{device}\"");
    }

    /// <summary>SHA-256 of the kind and the config with its object keys sorted: equal configs, equal hashes.</summary>
    public static string ConfigHash(string kind, string configJson)
    {
        var node = JsonNode.Parse(configJson);
        var canonical = kind + "\n" + Canonicalize(node)?.ToJsonString();
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(canonical)));
    }

    static JsonNode? Canonicalize(JsonNode? node) => node switch
    {
        JsonObject o => new JsonObject(o.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => KeyValuePair.Create(p.Key, Canonicalize(p.Value)))),
        JsonArray a => new JsonArray(a.Select(Canonicalize).ToArray()),
        null => null,
        _ => JsonNode.Parse(node.ToJsonString()),
    };
}
