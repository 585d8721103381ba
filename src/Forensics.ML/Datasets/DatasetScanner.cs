using System.Diagnostics;
using System.Runtime.ExceptionServices;
using System.Security.Cryptography;
using Forensics.ML.Imaging;
using SkiaSharp;

namespace Forensics.ML.Datasets;

/// <summary>Progress of a scan: <paramref name="Total"/> is known after the initial directory walk.</summary>
/// <param name="Done">Image files finished.</param>
/// <param name="Total">Image files to scan.</param>
/// <param name="Current">Relative path of the last file finished; null before the first.</param>
public sealed record ScanProgress(int Done, int Total, string? Current);

/// <summary>The work a scan has finished so far (completion order), to persist and hand back through <see cref="ScanOptions.Cache"/> after a crash.</summary>
/// <param name="Done">Image files finished.</param>
/// <param name="Total">Image files to scan.</param>
/// <param name="Images">Readable images finished so far.</param>
/// <param name="Unreadable">Unreadable files finished so far.</param>
public sealed record ScanCheckpoint(int Done, int Total, IReadOnlyList<ManifestEntry> Images, IReadOnlyList<UnreadableFile> Unreadable)
{
    /// <summary>A scan cache over this checkpoint's files.</summary>
    public Func<string, ScannedFile?> AsCache() => ScanCache.From(Images.Concat<ScannedFile>(Unreadable));
}

/// <summary>Options of <see cref="DatasetScanner.Scan"/>.</summary>
public sealed record ScanOptions
{
    /// <summary>Files hashed and decoded at once; 0 or less means <see cref="Environment.ProcessorCount"/>.</summary>
    public int Parallelism { get; init; } = Environment.ProcessorCount;

    /// <summary>
    /// A previous result for a relative path (e.g. <see cref="DatasetManifest.AsCache"/>, <see cref="ScanCheckpoint.AsCache"/>):
    /// reused without reading the file when its <see cref="ScannedFile.Bytes"/> and <see cref="ScannedFile.ModifiedUtc"/> match the disk.
    /// </summary>
    public Func<string, ScannedFile?>? Cache { get; init; }

    /// <summary>Receives progress: once after the directory walk (Done = 0), then as files finish (throttled), and at the end.</summary>
    public IProgress<ScanProgress>? Progress { get; init; }

    /// <summary><see cref="OnCheckpoint"/> is called every this many finished files; 0 or less: never.</summary>
    public int CheckpointEvery { get; init; } = 500;

    /// <summary>Called (with the scan paused) with the work done so far, every <see cref="CheckpointEvery"/> files.</summary>
    public Action<ScanCheckpoint>? OnCheckpoint { get; init; }

    /// <summary>
    /// Folders under which every file's and folder's resolved path (symbolic links followed) must lie; a file outside is
    /// listed as unreadable (<see cref="ConfinedFile.OutsideRoots"/>) and never opened, a folder outside is not walked.
    /// Null: the scanned folder itself.
    /// </summary>
    public IReadOnlyList<string>? AllowedRoots { get; init; }

    /// <summary>Largest file read whole and largest width x height decoded; over them a file is unreadable, named with its size.</summary>
    public ImageLimits Limits { get; init; } = ImageLimits.Default;

    /// <summary>
    /// Bytes of file content plus decoded pixels that the parallel checks may hold at once; a file that needs more waits
    /// for others to finish (one larger than the whole budget runs alone). Bounds the scan's memory whatever the parallelism.
    /// </summary>
    public long MemoryBudgetBytes { get; init; } = DefaultMemoryBudgetBytes;

    /// <summary>512 MiB.</summary>
    public const long DefaultMemoryBudgetBytes = 512L << 20;
}

/// <summary>Scans a dataset folder: detects its layout, hashes and decode-checks every image, builds the manifest.</summary>
public static class DatasetScanner
{
    private static readonly TimeSpan ProgressInterval = TimeSpan.FromMilliseconds(100);

