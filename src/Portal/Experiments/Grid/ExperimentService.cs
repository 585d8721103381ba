using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.EntityFrameworkCore;
using Portal.Infrastructure;
using Portal.Store;
using Portal.Runs;
using Portal.Datasets;
using Portal.Zoo;

namespace Portal.Experiments;

/// <summary>
/// Expands grid experiments into runs, reusing any run that already computes a cell (same kind and config hash, not failed
/// or canceled), so queueing the same grid twice starts no new work. The request is stored as data/experiments/&lt;id&gt;.json;
/// membership is recomputed from it, so no table is needed.
/// </summary>
public sealed class ExperimentService(IDbContextFactory<PortalDb> dbFactory, RunService runs, IEnumerable<IRunJob> jobs, PortalPaths paths)
{
    /// <summary>The most cells one experiment may have.</summary>
    public const int MaxCells = 500;

    static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    /// <summary>Validates the request, queues the cells no live run computes yet, stores the request, and returns the experiment.</summary>
    public async Task<Experiment> QueueAsync(ExperimentRequest request)
    {
        var job = FindJob(request.Kind);
        var configs = Expand(request, job);
        // Validate every cell before queueing any, so bad input never leaves half an experiment behind.
        foreach (var config in configs) await job.ValidateAsync(config.ToJsonString());

        var id = ExperimentId(request);
        Directory.CreateDirectory(paths.Data("experiments"));
        await File.WriteAllTextAsync(paths.Data("experiments", id + ".json"), JsonSerializer.Serialize(request, Json));

        var cells = new List<ExperimentCell>();
        foreach (var config in configs)
        {
            var seed = SeedOf(config);
            var (run, reused) = await ReuseOrCreateAsync(job.Kind, config.ToJsonString(), seed);
            cells.Add(new ExperimentCell(config, run.ConfigHash, run.Id, reused, Status(run.Status), seed));
        }
        return new Experiment(id, request, cells, await SummarizeAsync(cells));
    }

    /// <summary>The stored experiment with each cell's newest run and status and the summary; null when there is no such experiment.</summary>
    public async Task<Experiment?> GetAsync(string id)
    {
        if (id.Length == 0 || !id.All(char.IsAsciiHexDigitLower)) return null;
        var file = paths.Data("experiments", id + ".json");
        if (!File.Exists(file)) return null;
        var request = JsonSerializer.Deserialize<ExperimentRequest>(await File.ReadAllTextAsync(file), Json)
                      ?? throw new InvalidDataException($"experiment file {file} is empty");
        var job = FindJob(request.Kind);
        var configs = Expand(request, job);
        var hashes = configs.Select(c => RunService.ConfigHash(job.Kind, c.ToJsonString())).ToList();
        List<Run> found;
        await using (var db = await dbFactory.CreateDbContextAsync())
            found = await db.Runs.AsNoTracking().Where(r => r.Kind == job.Kind && hashes.Contains(r.ConfigHash)).ToListAsync();
        var cells = configs.Select((c, i) =>
        {
            // The live run the queueing took, else the newest (a failed cell shows as failed until it is queued again).
            var run = found.Where(r => r.ConfigHash == hashes[i]).OrderBy(r => r.Status is RunStatus.Failed or RunStatus.Canceled)
                .ThenByDescending(r => r.Id).FirstOrDefault();
            return new ExperimentCell(c, hashes[i], run?.Id, false, run is null ? null : Status(run.Status), SeedOf(c));
        }).ToList();
        return new Experiment(id, request, cells, await SummarizeAsync(cells));
    }

    /// <summary>
    /// The grids queued so far, newest first (by when their request was last queued), each with its cells' current runs
    /// and summary; at most <paramref name="take"/>. A stored request that no longer expands (its job was removed) is skipped.
    /// </summary>
    public async Task<IReadOnlyList<(Experiment Experiment, DateTime QueuedAt)>> HistoryAsync(int take = 20)
    {
        var folder = paths.Data("experiments");
        if (!Directory.Exists(folder)) return [];
        var files = new DirectoryInfo(folder).GetFiles("*.json").OrderByDescending(f => f.LastWriteTimeUtc).Take(take).ToList();
        var history = new List<(Experiment, DateTime)>();
        foreach (var f in files)
        {
            try
            {
                if (await GetAsync(Path.GetFileNameWithoutExtension(f.Name)) is { } e) history.Add((e, f.LastWriteTimeUtc));
            }
            catch (Exception ex) when (ex is FieldException or JsonException or InvalidDataException) { }
        }
        return history;
    }

