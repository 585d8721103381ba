using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Forensics.ML.Data;
using Forensics.ML.Datasets;
using Forensics.ML.Generators;
using Forensics.ML.Imaging;
using Forensics.ML.MiniGenImage;
using Forensics.ML.Runtime;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Portal.Infrastructure;
using Portal.Experiments;
using Portal.Datasets;
using Portal.Zoo;
using Portal.Runs;
using Portal.Store;
using static TorchSharp.torch;

namespace Portal.Experiments;

/// <summary>
/// Builds MiniGenImage from a demo manifest: cuts the real photos into patches, samples the generators into the GenImage
/// layout under data/&lt;name&gt;/ (MiniGenImageBuilder: a run taken up again keeps every finished image), scans the folder
/// and stores it as the dataset &lt;name&gt; through the registration job's store, with its lineage (the builder's
/// minigenimage.json: photo catalogue hash, generators' weights hashes, seeds, counts) on the dataset and as an artifact.
/// </summary>
public sealed class MiniGenImageBuildJob(IDbContextFactory<PortalDb> dbFactory, PortalPaths paths, IOptions<PortalOptions> options) : IRunJob
{
    public const string KindName = "build-minigenimage";
    /// <summary>The lineage's "kind": marks a dataset row as one this job built (never a user's dataset of the same name).</summary>
    public const string LineageKind = "minigenimage";
    /// <summary>The patch folder inside the dataset folder (as the CLI's `forensics minigenimage`).</summary>
    public const string PatchesFolder = "real-patches";

    /// <summary>Manifest: the demo.json (under an allowed root); Name: the dataset's name and its folder under the data directory.</summary>
    public sealed record Config(string Manifest, string Name = "minigenimage");

    public string Kind => KindName;
    public string Queue => JobQueues.Device;

    static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    public async Task ValidateAsync(string configJson)
    {
        var c = JobInputs.Parse<Config>(configJson, "MiniGenImage build");
        await CheckAsync(c);
    }

    async Task<DemoManifest> CheckAsync(Config c)
    {
        if (string.IsNullOrWhiteSpace(c.Name) || c.Name.Length > 200 || c.Name.IndexOfAny(['/', '\\', ':']) >= 0 || c.Name.StartsWith('.'))
            throw new FieldException("name", $"'{c.Name}' cannot name a dataset folder");
        string file;
        try { file = paths.ResolveAllowed(c.Manifest); }
        catch (PathNotAllowedException e) { throw new FieldException("manifest", e.Message); }
        DemoManifest manifest;
        try { manifest = DemoManifest.Load(file); }
        catch (DemoManifestException e) { throw new FieldException("manifest", e.Message); }
        var missing = manifest.Generators.Where(g => !Directory.Exists(g.Folder)).Select(g => g.Folder).ToList();
        if (!Directory.Exists(manifest.Photos)) missing.Insert(0, manifest.Photos);
        if (missing.Count > 0) throw new FieldException("manifest", $"{manifest.Path}: missing folder(s): {string.Join(", ", missing)}");
        await using var db = await dbFactory.CreateDbContextAsync();
        var existing = await db.Datasets.AsNoTracking().SingleOrDefaultAsync(d => d.Name == c.Name);
        if (existing is not null && !IsBuilt(existing))
            throw new FieldException("name", $"a dataset named '{c.Name}' exists and was not built by {KindName}; it is left as it is", 409);
        return manifest;
    }

    /// <summary>The SHA-256 of the demo.json a dataset built by this job was built from; null for other datasets.</summary>
    public static string? ManifestSha256(Dataset dataset)
    {
        try { return BuiltLineage(dataset)?["demoManifest"]?["sha256"]?.GetValue<string>(); }
        catch (Exception e) when (e is InvalidOperationException or FormatException) { return null; }
    }

    /// <summary>True when the dataset row was made by this job (its lineage says so), so a rebuild may update it.</summary>
    public static bool IsBuilt(Dataset dataset) => BuiltLineage(dataset) is not null;