    /// <summary>Start of the reason of a file that could not be read from disk at all.</summary>
    public const string ReadErrorPrefix = "read error: ";

    private sealed record Candidate(FileInfo File, string Path, DatasetPart Part);

    private sealed record Context(IReadOnlyList<string> Roots, ImageLimits Limits, MemoryGate Gate, Func<string, ScannedFile?>? Cache, CancellationToken Ct);

    /// <summary>
    /// Scans <paramref name="root"/>: files are walked in ordinal order, processed in parallel, and listed in path order,
    /// so the manifest does not depend on <see cref="ScanOptions.Parallelism"/>.
    /// </summary>
    /// <exception cref="DatasetLayoutException">The folder is missing or matches no supported layout.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="ct"/> was cancelled (checked between files).</exception>
    public static DatasetManifest Scan(string root, ScanOptions? options = null, CancellationToken ct = default)
    {
        options ??= new ScanOptions();
        options.Limits.Validate();
        var roots = ConfinedFile.CanonicalRoots(options.AllowedRoots ?? [root]);
        var structure = DatasetLayouts.Resolve(root, roots);
        var (candidates, ignored, outsideFolders) = Walk(structure, roots, ct);
        var context = new Context(roots, options.Limits, new MemoryGate(options.MemoryBudgetBytes), options.Cache, ct);
        var total = candidates.Count;
        options.Progress?.Report(new ScanProgress(0, total, null));

        var results = new ScannedFile?[total];
        var completed = new List<ScannedFile>(total);
        var gate = new object();
        var sinceReport = Stopwatch.StartNew();
        int done = 0, read = 0, reused = 0;

        void Finish(int index, ScannedFile result, bool wasRead)
        {
            results[index] = result;
            lock (gate)
            {
                completed.Add(result);
                done++;
                if (wasRead) read++; else reused++;
                if (options.Progress is { } progress && (done == total || sinceReport.Elapsed >= ProgressInterval))
                {
                    progress.Report(new ScanProgress(done, total, result.Path));
                    sinceReport.Restart();
                }
                if (options.OnCheckpoint is { } onCheckpoint && options.CheckpointEvery > 0 && done % options.CheckpointEvery == 0 && done < total)
                    onCheckpoint(new ScanCheckpoint(done, total,
                        completed.OfType<ManifestEntry>().ToList(), completed.OfType<UnreadableFile>().ToList()));
            }
        }

        var parallel = new ParallelOptions
        {
            MaxDegreeOfParallelism = options.Parallelism > 0 ? options.Parallelism : Environment.ProcessorCount,
            CancellationToken = ct,
        };
        try
        {
            Parallel.For(0, total, parallel, (i, state) =>
            {
                if (ct.IsCancellationRequested) { state.Stop(); return; }
                var (result, wasRead) = ScanFile(candidates[i], context);
                Finish(i, result, wasRead);
            });
        }
        catch (AggregateException ex) when (ex.InnerExceptions.Count == 1)
        {
            ExceptionDispatchInfo.Capture(ex.InnerExceptions[0]).Throw();
        }
        ct.ThrowIfCancellationRequested();

        var all = results.Select(r => r!).Concat(outsideFolders).OrderBy(r => r.Path, StringComparer.Ordinal).ToList();
        var images = all.OfType<ManifestEntry>().ToList();
        var unreadable = all.OfType<UnreadableFile>().ToList();
        return new DatasetManifest
        {
            Root = structure.Root,
            Layout = structure.Layout,
            ScannedAtUtc = DateTime.UtcNow,
            ContentHash = DatasetManifest.ComputeContentHash(images),
            IgnoredFiles = ignored,
            FilesRead = read,
            FilesReused = reused,
            Subsets = Subsets(structure, all),
            Formats = new SortedDictionary<string, int>(images.CountBy(i => i.Format).ToDictionary(), StringComparer.Ordinal),
            Sizes = SizeSummary.From(images),
            Unreadable = unreadable,
            Images = images,
        };
    }