    /// <summary>The experiment id: the first 16 hex digits of the request's canonical hash, so the same request has the same id.</summary>
    public static string ExperimentId(ExperimentRequest request) =>
        RunService.ConfigHash("experiment", JsonSerializer.Serialize(request, Json))[..16];

    IRunJob FindJob(string? kind)
    {
        if (string.IsNullOrWhiteSpace(kind)) throw new FieldException("kind", "kind is required (e.g. \"evaluate\")");
        return jobs.FirstOrDefault(j => j.Kind == kind)
               ?? throw new FieldException("kind", $"unknown run kind '{kind}'; known: {string.Join(", ", jobs.Select(j => j.Kind).Distinct().Order())}");
    }

    /// <summary>The cartesian product of the axes (and seeds) applied to the base config, in axis order.</summary>
    static List<JsonObject> Expand(ExperimentRequest request, IRunJob job)
    {
        if (request.Config is null) throw new FieldException("config", "config must be a JSON object");
        var configType = ConfigType(job);
        var axes = new List<(string Field, JsonArray Values)>();
        foreach (var (field, values) in request.Axes ?? [])
        {
            if (string.IsNullOrWhiteSpace(field)) throw new FieldException("axes", "an axis needs a field name");
            if (configType is not null) CheckPath(configType, field, job.Kind);
            if (values is null || values.Count == 0) throw new FieldException(field, $"axis '{field}' has no values");
            axes.Add((field, values));
        }
        if (request.Seeds is { } seeds)
        {
            if (seeds.Length == 0) throw new FieldException("seeds", "seeds is empty; leave it out for one run per cell");
            if (configType is not null && FieldsOf(configType).All(f => !string.Equals(f, "seed", StringComparison.OrdinalIgnoreCase)))
                throw new FieldException("seeds", $"the {job.Kind} config has no seed field");
            if (axes.Any(a => string.Equals(a.Field, "seed", StringComparison.OrdinalIgnoreCase)))
                throw new FieldException("seeds", "give the seeds either as seeds or as a seed axis, not both");
            axes.Add(("seed", new JsonArray(seeds.Select(s => (JsonNode?)JsonValue.Create(s)).ToArray())));
        }
        long count = 1;
        foreach (var (_, values) in axes)
        {
            count *= values.Count;
            if (count > MaxCells) throw new FieldException("axes", $"the grid has more than {MaxCells} cells");
        }

        var configs = new List<JsonObject> { (JsonObject)request.Config.DeepClone() };
        foreach (var (field, values) in axes)
            configs = configs.SelectMany(c => values.Select(v => With(c, field, v))).ToList();
        return configs;
    }

    /// <summary>
    /// A copy of <paramref name="config"/> with <paramref name="field"/> set: a top-level name ("seed"), or a dotted path
    /// into nested objects ("train.seed"), with [n] for an array element ("sweeps[0].axis"). Missing or null objects on the
    /// way are created.
    /// </summary>
    public static JsonObject With(JsonObject config, string field, JsonNode? value)
    {
        var copy = (JsonObject)config.DeepClone();
        var segments = field.Split('.');
        JsonObject parent = copy;
        for (var i = 0; i < segments.Length; i++)
        {
            var (name, index) = Segment(segments[i], field);
            var last = i == segments.Length - 1;
            if (index is null && last)
            {
                Set(parent, name, value?.DeepClone());
                break;
            }
            var child = Get(parent, name);
            if (index is { } n)
            {
                if (child is not JsonArray array || n >= array.Count)
                    throw new FieldException(field, $"'{field}': the config has no element {n} in '{name}'");
                if (last) { array[n] = value?.DeepClone(); break; }
                if (array[n] is not JsonObject element) array[n] = element = new JsonObject();
                parent = element;
            }
            else
            {
                if (child is not JsonObject next) Set(parent, name, next = new JsonObject());
                parent = next;
            }
        }
        return copy;
    }

