using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Forensics.ML.Protocols;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Portal.Infrastructure;
using Portal.Store;
using Portal.Runs;
using Portal.Datasets;
using Portal.Zoo;

namespace Portal.Experiments;

/// <summary>
/// A stage a pipeline's config plans, in the order it runs, with its share of the pipeline's work (Weight): training
/// dominates, so a pipeline's progress moves with it instead of jumping when a short stage ends.
/// </summary>
public sealed record PlannedStage(string Stage, string Kind, double Weight);
