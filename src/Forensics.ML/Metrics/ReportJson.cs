using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Forensics.ML.Metrics;

/// <summary>How every report file (metrics.json, crossgen.json, sweep.json, ...) is written, by the CLI and the portal alike.</summary>
public static class ReportJson
{
    /// <summary>Indented; non-ASCII paths kept readable; a best_threshold of -infinity written as "-Infinity" (JSON has no literal for it).</summary>
    public static readonly JsonSerializerOptions Options = new()
    {
        WriteIndented = true,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };
}