    // The jobs read configs case-insensitively: a differently-cased key is the same field.
    static JsonNode? Get(JsonObject o, string name) => o.FirstOrDefault(p => string.Equals(p.Key, name, StringComparison.OrdinalIgnoreCase)).Value;

    static void Set(JsonObject o, string name, JsonNode? value)
    {
        // Replace a differently-cased key instead of adding a second one.
        foreach (var key in o.Select(p => p.Key).Where(k => string.Equals(k, name, StringComparison.OrdinalIgnoreCase)).ToList()) o.Remove(key);
        o[name] = value;
    }

    /// <summary>"name" or "name[3]".</summary>
    static (string Name, int? Index) Segment(string segment, string field)
    {
        var match = System.Text.RegularExpressions.Regex.Match(segment, @"^([A-Za-z_][A-Za-z0-9_]*)(?:\[(\d{1,4})\])?$");
        if (!match.Success) throw new FieldException(field, $"'{field}' is not a field path (name, name.sub, name[0].sub)");
        return (match.Groups[1].Value, match.Groups[2].Success ? int.Parse(match.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture) : null);
    }

    /// <summary>The job's nested public Config record, or null when the job has none to check axes against.</summary>
    static Type? ConfigType(IRunJob job) => job.GetType().GetNestedType("Config", BindingFlags.Public);

    static IEnumerable<string> FieldsOf(Type type) =>
        type.GetProperties(BindingFlags.Public | BindingFlags.Instance).Select(p => JsonNamingPolicy.CamelCase.ConvertName(p.Name));

    /// <summary>Checks a (dotted) axis path against the Config record and the records nested in it.</summary>
    static void CheckPath(Type configType, string field, string kind)
    {
        var type = configType;
        var segments = field.Split('.');
        for (var i = 0; i < segments.Length; i++)
        {
            var (name, index) = Segment(segments[i], field);
            var property = type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
                .FirstOrDefault(p => string.Equals(JsonNamingPolicy.CamelCase.ConvertName(p.Name), name, StringComparison.OrdinalIgnoreCase));
            var where = i == 0 ? $"the {kind} config" : $"'{string.Join('.', segments[..i])}'";
            if (property is null)
                throw new FieldException(field, $"'{field}' is not a field of {where}; fields: {string.Join(", ", FieldsOf(type).Order())}");
            type = Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
            if (index is not null)
            {
                var element = type.IsArray ? type.GetElementType()
                    : type.IsGenericType && typeof(System.Collections.IEnumerable).IsAssignableFrom(type) ? type.GetGenericArguments()[0] : null;
                type = element ?? throw new FieldException(field, $"'{field}': '{name}' is not a list");
            }
            if (i < segments.Length - 1 && (type.IsPrimitive || type == typeof(string) || type.IsEnum || type.IsArray || type == typeof(decimal)))
                throw new FieldException(field, $"'{field}': '{name}' has no fields");
        }
    }

    static long? SeedOf(JsonObject config)
    {
        var node = config.FirstOrDefault(p => string.Equals(p.Key, "seed", StringComparison.OrdinalIgnoreCase)).Value;
        return node is JsonValue v && v.TryGetValue<long>(out var seed) ? seed : null;
    }

    /// <summary>
    /// The reuse rule shared by grid cells and pipeline stages: the run that already computes this kind and config (same
    /// config hash; succeeded first, else the newest queued or running one), or else a new queued run. Failed and canceled
    /// runs are never reused, so queueing again retries them.
    /// </summary>
    /// <returns>The run and whether it existed before.</returns>
    public async Task<(Run Run, bool Reused)> ReuseOrCreateAsync(string kind, string configJson, long? seed = null)
    {
        var hash = RunService.ConfigHash(kind, configJson);
        // Find-then-create must be atomic, or two pipelines sharing a stage (a grid's cells) would both create it: one
        // process at a time through the gate, and on PostgreSQL (processes sharing one store) one session at a time
        // through an advisory lock, held on its own connection and released with it should this process die.
        await ReuseGate.WaitAsync();
        try
        {
            await using var lockDb = await dbFactory.CreateDbContextAsync();
            var shared = lockDb.Database.IsNpgsql();
            if (shared)
            {
                await lockDb.Database.OpenConnectionAsync();
                await lockDb.Database.ExecuteSqlRawAsync("SELECT pg_advisory_lock({0})", ReuseLockKey);
            }
            try
            {
                if (await FindLiveRunAsync(kind, hash) is { } existing) return (existing, true);
                return (await runs.CreateAsync(kind, configJson, seed), false);
            }
            finally
            {
                if (shared) await lockDb.Database.ExecuteSqlRawAsync("SELECT pg_advisory_unlock({0})", ReuseLockKey);
            }
        }
        finally { ReuseGate.Release(); }
    }

