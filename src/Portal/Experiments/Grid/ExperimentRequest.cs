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

/// <summary>
/// A grid experiment: one run kind, a base config, and axes (config field, or a dotted path into a nested stage such as
/// "train.seed", -> values) whose cartesian product gives the cells; <see cref="Seeds"/> (optional) adds a "seed" axis whose runs are summarised as mean ± sd.
/// </summary>
public sealed record ExperimentRequest(string Kind, JsonObject? Config, Dictionary<string, JsonArray>? Axes, long[]? Seeds = null);
