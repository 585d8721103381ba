namespace Portal.Runs;

/// <summary>
/// Runs a config's independent checks one after the other and keeps every <see cref="FieldException"/> they throw, so a
/// form (and the API's 400) names all the invalid fields at once instead of the first. A check that depends on another
/// (a split of a dataset) runs only when what it needs was found.
/// </summary>
public sealed class FieldChecks
{
    readonly List<KeyValuePair<string, string>> errors = [];

    /// <summary>True when nothing failed so far.</summary>
    public bool Ok => errors.Count == 0;

    /// <summary>Runs <paramref name="check"/>; false (its errors kept) when it threw a <see cref="FieldException"/>.</summary>
    public bool Run(Action check)
    {
        try { check(); return true; }
        catch (FieldException e) { Keep(e); return false; }
    }

    /// <summary>Runs <paramref name="check"/>; its result, or default (its errors kept) when it threw a <see cref="FieldException"/>.</summary>
    public T? Run<T>(Func<T> check)
    {
        try { return check(); }
        catch (FieldException e) { Keep(e); return default; }
    }

    /// <summary>Awaits <paramref name="check"/>; false (its errors kept) when it threw a <see cref="FieldException"/>.</summary>
    public async Task<bool> RunAsync(Func<Task> check)
    {
        try { await check(); return true; }
        catch (FieldException e) { Keep(e); return false; }
    }

    /// <summary>Awaits <paramref name="check"/>; its result, or default (its errors kept) when it threw a <see cref="FieldException"/>.</summary>
    public async Task<T?> RunAsync<T>(Func<Task<T>> check)
    {
        try { return await check(); }
        catch (FieldException e) { Keep(e); return default; }
    }

    /// <summary>Records an invalid field found without a check that throws.</summary>
    public void Fail(string field, string message) => errors.Add(new(field, message));

    /// <summary>Throws one <see cref="FieldException"/> naming every field that failed (the first failure first), if any did.</summary>
    public void ThrowIfAny() => FieldException.ThrowIfAny(errors);

    void Keep(FieldException e)
    {
        // A 409 (a conflict with something stored) is not a field to fix on the form: it stands alone.
        if (e.Status != 400) throw e;
        errors.AddRange(e.Errors);
    }
}
