using System.Text.Json;
using Forensics.ML.Protocols;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Portal.Experiments;
using Portal.Leaderboard;
using Portal.Runs;
using Portal.Store;
using Portal.Tests.Components;

namespace Portal.Tests.Leaderboard;

/// <summary>
/// The leaderboard's rows are written by <see cref="LeaderboardIndexer"/> (when a run succeeds, at start, or on rebuild),
/// never by <see cref="LeaderboardQuery"/>; both take the metric and config names from the typed results.
/// </summary>
public class LeaderboardIndexerTests : PortalComponentTest
{
    /// <summary>A succeeded evaluate run stored as the job and executor leave it, but not indexed (a run from before the indexer).</summary>
    async Task<long> AddUnindexedEvaluationAsync(long dataset, string checkpoint, double mj)
    {
        await using var db = await DbFactory.CreateDbContextAsync();
        var run = new Run
        {
            Kind = EvaluationJob.KindName, Queue = JobQueues.DeviceCpu, Status = RunStatus.Succeeded, Progress = 1, CreatedAt = DateTime.UtcNow,
            CodeVersion = "test", ConfigHash = "x", Seed = 0,
            ConfigJson = JsonSerializer.Serialize(new EvaluationJob.Config(dataset, checkpoint, Split: "val"), new JsonSerializerOptions(JsonSerializerDefaults.Web)),
        };
        db.Runs.Add(run);
        await db.SaveChangesAsync();
        foreach (var (name, value) in new[]
                 {
                     (EvaluationResults.Acc, mj), (EvaluationResults.Metric(EvaluationResults.Acc, LeaderboardQueryTests.Mj), mj),
                     (EvaluationResults.Metric(EvaluationResults.Ap, LeaderboardQueryTests.Mj), 0.9),
                 })
            db.RunMetrics.Add(new RunMetric { RunId = run.Id, Name = name, Step = 0, Value = value, At = DateTime.UtcNow });
        await db.SaveChangesAsync();
        return run.Id;
    }

    async Task<int> EntriesAsync()
    {
        await using var db = await DbFactory.CreateDbContextAsync();
        return await db.LeaderboardEntries.CountAsync();
    }

    [Fact]
    public async Task The_query_writes_nothing_and_a_rebuild_indexes_the_runs_it_has_no_rows_for()
    {
        var dataset = await Portal.Bench.LeaderboardSeed.AddDatasetAsync(DbFactory, "genimage-val");
        var old = await AddUnindexedEvaluationAsync(dataset, "/models/old.pth", 0.61);
        var query = new LeaderboardQuery(DbFactory);

        var before = await query.RunAsync(new LeaderboardRequest(Baselines: false));
        Assert.Equal(0, before.Total);
        Assert.Empty(await query.BenchmarksAsync(new LeaderboardRequest()));
        Assert.Equal(0, await EntriesAsync());   // the read left the store as it was

        var indexer = new LeaderboardIndexer(DbFactory);
        Assert.Equal(1, await indexer.RebuildAsync());
        Assert.Equal(0, await indexer.RebuildAsync());   // nothing new: nothing written
        var row = Assert.Single((await query.RunAsync(new LeaderboardRequest(Baselines: false))).Rows);
        Assert.Equal(("/models/old.pth", "val", old), (row.Detector, row.Split, row.RunId!.Value));
        Assert.Equal(0.61, row.Acc[LeaderboardQueryTests.Mj].Mean, 9);

        // A full rebuild drops the rows and writes them again from the runs.
        Assert.Equal(1, await indexer.RebuildAsync(replace: true));
        Assert.Equal(1, await EntriesAsync());
    }

    [Fact]
    public async Task Indexing_a_run_skips_runs_that_did_not_succeed_or_do_not_score_a_detector()
    {
        var dataset = await Portal.Bench.LeaderboardSeed.AddDatasetAsync(DbFactory, "genimage-val");
        var id = await AddUnindexedEvaluationAsync(dataset, "/models/a.pth", 0.7);
        await using (var db = await DbFactory.CreateDbContextAsync())
            await db.Runs.Where(r => r.Id == id).ExecuteUpdateAsync(s => s.SetProperty(r => r.Status, RunStatus.Failed));
        var indexer = new LeaderboardIndexer(DbFactory);
        Assert.Equal(0, await indexer.IndexRunAsync(id));
        await ((IRunSucceededHook)indexer).OnSucceededAsync(id, RobustnessSweepJob.KindName);
        Assert.Equal(0, await EntriesAsync());

        await using (var db = await DbFactory.CreateDbContextAsync())
            await db.Runs.Where(r => r.Id == id).ExecuteUpdateAsync(s => s.SetProperty(r => r.Status, RunStatus.Succeeded));
        await ((IRunSucceededHook)indexer).OnSucceededAsync(id, EvaluationJob.KindName);
        Assert.Equal(1, await EntriesAsync());
        Assert.Equal(0, await indexer.IndexRunAsync(id));   // indexed once
    }

