using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using MudBlazor;
using Portal.Store;

namespace Portal.Components.Shared;

/// <summary>How the pages write times, durations, sizes and statuses, so every page reads the same.</summary>
public static class Format
{
    // Relaxed escaping: the text is shown (and HTML-encoded by the renderer), so "<" stays "<" rather than "\u003C".
    static readonly JsonSerializerOptions Indented = new() { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
    static readonly JsonSerializerOptions Compact = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>A stored UTC time as "yyyy-MM-dd HH:mm:ss" (the store keeps UTC; the server cannot know the browser's zone).</summary>
    public static string Time(DateTime? utc) =>
        utc is { } t ? t.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture) : "—";

    /// <summary>How long a run has taken: start to finish, or start to now while it runs.</summary>
    public static string Duration(Run run)
    {
        if (run.StartedAt is not { } start) return "—";
        return Duration((run.FinishedAt ?? DateTime.UtcNow) - start);
    }

    public static string Duration(TimeSpan d)
    {
        if (d < TimeSpan.Zero) d = TimeSpan.Zero;
        if (d.TotalHours >= 1) return $"{(int)d.TotalHours}h {d.Minutes:00}m";
        if (d.TotalMinutes >= 1) return $"{d.Minutes}m {d.Seconds:00}s";
        return $"{d.TotalSeconds:0.0}s".Replace(',', '.');
    }

    /// <summary>A 0..1 fraction as a whole percentage, e.g. "42%".</summary>
    public static string Percent(double fraction) =>
        (Math.Clamp(double.IsFinite(fraction) ? fraction : 0, 0, 1) * 100).ToString("0", CultureInfo.InvariantCulture) + "%";

    /// <summary>
    /// ACC, AP and other 0..1 scores as a percentage with one decimal, without the sign: 0.5323 -> "53.2". The one
    /// format of scores on every page (leaderboard, matrix, demo, run pages, compare, tooltips); exports keep full precision.
    /// </summary>
    public static string Score(double? fraction) =>
        fraction is { } f && double.IsFinite(f) ? (100 * f).ToString("0.0", CultureInfo.InvariantCulture) : "—";

    /// <summary>A score with its interval, "53.2 [48.2, 58.0]"; the score alone when the interval is unknown.</summary>
    public static string ScoreInterval(double? fraction, double? low, double? high) =>
        low is { } l && high is { } h && double.IsFinite(l) && double.IsFinite(h)
            ? $"{Score(fraction)} [{Score(l)}, {Score(h)}]"
            : Score(fraction);

    /// <summary>A score as mean ± sd over seeds, "53.2 ± 4.1"; the mean alone for one seed.</summary>
    public static string ScoreSpread(double? mean, double? sd) =>
        sd is { } s && double.IsFinite(s) ? $"{Score(mean)} ± {(100 * s).ToString("0.0", CultureInfo.InvariantCulture)}" : Score(mean);

    /// <summary>A count with SI units, for MACs and parameter counts: 2.32e9 -> "2.32 G", 25.6e6 -> "25.6 M".</summary>
    public static string Si(double? value)
    {
        if (value is not { } v || !double.IsFinite(v)) return "—";
        (double div, string unit) = Math.Abs(v) switch
        {
            >= 1e12 => (1e12, " T"),
            >= 1e9 => (1e9, " G"),
            >= 1e6 => (1e6, " M"),
            >= 1e3 => (1e3, " k"),
            _ => (1, ""),
        };
        var x = v / div;
        return x.ToString(Math.Abs(x) >= 100 ? "0" : Math.Abs(x) >= 10 ? "0.0" : "0.00", CultureInfo.InvariantCulture) + unit;
    }

    public static string Bytes(long bytes)
    {
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB"];
        double v = bytes;
        var u = 0;
        while (v >= 1024 && u < units.Length - 1) { v /= 1024; u++; }
        return u == 0 ? $"{bytes} B" : v.ToString("0.0", CultureInfo.InvariantCulture) + " " + units[u];
    }

    public static string Number(long n) => n.ToString("N0", CultureInfo.InvariantCulture);

    /// <summary>The lower-case name used in the store, the API and the UI, e.g. "running".</summary>
    public static string Name(RunStatus s) => s.ToString().ToLowerInvariant();
    public static string Name(DatasetStatus s) => s.ToString().ToLowerInvariant();

    public static Color Color(RunStatus s) => s switch
    {
        RunStatus.Queued => MudBlazor.Color.Default,
        RunStatus.Running => MudBlazor.Color.Info,
        RunStatus.Succeeded => MudBlazor.Color.Success,
        RunStatus.Failed => MudBlazor.Color.Error,
        RunStatus.Canceled => MudBlazor.Color.Warning,
        _ => MudBlazor.Color.Default,
    };

    public static Color Color(DatasetStatus s) => s switch
    {
        DatasetStatus.Registering => MudBlazor.Color.Info,
        DatasetStatus.Ready => MudBlazor.Color.Success,
        DatasetStatus.Failed => MudBlazor.Color.Error,
        _ => MudBlazor.Color.Default,
    };

    /// <summary>JSON indented for reading; the text unchanged when it is not valid JSON.</summary>
    public static string PrettyJson(string? json)
    {
        if (string.IsNullOrWhiteSpace(json)) return "";
        try { return JsonNode.Parse(json)?.ToJsonString(Indented) ?? "null"; }
        catch (JsonException) { return json; }
    }

    /// <summary>
    /// The members of a JSON object as (key, value) pairs: scalars as their text, nested values as compact JSON.
    /// Anything that is not an object yields one pair with an empty key.
    /// </summary>
    public static IReadOnlyList<KeyValuePair<string, string>> JsonPairs(string? json)
    {
        if (string.IsNullOrWhiteSpace(json)) return [];
        JsonNode? node;
        try { node = JsonNode.Parse(json); }
        catch (JsonException) { return [new("", json)]; }
        if (node is not JsonObject obj) return node is null ? [] : [new("", node.ToJsonString(Compact))];
        return obj.Select(p => new KeyValuePair<string, string>(p.Key, p.Value switch
        {
            null => "null",
            JsonValue v when v.TryGetValue<string>(out var s) => s,
            JsonValue v => v.ToJsonString(Compact),
            var other => other.ToJsonString(Compact),
        })).ToList();
    }
}
