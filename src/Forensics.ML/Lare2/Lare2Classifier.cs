using Forensics.ML.Models.Clip;
using Forensics.ML.Weights;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using Forensics.ML.Training;
using Forensics.ML.Evaluation;
using Forensics.ML.Models;

namespace Forensics.ML.Lare2;

/// <summary>
/// Holds the CLIP image tower under the name <c>visual</c>, so that the classifier's keys read
/// <c>clip_model.visual.*</c> as in the authors' checkpoints (their clip_model is a whole CLIP model; only its image
/// tower takes part in the classifier's forward).
/// </summary>
public sealed class ClipImageEncoder : nn.Module<Tensor, (Tensor Embedding, Tensor Layer3)>
{
    private readonly ModifiedResNet visual;

    /// <summary>The image tower.</summary>
    public ModifiedResNet Visual => visual;

    /// <summary>Wraps a new tower built from <paramref name="options"/>.</summary>
    public ClipImageEncoder(ModifiedResNetOptions options) : base("CLIP")
    {
        visual = new ModifiedResNet(options);
        RegisterComponents();
    }

    /// <inheritdoc cref="ModifiedResNet.forward"/>
    public override (Tensor Embedding, Tensor Layer3) forward(Tensor image) => visual.call(image);
}

/// <summary>What <see cref="Lare2Classifier.Load(string, out Lare2LoadReport)"/> did with the file's tensors.</summary>
/// <param name="Report">The strict load of every classifier tensor (always clean: any disagreement throws).</param>
/// <param name="IgnoredTextTower">
/// Names of CLIP's text tower (clip_model.transformer.*, token_embedding, positional_embedding, ln_final,
/// text_projection, logit_scale) that the authors' checkpoints carry because their clip_model is a whole CLIP model;
/// the classifier never runs them, so they are dropped.
/// </param>
/// <summary>The intermediate results of one <see cref="Lare2Classifier"/> forward; disposing it disposes them.</summary>
/// <param name="Embedding">CLIP's attention-pooled embedding [B, OutputDim].</param>
/// <param name="Layer3">The tower's layer3 map [B, d_model, G, G].</param>
/// <param name="Spatial">The spatial branch's refined feature [B, d_model] (zeros under NoSpatial).</param>
/// <param name="Channel">The channel branch's gated feature [B, d_model] (zeros under NoChannel).</param>
public sealed record Lare2Features(Tensor Embedding, Tensor Layer3, Tensor Spatial, Tensor Channel) : IDisposable
{
    /// <summary>The head's input, [Embedding, Spatial, Channel] concatenated: [B, OutputDim + 2 · d_model].</summary>
    public Tensor HeadInput() => cat([Embedding, Spatial, Channel], 1);

    /// <inheritdoc/>
    public void Dispose()
    {
        Embedding.Dispose();
        Layer3.Dispose();
        Spatial.Dispose();
        Channel.Dispose();
    }
}

public sealed record Lare2LoadReport(LoadReport Report, IReadOnlyList<string> IgnoredTextTower);

/// <summary>
/// LaRE² (Luo et al., CVPR 2024), the authors' CLipClassifierWMapV6 with clip_type RN50: CLIP's ModifiedResNet gives the
/// attention-pooled embedding and the layer3 map; the LaRE map [B, 4, h, w] is adaptively average-pooled to the layer3
/// grid and projected by a 1x1 conv to one logit map per head, which guides <see cref="SpatialRefinement"/>;
/// <see cref="ChannelRefinement"/> gates the pooled layer3 features by the pooled LaRE map; the head reads
/// [embedding, spatial, channel] (3072 for RN50) and writes 2 logits (score = softmax[:, 1]).
/// Module names are the authors' (clip_model.visual, fc, conv, conv_align, attn_pool, channel_align), so their training
/// checkpoints load strictly (<see cref="Load(string)"/>). <c>conv_align</c>, a Conv2d(4 → d_model, 1x1) that their
/// constructor creates but their forward never calls, is kept so the state dicts agree; it does not affect the output.
/// </summary>
public sealed class Lare2Classifier : nn.Module<Tensor, Tensor, Tensor>
{
    /// <summary>The prefix of the CLIP image tower's tensors in the classifier's state dict.</summary>
    public const string BackbonePrefix = "clip_model.visual.";