    [Fact]
    public void The_scored_configs_carry_the_fields_the_leaderboard_reads_under_the_same_names()
    {
        string Json(object config) => JsonSerializer.Serialize(config, new JsonSerializerOptions(JsonSerializerDefaults.Web));
        var evaluate = JsonDocument.Parse(Json(new EvaluationJob.Config(1, "/m.pth", "res50nodown", "val", "jpeg:75"))).RootElement;
        foreach (var field in EvaluationResults.ConfigFields.All) Assert.True(evaluate.TryGetProperty(field, out _), field);
        var crossgen = JsonDocument.Parse(Json(new CrossGeneratorJob.Config(1, "/m.pth", "res50nodown"))).RootElement;
        var submission = JsonDocument.Parse(Json(new SubmissionJob.Config(1, "val", "d", "/s.csv", "0", "u", "d (submitted)"))).RootElement;
        var f = EvaluationResults.ConfigFields.Checkpoint;
        foreach (var config in new[] { crossgen, submission })
            foreach (var field in new[] { EvaluationResults.ConfigFields.Checkpoint, EvaluationResults.ConfigFields.DatasetId, EvaluationResults.ConfigFields.Split, EvaluationResults.ConfigFields.Arch })
                Assert.True(config.TryGetProperty(field, out _), field);
        Assert.Equal("checkpoint", f);   // the name stored runs carry: renaming the property needs a migration of their configs
        Assert.Equal("datasetId", EvaluationResults.ConfigFields.DatasetId);
    }

    [Fact]
    public void Metric_names_are_the_ones_stored_runs_carry()
    {
        Assert.Equal("acc", EvaluationResults.Metric(EvaluationResults.Acc));
        Assert.Equal("ap/imagenet_glide", EvaluationResults.Metric(EvaluationResults.Ap, "imagenet_glide"));
        Assert.Equal("acc@best/adm", CrossGeneratorResults.Metric(EvaluationResults.Acc, ThresholdMode.BestOnTest, "adm"));
        Assert.Equal("acc_ci_lo@calibrated/adm", CrossGeneratorResults.Metric(EvaluationResults.AccCiLow, ThresholdMode.CalibratedOnValidation, "adm"));
        Assert.Equal("ap/avg", CrossGeneratorResults.Metric(EvaluationResults.Ap, ThresholdMode.Fixed, CrossGeneratorResults.AverageRow));
        Assert.Equal([("0.5", ""), ("best", "@best"), ("calibrated", "@calibrated")], LeaderboardQuery.ThresholdModes);
    }
}

/// <summary>`Portal leaderboard rebuild` as a real process on a portal's store.</summary>
public sealed class LeaderboardCommandTests
{
    [Fact]
    public async Task Leaderboard_rebuild_indexes_the_runs_without_rows_and_all_rebuilds_every_row()
    {
        using var tmp = new Portal.Tests.Support.TempDir();
        long run;
        await using (var app = new Portal.Tests.Support.PortalFactory(tmp.Path))
        {
            var dbFactory = app.Services.GetRequiredService<IDbContextFactory<PortalDb>>();
            var dataset = await Portal.Bench.LeaderboardSeed.AddDatasetAsync(dbFactory, "genimage-val");
            run = (await Portal.Bench.LeaderboardSeed.AddAsync(dbFactory, [new("/models/a.pth", null, dataset, null, 0, LeaderboardQueryTests.Values(0.6, 0.9, 0.7))]))[0];
            // A run from before the indexer: its rows are gone.
            await using var db = await dbFactory.CreateDbContextAsync();
            await db.LeaderboardEntries.ExecuteDeleteAsync();
        }

        async Task<string> Rebuild(params string[] args)
        {
            using var process = Portal.Tests.Support.WorkerProcess.Start(["leaderboard", "rebuild", .. args], tmp.Path);
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
            await process.Process.WaitForExitAsync(timeout.Token);
            process.Process.WaitForExit();
            Assert.True(process.Process.ExitCode == 0, process.Output);
            return process.Output;
        }
        Assert.Contains("1 row(s) written for runs not indexed yet", await Rebuild());
        Assert.Contains("0 row(s) written", await Rebuild());
        Assert.Contains("1 row(s) written (every row rebuilt)", await Rebuild("--all"));

        await using var check = new Portal.Tests.Support.PortalFactory(tmp.Path);
        var page = await check.Services.GetRequiredService<LeaderboardQuery>().RunAsync(new LeaderboardRequest(Baselines: false));
        Assert.Equal(run, Assert.Single(page.Rows).RunId);
    }
}
