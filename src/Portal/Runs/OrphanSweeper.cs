using Microsoft.Extensions.Options;
using Portal.Infrastructure;

namespace Portal.Runs;

/// <summary>Sweeps for orphaned runs at start (before the job servers start) and then every few seconds.</summary>
public sealed class OrphanSweeper(IServiceScopeFactory scopes, IOptions<PortalOptions> options, ILogger<OrphanSweeper> logger) : BackgroundService
{
    public override async Task StartAsync(CancellationToken ct)
    {
        using (var scope = scopes.CreateScope())
            await scope.ServiceProvider.GetRequiredService<RunRecovery>().SweepAsync(atStart: true, ct);
        await base.StartAsync(ct);
    }

    protected override async Task ExecuteAsync(CancellationToken stop)
    {
        // A quarter of the orphan age: a vanished worker's runs are taken over soon after they count as orphaned.
        var period = TimeSpan.FromSeconds(Math.Clamp(options.Value.Jobs.OrphanAfterSeconds / 4, 0.2, 15));
        while (!stop.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(period, stop);
                using var scope = scopes.CreateScope();
                await scope.ServiceProvider.GetRequiredService<RunRecovery>().SweepAsync(atStart: false, stop);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested) { }
            catch (Exception e) { logger.LogWarning(e, "Orphan sweep failed"); }
        }
    }
}
