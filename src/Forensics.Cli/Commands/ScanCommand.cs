using System.CommandLine;
using System.Diagnostics;
using Forensics.ML.Datasets;
using Forensics.ML.Imaging;

namespace Forensics.Cli.Commands;

/// <summary>`forensics scan DIR`: detect a dataset folder's layout, decode-check every image, print the manifest summary.</summary>
public static class ScanCommand
{
    /// <summary>Exit code of a missing folder or an unknown layout.</summary>
    public const int LayoutError = 2;

    /// <summary>Builds the `scan` verb.</summary>
    public static Command Create()
    {
        var dir = new Argument<DirectoryInfo>("dir") { HelpName = "DIR", Description = "The dataset folder to scan (GenImage or 0_real/1_fake layout)" };
        var json = new Option<bool>("--json") { Description = "Print the manifest summary (without the per-image list) as JSON instead of tables" };
        var manifest = new Option<FileInfo?>("--manifest") { HelpName = "FILE", Description = "Write the full manifest (every image with hash and size) to this file, gzip-compressed JSON" };
        var parallelism = new Option<int>("--parallelism")
        {
            HelpName = "N",
            Description = "Files hashed and decoded at once; 0 (the default) means one per processor",
        };
        var allowRoots = new Option<DirectoryInfo[]>("--allow-root")
        {
            HelpName = "DIR",
            Description = "A folder that files may resolve into through symbolic links (repeatable); by default only DIR itself. Files resolving elsewhere are listed as unreadable and never opened",
        };
        var maxPixels = new Option<long>("--max-pixels")
        {
            HelpName = "N",
            Description = $"Largest width x height decoded; larger images are unreadable \"image too large\" (default {ImageLimits.DefaultMaxPixels})",
            DefaultValueFactory = _ => ImageLimits.DefaultMaxPixels,
        };
        var peakMemory = new Option<bool>("--peak-memory") { Description = "Print the process's peak resident memory (Linux VmHWM) on stderr at the end" };
        var cmd = new Command("scan", "Scan a dataset folder and print its manifest summary (the portal's registration job, without the portal)")
        {
            dir, json, manifest, parallelism, allowRoots, maxPixels, peakMemory,
        };
        cmd.SetAction((parse, ct) =>
        {
            var config = parse.InvocationConfiguration;
            var root = parse.GetRequiredValue(dir).FullName;
            var extra = parse.GetValue(allowRoots) ?? [];
            var exit = Run(
                root, parse.GetValue(json), parse.GetValue(manifest)?.FullName,
                parse.GetValue(parallelism), config.Output, config.Error, ct,
                extra.Length == 0 ? null : [root, .. extra.Select(d => d.FullName)],
                new ImageLimits { MaxPixels = parse.GetValue(maxPixels) });
            if (parse.GetValue(peakMemory)) config.Error.WriteLine($"peak resident memory: {PeakResidentMiB()?.ToString() ?? "unknown"} MiB");
            return Task.FromResult(exit);
        });
        return cmd;
    }

    /// <summary>Scans <paramref name="dir"/> and prints the summary to <paramref name="output"/>, progress and errors to <paramref name="error"/>; returns the exit code.</summary>
    public static int Run(string dir, bool json, string? manifestPath, int parallelism, TextWriter output, TextWriter error, CancellationToken ct = default,
        IReadOnlyList<string>? allowedRoots = null, ImageLimits? limits = null)
    {
        var lastProgress = Stopwatch.StartNew();
        var options = new ScanOptions
        {
            Parallelism = parallelism,
            AllowedRoots = allowedRoots,
            Limits = limits ?? ImageLimits.Default,
            Progress = new SyncProgress(p =>
            {
                // Once a second is enough for a terminal; the first and last reports are always shown.
                if (p.Done != 0 && p.Done != p.Total && lastProgress.Elapsed < TimeSpan.FromSeconds(1)) return;
                lastProgress.Restart();
                error.WriteLine($"scanned {p.Done}/{p.Total} files");
            }),
        };

        DatasetManifest result;
        try
        {
            result = DatasetScanner.Scan(dir, options, ct);
        }
        catch (DatasetLayoutException ex)
        {
            error.WriteLine($"error: {ex.Message}");
            return LayoutError;
        }
        catch (OperationCanceledException)
        {
            error.WriteLine("scan cancelled");
            return 130;
        }

        if (manifestPath is not null)
        {
            result.Save(manifestPath);
            error.WriteLine($"manifest written to {manifestPath}");
        }

        if (json) output.WriteLine(result.ToSummaryJson());
        else PrintSummary(result, output);
        return 0;
    }

