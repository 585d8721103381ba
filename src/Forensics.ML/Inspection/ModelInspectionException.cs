namespace Forensics.ML.Inspection;

/// <summary>An inspection that cannot go on: <see cref="Field"/> names the input at fault (path, kind, architecture, card).</summary>
public sealed class ModelInspectionException(string field, string message) : Exception(message)
{
    public string Field { get; } = field;
}
