using System.Data.Common;
using Microsoft.EntityFrameworkCore;
using Portal.Experiments;
using Portal.Runs;
using Portal.Store;

namespace Portal.Leaderboard;

/// <summary>
/// Writes the leaderboard's rows (<see cref="LeaderboardEntry"/>): one per threshold mode a succeeded evaluate, crossgen or
/// submission run recorded, when the run succeeds (<see cref="IRunSucceededHook"/>), and at start for the runs not indexed
/// yet (<see cref="RebuildAsync"/>, also the `leaderboard rebuild` command). <see cref="LeaderboardQuery"/> only reads them.
/// Metric and config names come from <see cref="EvaluationResults"/> and <see cref="CrossGeneratorResults"/>.
/// </summary>
public sealed class LeaderboardIndexer(IDbContextFactory<PortalDb> dbFactory) : IRunSucceededHook
{
    /// <summary>The run kinds whose per-generator metrics make leaderboard rows.</summary>
    public static IReadOnlyList<string> Kinds { get; } = [EvaluationJob.KindName, CrossGeneratorJob.KindName, SubmissionJob.KindName];

    Task IRunSucceededHook.OnSucceededAsync(long runId, string kind, CancellationToken ct) =>
        Kinds.Contains(kind) ? IndexRunAsync(runId, ct) : Task.CompletedTask;

    /// <summary>Indexes run <paramref name="runId"/> if it is a succeeded scored run without rows; returns the rows written.</summary>
    public Task<int> IndexRunAsync(long runId, CancellationToken ct = default) => IndexAsync(runId, replace: false, ct);

    /// <summary>
    /// Indexes every succeeded scored run that has no rows yet (<paramref name="replace"/>: drops every row first and
    /// indexes all of them again); returns the rows written.
    /// </summary>
    public Task<int> RebuildAsync(bool replace = false, CancellationToken ct = default) => IndexAsync(null, replace, ct);

    async Task<int> IndexAsync(long? runId, bool replace, CancellationToken ct)
    {
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        await db.Database.OpenConnectionAsync(ct);
        var connection = db.Database.GetDbConnection();
        var sql = new LeaderboardSql(db.Database.IsNpgsql());
        if (replace)
            await db.LeaderboardEntries.Where(e => runId == null || e.RunId == runId).ExecuteDeleteAsync(ct);
        var kinds = string.Join(", ", Kinds.Select(k => $"'{k}'"));
        var onlyRun = runId is null ? "" : "AND r.\"Id\" = @runId";
        var unindexed = $"""
            r."Status" = 'succeeded' AND r."Kind" IN ({kinds}) {onlyRun}
              AND NOT EXISTS (SELECT 1 FROM "LeaderboardEntries" e WHERE e."RunId" = r."Id")
            """;
        // A read first: an INSERT would take the database's write lock even when there is nothing to index.
        await using (var probe = connection.CreateCommand())
        {
            probe.CommandText = $"SELECT 1 FROM \"Runs\" r WHERE {unindexed} LIMIT 1";
            AddRunId(probe, runId);
            if (await probe.ExecuteScalarAsync(ct) is null) return 0;
        }
        await using var command = connection.CreateCommand();
        command.CommandText = InsertSql(sql, unindexed);
        AddRunId(command, runId);
        return await command.ExecuteNonQueryAsync(ct);
    }

    static void AddRunId(DbCommand command, long? runId)
    {
        if (runId is not { } id) return;
        var p = command.CreateParameter();
        p.ParameterName = "@runId";
        p.Value = id;
        command.Parameters.Add(p);
    }

    /// <summary>A run config's field, camelCase or PascalCase.</summary>
    static string Config(LeaderboardSql sql, string field, bool integer = false)
    {
        string Field(string name) => integer ? sql.JsonInteger("r.\"ConfigJson\"", name) : sql.Json("r.\"ConfigJson\"", name);
        return $"coalesce({Field(field)}, {Field(char.ToUpperInvariant(field[0]) + field[1..])})";
    }

    /// <summary>
    /// One entry per threshold mode of each unindexed run (a mode the run did not record gets none). All modes of a run go
    /// in one statement, and the unique (RunId, Threshold) index makes concurrent indexing harmless.
    /// </summary>
    static string InsertSql(LeaderboardSql sql, string unindexed)
    {
        var modes = string.Join(", ", LeaderboardQuery.ThresholdModes.Select(m => $"('{m.Threshold}', '{m.Suffix}')"));
        const char separator = EvaluationResults.GeneratorSeparator;
        // A metric family "acc@best/<generator>" is the index range ['acc@best/', 'acc@best0'): the separator's successor ends it.
        const char afterSeparator = (char)(separator + 1);
        string Family(string metric) =>
            $"m.\"RunId\" = r.\"Id\" AND m.\"Step\" = 0 AND m.\"Name\" >= '{metric}' || modes.Suffix || '{separator}' " +
            $"AND m.\"Name\" < '{metric}' || modes.Suffix || '{afterSeparator}' " +
            $"AND m.\"Name\" <> '{metric}' || modes.Suffix || '{separator}{CrossGeneratorResults.AverageRow}'";
        var (insert, onConflict) = sql.InsertOrIgnore;
        return $"""
            WITH modes(Threshold, Suffix) AS (VALUES {modes})
            {insert} "LeaderboardEntries" ("RunId", "Threshold", "Checkpoint", "DatasetId", "Split", "Perturbation", "ConfigArch", "Seed", "MeanAcc", "MeanAp", "Generators")
            SELECT * FROM (
              SELECT r."Id", modes.Threshold, coalesce({Config(sql, EvaluationResults.ConfigFields.Checkpoint)}, ''),
                     {Config(sql, EvaluationResults.ConfigFields.DatasetId, integer: true)},
                     coalesce(trim({Config(sql, EvaluationResults.ConfigFields.Split)}), ''),
                     coalesce(nullif(nullif(trim({Config(sql, EvaluationResults.ConfigFields.Perturbation)}), ''), 'none'), 'none'),
                     coalesce({Config(sql, EvaluationResults.ConfigFields.Arch)}, ''),
                     coalesce({Config(sql, EvaluationResults.ConfigFields.Seed, integer: true)}, r."Seed", 0),
                     (SELECT avg(m."Value") FROM "RunMetrics" m WHERE {Family(EvaluationResults.Acc)}),
                     (SELECT avg(m."Value") FROM "RunMetrics" m WHERE {Family(EvaluationResults.Ap)}),
                     (SELECT {sql.Join("g", sql.Char(LeaderboardEntry.GeneratorSeparator), "g")}
                        FROM (SELECT substr(m."Name", length('{EvaluationResults.Acc}' || modes.Suffix) + 2) AS g FROM "RunMetrics" m
                              WHERE {Family(EvaluationResults.Acc)} ORDER BY m."Name") AS gs) AS Generators
              FROM "Runs" r CROSS JOIN modes
              WHERE {unindexed}
            ) AS summary
            -- A mode the run did not record has no generators and gets no entry.
            WHERE Generators IS NOT NULL
            {onConflict}
            """;
    }
}
