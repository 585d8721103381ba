namespace Forensics.ML.Inspection;

/// <summary>
/// What an inspection found out about a model: kind and architecture (given or inferred), files, size, SHA-256 of the
/// weights file, the key report of a load into the architecture, and the multiply-accumulates where they are known.
/// The portal keeps it beside a zoo entry as data/zoo/&lt;id&gt;/inspection.json and writes the markdown card from it.
/// </summary>
public sealed record ModelInspection(string Kind, string Architecture, string Format, string WeightsPath, long Bytes, string Sha256,
    KeyReport Keys, string? Config, long? Macs, string? MacsAt, long? EncodeMacs, long? DecodeMacs, int? DownsampleFactor,
    int? LatentChannels, Dictionary<string, long>? UnetMacsByLatent = null);
