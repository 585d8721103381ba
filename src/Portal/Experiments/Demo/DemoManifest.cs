using System.Text.Json;
using System.Text.Json.Nodes;
using Forensics.ML.MiniGenImage;
using Portal.Runs;
using Portal.Datasets;
using Portal.Zoo;

namespace Portal.Experiments;

/// <summary>A demo.json that cannot be read or has an invalid field; the message names the file and the field.</summary>
public sealed class DemoManifestException(string file, string field, string message)
    : Exception($"{file}: {(field.Length == 0 ? "" : $"'{field}' ")}{message}")
{
    /// <summary>The manifest file.</summary>
    public string File { get; } = file;
    /// <summary>The field at fault (JSON path, e.g. "zoo[2].kind"); empty for the whole file.</summary>
    public string Field { get; } = field;
}

/// <summary>A generator the demo samples: its dataset folder name and its folder (absolute).</summary>
public sealed record DemoGenerator(string Name, string Folder);

/// <summary>A model the demo registers in the zoo: name, kind, architecture and folder (absolute).</summary>
public sealed record DemoZooEntry(string Name, string Kind, string Architecture, string Folder);

/// <summary>
/// models/demo/demo.json: the photos folder, the generators MiniGenImage samples, the per-split fake counts, seed, patch
/// size and the real patches' detail floor (<c>dataset.minLaplacianEnergy</c>, see <see cref="PatchOptions.MinLaplacianEnergy"/>),
/// and the models registered in the zoo. Folders are relative to the manifest's own folder.
/// </summary>
public sealed record DemoManifest(string Path, string Sha256, string Photos, int PatchSize, long Seed, int BatchSize,
    int Train, int Val, int Test, IReadOnlyList<DemoGenerator> Generators, IReadOnlyList<DemoZooEntry> Zoo, double MinLaplacianEnergy = 0)
{
    /// <summary>The manifest's file name inside the models folder's demo/ folder.</summary>
    public const string FileName = "demo.json";

    /// <summary>The manifest of a models folder: &lt;models&gt;/demo/demo.json.</summary>
    public static string PathIn(string modelsDir) => System.IO.Path.Combine(modelsDir, "demo", FileName);

    /// <summary>The builder's options for this manifest.</summary>
    public MiniGenImageOptions BuildOptions() => new() { Train = Train, Val = Val, Test = Test, Seed = Seed, BatchSize = BatchSize };

    /// <summary>How the photos are cut into the real patches.</summary>
    public PatchOptions PatchOptions() => new() { Size = PatchSize, MinLaplacianEnergy = MinLaplacianEnergy };

    /// <summary>Reads and checks <paramref name="path"/>.</summary>
    /// <exception cref="DemoManifestException">The file is missing, not JSON, or a field is missing or invalid.</exception>
    public static DemoManifest Load(string path)
    {
        path = System.IO.Path.GetFullPath(path);
        if (!System.IO.File.Exists(path)) throw new DemoManifestException(path, "", "does not exist");
        var bytes = System.IO.File.ReadAllBytes(path);
        return Parse(bytes, path);
    }

    /// <summary>Parses manifest bytes; <paramref name="path"/> names the file in errors and anchors the relative folders.</summary>
    public static DemoManifest Parse(byte[] bytes, string path)
    {
        JsonNode? root;
        try { root = JsonNode.Parse(bytes, documentOptions: new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true }); }
        catch (JsonException e) { throw new DemoManifestException(path, "", $"is not valid JSON: {e.Message}"); }
        if (root is not JsonObject o) throw new DemoManifestException(path, "", "must be a JSON object");
        var dir = System.IO.Path.GetDirectoryName(path)!;

        string Folder(JsonObject obj, string key, string field)
        {
            var value = Str(obj, key, field);
            if (System.IO.Path.IsPathRooted(value) || value.Split('/', '\\').Contains(".."))
                throw new DemoManifestException(path, field, $"must be a folder inside {dir} (relative, no '..'), not '{value}'");
            return System.IO.Path.GetFullPath(System.IO.Path.Combine(dir, value));
        }
        string Str(JsonObject obj, string key, string field) =>
            obj[key] is JsonValue v && v.TryGetValue<string>(out var s) && !string.IsNullOrWhiteSpace(s) ? s.Trim()
                : throw new DemoManifestException(path, field, "must be a non-empty string");
        long Int(JsonObject obj, string key, string field, long fallback, long min, long max)
        {
            if (obj[key] is null) return fallback;
            if (obj[key] is not JsonValue v || !v.TryGetValue<long>(out var n)) throw new DemoManifestException(path, field, "must be an integer");
            if (n < min || n > max) throw new DemoManifestException(path, field, $"must be {min}..{max}, not {n}");
            return n;
        }
        double Real(JsonObject obj, string key, string field, double fallback, double min, double max)
        {
            if (obj[key] is null) return fallback;
            if (obj[key] is not JsonValue v || !v.TryGetValue<double>(out var x) || !double.IsFinite(x)) throw new DemoManifestException(path, field, "must be a number");
            if (x < min || x > max) throw new DemoManifestException(path, field, $"must be {min}..{max}, not {x}");
            return x;
        }
        JsonObject Obj(JsonNode? node, string field) => node as JsonObject ?? throw new DemoManifestException(path, field, "must be an object");
        JsonArray Arr(JsonNode? node, string field) => node as JsonArray ?? throw new DemoManifestException(path, field, "must be an array");

        var photos = Folder(o, "photos", "photos");
        var dataset = Obj(o["dataset"], "dataset");
        var patchSize = (int)Int(dataset, "patchSize", "dataset.patchSize", 64, 8, 1024);
        var seed = Int(dataset, "seed", "dataset.seed", 1, long.MinValue, long.MaxValue);
        var batch = (int)Int(dataset, "batchSize", "dataset.batchSize", 50, 1, 10_000);
        var minLaplacian = Real(dataset, "minLaplacianEnergy", "dataset.minLaplacianEnergy", 0, 0, 1e6);
        var counts = Obj(dataset["counts"], "dataset.counts");
        var train = (int)Int(counts, "train", "dataset.counts.train", -1, 0, 1_000_000);
        var val = (int)Int(counts, "val", "dataset.counts.val", -1, 0, 1_000_000);
        var test = (int)Int(counts, "test", "dataset.counts.test", -1, 0, 1_000_000);
        foreach (var (name, n) in new[] { ("train", train), ("val", val), ("test", test) })
            if (n < 0) throw new DemoManifestException(path, $"dataset.counts.{name}", "is required (fakes per generator in that split)");
        if (train + val + test == 0) throw new DemoManifestException(path, "dataset.counts", "at least one split needs a count above 0");

        var generators = new List<DemoGenerator>();
        var generatorArray = Arr(o["generators"], "generators");
        if (generatorArray.Count == 0) throw new DemoManifestException(path, "generators", "must name at least one generator");
        for (var i = 0; i < generatorArray.Count; i++)
        {
            var g = Obj(generatorArray[i], $"generators[{i}]");
            var name = Str(g, "name", $"generators[{i}].name");
            if (name.IndexOfAny(['/', '\\', ':']) >= 0 || name.StartsWith('.') || name.IndexOfAny(System.IO.Path.GetInvalidFileNameChars()) >= 0)
                throw new DemoManifestException(path, $"generators[{i}].name", $"'{name}' cannot be a dataset folder name");
            if (generators.Any(x => string.Equals(x.Name, name, StringComparison.OrdinalIgnoreCase)))
                throw new DemoManifestException(path, $"generators[{i}].name", $"'{name}' is listed twice");
            generators.Add(new DemoGenerator(name, Folder(g, "folder", $"generators[{i}].folder")));
        }

        var zoo = new List<DemoZooEntry>();
        if (o["zoo"] is not null)
        {
            var zooArray = Arr(o["zoo"], "zoo");
            for (var i = 0; i < zooArray.Count; i++)
            {
                var z = Obj(zooArray[i], $"zoo[{i}]");
                var name = Str(z, "name", $"zoo[{i}].name");
                if (zoo.Any(x => x.Name == name)) throw new DemoManifestException(path, $"zoo[{i}].name", $"'{name}' is listed twice");
                var kind = Str(z, "kind", $"zoo[{i}].kind").ToLowerInvariant();
                if (!ModelZooService.Architectures.TryGetValue(kind, out var architectures))
                    throw new DemoManifestException(path, $"zoo[{i}].kind", $"'{kind}' is not a zoo kind ({string.Join(", ", ModelZooService.Architectures.Keys)})");
                var architecture = z["architecture"] is null ? architectures[0] : Str(z, "architecture", $"zoo[{i}].architecture").ToLowerInvariant();
                if (!architectures.Contains(architecture))
                    throw new DemoManifestException(path, $"zoo[{i}].architecture", $"a {kind} has architecture {string.Join(" or ", architectures)}, not '{architecture}'");
                zoo.Add(new DemoZooEntry(name, kind, architecture, Folder(z, "folder", $"zoo[{i}].folder")));
            }
        }
        var sha = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(bytes));
        return new DemoManifest(path, sha, photos, patchSize, seed, batch, train, val, test, generators, zoo, minLaplacian);
    }
}
