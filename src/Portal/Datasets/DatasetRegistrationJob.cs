using System.IO.Compression;
using System.Text.Json;
using Forensics.ML.Datasets;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Portal.Infrastructure;
using Portal.Store;
using Portal.Runs;
using Portal.Experiments;
using Portal.Zoo;

namespace Portal.Datasets;

/// <summary>
/// Registers a dataset: detects the folder's layout, decode-checks and hashes every image (reusing hashes of files
/// whose size and mtime are unchanged since an earlier scan of the same folder), and stores the manifest. Resumable:
/// partial work is checkpointed under the run's folder and reused when the run is taken up again after a crash.
/// A failed rescan leaves the dataset's earlier counts as they were.
/// </summary>
public sealed class DatasetRegistrationJob(IDbContextFactory<PortalDb> dbFactory, IOptions<PortalOptions>? options = null) : IRunJob, IRerunHook, ICancelHook
{
    public const string KindName = "register-dataset";
    public sealed record Config(long DatasetId);

    public string Kind => KindName;
    public string Queue => JobQueues.Light;

    /// <summary>datasetId must be a whole number naming an existing dataset (a queued registration of nothing is a 400, not a failed run).</summary>
    public async Task ValidateAsync(string configJson)
    {
        Config? config;
        try { config = JsonSerializer.Deserialize<Config>(configJson, JobInputs.Json); }
        catch (JsonException e) when (e.Path is "$.datasetId")
        {
            throw new FieldException("datasetId", "datasetId must be the whole-number id of a dataset");
        }
        catch (JsonException e) { throw new FieldException("config", $"config is not a valid registration config: {e.Message}"); }
        if (config is null) throw new FieldException("config", "config is required");
        if (config.DatasetId <= 0) throw new FieldException("datasetId", $"datasetId must be a positive dataset id, not {config.DatasetId}");
        await using var db = await dbFactory.CreateDbContextAsync();
        if (!await db.Datasets.AnyAsync(d => d.Id == config.DatasetId)) throw new FieldException("datasetId", $"no dataset with id {config.DatasetId}");
    }

