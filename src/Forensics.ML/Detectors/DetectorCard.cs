using System.Globalization;
using System.Text.Json;
using Forensics.ML.Imaging;
using TorchSharp;
using static TorchSharp.torch;

namespace Forensics.ML.Detectors;

/// <summary>A detector card that cannot be used; <see cref="Field"/> names the JSON field at fault ("input.size", ...).</summary>
public sealed class DetectorCardException : FormatException
{
    /// <summary>Creates the exception; the message starts with the source (file) and the field.</summary>
    public DetectorCardException(string? source, string field, string message)
        : base($"{(source is null ? "" : source + ": ")}{field}: {message}")
    {
        CardPath = source;
        Field = field;
    }

    /// <summary>The card file; null for JSON given inline.</summary>
    public string? CardPath { get; }

    /// <summary>The dotted JSON path of the offending field.</summary>
    public string Field { get; }
}

/// <summary>How an image's size is brought to what the network takes (the card's <c>input.sizePolicy</c>).</summary>
public enum SizePolicy
{
    /// <summary>The full image at its own size (the aligned paper's protocol).</summary>
    None,

    /// <summary>Resized to the card's size (antialiased bilinear/bicubic as torch's interpolate(antialias=True), or nearest).</summary>
    Resize,

    /// <summary>torchvision's CenterCrop: zero padding around a smaller image, then the centred window.</summary>
    CenterCrop,

    /// <summary>Zero padding at the right and bottom up to the size, then the top-left window.</summary>
    Pad,
}

/// <summary>The resampling filter of <see cref="SizePolicy.Resize"/>.</summary>
public enum CardInterpolation
{
    /// <summary>Bilinear, antialiased when downscaling.</summary>
    Bilinear,

    /// <summary>Bicubic as torch's interpolate(mode='bicubic', antialias=True) (PIL's kernel), antialiased when downscaling.</summary>
    Bicubic,

    /// <summary>Nearest neighbour (torch's 'nearest').</summary>
    Nearest,
}

/// <summary>What the network's output means (the card's <c>output.kind</c>).</summary>
public enum OutputKind
{
    /// <summary>One logit per image, P(fake) = sigmoid(logit).</summary>
    OneLogit,

    /// <summary>Two logits per image; <see cref="DetectorCard.FakeIndex"/> is the "fake" one, P(fake) = softmax[fake].</summary>
    TwoClass,

    /// <summary>One probability of "fake" per image, already in [0, 1].</summary>
    Probability,
}

/// <summary>How many images the network takes per forward (the card's <c>batching.mode</c>).</summary>
public enum CardBatching
{
    /// <summary>Any batch size (the evaluation's batching decides).</summary>
    Any,

    /// <summary>Exactly one image per forward.</summary>
    Single,

    /// <summary>Exactly <see cref="DetectorCard.BatchSize"/> images per forward; a short batch is filled with copies of its last image.</summary>
    Fixed,
}

/// <summary>
/// A detector package's card: how an image becomes the network's input, how many images go in per forward, and what the
/// output means. JSON (every field optional, defaults shown):
/// <code>
/// { "input": { "sizePolicy": "none|resize|center-crop|pad", "size": 224 | [h, w], "interpolation": "bilinear|bicubic|nearest",
///              "valueRange": [0, 1] | [0, 255], "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225], "channelOrder": "rgb|bgr" },
///   "batching": { "mode": "any|single|fixed", "size": 8 },
///   "output": { "kind": "one-logit|two-class|probability", "fakeIndex": 1 } }
/// </code>
/// The preprocessing is: decode (PIL convert('RGB')) -> float32 / 255 -> perturbation -> size policy -> x 255 for a
/// [0, 255] range -> (x - mean) / std (in the range's units) -> channel order. tests/.../fixtures/detectors/make_fixtures.py
/// is the same pipeline in PyTorch.
/// </summary>
public sealed record DetectorCard
{
    /// <summary>The size policy.</summary>
    public SizePolicy SizePolicy { get; init; } = SizePolicy.None;

