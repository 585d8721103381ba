using Microsoft.EntityFrameworkCore;
using Portal.Store;

namespace Portal.Experiments;

/// <summary>The evaluation reads the result panels and the compare page use, through <see cref="EvaluationResults"/>'s names.</summary>
public sealed class EvaluationQuery(IDbContextFactory<PortalDb> dbFactory)
{
    /// <summary>The per-generator ACC and AP rows ("acc/&lt;generator&gt;", "ap/&lt;generator&gt;") of <paramref name="runIds"/>.</summary>
    public async Task<List<RunMetric>> PerGeneratorAsync(IReadOnlyCollection<long> runIds)
    {
        var acc = EvaluationResults.PerGeneratorPrefix(EvaluationResults.Acc);
        var ap = EvaluationResults.PerGeneratorPrefix(EvaluationResults.Ap);
        await using var db = await dbFactory.CreateDbContextAsync();
        return await db.RunMetrics.AsNoTracking().Where(m => runIds.Contains(m.RunId) && (m.Name.StartsWith(acc) || m.Name.StartsWith(ap))).ToListAsync();
    }
}