    /// <summary>The dataset's lineage when this job wrote it; null for any other dataset or an unreadable lineage.</summary>
    static JsonNode? BuiltLineage(Dataset dataset)
    {
        if (dataset.LineageJson is null) return null;
        try
        {
            var lineage = JsonNode.Parse(dataset.LineageJson);
            return lineage?["kind"]?.GetValue<string>() == LineageKind ? lineage : null;
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException) { return null; }
    }

    // Cutting decodes every full-size photo once: a small share, moved photo by photo; sampling the fakes is the bulk.
    const double PatchesShare = 0.05;

    public async Task ExecuteAsync(RunContext context)
    {
        var c = context.Config<Config>();
        var manifest = await CheckAsync(c);
        var ct = context.CancellationToken;
        var root = paths.Data(c.Name);
        var patchesDir = Path.Combine(root, PatchesFolder);
        TorchRuntime.EnsureLoaded(options.Value.Torch);

        // Cutting is cheap and idempotent (identical files are left alone): done on every attempt.
        context.ReportProgress(0, "cutting the real photos into patches");
        PatchSet patches;
        try
        {
            patches = PatchCutter.WritePatches(manifest.Photos, patchesDir, manifest.PatchOptions(),
                new SyncProgress<PatchProgress>(p => context.ReportProgress(PatchesShare * p.Done / Math.Max(1, p.Total), $"patches: {p}")), ct);
        }
        catch (Exception e) when (e is PhotoCatalogueException or ImageDecodeException)
        {
            throw new InvalidOperationException($"{manifest.Photos}: {e.Message}", e);
        }
        await context.LogAsync($"{patches.Patches.Count} real patches ({string.Join(", ", Splits.All.Select(s => $"{s} {patches.InSplit(s).Count}"))}) in {paths.RelativeToData(patchesDir)}");

        context.ReportProgress(PatchesShare, "loading the generators");
        var generators = new List<IImageGenerator>();
        var hashes = new Dictionary<string, string>();
        try
        {
            foreach (var g in manifest.Generators)
            {
                var loaded = GeneratorFolder.Load(g.Folder);
                generators.Add(loaded.Name == g.Name ? loaded : new Renamed(loaded, g.Name));
                hashes[g.Name] = FolderSha256(g.Folder);
            }

            var total = (long)generators.Count * 2 * (manifest.Train + manifest.Val + manifest.Test);
            var done = new Dictionary<(string, string, string), int>();
            // The generators sample side by side, one torch thread each (the only device job runs now; restored after).
            var parallelism = Math.Clamp(Environment.ProcessorCount, 1, generators.Count);
            var threads = TorchSharp.torch.get_num_threads();
            if (parallelism > 1) TorchSharp.torch.set_num_threads(1);
            MiniGenImageResult result;
            try
            {
                result = await Task.Run(() => MiniGenImageBuilder.Build(patchesDir, generators, root, manifest.BuildOptions() with
                {
                    WeightsSha256 = hashes,
                    Parallelism = parallelism,
                    Progress = new SyncProgress<MiniGenImageProgress>(p =>
                    {
                        lock (done)
                        {
                            done[(p.Generator, p.Split, p.Label)] = p.Done;
                            context.ReportProgress(PatchesShare + (0.9 - PatchesShare) * done.Values.Sum() / Math.Max(1, total),
                                $"{p.Generator} {p.Split}/{(p.Label == "ai" ? "fake" : "real")} {p.Done}/{p.Total}");
                        }
                    }),
                }, ct), ct);
            }
            finally
            {
                if (parallelism > 1) TorchSharp.torch.set_num_threads(threads);
            }
            await context.LogAsync($"built {root}: fakes {result.FakesWritten} written, {result.FakesKept} kept from an earlier attempt; " +
                                   $"reals {result.RealsWritten} linked, {result.RealsKept} kept");
        }
        catch (ArgumentException e)
        {
            throw new InvalidOperationException($"{manifest.Path}: {e.Message}", e);
        }
        finally
        {
            foreach (var g in generators) g.Dispose();
        }

        context.ReportProgress(0.9, "scanning the dataset");
        var scan = DatasetScanner.Scan(root, new ScanOptions
        {
            Progress = new SyncProgress<ScanProgress>(p => context.ReportProgress(0.9 + (p.Total == 0 ? 0 : 0.1 * p.Done / p.Total), $"scanning {p.Done}/{p.Total}")),
        }, ct);
        if (scan.Unreadable.Count > 0)
            throw new InvalidOperationException($"{scan.Unreadable.Count} unreadable image(s) in {root}, e.g. {scan.Unreadable[0].Path}: {scan.Unreadable[0].Reason}");

        var lineagePath = Path.Combine(root, MiniGenImageBuilder.LineageFileName);
        var lineage = new JsonObject
        {
            ["kind"] = LineageKind,
            ["buildRunId"] = context.RunId,
            ["demoManifest"] = new JsonObject { ["path"] = manifest.Path, ["sha256"] = manifest.Sha256 },
            ["generatorFolders"] = new JsonObject(manifest.Generators.Select(g => KeyValuePair.Create(g.Name, (JsonNode?)g.Folder))),
            ["codeVersion"] = RunService.CodeVersion,
            ["build"] = JsonNode.Parse(await File.ReadAllTextAsync(lineagePath, ct)),
        };
        var datasetId = await DatasetRowAsync(c.Name, root, context.RunId, lineage.ToJsonString(Json));
        var manifestDir = paths.Data("datasets", datasetId.ToString());
        Directory.CreateDirectory(manifestDir);
        var manifestPath = Path.Combine(manifestDir, $"manifest-run{context.RunId}.json.gz");
        scan.Save(manifestPath);
        // One place stores a manifest's rows: the registration job's.
        await new DatasetRegistrationJob(dbFactory).StoreAsync(datasetId, context.RunId, scan, paths.RelativeToData(manifestPath), ct);
        await using (var db = await dbFactory.CreateDbContextAsync())
            if (!await db.Artifacts.AnyAsync(a => a.RunId == context.RunId && a.Kind == "lineage"))
            {
                await context.ArtifactAsync("manifest", manifestPath);
                await context.ArtifactAsync("lineage", lineagePath);
            }
        context.ReportProgress(1, "done");
        await context.LogAsync($"dataset '{c.Name}' (id {datasetId}): {scan.Images.Count} images, content {scan.ContentHash}");
    }