    /// <summary>Target height and width (required unless the policy is none).</summary>
    public (int Height, int Width)? Size { get; init; }

    /// <summary>Resampling filter of the resize policy.</summary>
    public CardInterpolation Interpolation { get; init; } = CardInterpolation.Bilinear;

    /// <summary>Upper end of the value range: 1 ([0,1]) or 255 ([0,255]).</summary>
    public int ValueRangeMax { get; init; } = 1;

    /// <summary>Per-channel mean, in the value range's units, in RGB order.</summary>
    public IReadOnlyList<float> Mean { get; init; } = ImageOps.ImageNetMean;

    /// <summary>Per-channel standard deviation, in the value range's units, in RGB order.</summary>
    public IReadOnlyList<float> Std { get; init; } = ImageOps.ImageNetStd;

    /// <summary>True when the network takes BGR (channels flipped after normalisation).</summary>
    public bool Bgr { get; init; }

    /// <summary>Batching mode.</summary>
    public CardBatching Batching { get; init; } = CardBatching.Any;

    /// <summary>Images per forward with <see cref="CardBatching.Fixed"/>.</summary>
    public int BatchSize { get; init; } = 1;

    /// <summary>What the output means.</summary>
    public OutputKind Output { get; init; } = OutputKind.OneLogit;

    /// <summary>Index of "fake" among two-class outputs.</summary>
    public int FakeIndex { get; init; } = 1;

    /// <summary>Whether <see cref="Output"/> was stated (a card without it takes the probe's output width).</summary>
    public bool OutputDeclared { get; init; }

    /// <summary>The card of the built-in ResNet detectors: full image, [0,1], ImageNet statistics, RGB.</summary>
    public static DetectorCard Native(int numClasses) =>
        new() { Output = numClasses == 2 ? OutputKind.TwoClass : OutputKind.OneLogit, FakeIndex = 1, OutputDeclared = true };

    /// <summary>Output values per image the card expects.</summary>
    public int OutputWidth => Output == OutputKind.TwoClass ? 2 : 1;

    /// <summary>Whether every image leaves the size policy with the same size (so any two images can share a batch).</summary>
    public bool FixedInputSize => SizePolicy != SizePolicy.None;

    /// <summary>Reads a card file.</summary>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="DetectorCardException">Invalid JSON or field; the message names the file and the field.</exception>
    public static DetectorCard Load(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var full = Path.GetFullPath(path);
        if (!File.Exists(full)) throw new FileNotFoundException($"Detector card not found: {full}", full);
        var info = new FileInfo(full);
        if (info.Length > 1 << 20) throw new DetectorCardException(full, "(file)", $"{info.Length} bytes; a card is a small JSON file (at most 1 MiB).");
        return Parse(File.ReadAllText(full), full);
    }

