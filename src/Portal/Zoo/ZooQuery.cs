using Microsoft.EntityFrameworkCore;
using Portal.Store;

namespace Portal.Zoo;

/// <summary>The zoo reads the forms share: the weights of one kind (detectors, autoencoders), by name.</summary>
public sealed class ZooQuery(IDbContextFactory<PortalDb> dbFactory)
{
    /// <summary>The zoo's weights of <paramref name="kind"/> (<see cref="ModelZooService.Detector"/>, <see cref="ModelZooService.Autoencoder"/>...), by name.</summary>
    public async Task<List<ModelWeights>> OfKindAsync(string kind)
    {
        await using var db = await dbFactory.CreateDbContextAsync();
        return await db.Weights.AsNoTracking().Where(w => w.Kind == kind).OrderBy(w => w.Name).ToListAsync();
    }
}
