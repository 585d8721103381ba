using System.Globalization;
using System.Text;
using System.Text.Json;
using Forensics.ML.Detectors;
using Forensics.ML.Generators;
using Forensics.ML.Lare2;
using Forensics.ML.Models;
using Forensics.ML.Models.Clip;
using Forensics.ML.Models.Diffusion;
using Forensics.ML.Runtime;
using Forensics.ML.Weights;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Portal.Infrastructure;
using Portal.Store;
using TorchSharp;
using static TorchSharp.torch;
using Portal.Runs;
using Portal.Experiments;
using Portal.Datasets;

namespace Portal.Zoo;

/// <summary>
/// What registration found out about a model: kind and architecture (given or inferred), files, size, SHA-256 of the
/// weights file, the key report of a load into the architecture, and the multiply-accumulates where they are known.
/// Kept beside the zoo entry as data/zoo/&lt;id&gt;/inspection.json; the markdown card is written from it.
/// </summary>
public sealed record ModelInspection(string Kind, string Architecture, string Format, string WeightsPath, long Bytes, string Sha256,
    KeyReport Keys, string? Config, long? Macs, string? MacsAt, long? EncodeMacs, long? DecodeMacs, int? DownsampleFactor,
    int? LatentChannels, Dictionary<string, long>? UnetMacsByLatent = null);
