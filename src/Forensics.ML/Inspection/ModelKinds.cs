using Forensics.ML.Detectors;
using Forensics.ML.Evaluation;
using Forensics.ML.Lare2;
using Forensics.ML.Generators;

namespace Forensics.ML.Inspection;

/// <summary>The kinds of model an inspection knows, and the architectures each accepts (first = default).</summary>
public static class ModelKinds
{
    public const string Autoencoder = "autoencoder";
    public const string Unet = "unet";
    public const string TextEncoder = "text-encoder";
    public const string Detector = "detector";
    public const string Clip = "clip";
    /// <summary>An image generator folder written by train-ldm ("ldm") or train-gan ("dcgan"), as MiniGenImage samples it.</summary>
    public const string Generator = "generator";


    /// <summary>The kinds and the architectures each accepts, first = default.</summary>
    public static readonly IReadOnlyDictionary<string, string[]> Architectures = new Dictionary<string, string[]>
    {
        [Autoencoder] = ["autoencoder-kl"],
        [Unet] = ["unet2d-condition"],
        [TextEncoder] = ["clip-text"],
        [Detector] = [.. DetectorArchitectures.All.Select(a => a.Name), Lare2Evaluator.Architecture],
        [Clip] = ["clip-rn"],
        [Generator] = ["ldm", "dcgan"],
    };

    /// <summary>The generator architecture a generator.json names: latent diffusion ("ldm") or a DCGAN.</summary>
    public static string GeneratorArchitecture(GeneratorManifest manifest) =>
        manifest.Kind == GeneratorManifest.LatentDiffusionKind ? "ldm" : "dcgan";
}