    public async Task ExecuteAsync(RunContext context)
    {
        var config = context.Config<Config>();
        var ct = context.CancellationToken;
        Dataset dataset;
        List<string> earlierManifests;
        await using (var db = await dbFactory.CreateDbContextAsync(ct))
        {
            dataset = await db.Datasets.AsNoTracking().SingleOrDefaultAsync(d => d.Id == config.DatasetId, ct)
                      ?? throw new InvalidOperationException($"dataset {config.DatasetId} does not exist");
            // Earlier manifests of the same folder make an unchanged folder fast to register again.
            earlierManifests = await db.Datasets.AsNoTracking()
                .Where(d => d.Path == dataset.Path && d.ManifestPath != null)
                .OrderByDescending(d => d.ScannedAt).Select(d => d.ManifestPath!).ToListAsync(ct);
        }

        await using (var db = await dbFactory.CreateDbContextAsync(ct)) await ClaimAsync(db, dataset.Id, context.RunId);
        try
        {
            var root = context.Paths.ResolveAllowed(dataset.Path);
            if (!Directory.Exists(root)) throw new DirectoryNotFoundException($"dataset folder '{dataset.Path}' does not exist");

            // Earlier scans of the same folder, then the interrupted attempt's checkpoint: files whose size and mtime are
            // unchanged are not read again.
            var known = new List<ScannedFile>();
            foreach (var m in earlierManifests)
            {
                try
                {
                    var earlier = DatasetManifest.Load(context.Paths.Data(m));
                    known.AddRange(earlier.Images);
                    known.AddRange(earlier.Unreadable);
                }
                catch (Exception e) when (e is IOException or InvalidDataException) { await context.LogAsync($"earlier manifest {m} not reused: {e.Message}", "warning"); }
            }
            var checkpoint = new ScanCheckpointFile(Path.Combine(context.WorkDir, "scan-checkpoint.json.gz"));
            var resumed = checkpoint.Load();
            if (resumed.Count > 0) await context.LogAsync($"resuming: {resumed.Count} file(s) already checked by the interrupted attempt");
            known.AddRange(resumed);

            // Every file and folder must resolve under an allowed root, not only the dataset's folder.
            var roots = ConfinedFile.CanonicalRoots(context.Paths.AllowedRoots);
            var layout = DatasetLayouts.Resolve(root, roots).Layout;
            await context.LogAsync($"layout: {LayoutName(layout)}; scanning {root}");
            // Listing the files comes first (the count is not known before it); saving the manifest takes the last share.
            context.ReportProgress(0, "listing the files");
            var manifest = DatasetScanner.Scan(root, new ScanOptions
            {
                AllowedRoots = roots,
                Limits = (options?.Value.Images ?? new ImageOptions()).ScanLimits(),
                Cache = ScanCache.From(known),
                Progress = new SyncProgress<ScanProgress>(p =>
                    context.ReportProgress(p.Total == 0 ? CheckingShare : CheckingShare * p.Done / p.Total, $"checking {p.Done}/{p.Total}")),
                OnCheckpoint = checkpoint.Save,
            }, ct);

            context.ReportProgress(CheckingShare, $"saving the manifest of {manifest.Images.Count} image(s)");
            var manifestDir = context.Paths.Data("datasets", dataset.Id.ToString());
            Directory.CreateDirectory(manifestDir);
            var manifestPath = Path.Combine(manifestDir, $"manifest-run{context.RunId}.json.gz");
            manifest.Save(manifestPath);
            await context.ArtifactAsync("manifest", manifestPath);
            await StoreAsync(dataset.Id, context.RunId, manifest, context.Paths.RelativeToData(manifestPath), ct);
            checkpoint.Delete();
            await context.LogAsync($"{manifest.Images.Count} readable image(s), {manifest.Unreadable.Count} unreadable, " +
                                   $"{manifest.IgnoredFiles} ignored file(s); {manifest.FilesRead} read, {manifest.FilesReused} reused from earlier scans");
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            await MarkFailedIfNeverReadyAsync(dataset.Id, context.RunId);
            throw;
        }
    }

    const double CheckingShare = 0.95;

    internal async Task StoreAsync(long datasetId, long runId, DatasetManifest manifest, string manifestPath, CancellationToken ct)
    {
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        // A retrying execution strategy (PostgreSQL) replays the whole transaction after a transient failure, so the
        // tracked changes are dropped first: each attempt starts from the database's state.
        await db.Database.CreateExecutionStrategy().ExecuteAsync(async () =>
        {
            db.ChangeTracker.Clear();
            await using var tx = await db.Database.BeginTransactionAsync(ct);
            var dataset = await db.Datasets.SingleAsync(d => d.Id == datasetId, ct);
            await db.DatasetSubsets.Where(s => s.DatasetId == datasetId).ExecuteDeleteAsync(ct);
            await db.UnreadableFiles.Where(u => u.DatasetId == datasetId).ExecuteDeleteAsync(ct);
            db.DatasetSubsets.AddRange(manifest.Subsets.Select(s => new DatasetSubset
                { DatasetId = datasetId, Generator = s.Generator, Split = s.Split, Label = s.Label, Count = s.Count }));
            db.UnreadableFiles.AddRange(manifest.Unreadable.Select(u => new Store.UnreadableFile { DatasetId = datasetId, Path = u.Path, Reason = u.Reason }));
            dataset.Layout = LayoutName(manifest.Layout);
            dataset.Status = DatasetStatus.Ready;
            dataset.Images = manifest.Images.Count;
            dataset.IgnoredFiles = manifest.IgnoredFiles;
            dataset.ContentHash = manifest.ContentHash;
            dataset.ManifestPath = manifestPath;
            dataset.ScannedAt = DateTime.UtcNow;
            dataset.RegistrationRunId = runId;
            dataset.FormatsJson = JsonSerializer.Serialize(manifest.Formats);
            dataset.SizesJson = JsonSerializer.Serialize(manifest.Sizes);
            await db.SaveChangesAsync(ct);
            await tx.CommitAsync(ct);
        });
    }

