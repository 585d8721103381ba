using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Forensics.ML.Protocols;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Portal.Infrastructure;
using Portal.Store;
using Portal.Runs;
using Portal.Datasets;
using Portal.Zoo;

namespace Portal.Experiments;

/// <summary>
/// The aligned-dataset paper's experiment as one run: align (optional) -> train -> cross-generator evaluation -> robustness
/// sweeps. Each stage is an ordinary child run (align, train, crossgen, sweep) taken through the grid's reuse-by-config-hash
/// rule (<see cref="ExperimentService.ReuseOrCreateAsync"/>), so a pipeline queued twice, or taken up again after a
/// restart, finds its children instead of duplicating them. The pipeline waits for each child by polling the store, feeds
/// its output (the aligned dataset, the trained weights) to the next stage, and records the children as "child/&lt;stage&gt;"
/// metrics (value = run id), the ones it created also as "created/&lt;stage&gt;", so the UI can list them and a cancel
/// reaches them.
/// </summary>
/// <remarks>The stage jobs come from DI (<see cref="ServiceSetup.AddRunJob{TJob}"/>) and check the child configs exactly as a
/// run queued by hand would be checked.</remarks>
public sealed class PipelineJob(IDbContextFactory<PortalDb> dbFactory, PortalPaths paths, IOptions<PortalOptions> options,
    AlignmentJob alignment, TrainingJob training) : IRunJob
{
    public const string KindName = "pipeline";

    /// <summary>The arch the evaluation stages load the trained checkpoint as.</summary>
    public const string Arch = "res50nodown";

    /// <summary>
    /// The pipeline. TrainDatasetId: the dataset to train on (with Align set: the reals it aligns first). Align: null trains
    /// on the dataset as it is (the usual training on generated images, mode independent unless train.mode says otherwise).
    /// Evaluate: the cross-generator test (null: none). Sweeps: robustness sweeps of the trained checkpoint.
    /// </summary>
    public sealed record Config(long TrainDatasetId, AlignStage? Align = null, TrainStage? Train = null, EvaluateStage? Evaluate = null,
        SweepStage[]? Sweeps = null);

    /// <summary>The align job's settings (its sourceDatasetId is the pipeline's trainDatasetId); null fields take the align job's defaults.</summary>
    public sealed record AlignStage(long? VaeWeightsId = null, string? Vae = null, long? Seed = null, string? Posterior = null,
        string? SizePolicy = null, int? Batch = null, string? Name = null);

    /// <summary>
    /// The train job's settings except trainDatasetId; null fields take the train job's defaults. Generators, MaxImages and
    /// Fraction select the training images (after alignment: the aligned dataset keeps the source's generator folders).
    /// </summary>
    public sealed record TrainStage(long? ValDatasetId = null, string? Mode = null, int? Epochs = null, int? PairsPerBatch = null,
        double? LearningRate = null, long? Seed = null, int? Width = null, int[]? Layers = null, int? Crop = null, string? Augment = null,
        string? Init = null, string[]? Generators = null, int? MaxImages = null, double? Fraction = null,
        TrainingJob.AugmentationConfig? Augmentation = null, int? Patience = null);

    /// <summary>The crossgen job's settings except checkpoint and arch (the trained weights, res50nodown).</summary>
    public sealed record EvaluateStage(long DatasetId, string? Split = null, string? Modes = null, long? ValDatasetId = null,
        string? ValSplit = null, string? CheckpointChosenOn = null, long? Seed = null, int? Bootstrap = null);

    /// <summary>One sweep job's settings; DatasetId and Split default to the evaluate stage's.</summary>
    public sealed record SweepStage(string Axis, string? Severities = null, long? DatasetId = null, string? Split = null, long? Seed = null,
        int? Bootstrap = null);

    /// <summary>Child configs leave out unset fields, so they hash like the same run queued by hand with the job's defaults.</summary>
    static readonly JsonSerializerOptions ChildJson = new(JsonSerializerDefaults.Web) { DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull };

    /// <summary>How often a waiting stage reads its child's status.</summary>
    static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(300);

    readonly JobInputs inputs = new(dbFactory, paths);

    public string Kind => KindName;
    public string Queue => JobQueues.Orchestration;

    public async Task ValidateAsync(string configJson)
    {
        var c = JobInputs.Parse<Config>(configJson, "pipeline");
        var train = await inputs.ReadyDatasetAsync(c.TrainDatasetId, "trainDatasetId");
        if (c.Align is not null)
        {
            var align = await AlignConfigAsync(c, train);
            // A reused alignment's output dataset already carries the name the align job would refuse as taken.
            if (await ExperimentService.FindLiveRunAsync(dbFactory, AlignmentJob.KindName, RunService.ConfigHash(AlignmentJob.KindName, align.ToJsonString())) is null)
                await Prefixed("align", () => alignment.ValidateAsync(align.ToJsonString()));
        }
        // The train options are checked against the source dataset: the aligned one does not exist yet.
        await Prefixed("train", () => training.ValidateAsync(TrainConfig(c, c.TrainDatasetId).ToJsonString()));
        if (c.Evaluate is { } e)
        {
            await inputs.ReadyDatasetAsync(e.DatasetId, "evaluate.datasetId");
            if (e.ValDatasetId is { } v) await inputs.ReadyDatasetAsync(v, "evaluate.valDatasetId");
            try { foreach (var mode in (e.Modes ?? "fixed").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)) ThresholdModes.Parse(mode); }
            catch (ArgumentException ex) { throw new FieldException("evaluate.modes", ex.Message); }
            if (e.Bootstrap is < 0) throw new FieldException("evaluate.bootstrap", "bootstrap must not be negative");
            ConfigLimits.AtMost("evaluate.bootstrap", e.Bootstrap ?? 0, options.Value.Limits.Bootstrap, nameof(ConfigLimits.Bootstrap));
        }
        var sweeps = c.Sweeps ?? [];
        for (var i = 0; i < sweeps.Length; i++)
        {
            var field = $"sweeps[{i}]";
            var s = sweeps[i] ?? throw new FieldException(field, $"{field} is null");
            if (string.IsNullOrWhiteSpace(s.Axis)) throw new FieldException($"{field}.axis", $"axis is required ({string.Join(", ", SweepAxes.All)})");
            try { SweepAxes.Check(s.Axis); }
            catch (ArgumentException ex) { throw new FieldException($"{field}.axis", ex.Message); }
            ConfigLimits.AtMost($"{field}.bootstrap", s.Bootstrap ?? 0, options.Value.Limits.Bootstrap, nameof(ConfigLimits.Bootstrap));
            if (!string.IsNullOrWhiteSpace(s.Severities))
            {
                ConfigLimits.AtMost($"{field}.severities", s.Severities.Count(ch => ch == ',') + 1, options.Value.Limits.Severities, nameof(ConfigLimits.Severities));
                try { SweepAxes.ParseSeverities(s.Axis, s.Severities); }
                catch (ArgumentException ex) { throw new FieldException($"{field}.severities", ex.Message); }
            }
            var dataset = s.DatasetId ?? c.Evaluate?.DatasetId
                          ?? throw new FieldException($"{field}.datasetId", "a sweep needs a datasetId when the pipeline has no evaluate stage");
            await inputs.ReadyDatasetAsync(dataset, $"{field}.datasetId");
        }
    }

    /// <summary>Runs a child job's validation with its field names under the stage's prefix ("train.epochs").</summary>
    static async Task Prefixed(string stage, Func<Task> validate)
    {
        try { await validate(); }
        catch (FieldException e)
        {
            // The source dataset is the pipeline's own field, not the stage's.
            var field = e.Field is "sourceDatasetId" or "trainDatasetId" ? "trainDatasetId" : $"{stage}.{e.Field}";
            throw new FieldException(field, e.Message, e.Status);
        }
    }

    /// <summary>
    /// The align child's config. Without a name, the output dataset is named after the source and the alignment settings'
    /// hash, so two pipelines aligning the same reals differently (a grid over align.seed) never clash on the name.
    /// </summary>
    async Task<JsonObject> AlignConfigAsync(Config c, Dataset? source = null)
    {
        var config = JsonSerializer.SerializeToNode(c.Align, ChildJson)!.AsObject();
        config["sourceDatasetId"] = c.TrainDatasetId;
        if (c.Align!.Name is null)
        {
            source ??= await inputs.ReadyDatasetAsync(c.TrainDatasetId, "trainDatasetId");
            var settings = RunService.ConfigHash(AlignmentJob.KindName, config.ToJsonString());
            config["name"] = $"{source.Name}-aligned-{settings[..8]}";
        }
        return config;
    }

    /// <summary>The train child's config on <paramref name="trainDatasetId"/>; without align the mode defaults to the usual (independent) training.</summary>
    static JsonObject TrainConfig(Config c, long trainDatasetId)
    {
        var train = c.Train ?? new TrainStage();
        if (c.Align is null && train.Mode is null) train = train with { Mode = "independent" };
        var config = JsonSerializer.SerializeToNode(train, ChildJson)!.AsObject();
        config["trainDatasetId"] = trainDatasetId;
        return config;
    }

    static JsonObject CrossGenConfig(EvaluateStage e, string checkpoint)
    {
        var config = JsonSerializer.SerializeToNode(e, ChildJson)!.AsObject();
        config[EvaluationResults.ConfigFields.Checkpoint] = checkpoint;
        config["arch"] = Arch;
        return config;
    }

    static JsonObject SweepConfig(Config c, SweepStage s, string checkpoint)
    {
        var config = JsonSerializer.SerializeToNode(s, ChildJson)!.AsObject();
        config[EvaluationResults.ConfigFields.DatasetId] = s.DatasetId ?? c.Evaluate!.DatasetId;
        // The sweep scores the same split as the cross-generator test unless told otherwise.
        if (s.DatasetId is null && s.Split is null && c.Evaluate is { } e) config["split"] = e.Split ?? new CrossGeneratorJob.Config(0, "").Split;
        config[EvaluationResults.ConfigFields.Checkpoint] = checkpoint;
        config["arch"] = Arch;
        return config;
    }

    public async Task ExecuteAsync(RunContext context)
    {
        await ValidateAsync(context.ConfigJson);
        var c = context.Config<Config>();
        var experiments = context.Services.GetRequiredService<ExperimentService>();
        var ct = context.CancellationToken;
        var sweeps = c.Sweeps ?? [];
        var plan = Plan(c);
        var stages = plan.Count;
        var done = 0;
        try
        {
            var trainDatasetId = c.TrainDatasetId;
            if (c.Align is not null)
            {
                var align = await StageAsync(context, experiments, "align", AlignmentJob.KindName, await AlignConfigAsync(c), c.Align.Seed, done++, plan);
                await using var db = await dbFactory.CreateDbContextAsync(CancellationToken.None);
                var aligned = await db.Datasets.AsNoTracking().SingleOrDefaultAsync(d => d.RegistrationRunId == align.Id && d.Status == DatasetStatus.Ready, CancellationToken.None)
                              ?? throw new InvalidOperationException($"stage align: run {align.Id} succeeded but left no ready dataset");
                trainDatasetId = aligned.Id;
                await context.LogAsync($"stage align: aligned dataset '{aligned.Name}' (id {aligned.Id})");
            }

            var trainConfig = TrainConfig(c, trainDatasetId);
            var train = await StageAsync(context, experiments, "train", TrainingJob.KindName, trainConfig, c.Train?.Seed, done++, plan);
            string checkpoint;
            await using (var db = await dbFactory.CreateDbContextAsync(CancellationToken.None))
            {
                var weights = await db.Artifacts.AsNoTracking().Where(a => a.RunId == train.Id && a.Kind == TrainingResults.WeightsArtifact)
                                  .OrderByDescending(a => a.Id).FirstOrDefaultAsync(CancellationToken.None)
                              ?? throw new InvalidOperationException($"stage train: run {train.Id} succeeded but recorded no weights artifact");
                checkpoint = context.Paths.Data(weights.RelativePath);
            }
            await context.LogAsync($"stage train: checkpoint {checkpoint}");

            // The evaluation stages only read the checkpoint: queue them all, then wait for each in turn.
            var pending = new List<(string Stage, string Kind, JsonObject Config, long? Seed)>();
            if (c.Evaluate is { } e) pending.Add(("crossgen", CrossGeneratorJob.KindName, CrossGenConfig(e, checkpoint), e.Seed));
            for (var i = 0; i < sweeps.Length; i++) pending.Add(($"sweeps[{i}]", RobustnessSweepJob.KindName, SweepConfig(c, sweeps[i], checkpoint), sweeps[i].Seed));
            var queued = new List<(string Stage, Run Run)>();
            foreach (var p in pending) queued.Add((p.Stage, await StartStageAsync(context, experiments, p.Stage, p.Kind, p.Config, p.Seed)));
            foreach (var (stage, run) in queued)
            {
                var finished = await WaitAsync(context, stage, run.Id, done++, plan);
                if (stage == "crossgen") await CopyHeadlineMetricsAsync(context, finished.Id);
            }
            context.ReportProgress(1, "done");
            await context.LogAsync($"pipeline done: {stages} stage(s)");
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // A shutdown also cancels the token, but then the pipeline is taken up again later and its children go on.
            if (await CancelRequestedAsync(context.RunId)) await CancelCreatedChildrenAsync(context);
            throw;
        }
    }

    /// <summary>Takes the stage's child run (reused or created) and waits until it succeeds.</summary>
    async Task<Run> StageAsync(RunContext context, ExperimentService experiments, string stage, string kind, JsonObject config, long? seed, int index,
        IReadOnlyList<PlannedStage> plan)
    {
        var run = await StartStageAsync(context, experiments, stage, kind, config, seed);
        return await WaitAsync(context, stage, run.Id, index, plan);
    }

    /// <summary>Shares of the work by stage kind: an alignment decodes and encodes every real once, training runs epochs of both, an evaluation or a sweep point scores once.</summary>
    public static IReadOnlyDictionary<string, double> StageWeights { get; } = new Dictionary<string, double>
    {
        [AlignmentJob.KindName] = 2, [TrainingJob.KindName] = 10, [CrossGeneratorJob.KindName] = 1, [RobustnessSweepJob.KindName] = 1,
    };

    /// <summary>The stages the config plans, in order: align (optional), train, crossgen (optional), one per sweep.</summary>
    public static IReadOnlyList<PlannedStage> Plan(Config c)
    {
        var plan = new List<PlannedStage>();
        if (c.Align is not null) plan.Add(new("align", AlignmentJob.KindName, StageWeights[AlignmentJob.KindName]));
        plan.Add(new("train", TrainingJob.KindName, StageWeights[TrainingJob.KindName]));
        if (c.Evaluate is not null) plan.Add(new("crossgen", CrossGeneratorJob.KindName, StageWeights[CrossGeneratorJob.KindName]));
        // A sweep's share grows with its points (the clean one comes from the cache).
        var sweeps = c.Sweeps ?? [];
        for (var i = 0; i < sweeps.Length; i++)
        {
            double points;
            try
            {
                points = string.IsNullOrWhiteSpace(sweeps[i].Severities) ? Forensics.ML.Protocols.SweepAxes.DefaultSeverities(sweeps[i].Axis).Count
                    : Forensics.ML.Protocols.SweepAxes.ParseSeverities(sweeps[i].Axis, sweeps[i].Severities!).Count;
            }
            catch (ArgumentException) { points = 1; }
            plan.Add(new($"sweeps[{i}]", RobustnessSweepJob.KindName, StageWeights[RobustnessSweepJob.KindName] * Math.Max(1, points - 1) / 4));
        }
        return plan;
    }

    /// <summary>The pipeline's progress with stages 0..index-1 done and stage <paramref name="index"/> at <paramref name="stageProgress"/> (0..1), weighted by the plan.</summary>
    public static double Progress(IReadOnlyList<PlannedStage> plan, int index, double stageProgress)
    {
        var total = plan.Sum(p => p.Weight);
        if (total <= 0) return 0;
        var done = plan.Take(index).Sum(p => p.Weight) + (index < plan.Count ? plan[index].Weight * Math.Clamp(stageProgress, 0, 1) : 0);
        return Math.Clamp(done / total, 0, 1);
    }

    async Task<Run> StartStageAsync(RunContext context, ExperimentService experiments, string stage, string kind, JsonObject config, long? seed)
    {
        context.CancellationToken.ThrowIfCancellationRequested();
        (Run Run, bool Reused) child;
        try { child = await experiments.ReuseOrCreateAsync(kind, config.ToJsonString(), seed); }
        catch (FieldException e) { throw new InvalidOperationException($"stage {stage}: the {kind} config is invalid at '{e.Field}': {e.Message}", e); }
        await RecordChildAsync(context, stage, child.Run.Id, created: !child.Reused);
        await InheritTagsAsync(context, child.Run.Id);
        return child.Run;
    }

    /// <summary>Polls the child until it finishes; the pipeline's progress is the stages done plus the child's own progress.</summary>
    async Task<Run> WaitAsync(RunContext context, string stage, long runId, int index, IReadOnlyList<PlannedStage> plan)
    {
        while (true)
        {
            Run run;
            await using (var db = await dbFactory.CreateDbContextAsync(CancellationToken.None))
                run = await db.Runs.AsNoTracking().SingleAsync(r => r.Id == runId, CancellationToken.None);
            context.ReportProgress(Progress(plan, index, run.Status == RunStatus.Succeeded ? 1 : run.Progress),
                $"{stage} ({index + 1}/{plan.Count}): run {runId} {Status(run.Status)}{(run.Phase is { Length: > 0 } p ? ", " + p : "")}");
            switch (run.Status)
            {
                case RunStatus.Succeeded:
                    await context.LogAsync($"stage {stage}: run {runId} succeeded");
                    return run;
                case RunStatus.Failed:
                case RunStatus.Canceled:
                    throw new InvalidOperationException($"stage {stage} failed: {run.Kind} run {runId} {Status(run.Status)}{(run.Error is { } err ? ": " + err : "")}");
            }
            await Task.Delay(Poll, context.CancellationToken);
        }
    }

    /// <summary>Records the child as metric "child/&lt;stage&gt;" (and "created/&lt;stage&gt;"), once per stage and run, with a log line.</summary>
    async Task RecordChildAsync(RunContext context, string stage, long childId, bool created)
    {
        List<RunMetric> existing;
        await using (var db = await dbFactory.CreateDbContextAsync(CancellationToken.None))
            existing = await db.RunMetrics.AsNoTracking().Where(m => m.RunId == context.RunId && m.Name.EndsWith("/" + stage)).ToListAsync(CancellationToken.None);
        var known = existing.Any(m => m.Name == ChildMetric + stage && (long)m.Value == childId);
        if (!known) await context.MetricAsync(ChildMetric + stage, 0, childId);
        if (created && !existing.Any(m => m.Name == CreatedMetric + stage && (long)m.Value == childId)) await context.MetricAsync(CreatedMetric + stage, 0, childId);
        await context.LogAsync($"stage {stage}: {(created ? "queued" : known ? "taken up again" : "reused")} run {childId}");
    }

    /// <summary>The pipeline's tags are added to its child's (a reused child keeps its own too), so a tag filter finds every stage.</summary>
    async Task InheritTagsAsync(RunContext context, long childId)
    {
        await using var db = await dbFactory.CreateDbContextAsync(CancellationToken.None);
        var tags = RunTags.Parse(await db.Runs.Where(r => r.Id == context.RunId).Select(r => r.Tags).SingleAsync(CancellationToken.None));
        if (tags.Count == 0) return;
        var child = await db.Runs.SingleAsync(r => r.Id == childId, CancellationToken.None);
        var merged = RunTags.Parse(child.Tags).Union(tags).ToList();
        var stored = RunTags.Format(merged);
        if (stored == child.Tags) return;
        child.Tags = stored;
        await db.SaveChangesAsync(CancellationToken.None);
    }

    const string ChildMetric = "child/";
    const string CreatedMetric = "created/";
    /// <summary>The end of a cross-generator average's name: "acc@best/avg".</summary>
    static readonly string AverageSuffix = $"{EvaluationResults.GeneratorSeparator}{CrossGeneratorResults.AverageRow}";

    /// <summary>The cross-generator averages on the pipeline run itself ("crossgen_acc", "crossgen_ap@calibrated"), so grid summaries show them.</summary>
    async Task CopyHeadlineMetricsAsync(RunContext context, long crossgenRunId)
    {
        await using var db = await dbFactory.CreateDbContextAsync(CancellationToken.None);
        if (await db.RunMetrics.AnyAsync(m => m.RunId == context.RunId && m.Name.StartsWith("crossgen_"), CancellationToken.None)) return;
        var averages = await db.RunMetrics.AsNoTracking().Where(m => m.RunId == crossgenRunId && m.Step == 0 && m.Name.EndsWith(AverageSuffix))
            .ToListAsync(CancellationToken.None);
        foreach (var m in averages) await context.MetricAsync("crossgen_" + m.Name[..^AverageSuffix.Length], 0, m.Value);
    }

    async Task<bool> CancelRequestedAsync(long runId)
    {
        await using var db = await dbFactory.CreateDbContextAsync(CancellationToken.None);
        return await db.Runs.Where(r => r.Id == runId).Select(r => r.CancelRequested).SingleAsync(CancellationToken.None);
    }

    /// <summary>On cancel: the children this pipeline created (in any attempt) that are still queued or running are canceled too.</summary>
    async Task CancelCreatedChildrenAsync(RunContext context)
    {
        List<long> created;
        await using (var db = await dbFactory.CreateDbContextAsync(CancellationToken.None))
            created = (await db.RunMetrics.AsNoTracking().Where(m => m.RunId == context.RunId && m.Name.StartsWith(CreatedMetric)).Select(m => m.Value)
                .ToListAsync(CancellationToken.None)).Select(v => (long)v).Distinct().ToList();
        var runs = context.Services.GetRequiredService<RunService>();
        foreach (var id in created)
            if (await runs.CancelAsync(id) is CancelOutcome.Canceled or CancelOutcome.Requested)
                await context.LogAsync($"canceled child run {id}");
    }

    /// <summary>The child runs of pipeline run <paramref name="pipelineRunId"/>, in stage order, with their current status.</summary>
    public static async Task<IReadOnlyList<PipelineChild>> ChildrenAsync(IDbContextFactory<PortalDb> dbFactory, long pipelineRunId)
    {
        await using var db = await dbFactory.CreateDbContextAsync();
        var metrics = await db.RunMetrics.AsNoTracking()
            .Where(m => m.RunId == pipelineRunId && (m.Name.StartsWith(ChildMetric) || m.Name.StartsWith(CreatedMetric))).OrderBy(m => m.Id).ToListAsync();
        var children = metrics.Where(m => m.Name.StartsWith(ChildMetric)).Select(m => (Stage: m.Name[ChildMetric.Length..], Id: (long)m.Value))
            .Distinct().ToList();
        var created = metrics.Where(m => m.Name.StartsWith(CreatedMetric)).Select(m => (long)m.Value).ToHashSet();
        var ids = children.Select(c => c.Id).ToList();
        var runs = await db.Runs.AsNoTracking().Where(r => ids.Contains(r.Id)).ToDictionaryAsync(r => r.Id);
        return children.Where(c => runs.ContainsKey(c.Id)).Select(c =>
        {
            var r = runs[c.Id];
            return new PipelineChild(c.Stage, r.Id, r.Kind, Status(r.Status), r.Progress, r.Phase, r.Error, created.Contains(r.Id));
        }).ToList();
    }

    static string Status(RunStatus status) => status.ToString().ToLowerInvariant();

    /// <summary>The pipelines that took run <paramref name="childRunId"/> as a stage: (pipeline run id, stage name).</summary>
    public static async Task<IReadOnlyList<(long PipelineRunId, string Stage)>> ParentsAsync(IDbContextFactory<PortalDb> dbFactory, long childRunId)
    {
        await using var db = await dbFactory.CreateDbContextAsync();
        double id = childRunId;
        var rows = await db.RunMetrics.AsNoTracking().Where(m => m.Name.StartsWith(ChildMetric) && m.Value == id && m.Step == 0)
            .Select(m => new { m.RunId, m.Name }).ToListAsync();
        return rows.Select(r => (r.RunId, r.Name[ChildMetric.Length..])).Distinct().OrderBy(r => r.RunId).ToList();
    }

    /// <summary>The plan of pipeline run <paramref name="pipelineRunId"/> (empty when its config cannot be read).</summary>
    public static async Task<IReadOnlyList<PlannedStage>> PlanAsync(IDbContextFactory<PortalDb> dbFactory, long pipelineRunId)
    {
        await using var db = await dbFactory.CreateDbContextAsync();
        var json = await db.Runs.AsNoTracking().Where(r => r.Id == pipelineRunId && r.Kind == KindName).Select(r => r.ConfigJson).SingleOrDefaultAsync();
        if (json is null) return [];
        try { return JsonSerializer.Deserialize<Config>(json, JobInputs.Json) is { } c ? Plan(c) : []; }
        catch (JsonException) { return []; }
    }
}
