namespace Forensics.ML.Data;

/// <summary>Options of <see cref="PairSampler"/>.</summary>
public sealed record PairSamplerOptions
{
    /// <summary>Pairs per batch (N): a batch holds 2N images. The aligned paper used 64.</summary>
    public int PairsPerBatch { get; init; } = 64;

    /// <summary>Paired with synced augmentation, paired without, or independent draws.</summary>
    public PairMode Mode { get; init; } = PairMode.Synced;

    /// <summary>Run seed: shuffles and per-draw/per-pair seeds follow from (seed, epoch). The aligned recipe uses 17.</summary>
    public ulong Seed { get; init; } = 17;

    /// <summary>Drop the last batch when it has fewer than <see cref="PairsPerBatch"/> pairs.</summary>
    public bool DropLast { get; init; }
}

/// <summary>
/// Batches for aligned training, counted in pairs: N pairs -> 2N images, laid out real, fake, real, fake, ... so that
/// images 2k and 2k+1 are one pair; pair order is shuffled per epoch. In <see cref="PairMode.Independent"/> mode the
/// same reals and fakes are shuffled separately and batches hold N of each in random order. Deterministic for (seed, epoch).
/// </summary>
public sealed class PairSampler : IBatchPlanner
{
    private readonly PairedSet pairs;

    /// <summary>A sampler over <paramref name="pairs"/>.</summary>
    /// <exception cref="ArgumentException">PairsPerBatch is below 1 or the set is empty.</exception>
    public PairSampler(PairedSet pairs, PairSamplerOptions? options = null)
    {
        this.pairs = pairs ?? throw new ArgumentNullException(nameof(pairs));
        Options = options ?? new PairSamplerOptions();
        if (Options.PairsPerBatch < 1)
            throw new ArgumentException($"PairsPerBatch must be at least 1; got {Options.PairsPerBatch}.", nameof(options));
        if (pairs.Count == 0) throw new ArgumentException("The paired set is empty.", nameof(pairs));
        var n = Options.PairsPerBatch;
        BatchesPerEpoch = Options.DropLast ? pairs.Count / n : (pairs.Count + n - 1) / n;
    }

    /// <summary>The options.</summary>
    public PairSamplerOptions Options { get; }

    /// <summary>Batches per epoch.</summary>
    public int BatchesPerEpoch { get; }

    /// <inheritdoc/>
    public IReadOnlyList<PlannedBatch> Plan(int epoch)
    {
        var seed = Options.Seed;
        var n = Options.PairsPerBatch;
        var order = SeedStreams.Rng(seed, epoch, SeedStreams.Shuffle).Permutation(pairs.Count);
        // Independent mode draws the fakes in an unrelated order, so pair partners rarely meet.
        var fakeOrder = Options.Mode == PairMode.Independent
            ? SeedStreams.Rng(seed, epoch, SeedStreams.ShuffleFakes).Permutation(pairs.Count)
            : order;
        var withinBatch = SeedStreams.Rng(seed, epoch, SeedStreams.Draw);
        var batches = new List<PlannedBatch>(BatchesPerEpoch);
        var index = 0;
        for (var b = 0; b < BatchesPerEpoch; b++)
        {
            var count = Math.Min(n, pairs.Count - b * n);
            var samples = new List<PlannedSample>(2 * count);
            if (Options.Mode == PairMode.Independent)
            {
                var images = new List<ImageSample>(2 * count);
                for (var k = 0; k < count; k++) images.Add(pairs.Pairs[order[b * n + k]].Real);
                for (var k = 0; k < count; k++) images.Add(pairs.Pairs[fakeOrder[b * n + k]].Fake);
                var mixed = images.ToArray();
                withinBatch.Shuffle(mixed.AsSpan());
                foreach (var image in mixed)
                    samples.Add(new PlannedSample(image, SeedStreams.Context(seed, epoch, index++, image.Label)));
            }
            else
            {
                var synced = Options.Mode == PairMode.Synced;
                for (var k = 0; k < count; k++)
                {
                    var pair = pairs.Pairs[order[b * n + k]];
                    var at = b * n + k;
                    samples.Add(new PlannedSample(pair.Real, SeedStreams.Context(seed, epoch, index++, ImageSample.RealLabel, at, synced)));
                    samples.Add(new PlannedSample(pair.Fake, SeedStreams.Context(seed, epoch, index++, ImageSample.FakeLabel, at, synced)));
                }
            }
            batches.Add(new PlannedBatch(epoch, b, samples));
        }
        return batches;
    }
}
