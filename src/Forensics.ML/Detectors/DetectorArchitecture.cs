using System.Text.RegularExpressions;
using Forensics.ML.Models;
using Forensics.ML.Weights;

namespace Forensics.ML.Detectors;

/// <summary>
/// A detector network by name: a ResNet configuration whose width, depth and head size are read from a checkpoint's
/// state dict (see <see cref="OptionsFor"/>). What the weights cannot tell (stem and pool strides, dropout) comes from
/// the architecture: a res50nodown checkpoint and a torchvision ResNet-50 checkpoint have identical keys and shapes.
/// </summary>
/// <param name="Name">The name used on the command line and in reports ("res50nodown", "resnet50").</param>
/// <param name="Description">One line for help texts.</param>
/// <param name="Template">The full-size configuration; its strides and dropout are kept, width, layers and classes are inferred.</param>
/// <param name="PackageFormat">For a detector package (any network exported from PyTorch plus a card): "torchscript" or
/// "onnx"; null for the built-in ResNets, whose network is ours and whose checkpoints are state dicts.</param>
public sealed record DetectorArchitecture(string Name, string Description, ResNetOptions Template, string? PackageFormat = null)
{
    /// <summary>True for a detector package (TorchScript or ONNX file with a card) rather than a state dict of our ResNet.</summary>
    public bool IsPackage => PackageFormat is not null;

    private static readonly Regex BlockKey = new(@"^layer([1-4])\.(\d+)\.", RegexOptions.CultureInvariant);

    /// <summary>
    /// The configuration of the network stored in <paramref name="weights"/>: BaseWidth from conv1.weight [W,3,7,7],
    /// Layers from the highest block index N of each stage's layerK.N.* keys, NumClasses from the rows of fc.weight.
    /// Whatever the state dict does not show keeps the template's value, so a state dict of another network yields the
    /// full-size configuration and the strict load then names every missing and unexpected key.
    /// </summary>
    public ResNetOptions OptionsFor(StateDict weights)
    {
        ArgumentNullException.ThrowIfNull(weights);
        var options = Template;
        if (weights.TryGetValue("conv1.weight", out var stem) && stem.dim() == 4 && stem.shape[0] > 0)
            options = options with { BaseWidth = (int)stem.shape[0] };
        if (weights.TryGetValue("fc.weight", out var fc) && fc.dim() == 2 && fc.shape[0] > 0)
            options = options with { NumClasses = (int)fc.shape[0] };

        var blocks = new int[4];
        foreach (var name in weights.Names)
        {
            var match = BlockKey.Match(name);
            if (!match.Success || !int.TryParse(match.Groups[2].ValueSpan, out var block) || block > 10_000) continue;
            var stage = match.Groups[1].ValueSpan[0] - '1';
            blocks[stage] = Math.Max(blocks[stage], block + 1);
        }
        // Only a state dict that shows all four stages defines the depth; a partial one keeps the template's.
        if (blocks.All(n => n > 0)) options = options with { Layers = blocks };
        return options;
    }

    /// <summary>True when the state dict carries the keys that <see cref="OptionsFor"/> reads the shape from.</summary>
    public static bool LooksLikeResNet(StateDict weights) =>
        weights.ContainsKey("conv1.weight") && weights.ContainsKey("fc.weight") &&
        weights.Names.Any(n => n.StartsWith("layer4.", StringComparison.Ordinal));
}

/// <summary>The registry of detector architectures known to <see cref="DetectorCheckpoint"/>.</summary>
public static class DetectorArchitectures
{
    /// <summary>
    /// The dataset-alignment paper's detector (AlignedForensics "res50nodown"): torchvision's ResNet-50 whose 7x7 stem
    /// conv and max-pool have stride 1, dropout 0.5 before fc 2048 -> 1. The default for checkpoints.
    /// </summary>
    public static readonly DetectorArchitecture Res50NoDown = new("res50nodown",
        "ResNet-50 without stem down-sampling (stride-1 conv1 and max-pool), dropout 0.5, fc -> 1 logit (alignment paper)",
        ResNetOptions.Res50NoDown());

    /// <summary>torchvision's ResNet-50 (stride-2 stem and pool) with a detector head: 1 logit, or 2 (class 1 = fake).</summary>
    public static readonly DetectorArchitecture ResNet50 = new("resnet50",
        "torchvision ResNet-50 (stride-2 stem and max-pool) with a 1- or 2-logit head (the usual fake-image detector)",
        ResNetOptions.ResNet50(1));

    /// <summary>
    /// Any network saved by torch.jit.trace or torch.jit.script (a .pt file is code: see the README's Security section),
    /// described by a card. The template is unused: the file carries its own network.
    /// </summary>
    public static readonly DetectorArchitecture TorchScript = new("torchscript",
        "a TorchScript detector (torch.jit.trace / torch.jit.script .pt) with its card", ResNetOptions.ResNet50(1), "torchscript");

    /// <summary>Any network exported by torch.onnx.export, run by ONNX Runtime, described by a card.</summary>
    public static readonly DetectorArchitecture Onnx = new("onnx",
        "an ONNX detector (torch.onnx.export .onnx, run by ONNX Runtime) with its card", ResNetOptions.ResNet50(1), "onnx");

    /// <summary>Every registered architecture, default first.</summary>
    public static IReadOnlyList<DetectorArchitecture> All { get; } = [Res50NoDown, ResNet50, TorchScript, Onnx];

    /// <summary>The architecture used when none is named.</summary>
    public static DetectorArchitecture Default => Res50NoDown;

    /// <summary>The names, comma-separated, for help texts and errors.</summary>
    public static string Names => string.Join(", ", All.Select(a => a.Name));

    /// <summary>The architecture called <paramref name="name"/> (case-insensitive; '-' and '_' ignored, so "res50-nodown" works).</summary>
    /// <exception cref="ArgumentException">No architecture has that name; the message lists the known ones.</exception>
    public static DetectorArchitecture Get(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        static string Key(string s) => s.Replace("-", "").Replace("_", "").Trim().ToLowerInvariant();
        return All.FirstOrDefault(a => Key(a.Name) == Key(name))
               ?? throw new ArgumentException($"Unknown detector architecture '{name}'; known: {Names}.", nameof(name));
    }
}
