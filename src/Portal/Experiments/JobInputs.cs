using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Portal.Infrastructure;
using Portal.Store;

using Portal.Runs;
using Portal.Datasets;
using Portal.Zoo;

namespace Portal.Experiments;

/// <summary>
/// The checks the jobs' config validation shares: the config parses, a dataset exists and is ready, a file lies under an
/// allowed root and exists. Each failure is a <see cref="FieldException"/> naming the config field.
/// </summary>
public sealed class JobInputs(IDbContextFactory<PortalDb> dbFactory, PortalPaths paths)
{
    /// <summary>Web defaults: camelCase, case-insensitive, as configs are posted.</summary>
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    /// <summary>The config as <typeparamref name="T"/>; <paramref name="what"/> names the job in the message ("evaluation").</summary>
    public static T Parse<T>(string configJson, string what) where T : class
    {
        T? c;
        try { c = JsonSerializer.Deserialize<T>(configJson, Json); }
        catch (JsonException e) { throw new FieldException("config", $"config is not a valid {what} config: {e.Message}"); }
        return c ?? throw new FieldException("config", "config is required");
    }

    /// <summary>The dataset <paramref name="id"/>, which must exist and be ready.</summary>
    public async Task<Dataset> ReadyDatasetAsync(long id, string field)
    {
        await using var db = await dbFactory.CreateDbContextAsync();
        var d = await db.Datasets.AsNoTracking().SingleOrDefaultAsync(x => x.Id == id) ?? throw new FieldException(field, $"no dataset with id {id}");
        if (d.Status != DatasetStatus.Ready)
            throw new FieldException(field, $"dataset '{d.Name}' is {d.Status.ToString().ToLowerInvariant()}, not ready");
        return d;
    }

    /// <summary>Checks that <paramref name="dataset"/> has the split (validation aliases match); null or empty means every image.</summary>
    public async Task SplitAsync(Dataset dataset, string? split, string field)
    {
        if (string.IsNullOrEmpty(split)) return;
        await using var db = await dbFactory.CreateDbContextAsync();
        var splits = await db.DatasetSubsets.Where(s => s.DatasetId == dataset.Id).Select(s => s.Split).Distinct().ToListAsync();
        if (!splits.Any(s => Forensics.ML.Data.Splits.Same(s, split)))
            throw new FieldException(field, $"dataset '{dataset.Name}' has no split '{split}'; it has {string.Join(", ", splits.Order())}");
    }

    /// <summary>The maps folder of <paramref name="runId"/>, which must be a succeeded "lare" run of <paramref name="dataset"/>.</summary>
    public async Task<string> LareMapsAsync(long runId, Dataset dataset, string field)
    {
        await using var db = await dbFactory.CreateDbContextAsync();
        var run = await db.Runs.AsNoTracking().SingleOrDefaultAsync(r => r.Id == runId) ?? throw new FieldException(field, $"no run with id {runId}");
        if (run.Kind != LareExtractionJob.KindName) throw new FieldException(field, $"run {runId} is a {run.Kind} run, not a LaRE extraction");
        if (run.Status != RunStatus.Succeeded)
            throw new FieldException(field, $"LaRE run {runId} is {run.Status.ToString().ToLowerInvariant()}, not succeeded");
        var made = Parse<LareExtractionJob.Config>(run.ConfigJson, "LaRE").DatasetId;
        if (made != dataset.Id)
            throw new FieldException(field, $"LaRE run {runId} holds the maps of dataset {made}, not of '{dataset.Name}' (id {dataset.Id})");
        var folder = paths.Data(LareResults.MapsFolder, runId.ToString(System.Globalization.CultureInfo.InvariantCulture));
        if (!Directory.Exists(folder)) throw new FieldException(field, $"the maps of LaRE run {runId} are gone from {folder}");
        return folder;
    }

    /// <summary>Checks that a detector architecture (null or empty: the checkpoint's own) is one the evaluator knows; <paramref name="alsoKnown"/> is added to the message.</summary>
    public static void DetectorArch(string? arch, string? alsoKnown = null)
    {
        if (arch is { Length: > 0 } && !Forensics.ML.Detectors.DetectorArchitectures.All.Any(a => a.Name == arch))
            throw new FieldException("arch", $"unknown architecture '{arch}'; known: {Forensics.ML.Detectors.DetectorArchitectures.Names}" +
                                             (alsoKnown is null ? "" : $", {alsoKnown}"));
    }

