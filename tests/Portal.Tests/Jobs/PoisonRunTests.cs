using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Portal.Experiments;
using Portal.Datasets;
using Portal.Zoo;
using Portal.Runs;
using Portal.Store;
using Portal.Tests.Support;

namespace Portal.Tests.Jobs;

/// <summary>A run whose worker dies at every attempt is failed after Portal:Jobs:MaxAttempts, not taken over at every start.</summary>
public class PoisonRunTests
{
    static async Task<Run> GetAsync(PortalFactory app, long id)
    {
        await using var db = await app.Services.GetRequiredService<IDbContextFactory<PortalDb>>().CreateDbContextAsync();
        return await db.Runs.AsNoTracking().Include(r => r.Log).SingleAsync(r => r.Id == id);
    }

    [Fact]
    public async Task A_run_whose_worker_died_at_each_of_its_attempts_fails_at_start_and_is_never_taken_over_again()
    {
        using var tmp = new TempDir();
        await using (var first = new PortalFactory(tmp.Path))
            _ = first.CreateClient(); // the store is created and migrated
        // As the OOM killer leaves them: running, claimed by a process that is gone; one at the limit, one below it.
        Run Orphan(int attempts) => new()
        {
            Kind = "test-sleep", Queue = JobQueues.Light, ConfigJson = "{\"steps\":2,\"stepMs\":10}", ConfigHash = "x", Status = RunStatus.Running,
            Worker = "dead-host:1", Attempts = attempts, CreatedAt = DateTime.UtcNow, StartedAt = DateTime.UtcNow, Progress = 0.4,
            Phase = "epoch 2/5",
        };
        var poison = Orphan(3);
        var second = Orphan(2);
        await using (var db = PortalFactory.OpenStore(tmp.Path))
        {
            db.Runs.AddRange(poison, second);
            await db.SaveChangesAsync();
        }

        await using (var app = new PortalFactory(tmp.Path))
        {
            _ = app.CreateClient();
            var failed = await Wait.UntilAsync(() => GetAsync(app, poison.Id), r => r.IsFinished, what: "the poison run to be closed");
            Assert.Equal(RunStatus.Failed, failed.Status);
            Assert.Equal("its worker died 3 times while running it (last phase: epoch 2/5); it is not taken over again (re-run it once the cause is fixed)", failed.Error);
            Assert.Equal(3, failed.Attempts);
            Assert.Contains(failed.Log, l => l.Level == "error" && l.Message.Contains("Portal:Jobs:MaxAttempts"));
            // Below the limit: taken over and finished, as before.
            var resumed = await Wait.UntilAsync(() => GetAsync(app, second.Id), r => r.IsFinished, what: "the other run to finish");
            Assert.Equal(RunStatus.Succeeded, resumed.Status);
            Assert.Equal(3, resumed.Attempts);
        }

        // Another start leaves it alone.
        await using (var again = new PortalFactory(tmp.Path))
        {
            _ = again.CreateClient();
            await Task.Delay(500);
            var still = await GetAsync(again, poison.Id);
            Assert.Equal(RunStatus.Failed, still.Status);
            Assert.Equal(3, still.Attempts);
        }
    }

    [Fact]
    public async Task The_limit_is_a_setting()
    {
        using var tmp = new TempDir();
        await using (var first = new PortalFactory(tmp.Path))
            _ = first.CreateClient();
        var run = new Run
        {
            Kind = "test-sleep", Queue = JobQueues.Light, ConfigJson = "{\"steps\":2,\"stepMs\":10}", ConfigHash = "x", Status = RunStatus.Running,
            Worker = "dead-host:1", Attempts = 3, CreatedAt = DateTime.UtcNow, StartedAt = DateTime.UtcNow,
        };
        await using (var db = PortalFactory.OpenStore(tmp.Path))
        {
            db.Runs.Add(run);
            await db.SaveChangesAsync();
        }
        await using var app = new PortalFactory(tmp.Path, settings: new Dictionary<string, string> { ["Portal:Jobs:MaxAttempts"] = "5" });
        _ = app.CreateClient();
        var done = await Wait.UntilAsync(() => GetAsync(app, run.Id), r => r.IsFinished, what: "the run to finish");
        Assert.Equal(RunStatus.Succeeded, done.Status);
        Assert.Equal(4, done.Attempts);
    }
}
