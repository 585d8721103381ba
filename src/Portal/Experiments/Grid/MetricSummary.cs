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

/// <summary>The mean ± sample standard deviation of one final metric over the succeeded seeds of a group.</summary>
public sealed record MetricSummary(double Mean, double Sd, int N);