    private static (ScannedFile Result, bool WasRead) ScanFile(Candidate c, Context context)
    {
        var (generator, split, label) = (c.Part.Generator, c.Part.Split, c.Part.Label);
        UnreadableFile Unreadable(string reason, long bytes, DateTime modified) => new(c.Path, reason, bytes, modified, generator, split, label);

        // Where the path leads and what it is, before anything (the cache included) trusts it: a link out of the roots or
        // to a FIFO or device is refused whatever an earlier scan found there.
        var (_, refusal) = ConfinedFile.Check(c.File.FullName, context.Roots);
        if (refusal is not null)
            return (Unreadable(ConfinedFile.IsRefusal(refusal) ? refusal : ReadErrorPrefix + refusal, 0, DateTime.MinValue), true);

        long bytes;
        DateTime modified;
        try
        {
            c.File.Refresh();
            bytes = c.File.Length;
            modified = c.File.LastWriteTimeUtc;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // e.g. a file deleted since the walk
            return (Unreadable($"{ReadErrorPrefix}{ex.Message}", 0, DateTime.MinValue), true);
        }
        // A cached read error is not reused: it may have been passing (a lock, a flaky mount).
        if (context.Cache?.Invoke(c.Path) is { } previous && previous.Bytes == bytes && previous.ModifiedUtc == modified
            && !(previous is UnreadableFile u && u.Reason.StartsWith(ReadErrorPrefix, StringComparison.Ordinal)))
            return (previous with { Path = c.Path, Generator = generator, Split = split, Label = label }, false);

        var limits = context.Limits;
        if (bytes > limits.MaxFileBytes) return (Unreadable(ImageLimits.FileTooLarge(bytes, limits.MaxFileBytes), bytes, modified), true);

        var (file, reason) = ConfinedFile.Open(c.File.FullName, context.Roots);
        if (file is null)
            return (Unreadable(ConfinedFile.IsRefusal(reason!) ? reason! : ReadErrorPrefix + reason, bytes, modified), true);
        using (file)
        {
            // The size as opened decides (the file may have changed since the walk).
            bytes = file.Length;
            if (bytes == 0) return (Unreadable(ImageProbe.EmptyFile, 0, modified), true);
            if (bytes > limits.MaxFileBytes) return (Unreadable(ImageLimits.FileTooLarge(bytes, limits.MaxFileBytes), bytes, modified), true);
            long pixels = 0;
            try
            {
                if (ImageHeader.Read(file.Stream) is { } header)
                {
                    pixels = (long)header.Width * header.Height;
                    if (pixels > limits.MaxPixels)
                        return (Unreadable(ImageLimits.TooLarge(header.Width, header.Height, limits.MaxPixels), bytes, modified), true);
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                return (Unreadable($"{ReadErrorPrefix}{ex.Message}", bytes, modified), true);
            }

            // The file's bytes and its decoded RGBA pixels, held until the check ends.
            var need = bytes + 4 * pixels;
            context.Gate.Enter(need, context.Ct);
            try
            {
                using var data = SKData.Create(bytes);
                Span<byte> span;
                unsafe { span = new Span<byte>((void*)data.Data, checked((int)bytes)); }
                try { ConfinedFile.ReadExactly(file, span); }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    return (Unreadable($"{ReadErrorPrefix}{ex.Message}", bytes, modified), true);
                }
                var probe = ImageProbe.Probe(data, limits.MaxPixels);
                if (!probe.Ok) return (Unreadable(probe.Reason!, bytes, modified), true);
                var sha = Convert.ToHexStringLower(SHA256.HashData(span));
                return (new ManifestEntry(c.Path, generator, split, label, probe.Format!, probe.Width, probe.Height, bytes, modified, sha), true);
            }
            finally { context.Gate.Exit(need); }
        }
    }

    /// <summary>A budget of bytes shared by the parallel checks; a request larger than the budget waits until it is alone.</summary>
    private sealed class MemoryGate(long budget)
    {
        private readonly object sync = new();
        private long inUse;