    static readonly SemaphoreSlim ReuseGate = new(1, 1);
    /// <summary>The PostgreSQL advisory lock key of find-then-create (any fixed number no other code locks).</summary>
    const long ReuseLockKey = 0x5072_7452_6575_7365;

    /// <summary>The queued, running or succeeded run of <paramref name="kind"/> with config hash <paramref name="hash"/> (succeeded first); null when none.</summary>
    public Task<Run?> FindLiveRunAsync(string kind, string hash) => FindLiveRunAsync(dbFactory, kind, hash);

    /// <inheritdoc cref="FindLiveRunAsync(string, string)"/>
    public static async Task<Run?> FindLiveRunAsync(IDbContextFactory<PortalDb> dbFactory, string kind, string hash)
    {
        await using var db = await dbFactory.CreateDbContextAsync();
        // Succeeded first (the result exists), then the newest queued or running one.
        return await db.Runs.AsNoTracking()
            .Where(r => r.Kind == kind && r.ConfigHash == hash
                        && (r.Status == RunStatus.Queued || r.Status == RunStatus.Running || r.Status == RunStatus.Succeeded))
            .OrderBy(r => r.Status == RunStatus.Succeeded ? 0 : 1).ThenByDescending(r => r.Id).FirstOrDefaultAsync();
    }

    /// <summary>Groups cells that differ only by seed; each step-0 metric as mean ± sd over the group's succeeded runs.</summary>
    async Task<List<ExperimentGroup>> SummarizeAsync(IReadOnlyList<ExperimentCell> cells)
    {
        var succeeded = cells.Where(c => c is { Status: "succeeded", RunId: not null }).Select(c => c.RunId!.Value).Distinct().ToList();
        List<RunMetric> metrics;
        await using (var db = await dbFactory.CreateDbContextAsync())
            metrics = await db.RunMetrics.AsNoTracking().Where(m => succeeded.Contains(m.RunId) && m.Step == 0).ToListAsync();
        var byRun = metrics.GroupBy(m => m.RunId).ToDictionary(g => g.Key, g => g.GroupBy(m => m.Name).ToDictionary(n => n.Key, n => n.OrderBy(m => m.Id).Last().Value));

        var groups = new List<ExperimentGroup>();
        foreach (var group in cells.GroupBy(c => RunService.ConfigHash("", With(c.Config, "seed", null).ToJsonString())))
        {
            var config = group.First().Config.DeepClone().AsObject();
            foreach (var key in config.Select(p => p.Key).Where(k => string.Equals(k, "seed", StringComparison.OrdinalIgnoreCase)).ToList()) config.Remove(key);
            var done = group.Where(c => c.RunId is { } id && succeeded.Contains(id)).Select(c => c.RunId!.Value).Distinct().ToList();
            var summary = done.SelectMany(id => byRun.GetValueOrDefault(id) ?? []).GroupBy(p => p.Key)
                .OrderBy(g => g.Key, StringComparer.Ordinal)
                .ToDictionary(g => g.Key, g => Summarize(g.Select(p => p.Value).ToList()));
            groups.Add(new ExperimentGroup(config, group.Count(), done.Count, summary));
        }
        return groups;
    }

    /// <summary>Mean and sample standard deviation (n - 1; 0 for a single value).</summary>
    public static MetricSummary Summarize(IReadOnlyList<double> values)
    {
        var mean = values.Average();
        var sd = values.Count > 1 ? Math.Sqrt(values.Sum(v => (v - mean) * (v - mean)) / (values.Count - 1)) : 0;
        return new MetricSummary(mean, sd, values.Count);
    }

    static string Status(RunStatus status) => status.ToString().ToLowerInvariant();
}
