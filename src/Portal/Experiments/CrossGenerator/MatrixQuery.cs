using Forensics.ML.Protocols;
using Microsoft.EntityFrameworkCore;
using Portal.Api;
using Portal.Infrastructure;
using Portal.Store;

namespace Portal.Experiments;

/// <summary>The train-on x test-on matrix over succeeded cross-generator runs, as the Matrix page and GET /api/matrix read it.</summary>
public sealed class MatrixQuery(IDbContextFactory<PortalDb> dbFactory, PortalPaths paths)
{
    /// <summary>The matrix in <paramref name="mode"/>, over every test dataset or one.</summary>
    public Task<TrainTestMatrixAnswer> BuildAsync(ThresholdMode mode, long? testDatasetId = null) =>
        MatrixEndpoints.BuildAsync(dbFactory, paths, mode, testDatasetId);
}
