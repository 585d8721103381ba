using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.EntityFrameworkCore;
using Portal.Infrastructure;
using Portal.Store;
using Portal.Runs;
using Portal.Datasets;
using Portal.Zoo;

namespace Portal.Experiments;

/// <summary>The cells that differ only by seed, with each final metric (step 0) summarised over their succeeded runs.</summary>
/// <param name="N">How many runs of the group succeeded (the others are not counted).</param>
public sealed record ExperimentGroup(JsonObject Config, int Runs, int N, IReadOnlyDictionary<string, MetricSummary> Metrics);
