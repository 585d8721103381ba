using System.Collections.Concurrent;

namespace Portal.Auth;

/// <summary>
/// Slows password guessing per source address instead of locking accounts: a wrong password never locks anyone (an
/// anonymous caller who knows a user name could otherwise lock that user out), but a source that keeps failing must wait
/// longer and longer before its next try. The first Portal:Auth:LoginFreeFailures (5) failures cost nothing; after that
/// each further failure doubles the wait (1 s, 2 s, 4 s ... up to Portal:Auth:LoginMaxDelaySeconds, 300). A success, or
/// <see cref="ForgetAfter"/> without failures, clears the source. Tries during the wait are refused unchecked, so the
/// password is not even tested. Only an admin's lock (/admin/users) locks an account.
/// </summary>
public sealed class LoginThrottle(AuthOptions options, TimeProvider clock)
{
    /// <summary>Failures from one source that are not delayed.</summary>
    public int FreeFailures { get; } = Math.Max(0, options.LoginFreeFailures);
    /// <summary>The longest wait between two tries of one source.</summary>
    public TimeSpan MaxDelay { get; } = TimeSpan.FromSeconds(Math.Max(1, options.LoginMaxDelaySeconds));
    /// <summary>A source with no failure for this long starts afresh.</summary>
    public static readonly TimeSpan ForgetAfter = TimeSpan.FromMinutes(15);
    /// <summary>Sources remembered at most (the oldest are dropped), so a flood of addresses costs bounded memory.</summary>
    public const int MaxSources = 10_000;

    sealed record Entry(int Failures, DateTimeOffset LastFailure, DateTimeOffset NextTry);
    readonly ConcurrentDictionary<string, Entry> sources = new();

    /// <summary>How long <paramref name="source"/> must still wait before a try is checked; zero when it may try now.</summary>
    public TimeSpan Wait(string source)
    {
        var now = clock.GetUtcNow();
        if (!sources.TryGetValue(source, out var e)) return TimeSpan.Zero;
        if (now - e.LastFailure > ForgetAfter) { sources.TryRemove(source, out _); return TimeSpan.Zero; }
        return e.NextTry > now ? e.NextTry - now : TimeSpan.Zero;
    }

    /// <summary>Records a wrong password from <paramref name="source"/>; returns the wait before its next try.</summary>
    public TimeSpan Failed(string source)
    {
        var now = clock.GetUtcNow();
        if (sources.Count >= MaxSources) Trim(now);
        var e = sources.AddOrUpdate(source,
            _ => new Entry(1, now, now + DelayAfter(1)),
            (_, old) =>
            {
                var failures = now - old.LastFailure > ForgetAfter ? 1 : old.Failures + 1;
                return new Entry(failures, now, now + DelayAfter(failures));
            });
        return e.NextTry - now;
    }

    /// <summary>A successful sign-in from <paramref name="source"/> clears its failures.</summary>
    public void Succeeded(string source) => sources.TryRemove(source, out _);

    /// <summary>The wait after the <paramref name="failures"/>-th failure: none up to <see cref="FreeFailures"/>, then 1 s doubling, at most <see cref="MaxDelay"/>.</summary>
    public TimeSpan DelayAfter(int failures)
    {
        if (failures <= FreeFailures) return TimeSpan.Zero;
        var exponent = Math.Min(failures - FreeFailures - 1, 20);
        return TimeSpan.FromSeconds(Math.Min(Math.Pow(2, exponent), MaxDelay.TotalSeconds));
    }

    void Trim(DateTimeOffset now)
    {
        foreach (var (key, e) in sources)
            if (now - e.LastFailure > ForgetAfter) sources.TryRemove(key, out _);
        if (sources.Count < MaxSources) return;
        foreach (var key in sources.OrderBy(kv => kv.Value.LastFailure).Take(sources.Count - MaxSources / 2).Select(kv => kv.Key).ToList())
            sources.TryRemove(key, out _);
    }

    /// <summary>The source of a request: its remote address (behind a reverse proxy, configure forwarded headers so this is the client's).</summary>
    public static string SourceOf(HttpContext? http) => http?.Connection.RemoteIpAddress?.ToString() ?? "unknown";
}
