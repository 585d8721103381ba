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

/// <summary>An experiment: its id (a hash of the request), the request, its cells and the per-group summary.</summary>
public sealed record Experiment(string Id, ExperimentRequest Request, IReadOnlyList<ExperimentCell> Cells, IReadOnlyList<ExperimentGroup> Summary);
