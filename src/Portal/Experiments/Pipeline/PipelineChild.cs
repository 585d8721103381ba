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

/// <summary>One stage of a pipeline run: the child run that computes it.</summary>
/// <param name="Stage">"align", "train", "crossgen" or "sweeps[i]".</param>
/// <param name="Created">True when this pipeline created the run; false when it reused a run with the same config hash.</param>
public sealed record PipelineChild(string Stage, long RunId, string Kind, string Status, double Progress, string? Phase, string? Error, bool Created);
