namespace Portal.Runs;

/// <summary>
/// Portal:Limits: the upper bounds of the size-like config fields of every job kind, so a config that would allocate
/// terabytes or run for years (<c>"width": 1000000</c>) is a 400 naming the field when it is queued, not a failed run.
/// The defaults are well above every recipe the portal ships (and the papers' full-size settings); raise one in
/// appsettings.json for a larger machine. Lower bounds (at least 1, ...) stay with each job's own checks.
/// </summary>
public sealed class ConfigLimits
{
    /// <summary>res50nodown's base width (64 in the paper).</summary>
    public int Width { get; set; } = 512;
    /// <summary>Blocks per ResNet stage, each entry of "layers" ([3, 4, 6, 3] in ResNet-50).</summary>
    public int LayerBlocks { get; set; } = 64;
    /// <summary>Image sizes in pixels: the training crop ("crop", 96 or 256 in the recipes) and LaRE's "resizeTo" (256).</summary>
    public int ImageSize { get; set; } = 1024;
    /// <summary>Real/fake pairs per training batch ("pairsPerBatch": 64, LaRE² 24).</summary>
    public int PairsPerBatch { get; set; } = 1024;
    /// <summary>Images per batch of evaluation ("maxBatch"), alignment and LaRE extraction ("batch").</summary>
    public int Batch { get; set; } = 1024;
    /// <summary>Training epochs (1000 as an upper bound with early stopping in the paper's recipe; LaRE² 100).</summary>
    public int Epochs { get; set; } = 10_000;
    /// <summary>LaRE's noise ensemble per image ("ensemble": 4).</summary>
    public int Ensemble { get; set; } = 64;
    /// <summary>Denoising steps of the generation cost estimate (GET /api/models/cost?steps=, 50).</summary>
    public int Steps { get; set; } = 10_000;
    /// <summary>Bootstrap resamples of the confidence intervals ("bootstrap": 1000).</summary>
    public int Bootstrap { get; set; } = 100_000;
    /// <summary>Points of a robustness sweep ("severities": the axis's defaults have at most 8).</summary>
    public int Severities { get; set; } = 64;

    /// <summary>Throws a <see cref="FieldException"/> naming <paramref name="field"/> when <paramref name="value"/> is over <paramref name="max"/>.</summary>
    public static void AtMost(string field, long value, int max, string setting)
    {
        if (value > max)
            throw new FieldException(field, $"{field} is {value}; this portal accepts at most {max} (Portal:Limits:{setting})");
    }
}
