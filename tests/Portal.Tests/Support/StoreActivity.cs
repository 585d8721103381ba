using System.Data.Common;
using Microsoft.EntityFrameworkCore.Diagnostics;

namespace Portal.Tests.Support;

/// <summary>
/// Counts the store contexts in use at this moment (by their connections, which EF creates with a context's first query
/// and disposes with the context), so a component test can wait until a page has finished loading. SQLite's "async" calls complete
/// before the first render returns; PostgreSQL's are real network I/O and finish later.
/// </summary>
public sealed class StoreActivity : DbConnectionInterceptor
{
    int open;
    long lastChange = Environment.TickCount64;

    void Opened()
    {
        Interlocked.Increment(ref open);
        Volatile.Write(ref lastChange, Environment.TickCount64);
    }

    void Closed()
    {
        Interlocked.Decrement(ref open);
        Volatile.Write(ref lastChange, Environment.TickCount64);
    }

    /// <summary>True while no store context is in use.</summary>
    public bool Idle => Volatile.Read(ref open) <= 0;

    /// <summary>
    /// Returns once no context has been in use for <paramref name="quiet"/> (time for the page to render what it read),
    /// or after <paramref name="timeout"/> (a page that polls, or holds a connection: the test's own assertions decide).
    /// </summary>
    public void WaitIdle(TimeSpan quiet, TimeSpan timeout)
    {
        var deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        while (Environment.TickCount64 < deadline)
        {
            if (Volatile.Read(ref open) <= 0 && Environment.TickCount64 - Volatile.Read(ref lastChange) >= quiet.TotalMilliseconds) return;
            Thread.Sleep(10);
        }
    }

    // A context's connection lives from its first query to the context's disposal, so the count covers a page's
    // sequence of queries (and the query compilation between them), not just each query's round trip.
    public override DbConnection ConnectionCreated(ConnectionCreatedEventData eventData, DbConnection result)
    {
        Opened();
        return result;
    }

    public override void ConnectionDisposed(DbConnection connection, ConnectionEndEventData eventData) => Closed();

    public override Task ConnectionDisposedAsync(DbConnection connection, ConnectionEndEventData eventData)
    {
        Closed();
        return Task.CompletedTask;
    }
}