    /// <summary>"genimage" or "real-fake", the names the API reports.</summary>
    public static string LayoutName(DatasetLayout layout) => layout switch
    {
        DatasetLayout.GenImage => "genimage",
        DatasetLayout.RealFake => "real-fake",
        _ => layout.ToString().ToLowerInvariant(),
    };

    /// <summary>
    /// Makes <paramref name="runId"/> the dataset's registration run unless a newer one already is. Called by the queueing
    /// side after it created the run and by the run itself when it starts, so a run that fails at once is still the one
    /// its failure is recorded against.
    /// </summary>
    public static Task ClaimAsync(PortalDb db, long datasetId, long runId) =>
        db.Datasets.Where(d => d.Id == datasetId && (d.RegistrationRunId == null || d.RegistrationRunId < runId))
            .ExecuteUpdateAsync(s => s.SetProperty(d => d.RegistrationRunId, runId));

    // Only while this run is still the dataset's registration (a rescan queued since owns the status).
    async Task MarkFailedIfNeverReadyAsync(long datasetId, long runId)
    {
        await using var db = await dbFactory.CreateDbContextAsync();
        await db.Datasets.Where(d => d.Id == datasetId && d.ScannedAt == null && d.RegistrationRunId == runId)
            .ExecuteUpdateAsync(s => s.SetProperty(d => d.Status, DatasetStatus.Failed));
    }

    /// <summary>
    /// A first registration canceled (queued or running) leaves no half-made dataset: it is marked failed, so it can be
    /// scanned again ("Scan again", POST /api/datasets/{id}/rescan). A canceled rescan leaves the earlier counts as they were.
    /// </summary>
    public async Task OnCanceledAsync(Run run)
    {
        var config = JsonSerializer.Deserialize<Config>(run.ConfigJson, new JsonSerializerOptions(JsonSerializerDefaults.Web));
        if (config is null) return;
        await MarkFailedIfNeverReadyAsync(config.DatasetId, run.Id);
    }

    public async Task OnRerunAsync(Run old, Run rerun)
    {
        var config = JsonSerializer.Deserialize<Config>(old.ConfigJson, new JsonSerializerOptions(JsonSerializerDefaults.Web));
        if (config is null) return;
        await using var db = await dbFactory.CreateDbContextAsync();
        await db.Datasets.Where(d => d.Id == config.DatasetId)
            .ExecuteUpdateAsync(s => s.SetProperty(d => d.RegistrationRunId, rerun.Id)
                .SetProperty(d => d.Status, d => d.Status == DatasetStatus.Failed ? DatasetStatus.Registering : d.Status));
    }

    /// <summary>The scan's partial results, saved every few hundred files so a crashed registration resumes where it was.</summary>
    sealed class ScanCheckpointFile(string path)
    {
        sealed record Content(List<ManifestEntry> Images, List<Forensics.ML.Datasets.UnreadableFile> Unreadable);
        static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

        public void Save(ScanCheckpoint checkpoint)
        {
            var temp = path + ".tmp";
            using (var file = File.Create(temp))
            using (var gz = new GZipStream(file, CompressionLevel.Fastest))
                JsonSerializer.Serialize(gz, new Content([.. checkpoint.Images], [.. checkpoint.Unreadable]), Json);
            File.Move(temp, path, overwrite: true);
        }

        public List<ScannedFile> Load()
        {
            if (!File.Exists(path)) return [];
            try
            {
                using var file = File.OpenRead(path);
                using var gz = new GZipStream(file, CompressionMode.Decompress);
                var c = JsonSerializer.Deserialize<Content>(gz, Json);
                return c is null ? [] : [.. c.Images, .. c.Unreadable];
            }
            catch (Exception e) when (e is JsonException or InvalidDataException or IOException)
            {
                return []; // A checkpoint cut off by the crash is simply not used.
            }
        }

        public void Delete() => File.Delete(path);
    }
}