    /// <summary>
    /// The card of a detector package (arch torchscript or onnx): null when none is named (then MODEL.card.json beside the
    /// model, or the default card, applies); otherwise an existing file under an allowed root that parses as a card. Errors
    /// name "card" and, in the message, the card's own field.
    /// </summary>
    public string? DetectorCard(string? card, string? arch)
    {
        if (string.IsNullOrWhiteSpace(card)) return null;
        var architecture = Forensics.ML.Detectors.DetectorArchitectures.All.FirstOrDefault(a => a.Name == arch);
        if (architecture is not { IsPackage: true })
            throw new FieldException("card", $"a card describes a TorchScript or ONNX detector (arch torchscript or onnx); arch is '{arch ?? "res50nodown"}'");
        var path = ExistingFile(card, "card", "card");
        try { Forensics.ML.Detectors.DetectorCard.Load(path); }
        catch (Forensics.ML.Detectors.DetectorCardException e) { throw new FieldException("card", e.Message); }
        catch (IOException e) { throw new FieldException("card", e.Message); }
        return path;
    }

    // Verdicts by file (path, size, time) and architecture: a job checks its config again when it starts, and a form
    // sent twice should not load the weights twice.
    static readonly System.Collections.Concurrent.ConcurrentDictionary<(string, long, DateTime, string), string?> CheckpointVerdicts = new();

    /// <summary>
    /// Refuses a checkpoint whose weights are another network's than <paramref name="arch"/> (null or empty: the default
    /// detector): it is loaded on the CPU, strictly, as the job will load it, and a mismatch is a <see cref="FieldException"/>
    /// on <paramref name="field"/> naming the missing, unexpected and mis-shaped keys. A file that is no readable checkpoint
    /// at all is left to the job, which reports it when it loads it.
    /// </summary>
    public static void DetectorCheckpointFits(string resolvedPath, string? arch, Forensics.ML.Runtime.TorchOptions torch, string field = "checkpoint")
    {
        var architecture = string.IsNullOrWhiteSpace(arch) ? Forensics.ML.Detectors.DetectorArchitectures.Default.Name : arch.Trim();
        // TorchScript and ONNX packages are probed with their card by DetectorCard and by the job itself.
        if (Forensics.ML.Detectors.DetectorArchitectures.All.FirstOrDefault(a => a.Name == architecture) is { IsPackage: true }) return;
        var file = new FileInfo(resolvedPath);
        var key = (file.FullName, file.Length, file.LastWriteTimeUtc, architecture);
        if (!CheckpointVerdicts.TryGetValue(key, out var verdict))
        {
            verdict = null;
            try
            {
                Forensics.ML.Runtime.TorchRuntime.EnsureLoaded(torch);
                using var detector = Forensics.ML.Detectors.DetectorCheckpoint.Load(file.FullName, architecture);
            }
            catch (Forensics.ML.Detectors.DetectorCheckpointException e)
            {
                verdict = $"the checkpoint does not load into {architecture}: {e.Message}";
            }
            catch (Exception e) when (e is InvalidDataException or IOException or ArgumentException or NotSupportedException or InvalidOperationException)
            {
                // Not a readable checkpoint, or torch unavailable here: the job reports it when it loads the file.
            }
            if (CheckpointVerdicts.Count > 256) CheckpointVerdicts.Clear();
            CheckpointVerdicts[key] = verdict;
        }
        if (verdict is not null) throw new FieldException(field, verdict);
    }

    /// <summary>The canonical path of an existing file under an allowed root.</summary>
    public string ExistingFile(string path, string field, string what = "checkpoint")
    {
        string resolved;
        try { resolved = paths.ResolveAllowed(path); }
        catch (PathNotAllowedException e) { throw new FieldException(field, e.Message); }
        if (!File.Exists(resolved)) throw new FieldException(field, $"{what} '{path}' does not exist");
        return resolved;
    }
}
