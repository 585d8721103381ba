namespace Forensics.ML.Data;

/// <summary>
/// What the per-sample work (decode + augment) gets besides the image: deterministic seeds and the pair it belongs to.
/// Seeds depend only on (run seed, epoch, position in the epoch), never on which thread runs the work.
/// </summary>
/// <param name="Seed">This draw's own seed: derived from (run seed, epoch, <paramref name="Index"/>), so an image drawn twice in an epoch gets two seeds.</param>
/// <param name="Epoch">The epoch.</param>
/// <param name="Index">The draw's position in the epoch (0-based, over all batches).</param>
/// <param name="Label">0 real, 1 fake.</param>
/// <param name="Pair">The pair's position in the epoch, for paired batches; null otherwise.</param>
/// <param name="PairSeed">One seed shared by both members of a pair; null when the draw is not part of a pair.</param>
/// <param name="Synced">True when both members of the pair must get the identical augmentation: use <see cref="AugmentationSeed"/>.</param>
public readonly record struct SampleContext(ulong Seed, int Epoch, int Index, int Label, int? Pair, ulong? PairSeed, bool Synced)
{
    /// <summary>The seed to draw the augmentation from: the pair's seed when <see cref="Synced"/>, else this draw's own (<see cref="SyncedPairs.AugmentationSeed"/>).</summary>
    public ulong AugmentationSeed => SyncedPairs.AugmentationSeed(this);
}

/// <summary>One draw of an epoch: the image and its context.</summary>
public sealed record PlannedSample(ImageSample Sample, SampleContext Context);

/// <summary>One batch of an epoch's plan, in the order the consumer gets it.</summary>
/// <param name="Epoch">The epoch.</param>
/// <param name="Number">0-based position of the batch in the epoch.</param>
/// <param name="Samples">The draws, in batch order.</param>
public sealed record PlannedBatch(int Epoch, int Number, IReadOnlyList<PlannedSample> Samples);

/// <summary>Plans an epoch: which images go in which batch, in which order, with which seeds. Same (seed, epoch), same plan.</summary>
public interface IBatchPlanner
{
    /// <summary>The batches of <paramref name="epoch"/>.</summary>
    IReadOnlyList<PlannedBatch> Plan(int epoch);
}

internal static class SeedStreams
{
    // Distinct stream tags keep the shuffle, per-draw and per-pair seeds of one (seed, epoch) unrelated.
    public const long Shuffle = 1, Draw = 2, Pair = 3, ShuffleFakes = 4;

    public static RandomSource Rng(ulong seed, int epoch, long stream) => new(Seeds.Derive(seed, epoch, stream));

    public static SampleContext Context(ulong seed, int epoch, int index, int label, int? pair = null, bool synced = false) =>
        new(Seeds.Derive(seed, epoch, Draw, index), epoch, index, label, pair,
            pair is { } p ? Seeds.Derive(seed, epoch, Pair, p) : null, synced);
}