    /// <summary>This process's peak resident set (VmHWM in /proc/self/status) in MiB; null where there is no such file.</summary>
    public static long? PeakResidentMiB()
    {
        if (!File.Exists("/proc/self/status")) return null;
        var line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
        var kb = line?.Split(' ', StringSplitOptions.RemoveEmptyEntries).ElementAtOrDefault(1);
        return long.TryParse(kb, out var value) ? value / 1024 : null;
    }

    /// <summary>The human-readable summary: layout, counts per generator/split/label, formats, sizes, unreadable files.</summary>
    public static void PrintSummary(DatasetManifest m, TextWriter o)
    {
        o.WriteLine($"Dataset: {m.Root}");
        o.WriteLine($"Layout: {m.Layout}");
        o.WriteLine($"Images: {m.ImageCount} readable, {m.UnreadableCount} unreadable, {m.IgnoredFiles} other files ignored");
        o.WriteLine($"Content hash: {m.ContentHash}");
        o.WriteLine();

        var rows = m.Subsets.Select(s => new[] { s.Generator, s.Split, s.Label, s.Count.ToString(), s.Unreadable.ToString() }).ToList();
        rows.Add(["total", "", "", m.ImageCount.ToString(), m.UnreadableCount.ToString()]);
        WriteTable(o, ["generator", "split", "label", "images", "unreadable"], rows, rightAligned: [3, 4]);
        o.WriteLine();

        o.WriteLine("Formats: " + (m.Formats.Count == 0 ? "none" : string.Join(", ", m.Formats.Select(f => $"{f.Key} {f.Value}"))));
        var s = m.Sizes;
        if (m.ImageCount > 0)
        {
            o.WriteLine($"Sizes: width {s.MinWidth}-{s.MaxWidth}, height {s.MinHeight}-{s.MaxHeight}, {s.DistinctSizes} distinct");
            var shown = s.MostCommon.Take(10).ToList();
            o.WriteLine("Most common: " + string.Join(", ", shown.Select(c => $"{c.Width}x{c.Height} {c.Count}"))
                + (s.DistinctSizes > shown.Count ? ", ..." : ""));
        }

        if (m.UnreadableCount > 0)
        {
            o.WriteLine();
            o.WriteLine($"Unreadable files ({m.UnreadableCount}):");
            foreach (var u in m.Unreadable) o.WriteLine($"  {u.Path}: {u.Reason}");
        }
    }

    private static void WriteTable(TextWriter o, string[] header, List<string[]> rows, int[] rightAligned)
    {
        var widths = header.Select((h, i) => rows.Select(r => r[i].Length).Append(h.Length).Max()).ToArray();
        string Line(string[] cells) => string.Join("  ", cells.Select((c, i) =>
            rightAligned.Contains(i) ? c.PadLeft(widths[i]) : c.PadRight(widths[i]))).TrimEnd();
        o.WriteLine(Line(header));
        o.WriteLine(string.Join("  ", widths.Select(w => new string('-', w))));
        foreach (var r in rows) o.WriteLine(Line(r));
    }

    // Progress<T> posts to the thread pool; printing in the reporting thread keeps lines in order.
    private sealed class SyncProgress(Action<ScanProgress> report) : IProgress<ScanProgress>
    {
        public void Report(ScanProgress value) => report(value);
    }
}
