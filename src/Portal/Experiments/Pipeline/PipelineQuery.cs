using Microsoft.EntityFrameworkCore;
using Portal.Store;

namespace Portal.Experiments;

/// <summary>The pipeline reads the pages use (its plan, its stages' runs, the pipelines a run is a stage of), so pages ask instead of querying the store.</summary>
public sealed class PipelineQuery(IDbContextFactory<PortalDb> dbFactory)
{
    /// <summary>The stages a pipeline run plans, in order.</summary>
    public Task<IReadOnlyList<PlannedStage>> PlanAsync(long pipelineRunId) => PipelineJob.PlanAsync(dbFactory, pipelineRunId);

    /// <summary>The runs a pipeline run started, one per stage taken.</summary>
    public Task<IReadOnlyList<PipelineChild>> ChildrenAsync(long pipelineRunId) => PipelineJob.ChildrenAsync(dbFactory, pipelineRunId);

    /// <summary>The pipelines that took <paramref name="childRunId"/> as a stage.</summary>
    public Task<IReadOnlyList<(long PipelineRunId, string Stage)>> ParentsAsync(long childRunId) => PipelineJob.ParentsAsync(dbFactory, childRunId);
}