    /// <summary>The dataset row: created, or this job's earlier row updated (a rebuild); a user's dataset of the name is refused.</summary>
    async Task<long> DatasetRowAsync(string name, string root, long runId, string lineage)
    {
        await using var db = await dbFactory.CreateDbContextAsync();
        var row = await db.Datasets.SingleOrDefaultAsync(d => d.Name == name);
        if (row is not null && !IsBuilt(row))
            throw new InvalidOperationException($"a dataset named '{name}' was registered by someone else while the build ran; it is left as it is");
        if (row is null)
        {
            row = new Dataset { Name = name, Path = PortalPaths.Canonical(root), Status = DatasetStatus.Registering, CreatedAt = DateTime.UtcNow };
            db.Datasets.Add(row);
        }
        row.RegistrationRunId = runId;
        row.LineageJson = lineage;
        await db.SaveChangesAsync();
        return row.Id;
    }

    /// <summary>
    /// A generator folder's weights hash, as the CLI's `forensics minigenimage` records it: SHA-256 over each file's relative
    /// path and the SHA-256 of its content, in ordinal path order.
    /// </summary>
    public static string FolderSha256(string dir)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var file in Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories)
                     .Select(f => Path.GetRelativePath(dir, f).Replace('\\', '/')).Order(StringComparer.Ordinal))
        {
            sha.AppendData(Encoding.UTF8.GetBytes(file + "\n"));
            using var stream = File.OpenRead(Path.Combine(dir, file));
            sha.AppendData(SHA256.HashData(stream));
        }
        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }

    /// <summary>A generator under the manifest's name (the dataset folder name), whatever its generator.json calls it.</summary>
    sealed class Renamed(IImageGenerator inner, string name) : IImageGenerator
    {
        public string Name => name;
        public string Family => inner.Family;
        public int Resolution => inner.Resolution;
        public Tensor Sample(long seed, long firstIndex, int count) => inner.Sample(seed, firstIndex, count);
        public void Dispose() => inner.Dispose();
    }

    /// <summary>IProgress that calls back on the reporting thread (Progress&lt;T&gt; would post elsewhere and lose the order).</summary>
}