    private static readonly string[] TextTowerRoots =
        ["transformer.", "token_embedding.", "positional_embedding", "ln_final.", "text_projection", "logit_scale"];

    private readonly ClipImageEncoder clip_model;
    private readonly Linear fc;
    private readonly Conv2d conv;
    private readonly Conv2d conv_align;
    private readonly SpatialRefinement attn_pool;
    private readonly ChannelRefinement channel_align;

    /// <summary>The configuration this classifier was built from.</summary>
    public Lare2Options Options { get; }

    /// <summary>The ablation forward applies (initially <see cref="Lare2Options.Ablation"/>).</summary>
    public EgreAblation Ablation { get; set; }

    /// <summary>The CLIP image tower.</summary>
    public ModifiedResNet Backbone => clip_model.Visual;

    /// <summary>Builds the classifier with the authors' initialisation of each part (the tower with CLIP's own).</summary>
    public Lare2Classifier(Lare2Options options) : base("CLipClassifierWMapV6")
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Options = options;
        Ablation = options.Ablation;
        var egre = options.Egre;
        clip_model = new ClipImageEncoder(options.Backbone);
        fc = nn.Linear(options.HeadInputs, Lare2Options.NumClasses);
        conv = nn.Conv2d(egre.LareChannels, egre.Heads, kernel_size: 1);
        conv_align = nn.Conv2d(egre.LareChannels, egre.ModelDim, kernel_size: 1);
        attn_pool = new SpatialRefinement(egre);
        channel_align = new ChannelRefinement(egre);
        RegisterComponents();
    }

    /// <summary>
    /// Logits [B, 2] of ImageNet-normalised images <paramref name="image"/> [B, 3, R, R] (R = the tower's input
    /// resolution, 224 for RN50) and their LaRE maps <paramref name="lare"/> [B, 4, h, w] (32x32 from SD v1.5).
    /// </summary>
    public override Tensor forward(Tensor image, Tensor lare)
    {
        using var features = ForwardFeatures(image, lare);
        using var input = features.HeadInput();
        return fc.call(input);
    }

    /// <summary>
    /// The head's three inputs and the layer3 map for <paramref name="image"/> and <paramref name="lare"/> under the
    /// current <see cref="Ablation"/> (a switched-off branch is zeros [B, d_model]); for inspection and tests.
    /// </summary>
    public Lare2Features ForwardFeatures(Tensor image, Tensor lare)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(lare);
        CheckLare(image, lare);
        var egre = Options.Egre;

        using var scope = NewDisposeScope();
        var (embedding, layer3) = clip_model.call(image);
        var map = lare.to(conv.weight!.dtype, conv.weight.device);
        if (Ablation.HasFlag(EgreAblation.ZeroLare)) map = zeros_like(map);
        long batch = image.shape[0];

        Tensor spatial;
        if (Ablation.HasFlag(EgreAblation.NoSpatial))
            spatial = zeros(batch, egre.ModelDim, dtype: layer3.dtype, device: layer3.device);
        else
        {
            // The authors pool the whole 32x32 map to the layer3 grid, then give each head its own logit map.
            var aligned = nn.functional.adaptive_avg_pool2d(map, [egre.GridSize, egre.GridSize]);
            spatial = attn_pool.call(layer3, conv.call(aligned));
        }
        var channel = Ablation.HasFlag(EgreAblation.NoChannel)
            ? zeros(batch, egre.ModelDim, dtype: layer3.dtype, device: layer3.device)
            : channel_align.call(layer3, map);
        var features = new Lare2Features(embedding, layer3, spatial, channel);
        foreach (var t in new[] { embedding, layer3, spatial, channel }) t.MoveToOuterDisposeScope();
        return features;
    }

    /// <summary>P(fake) per image, softmax(logits)[:, 1], as the authors' evaluation reads it.</summary>
    public Tensor Score(Tensor image, Tensor lare)
    {
        using var logits = forward(image, lare);
        return Score(logits);
    }

    /// <summary>P(fake) = softmax(<paramref name="logits"/>)[:, 1] of logits [B, 2].</summary>
    public static Tensor Score(Tensor logits)
    {
        ArgumentNullException.ThrowIfNull(logits);
        if (logits.dim() != 2 || logits.shape[1] != Lare2Options.NumClasses)
            throw new ArgumentException($"LaRE² logits must be [B, 2], got [{string.Join(", ", logits.shape)}].", nameof(logits));
        using var probabilities = logits.softmax(1);
        return probabilities.select(1, 1).clone();
    }

    private void CheckLare(Tensor image, Tensor lare)
    {
        var channels = Options.Egre.LareChannels;
        if (lare.dim() != 4 || lare.shape[1] != channels || lare.shape[2] < 1 || lare.shape[3] < 1)
            throw new ArgumentException(
                $"Lare2Classifier: the LaRE map must be [B, {channels}, h, w] (the SD latent's {channels} channels, 32x32 at 256 " +
                $"pixels), got [{string.Join(", ", lare.shape)}].", nameof(lare));
        if (image.dim() >= 1 && lare.shape[0] != image.shape[0])
            throw new ArgumentException(
                $"Lare2Classifier: {image.shape[0]} images but {lare.shape[0]} LaRE maps; each image needs its own map.", nameof(lare));
        if (!lare.is_floating_point())
            throw new ArgumentException($"Lare2Classifier: the LaRE map must be a floating-point tensor, got {lare.dtype}.", nameof(lare));
    }

    /// <summary>
    /// Loads a LaRE² checkpoint: the authors' training output (torch.save(model.state_dict()), 'module.' prefixes from
    /// DataParallel/DistributedDataParallel removed, CLIP's text tower dropped) or one written by <see cref="Save"/>.
    /// Options are inferred from the shapes (<see cref="InferOptions"/>); every classifier tensor must be in the file
    /// with its shape and nothing else may be left over. Returns the model in eval mode. Call
    /// <c>TorchRuntime.EnsureLoaded()</c> first.
    /// </summary>
    /// <exception cref="FileNotFoundException">No file at <paramref name="path"/>.</exception>
    /// <exception cref="InvalidDataException">Not a LaRE² checkpoint: the message names the file and the offending keys.</exception>
    public static Lare2Classifier Load(string path) => Load(path, out _);

    /// <inheritdoc cref="Load(string)"/>
    /// <param name="path">The checkpoint (.pth/.pt zip or .safetensors).</param>
    /// <param name="report">What was loaded and which text-tower tensors were dropped.</param>
    public static Lare2Classifier Load(string path, out Lare2LoadReport report)
    {
        ArgumentNullException.ThrowIfNull(path);
        var full = System.IO.Path.GetFullPath(path);
        using var weights = WeightsFile.Load(full, upcastHalf: true);
        var ignored = weights.Names.Where(IsTextTower).ToList();
        foreach (var name in ignored)
            if (weights.Remove(name, out var tensor)) tensor.Dispose();

        Lare2Options options;
        try
        {
            options = InferOptions(weights);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"{full}: not a LaRE² checkpoint: {e.Message}", e);
        }
        var model = new Lare2Classifier(options);
        try
        {
            var loaded = StateDictLoader.Load(model, weights, strict: true);
            model.eval();
            report = new Lare2LoadReport(loaded, ignored);
            return model;
        }
        catch (WeightsMismatchException e)
        {
            model.Dispose();
            throw new InvalidDataException($"{full}: the weights do not fit a LaRE² classifier inferred as {Describe(options)}: {e.Report.Describe()}", e);
        }
    }

    /// <summary>
    /// Writes the classifier's state dict as safetensors under the authors' names (clip_model.visual.*, fc, conv,
    /// conv_align, attn_pool.*, channel_align.*), which <see cref="Load(string)"/> reads back and their code can load
    /// with load_state_dict(strict=False) (the text tower is not written).
    /// </summary>
    public void Save(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var dict = state_dict();
        SafeTensors.Save(path, dict.Select(p => (p.Key, p.Value)),
            new Dictionary<string, string> { ["format"] = "pt", ["architecture"] = "lare2", ["options"] = Describe(Options) });
    }

    /// <summary>True for a CLIP text-tower name under clip_model (anything but clip_model.visual.*).</summary>
    public static bool IsTextTower(string name)
    {
        const string root = "clip_model.";
        if (!name.StartsWith(root, StringComparison.Ordinal) || name.StartsWith(BackbonePrefix, StringComparison.Ordinal)) return false;
        var rest = name[root.Length..];
        return TextTowerRoots.Any(r => rest.StartsWith(r, StringComparison.Ordinal));
    }

    /// <summary>
    /// The options of the classifier whose tensors are in <paramref name="weights"/>: the tower as CLIP's build_model
    /// infers it under clip_model.visual.; heads and LaRE channels from conv.weight [h, c, 1, 1]; d_model from
    /// attn_pool.attention.fc_q.weight [h·d_k, d_model]; d_v from fc_v; the grid from attn_pool.positional_embedding
    /// [G² + 1, d_model]; the gate width from channel_align.fc.0.weight [hidden, c]. Shape disagreements elsewhere are
    /// left to the strict load, which names them.
    /// </summary>
    public static Lare2Options InferOptions(StateDict weights)
    {
        ArgumentNullException.ThrowIfNull(weights);
        long[] Shape(string key, int rank)
        {
            if (!weights.TryGetValue(key, out var tensor))
                throw new InvalidDataException($"the state dict has no '{key}'.");
            if (tensor.shape.Length != rank)
                throw new InvalidDataException($"'{key}' has shape [{string.Join(", ", tensor.shape)}], expected {rank} dimensions.");
            return tensor.shape;
        }

        var backbone = ModifiedResNetOptions.InferFrom(weights, BackbonePrefix);
        var convShape = Shape("conv.weight", 4);
        var heads = convShape[0];
        var query = Shape("attn_pool.attention.fc_q.weight", 2);
        var value = Shape("attn_pool.attention.fc_v.weight", 2);
        if (query[0] % heads != 0 || value[0] % heads != 0)
            throw new InvalidDataException(
                $"conv.weight gives {heads} heads, which do not divide attn_pool.attention.fc_q/fc_v's {query[0]}/{value[0]} outputs.");
        var rows = Shape("attn_pool.positional_embedding", 2)[0];
        var grid = (long)Math.Round(Math.Sqrt(rows - 1));
        if (grid < 1 || grid * grid + 1 != rows)
            throw new InvalidDataException($"'attn_pool.positional_embedding' has {rows} rows; a square grid plus the mean token needs n² + 1.");
        var hidden = Shape("channel_align.fc.0.weight", 2)[0];

        var options = new Lare2Options
        {
            Backbone = backbone,
            Egre = new EgreOptions
            {
                ModelDim = checked((int)query[1]),
                Heads = checked((int)heads),
                KeyDim = checked((int)(query[0] / heads)),
                ValueDim = checked((int)(value[0] / heads)),
                LareChannels = checked((int)convShape[1]),
                Hidden = checked((int)hidden),
                GridSize = checked((int)grid),
            },
        };
        try
        {
            options.Validate();
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException($"the inferred options are invalid: {e.Message}", e);
        }
        return options;
    }

    private static string Describe(Lare2Options o) =>
        $"{o.Backbone} + EGRE(d_model {o.Egre.ModelDim}, heads {o.Egre.Heads}, d_k {o.Egre.KeyDim}, d_v {o.Egre.ValueDim}, " +
        $"lare {o.Egre.LareChannels}, hidden {o.Egre.Hidden}, grid {o.Egre.GridSize})";
}
