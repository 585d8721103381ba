namespace Portal.Runs;

/// <summary>Invalid input for a named field (HTTP 400 with a problem-details body naming it; the UI shows it beside the field).</summary>
public sealed class FieldException(string field, string message, int status = 400) : Exception(message)
{
    public string Field { get; } = field;
    /// <summary>400 for invalid input, 409 for a conflict with something stored.</summary>
    public int Status { get; } = status;

    /// <summary>Every invalid field found by the check that threw, this one first, so a form shows them all at once.</summary>
    public IReadOnlyDictionary<string, string> Errors { get; private init; } = new Dictionary<string, string> { [field] = message };

    /// <summary>Throws one exception naming every field of <paramref name="errors"/> (in order), if there is any.</summary>
    public static void ThrowIfAny(IReadOnlyList<KeyValuePair<string, string>> errors)
    {
        if (errors.Count == 0) return;
        var all = new Dictionary<string, string>();
        foreach (var (f, m) in errors) all.TryAdd(f, m);
        throw new FieldException(errors[0].Key, errors[0].Value) { Errors = all };
    }
}
