using System.Security.Cryptography;
using System.Text;
using Forensics.ML.Data;

namespace Forensics.ML.Training;

/// <summary>
/// Which part of a training set is used: only some generators (GenImage's "train on one generator" protocol: their fakes
/// and the reals of the same generator folders, in training and validation), and at most <see cref="MaxImages"/> or a
/// <see cref="Fraction"/> of the training images per class (data efficiency; validation stays whole). The subset is
/// drawn from <see cref="Seed"/> by ranking each image (each pair, in paired modes) on a hash of the seed and its path,
/// so it does not depend on the manifest's order and a smaller subset is contained in a larger one of the same seed.
/// </summary>
public sealed record TrainingSelection
{
    /// <summary>Generator names to keep (case-insensitive); null keeps every generator.</summary>
    public IReadOnlyList<string>? Generators { get; init; }

    /// <summary>At most this many training images per class (pairs, in paired modes); null: no cap.</summary>
    public int? MaxImages { get; init; }

    /// <summary>This fraction (0, 1] of the training images per class, rounded up; null: all.</summary>
    public double? Fraction { get; init; }

    /// <summary>The seed the subset is drawn from.</summary>
    public ulong Seed { get; init; }

    /// <summary>True when nothing is filtered.</summary>
    public bool IsAll => Generators is null && MaxImages is null && Fraction is null;

    /// <summary>Throws <see cref="ArgumentException"/> naming the bad property (TrainingSelection.X).</summary>
    public void Validate()
    {
        if (Generators is { } g)
        {
            if (g.Count == 0) throw new ArgumentException("TrainingSelection.Generators is empty; leave it out to keep every generator");
            if (g.Any(string.IsNullOrWhiteSpace)) throw new ArgumentException("TrainingSelection.Generators holds an empty name");
        }
        if (MaxImages is < 1) throw new ArgumentException($"TrainingSelection.MaxImages must be at least 1, not {MaxImages}");
        if (Fraction is { } f && !(f > 0 && f <= 1)) throw new ArgumentException($"TrainingSelection.Fraction must be in (0, 1], not {f}");
        if (MaxImages is not null && Fraction is not null) throw new ArgumentException("TrainingSelection.MaxImages and TrainingSelection.Fraction: give one, not both");
    }

    /// <summary>The generator filter as <see cref="ImageSet.FromManifest"/> takes it.</summary>
    public IReadOnlySet<string>? GeneratorSet => Generators is null ? null : new HashSet<string>(Generators, StringComparer.OrdinalIgnoreCase);

    /// <summary>How many of <paramref name="available"/> items one class keeps.</summary>
    public int Keep(int available)
    {
        if (MaxImages is { } max) return Math.Min(max, available);
        if (Fraction is { } f) return Math.Min(available, (int)Math.Ceiling(f * available - 1e-9));
        return available;
    }

    /// <summary>The <see cref="Keep"/> items of one class with the lowest rank, in their original order.</summary>
    public IReadOnlyList<T> Take<T>(IReadOnlyList<T> items, Func<T, string> key)
    {
        var keep = Keep(items.Count);
        if (keep == items.Count) return items;
        var chosen = items.Select((item, i) => (Index: i, Rank: Rank(key(item)))).OrderBy(x => x.Rank).ThenBy(x => x.Index).Take(keep)
            .Select(x => x.Index).Order().ToList();
        return chosen.Select(i => items[i]).ToList();
    }

    /// <summary>The training images of one unpaired set, each class cut to <see cref="Keep"/>.</summary>
    public ImageSet Apply(ImageSet set)
    {
        if (MaxImages is null && Fraction is null) return set;
        var reals = Take(set.Where(s => s.Label == ImageSample.RealLabel).ToList(), s => s.RelativePath);
        var fakes = Take(set.Where(s => s.Label == ImageSample.FakeLabel).ToList(), s => s.RelativePath);
        var kept = reals.Concat(fakes).ToHashSet();
        return new ImageSet(set.Where(kept.Contains), set.SkippedUnreadable);
    }

    // A seeded hash of the path: stable across runs and machines, independent of the list's order.
    ulong Rank(string key) => BitConverter.ToUInt64(SHA256.HashData(Encoding.UTF8.GetBytes($"{Seed}\n{key}")), 0);
}
