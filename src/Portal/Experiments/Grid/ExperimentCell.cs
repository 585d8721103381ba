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

/// <summary>One cell of an experiment: its expanded config and the run that computes it.</summary>
/// <param name="Reused">True when an existing queued, running or succeeded run with the same kind and config hash was taken instead of a new one.</param>
public sealed record ExperimentCell(JsonObject Config, string ConfigHash, long? RunId, bool Reused, string? Status, long? Seed);
