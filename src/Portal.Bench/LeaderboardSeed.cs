using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Portal.Experiments;
using Portal.Datasets;
using Portal.Zoo;
using Portal.Runs;
using Portal.Leaderboard;
using Portal.Store;

namespace Portal.Bench;

/// <summary>One succeeded evaluation run to seed: its config and its per-generator ACC/AP (fractions).</summary>
public sealed record SeededEvaluation(string Checkpoint, string? Arch, long DatasetId, string? Perturbation, long Seed,
    IReadOnlyDictionary<string, (double Acc, double Ap)> PerGenerator, string? Split = "val");

/// <summary>Seeds evaluation runs straight into the store, as the evaluation job leaves them (config JSON, step-0 metric rows).</summary>
public static class LeaderboardSeed
{
    /// <summary>Inserts the runs and their metric rows (overall and per generator) in one transaction; returns the run ids in order.</summary>
    public static async Task<List<long>> AddAsync(IDbContextFactory<PortalDb> dbFactory, IReadOnlyList<SeededEvaluation> evaluations)
    {
        await using var db = await dbFactory.CreateDbContextAsync();
        var now = DateTime.UtcNow;
        var runs = evaluations.Select(e => new Run
        {
            Kind = EvaluationJob.KindName, Queue = JobQueues.DeviceCpu, Status = RunStatus.Succeeded, Progress = 1, CreatedAt = now,
            StartedAt = now, FinishedAt = now, CodeVersion = "seed", Seed = e.Seed, ConfigHash = "seed",
            ConfigJson = JsonSerializer.Serialize(new EvaluationJob.Config(e.DatasetId, e.Checkpoint, e.Arch, e.Split, e.Perturbation, Seed: e.Seed),
                new JsonSerializerOptions(JsonSerializerDefaults.Web)),
        }).ToList();
        db.Runs.AddRange(runs);
        await db.SaveChangesAsync();

        // Metric rows through one prepared statement: hundreds of thousands of rows stay quick.
        await db.Database.OpenConnectionAsync();
        var connection = db.Database.GetDbConnection();
        await using var tx = await connection.BeginTransactionAsync();
        await using var insert = connection.CreateCommand();
        insert.Transaction = tx;
        // Quoted names and typed parameters: the same statement runs on SQLite and on PostgreSQL (which folds unquoted names).
        insert.CommandText = "INSERT INTO \"RunMetrics\" (\"RunId\", \"Name\", \"Step\", \"Value\", \"At\") VALUES (@run, @name, 0, @value, @at)";
        var run = Param(insert, "@run", System.Data.DbType.Int64);
        var name = Param(insert, "@name", System.Data.DbType.String);
        var value = Param(insert, "@value", System.Data.DbType.Double);
        Param(insert, "@at", null).Value = now;   // typed by its value (UTC: PostgreSQL's timestamptz)
        insert.Prepare();
        for (var i = 0; i < runs.Count; i++)
        {
            run.Value = runs[i].Id;
            var per = evaluations[i].PerGenerator;
            var rows = new List<(string, double)> { ("acc", per.Values.Average(v => v.Acc)), ("ap", per.Values.Average(v => v.Ap)), ("n_real", 100), ("n_fake", 100) };
            foreach (var (generator, (acc, ap)) in per)
                rows.AddRange([("acc/" + generator, acc), ("ap/" + generator, ap), ("real_acc/" + generator, acc), ("n_fake/" + generator, 50)]);
            foreach (var (n, v) in rows)
            {
                name.Value = n;
                value.Value = v;
                await insert.ExecuteNonQueryAsync();
            }
        }
        await tx.CommitAsync();
        // What the executor does when a run succeeds: the leaderboard's rows of each run.
        var indexer = new LeaderboardIndexer(dbFactory);
        foreach (var r in runs) await indexer.IndexRunAsync(r.Id);
        return runs.Select(r => r.Id).ToList();
    }

    static System.Data.Common.DbParameter Param(System.Data.Common.DbCommand command, string name, System.Data.DbType? type)
    {
        var p = command.CreateParameter();
        p.ParameterName = name;
        if (type is { } t) p.DbType = t;
        command.Parameters.Add(p);
        return p;
    }

    /// <summary>Adds step-0 metric rows (name, value) to an existing run, as a job would before it succeeds, then indexes a succeeded scored run for the leaderboard.</summary>
    public static async Task AddMetricsAsync(IDbContextFactory<PortalDb> dbFactory, long runId, IEnumerable<(string Name, double Value)> metrics)
    {
        await using var db = await dbFactory.CreateDbContextAsync();
        db.RunMetrics.AddRange(metrics.Select(m => new RunMetric { RunId = runId, Name = m.Name, Step = 0, Value = m.Value, At = DateTime.UtcNow }));
        await db.SaveChangesAsync();
        // What the executor does when a run succeeds (nothing for a run not succeeded or not scored).
        await new LeaderboardIndexer(dbFactory).IndexRunAsync(runId);
    }

    /// <summary>A ready dataset row to point evaluations at.</summary>
    public static async Task<long> AddDatasetAsync(IDbContextFactory<PortalDb> dbFactory, string name)
    {
        await using var db = await dbFactory.CreateDbContextAsync();
        var dataset = new Dataset { Name = name, Path = "/data/" + name, Status = DatasetStatus.Ready, CreatedAt = DateTime.UtcNow, Layout = "genimage" };
        db.Datasets.Add(dataset);
        await db.SaveChangesAsync();
        return dataset.Id;
    }
}
