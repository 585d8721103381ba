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

/// <summary>Generation versus alignment cost of one image (the aligned-dataset paper's "10x cheaper" argument).</summary>
/// <param name="AlignmentMacs">One reconstruction: encode + decode at ImageSize x ImageSize.</param>
/// <param name="GenerationMacs">Steps x UNet at the latent size, plus one decode.</param>
/// <param name="Ratio">GenerationMacs / AlignmentMacs.</param>
public sealed record ModelCost(long AutoencoderId, long UnetId, int Steps, int ImageSize, int LatentSize, long UnetMacsPerStep,
    long EncodeMacs, long DecodeMacs, long AlignmentMacs, long GenerationMacs, double Ratio, string Reference);
