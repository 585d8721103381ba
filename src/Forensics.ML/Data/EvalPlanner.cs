namespace Forensics.ML.Data;

/// <summary>How <see cref="EvalPlanner"/> groups images for evaluation.</summary>
public enum EvalBatching
{
    /// <summary>One image per batch: the full image at any size (the aligned paper's test protocol).</summary>
    Single,

    /// <summary>
    /// Images of equal scanned size (H, W) grouped into batches of up to the batch size, and of at most the planner's
    /// pixel budget (a batch of one image over it); groups in order of first appearance. An image whose size was not
    /// scanned (a set not built from a manifest) is scored alone. In eval mode a network scores
    /// each image of a batch on its own (batch norm uses its running statistics), so the scores equal batch 1's up to float
    /// rounding.
    /// </summary>
    BySize,
}

/// <summary>
/// Evaluation batches: every image of the set exactly once, in set order (no shuffling, no balancing). With
/// <see cref="EvalBatching.BySize"/> the per-sample work must map equal input sizes to equal output sizes (true for
/// "full image, no resize").
/// </summary>
public sealed class EvalPlanner : IBatchPlanner
{
    private readonly ImageSet set;
    private readonly EvalBatching batching;
    private readonly int maxBatchSize;
    private readonly ulong seed;
    private readonly bool sameSize;
    private readonly long maxBatchPixels;

    /// <summary>
    /// A planner over <paramref name="set"/>. <paramref name="sameSizeAfterPrepare"/>: the per-sample work brings every
    /// image to one size (a detector card's resize, crop or pad), so BySize batches any images together.
    /// <paramref name="maxBatchPixels"/>: with BySize, a batch holds at most this many scanned pixels (width x height
    /// summed), so batching never needs more memory than one image at that size; at least one image per batch.
    /// </summary>
    /// <exception cref="ArgumentException">maxBatchSize or maxBatchPixels below 1.</exception>
    public EvalPlanner(ImageSet set, EvalBatching batching = EvalBatching.Single, int maxBatchSize = 1, ulong seed = 0, bool sameSizeAfterPrepare = false,
        long maxBatchPixels = long.MaxValue)
    {
        this.set = set ?? throw new ArgumentNullException(nameof(set));
        sameSize = sameSizeAfterPrepare;
        if (maxBatchSize < 1) throw new ArgumentException($"maxBatchSize must be at least 1; got {maxBatchSize}.", nameof(maxBatchSize));
        if (maxBatchPixels < 1) throw new ArgumentException($"maxBatchPixels must be at least 1; got {maxBatchPixels}.", nameof(maxBatchPixels));
        this.maxBatchPixels = maxBatchPixels;
        this.batching = batching;
        this.maxBatchSize = batching == EvalBatching.Single ? 1 : maxBatchSize;
        this.seed = seed;
    }

    /// <inheritdoc/>
    public IReadOnlyList<PlannedBatch> Plan(int epoch)
    {
        var groups = batching == EvalBatching.Single
            ? set.Select(s => new[] { s }).ToList()
            : set.GroupBy(s => sameSize ? (0, 0) : s.Width > 0 && s.Height > 0 ? (s.Height, s.Width) : (-1, -1))
                .SelectMany(g => g.Chunk(g.Key == (-1, -1) ? 1 : BatchSizeOf(g.Key.Item1, g.Key.Item2))).ToList();
        var index = 0;
        int BatchSizeOf(int height, int width) => height <= 0 || width <= 0
            ? maxBatchSize
            : (int)Math.Clamp(maxBatchPixels / ((long)height * width), 1, maxBatchSize);
        return groups
            .Select((g, number) => new PlannedBatch(epoch, number,
                g.Select(s => new PlannedSample(s, SeedStreams.Context(seed, epoch, index++, s.Label))).ToList()))
            .ToList();
    }
}