    /// <summary>Parses card JSON (see the type's summary).</summary>
    /// <exception cref="DetectorCardException">Invalid JSON or field; the message names the field.</exception>
    public static DetectorCard Parse(string json, string? source = null)
    {
        ArgumentNullException.ThrowIfNull(json);
        JsonDocument doc;
        try { doc = JsonDocument.Parse(json, new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true }); }
        catch (JsonException e) { throw new DetectorCardException(source, "(json)", $"not valid JSON ({e.Message})."); }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new DetectorCardException(source, "(root)", "a card is a JSON object.");
            Known(root, source, "", "input", "batching", "output", "format", "name", "description");
            var card = new DetectorCard();
            if (root.TryGetProperty("input", out var input) && input.ValueKind != JsonValueKind.Null)
                card = ParseInput(card, Object(input, source, "input"), source);
            if (root.TryGetProperty("batching", out var batching) && batching.ValueKind != JsonValueKind.Null)
                card = ParseBatching(card, batching, source);
            if (root.TryGetProperty("output", out var output) && output.ValueKind != JsonValueKind.Null)
                card = ParseOutput(card, output, source);
            return card;
        }
    }

    private static DetectorCard ParseInput(DetectorCard card, JsonElement input, string? source)
    {
        Known(input, source, "input.", "sizePolicy", "size", "interpolation", "valueRange", "mean", "std", "channelOrder");
        if (input.TryGetProperty("sizePolicy", out var policy))
            card = card with
            {
                SizePolicy = Text(policy, source, "input.sizePolicy") switch
                {
                    "none" => SizePolicy.None,
                    "resize" => SizePolicy.Resize,
                    "center-crop" or "centercrop" or "center_crop" => SizePolicy.CenterCrop,
                    "pad" => SizePolicy.Pad,
                    var other => throw new DetectorCardException(source, "input.sizePolicy", $"'{other}' is not one of none, resize, center-crop, pad."),
                },
            };
        if (input.TryGetProperty("size", out var size) && size.ValueKind != JsonValueKind.Null)
        {
            (int, int) hw = size.ValueKind switch
            {
                JsonValueKind.Number => (Side(size, source, "input.size"), Side(size, source, "input.size")),
                JsonValueKind.Array when size.GetArrayLength() == 2 => (Side(size[0], source, "input.size[0]"), Side(size[1], source, "input.size[1]")),
                _ => throw new DetectorCardException(source, "input.size", "expected a side length or [height, width]."),
            };
            card = card with { Size = hw };
        }
        if (card.SizePolicy != SizePolicy.None && card.Size is null)
            throw new DetectorCardException(source, "input.size", $"required with sizePolicy '{PolicyName(card.SizePolicy)}'.");
        if (input.TryGetProperty("interpolation", out var interp))
            card = card with
            {
                Interpolation = Text(interp, source, "input.interpolation") switch
                {
                    "bilinear" => CardInterpolation.Bilinear,
                    "bicubic" => CardInterpolation.Bicubic,
                    "nearest" => CardInterpolation.Nearest,
                    var other => throw new DetectorCardException(source, "input.interpolation", $"'{other}' is not one of bilinear, bicubic, nearest."),
                },
            };
        if (input.TryGetProperty("valueRange", out var range))
        {
            var values = Numbers(range, source, "input.valueRange", 2);
            card = values switch
            {
                [0, 1] => card with { ValueRangeMax = 1 },
                [0, 255] => card with { ValueRangeMax = 255 },
                _ => throw new DetectorCardException(source, "input.valueRange", "expected [0, 1] or [0, 255]."),
            };
        }
        if (input.TryGetProperty("mean", out var mean))
            card = card with { Mean = Numbers(mean, source, "input.mean", 3).Select(v => (float)v).ToArray() };
        if (input.TryGetProperty("std", out var std))
        {
            var values = Numbers(std, source, "input.std", 3);
            if (values.Any(v => !(v > 0))) throw new DetectorCardException(source, "input.std", "every value must be > 0.");
            card = card with { Std = values.Select(v => (float)v).ToArray() };
        }
        if (input.TryGetProperty("channelOrder", out var order))
            card = card with
            {
                Bgr = Text(order, source, "input.channelOrder") switch
                {
                    "rgb" => false,
                    "bgr" => true,
                    var other => throw new DetectorCardException(source, "input.channelOrder", $"'{other}' is not one of rgb, bgr."),
                },
            };
        return card;
    }

    private static DetectorCard ParseBatching(DetectorCard card, JsonElement batching, string? source)
    {
        if (batching.ValueKind == JsonValueKind.String) batching = JsonDocument.Parse($"{{\"mode\": {batching.GetRawText()}}}").RootElement;
        Object(batching, source, "batching");
        Known(batching, source, "batching.", "mode", "size");
        var mode = batching.TryGetProperty("mode", out var m) ? Text(m, source, "batching.mode") : "any";
        card = mode switch
        {
            "any" => card with { Batching = CardBatching.Any },
            "single" or "per-image" => card with { Batching = CardBatching.Single, BatchSize = 1 },
            "fixed" => card with { Batching = CardBatching.Fixed },
            _ => throw new DetectorCardException(source, "batching.mode", $"'{mode}' is not one of any, single, fixed."),
        };
        if (batching.TryGetProperty("size", out var size))
        {
            if (card.Batching != CardBatching.Fixed) throw new DetectorCardException(source, "batching.size", "only with mode 'fixed'.");
            if (!size.TryGetInt32(out var n) || n < 1 || n > 4096) throw new DetectorCardException(source, "batching.size", "expected an integer 1..4096.");
            card = card with { BatchSize = n };
        }
        else if (card.Batching == CardBatching.Fixed) throw new DetectorCardException(source, "batching.size", "required with mode 'fixed'.");
        return card;
    }

    private static DetectorCard ParseOutput(DetectorCard card, JsonElement output, string? source)
    {
        Object(output, source, "output");
        Known(output, source, "output.", "kind", "fakeIndex");
        if (!output.TryGetProperty("kind", out var k)) throw new DetectorCardException(source, "output.kind", "required (one-logit, two-class or probability).");
        card = Text(k, source, "output.kind") switch
        {
            "one-logit" or "logit" => card with { Output = OutputKind.OneLogit },
            "two-class" => card with { Output = OutputKind.TwoClass },
            "probability" => card with { Output = OutputKind.Probability },
            var other => throw new DetectorCardException(source, "output.kind", $"'{other}' is not one of one-logit, two-class, probability."),
        };
        card = card with { OutputDeclared = true };
        if (output.TryGetProperty("fakeIndex", out var fake))
        {
            if (card.Output != OutputKind.TwoClass) throw new DetectorCardException(source, "output.fakeIndex", "only with kind 'two-class'.");
            if (!fake.TryGetInt32(out var i) || i is not (0 or 1)) throw new DetectorCardException(source, "output.fakeIndex", "expected 0 or 1.");
            card = card with { FakeIndex = i };
        }
        else if (card.Output == OutputKind.TwoClass) throw new DetectorCardException(source, "output.fakeIndex", "required with kind 'two-class' (the index of \"fake\": 0 or 1).");
        return card;
    }

    /// <summary>The card as JSON, in the same shape <see cref="Parse"/> reads.</summary>
    public string ToJson()
    {
        var input = new Dictionary<string, object?>
        {
            ["sizePolicy"] = PolicyName(SizePolicy),
            ["size"] = Size is { } s ? new[] { s.Height, s.Width } : null,
            ["interpolation"] = Interpolation.ToString().ToLowerInvariant(),
            ["valueRange"] = new[] { 0, ValueRangeMax },
            ["mean"] = Mean,
            ["std"] = Std,
            ["channelOrder"] = Bgr ? "bgr" : "rgb",
        };
        var batching = new Dictionary<string, object?> { ["mode"] = Batching.ToString().ToLowerInvariant() };
        if (Batching == CardBatching.Fixed) batching["size"] = BatchSize;
        var output = new Dictionary<string, object?> { ["kind"] = OutputName(Output) };
        if (Output == OutputKind.TwoClass) output["fakeIndex"] = FakeIndex;
        return JsonSerializer.Serialize(new Dictionary<string, object?> { ["input"] = input, ["batching"] = batching, ["output"] = output },
            new JsonSerializerOptions { WriteIndented = true });
    }

    /// <summary>The card's name of a size policy.</summary>
    public static string PolicyName(SizePolicy policy) => policy switch
    {
        SizePolicy.CenterCrop => "center-crop",
        _ => policy.ToString().ToLowerInvariant(),
    };

    /// <summary>The card's name of an output kind.</summary>
    public static string OutputName(OutputKind kind) => kind switch
    {
        OutputKind.OneLogit => "one-logit",
        OutputKind.TwoClass => "two-class",
        _ => "probability",
    };

    /// <summary>
    /// The network input for a decoded (and perturbed) image [3,H,W] in [0,1]: size policy, value range, mean/std,
    /// channel order. Returns a new float32 tensor.
    /// </summary>
    public Tensor Prepare(Tensor image)
    {
        ArgumentNullException.ThrowIfNull(image);
        using var scope = NewDisposeScope();
        var x = ApplySizePolicy(image);
        if (ValueRangeMax != 1) x = x * (float)ValueRangeMax;
        x = ImageOps.Normalize(x, Mean, Std);
        if (Bgr) x = x.flip(0);
        return x.contiguous().MoveToOuterDisposeScope();
    }

    private Tensor ApplySizePolicy(Tensor x)
    {
        if (SizePolicy == SizePolicy.None || Size is not { } size) return x;
        var (h, w) = size;
        var height = (int)x.shape[1];
        var width = (int)x.shape[2];
        switch (SizePolicy)
        {
            case SizePolicy.Resize:
                if (height == h && width == w) return x;
                var resized = Interpolation == CardInterpolation.Nearest
                    ? nn.functional.interpolate(x.unsqueeze(0), [h, w], mode: InterpolationMode.Nearest)
                    : nn.functional.interpolate(x.unsqueeze(0), [h, w],
                        mode: Interpolation == CardInterpolation.Bicubic ? InterpolationMode.Bicubic : InterpolationMode.Bilinear,
                        align_corners: false, antialias: true);
                return resized.squeeze(0).clamp(0f, 1f);
            case SizePolicy.CenterCrop:
                if (height < h || width < w)
                {
                    int dh = Math.Max(h - height, 0), dw = Math.Max(w - width, 0);
                    x = nn.functional.pad(x, [dw / 2, (dw + 1) / 2, dh / 2, (dh + 1) / 2], PaddingModes.Constant, 0);
                    height = (int)x.shape[1];
                    width = (int)x.shape[2];
                }
                // Python's round() is round-half-to-even, as Math.Round's default.
                var top = (int)Math.Round((height - h) / 2.0);
                var left = (int)Math.Round((width - w) / 2.0);
                return x.narrow(1, top, h).narrow(2, left, w);
            case SizePolicy.Pad:
                if (height < h || width < w)
                    x = nn.functional.pad(x, [0, Math.Max(w - width, 0), 0, Math.Max(h - height, 0)], PaddingModes.Constant, 0);
                return x.narrow(1, 0, h).narrow(2, 0, w);
            default:
                return x;
        }
    }

    private static void Known(JsonElement obj, string? source, string prefix, params string[] names)
    {
        foreach (var p in obj.EnumerateObject())
            if (!names.Contains(p.Name, StringComparer.Ordinal))
                throw new DetectorCardException(source, prefix + p.Name, $"unknown field; known: {string.Join(", ", names)}.");
    }

    private static JsonElement Object(JsonElement e, string? source, string field) =>
        e.ValueKind == JsonValueKind.Object ? e : throw new DetectorCardException(source, field, "expected an object.");

    private static string Text(JsonElement e, string? source, string field) =>
        e.ValueKind == JsonValueKind.String ? e.GetString()!.Trim().ToLowerInvariant() : throw new DetectorCardException(source, field, "expected a string.");

    private static int Side(JsonElement e, string? source, string field) =>
        e.TryGetInt32(out var v) && v is >= 1 and <= 8192 ? v : throw new DetectorCardException(source, field, "expected an integer side length 1..8192.");

    private static double[] Numbers(JsonElement e, string? source, string field, int count)
    {
        if (e.ValueKind != JsonValueKind.Array || e.GetArrayLength() != count)
            throw new DetectorCardException(source, field, $"expected an array of {count} numbers.");
        var values = new double[count];
        for (var i = 0; i < count; i++)
        {
            if (!e[i].TryGetDouble(out values[i]) || !double.IsFinite(values[i]))
                throw new DetectorCardException(source, $"{field}[{i.ToString(CultureInfo.InvariantCulture)}]", "expected a finite number.");
        }
        return values;
    }
}
