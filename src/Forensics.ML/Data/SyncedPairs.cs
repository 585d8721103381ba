namespace Forensics.ML.Data;

/// <summary>How <see cref="PairSampler"/> builds batches from a <see cref="PairedSet"/> (see <see cref="SyncedPairs"/>).</summary>
public enum PairMode
{
    /// <summary>Both members of a pair in the same batch, sharing one augmentation draw (<see cref="SampleContext.Synced"/> true): the aligned recipe ("Ours-Sync").</summary>
    Synced,

    /// <summary>Both members of a pair in the same batch, each with its own augmentation draw (the pair seed is still carried).</summary>
    Unsynced,

    /// <summary>The usual training: reals and fakes shuffled independently, N of each per batch, no pairing.</summary>
    Independent,
}

/// <summary>
/// Synced pairs, the aligned-dataset paper's training ("Ours-Sync"): every real image is paired with its reconstruction
/// through the generator's autoencoder (same file stem, <see cref="PairedSet"/>), both go into the same batch
/// (<see cref="PairSampler"/>: real, fake, real, fake, ...), and both get the identical augmentation (same crop, flip,
/// blur, JPEG quality: the transform pipeline draws them from <see cref="AugmentationSeed"/>, which is the pair's seed),
/// so the only difference the detector sees is the decoder's trace. "Unsynced" keeps the pairs in one batch but draws
/// each image's augmentation on its own; "independent" is the usual training without pairs. This type is the one place
/// that names the modes and the seed rule; the sampler plans with it, the loaders augment with it.
/// </summary>
public static class SyncedPairs
{
    /// <summary>The modes' names in configs and on the command line.</summary>
    public const string Synced = "synced", Unsynced = "unsynced", Independent = "independent";

    /// <summary>"synced, unsynced or independent", for messages.</summary>
    public const string ModeList = Synced + ", " + Unsynced + " or " + Independent;

    /// <summary>Parses <see cref="Synced"/>, <see cref="Unsynced"/> or <see cref="Independent"/> (case-insensitive).</summary>
    public static bool TryParseMode(string? text, out PairMode mode)
    {
        switch (text?.Trim().ToLowerInvariant())
        {
            case Synced: mode = PairMode.Synced; return true;
            case Unsynced: mode = PairMode.Unsynced; return true;
            case Independent: mode = PairMode.Independent; return true;
            default: mode = default; return false;
        }
    }

    /// <summary>The seed a draw's augmentation comes from: the pair's shared seed for a synced pair, else the draw's own.</summary>
    public static ulong AugmentationSeed(in SampleContext context) =>
        context.Synced && context.PairSeed is { } shared ? shared : context.Seed;
}
