using Portal.Store;

namespace Portal.Api;

/// <summary>POST /api/datasets body.</summary>
public sealed record RegisterDatasetRequest(string? Name, string? Path);
/// <summary>202 answer to a registration: the dataset and the run that scans it.</summary>
public sealed record RegisterDatasetResponse(long Id, long RunId);

/// <summary>POST /api/runs body: the run kind, its config object and an optional seed.</summary>
public sealed record QueueRunRequest(string? Kind, System.Text.Json.JsonElement? Config, long? Seed, string[]? Tags = null);

public sealed record RunTagsRequest(string[]? Tags);

public sealed record SubsetDto(string Generator, string Split, string Label, int Count);
public sealed record UnreadableDto(string Path, string Reason);

public sealed record DatasetDto(long Id, string Name, string Path, string? Layout, string Status, int Images,
    IReadOnlyList<UnreadableDto> Unreadable, IReadOnlyList<SubsetDto> Subsets, long? RunId, string? ContentHash,
    DateTime CreatedAt, DateTime? ScannedAt)
{
    public static DatasetDto From(Dataset d) => new(d.Id, d.Name, d.Path, d.Layout, d.Status.ToString().ToLowerInvariant(), d.Images,
        d.Unreadable.OrderBy(u => u.Path, StringComparer.Ordinal).Select(u => new UnreadableDto(u.Path, u.Reason)).ToList(),
        d.Subsets.OrderBy(s => s.Generator).ThenBy(s => s.Split).ThenBy(s => s.Label).Select(s => new SubsetDto(s.Generator, s.Split, s.Label, s.Count)).ToList(),
        d.RegistrationRunId, d.ContentHash, d.CreatedAt, d.ScannedAt);
}

public sealed record RunDto(long Id, string Kind, string Queue, string Status, double Progress, string? Phase, string? Error,
    DateTime CreatedAt, DateTime? StartedAt, DateTime? FinishedAt, string? Worker, int Attempts, long? Seed,
    string CodeVersion, string ConfigHash, System.Text.Json.JsonElement Config, long? RerunOf, IReadOnlyList<string> Tags, string? Owner = null)
{
    /// <summary>The run as the API shows it; <paramref name="owner"/> is the owner's user name (null: queued by the portal itself).</summary>
    public static RunDto From(Run r, string? owner = null) => new(r.Id, r.Kind, r.Queue, r.Status.ToString().ToLowerInvariant(), r.Progress, r.Phase, r.Error,
        r.CreatedAt, r.StartedAt, r.FinishedAt, r.Worker, r.Attempts, r.Seed, r.CodeVersion, r.ConfigHash,
        System.Text.Json.JsonDocument.Parse(r.ConfigJson).RootElement.Clone(), r.RerunOf, RunTags.Parse(r.Tags), owner);

    /// <summary>User id -> user name for the owners of <paramref name="runs"/>.</summary>
    public static async Task<Dictionary<string, string>> OwnerNamesAsync(PortalDb db, IEnumerable<Run> runs)
    {
        var ids = runs.Select(r => r.OwnerId).OfType<string>().Distinct().ToList();
        if (ids.Count == 0) return [];
        return await Microsoft.EntityFrameworkCore.EntityFrameworkQueryableExtensions.ToDictionaryAsync(
            db.Users.Where(u => ids.Contains(u.Id)), u => u.Id, u => u.UserName ?? u.Id);
    }
}

public sealed record RunLogDto(DateTime At, string Level, string Message);

public sealed record HealthComponent(bool Ok, string? Detail);
public sealed record HealthDto(string Status, HealthComponent Database, HealthComponent JobServer, HealthComponent Torch);
