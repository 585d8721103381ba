using System.Text;
using Forensics.ML.Datasets;
using Forensics.ML.Evaluation;
using Forensics.ML.Metrics;
using Microsoft.EntityFrameworkCore;
using Portal.Infrastructure;
using Portal.Experiments;
using Portal.Datasets;
using Portal.Zoo;
using Portal.Runs;
using Portal.Store;

namespace Portal.Experiments;

/// <summary>
/// A score submission: scores computed elsewhere for a registered dataset's split, checked against its manifest, turned
/// into metrics by the same code as evaluations (EvaluationReport) and stored as an ordinary run of kind "submission",
/// so the leaderboard lists it (architecture "submitted", the uploader and the file's SHA-256 in the detector column).
/// </summary>
public sealed class SubmissionJob(IDbContextFactory<PortalDb> dbFactory, PortalPaths paths, Portal.Auth.CurrentUser? currentUser = null) : IRunJob
{
    readonly JobInputs inputs = new(dbFactory, paths);

    public const string KindName = "submission";

    /// <summary>The leaderboard's architecture of submitted rows.</summary>
    public const string Architecture = "submitted";

    /// <summary>
    /// ScoresFile: the uploaded CSV, kept under data/submissions/ and named by its SHA-256. Checkpoint is what the
    /// leaderboard shows as the detector: "name (submitted by uploader, sha256 prefix)".
    /// </summary>
    public sealed record Config(long DatasetId, string? Split, string Detector, string ScoresFile, string Sha256, string Uploader,
        string Checkpoint, string Arch = Architecture);

    public string Kind => KindName;
    public string Queue => JobQueues.Light;

    /// <summary>The folder the uploaded files live in.</summary>
    public string Folder => paths.Data("submissions");

    public async Task ValidateAsync(string configJson)
    {
        var c = JobInputs.Parse<Config>(configJson, "submission");
        // The uploader is who queues it: a config sent to POST /api/runs cannot name someone else.
        if (currentUser is not null && await currentUser.GetAsync() is { IsSystem: false } actor && actor.Name != c.Uploader)
            throw new FieldException("uploader", $"a submission's uploader is the account that submits it ({actor.Name})");
        await ParseAsync(c);
    }

    /// <summary>The submitted scores, checked against the dataset; FieldExceptions on datasetId, split, detector, scores.</summary>
    async Task<(EvaluationSet Set, ScoringResult Scores)> ParseAsync(Config c)
    {
        var dataset = await inputs.ReadyDatasetAsync(c.DatasetId, "datasetId");
        if (!string.IsNullOrEmpty(c.Split)) await inputs.SplitAsync(dataset, c.Split, "split");
        if (string.IsNullOrWhiteSpace(c.Detector) || c.Detector.Length > 200) throw new FieldException("detector", "detector (the name shown on the leaderboard) is required, at most 200 characters");
        if (c.Arch != Architecture) throw new FieldException("arch", $"a submission's arch is '{Architecture}'");
        var file = Path.GetFullPath(c.ScoresFile);
        // Only files the submissions endpoint stored: a config cannot make the job read anything else.
        if (!file.StartsWith(Path.GetFullPath(Folder) + Path.DirectorySeparatorChar, StringComparison.Ordinal) || !File.Exists(file))
            throw new FieldException("scores", "the scores file must be one uploaded through POST /api/submissions");
        if (Forensics.ML.Weights.FileDigest.Sha256(file) != c.Sha256) throw new FieldException("scores", "the scores file does not match its SHA-256");
        var set = EvaluationSet.FromManifest(DatasetManifest.Load(paths.Data(dataset.ManifestPath!)), string.IsNullOrEmpty(c.Split) ? null : c.Split);
        try { return (set, SubmittedScores.Parse(await File.ReadAllTextAsync(file), set)); }
        catch (SubmittedScoresException e) { throw new FieldException("scores", e.Message); }
    }

    public async Task ExecuteAsync(RunContext context)
    {
        var c = context.Config<Config>();
        // Three steps of similar cost on a large test set: check the scores against the dataset, compute the metrics
        // (with their bootstrap), write and store them.
        context.ReportProgress(0, "checking the scores against the dataset");
        var (set, scores) = await ParseAsync(c);
        await context.LogAsync($"submission '{c.Detector}' by {c.Uploader}: {scores.Scores.Count} scores, sha256 {c.Sha256}");
        context.ReportProgress(1 / 3.0, $"computing the metrics of {scores.Scores.Count} scores");
        var report = EvaluationReport.Create(Architecture, (0, [], 1), c.ScoresFile, c.Sha256, set, scores, new EvalOptions(),
            new MetricsOptions());
        context.ReportProgress(2 / 3.0, "storing the results");
        report.Write(context.WorkDir);
        await context.ArtifactAsync(EvaluationResults.ScoresArtifact, Path.Combine(context.WorkDir, EvaluationReport.ScoresFileName));
        await context.ArtifactAsync(EvaluationResults.MetricsArtifact, Path.Combine(context.WorkDir, EvaluationReport.MetricsFileName));
        await context.ArtifactAsync("submitted", c.ScoresFile);
        await EvaluationResults.StoreAsync(context, report);
        await context.LogAsync(report.FormatTable());
        context.ReportProgress(1, "done");
    }

    /// <summary>
    /// Stores <paramref name="csv"/> under data/submissions/ by its SHA-256 and queues the run (which validates it first:
    /// a bad file is a FieldException on "scores" naming the first offending rows, and nothing is queued).
    /// </summary>
    public static async Task<Run> SubmitAsync(RunService runs, PortalPaths paths, long datasetId, string? split, string? detector, string? csv)
    {
        if (string.IsNullOrWhiteSpace(csv)) throw new FieldException("scores", "scores is required: CSV text with the columns path and score (optionally logit, label)");
        var actor = await runs.ActorAsync();
        if (!actor.CanQueue) throw new Portal.Auth.AccessDeniedException($"{actor.Name} ({actor.Role ?? "no role"}) may not submit scores: it needs the researcher or admin role");
        var bytes = Encoding.UTF8.GetBytes(csv);
        var sha = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(bytes));
        var folder = paths.Data("submissions");
        Directory.CreateDirectory(folder);
        var file = Path.Combine(folder, sha + ".csv");
        var created = !File.Exists(file);
        if (created) await File.WriteAllBytesAsync(file, bytes);
        var name = detector?.Trim() ?? "";
        var config = new Config(datasetId, string.IsNullOrWhiteSpace(split) ? null : split.Trim(), name, file, sha, actor.Name,
            $"{name} (submitted by {actor.Name}, sha256 {sha[..12]})");
        try { return await runs.CreateAsync(KindName, config); }
        catch when (created)
        {
            File.Delete(file);
            throw;
        }
    }
}