        public void Enter(long bytes, CancellationToken ct)
        {
            lock (sync)
            {
                while (inUse > 0 && inUse + bytes > budget)
                {
                    Monitor.Wait(sync, 100);
                    ct.ThrowIfCancellationRequested();
                }
                inUse += bytes;
            }
        }

        public void Exit(long bytes)
        {
            lock (sync)
            {
                inUse -= bytes;
                Monitor.PulseAll(sync);
            }
        }
    }

    // One ordinal walk of the whole root: image files under a labelled folder are candidates, every other file is ignored.
    // Folders whose resolved path lies outside the roots are not walked; under a labelled folder they are listed as unreadable.
    private static (List<Candidate> Candidates, int Ignored, List<UnreadableFile> OutsideFolders) Walk(
        DatasetStructure structure, IReadOnlyList<string> roots, CancellationToken ct)
    {
        var parts = structure.Parts.ToDictionary(p => p.RelativePath, StringComparer.Ordinal);
        var candidates = new List<Candidate>();
        var outside = new List<UnreadableFile>();
        var ignored = 0;
        var visited = new HashSet<string>(StringComparer.Ordinal);

        void Visit(DirectoryInfo dir, string relative, DatasetPart? part)
        {
            ct.ThrowIfCancellationRequested();
            if (relative.Length > 0 && parts.TryGetValue(relative.TrimEnd('/'), out var here)) part = here;
            // Symbolic links to folders are followed within the roots, but each real folder is walked once, so link loops end.
            var real = ConfinedFile.RealPath(dir.FullName);
            if (real is null) return;
            if (!ConfinedFile.IsUnder(real, roots))
            {
                if (part is not null)
                    outside.Add(new UnreadableFile(relative, ConfinedFile.OutsideRoots, 0, DateTime.MinValue, part.Generator, part.Split, part.Label));
                return;
            }
            if (!visited.Add(real)) return;

            foreach (var file in dir.EnumerateFiles().OrderBy(f => f.Name, StringComparer.Ordinal))
            {
                if (part is not null && ImageProbe.IsImageFileName(file.Name))
                    candidates.Add(new Candidate(file, relative + file.Name, part));
                else
                    ignored++;
            }
            foreach (var sub in dir.EnumerateDirectories().OrderBy(d => d.Name, StringComparer.Ordinal))
                Visit(sub, relative + sub.Name + "/", sub.Name.StartsWith('.') ? null : part);
        }

        Visit(new DirectoryInfo(structure.Root), "", null);
        return (candidates, ignored, outside);
    }

    private static IReadOnlyList<SubsetCount> Subsets(DatasetStructure structure, IEnumerable<ScannedFile> files)
    {
        var counts = new SortedDictionary<(string, string, string), (int Count, int Unreadable)>(SubsetOrder.Instance);
        foreach (var part in structure.Parts) counts.TryAdd((part.Generator, part.Split, part.Label), (0, 0));
        foreach (var f in files)
        {
            var key = (f.Generator, f.Split, f.Label);
            var (count, unreadable) = counts.GetValueOrDefault(key);
            counts[key] = f is ManifestEntry ? (count + 1, unreadable) : (count, unreadable + 1);
        }
        return counts.Select(kv => new SubsetCount(kv.Key.Item1, kv.Key.Item2, kv.Key.Item3, kv.Value.Count, kv.Value.Unreadable)).ToList();
    }

    private sealed class SubsetOrder : IComparer<(string, string, string)>
    {
        public static readonly SubsetOrder Instance = new();

        public int Compare((string, string, string) x, (string, string, string) y)
        {
            var c = string.CompareOrdinal(x.Item1, y.Item1);
            if (c == 0) c = string.CompareOrdinal(x.Item2, y.Item2);
            return c != 0 ? c : string.CompareOrdinal(x.Item3, y.Item3);
        }
    }
}
