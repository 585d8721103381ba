using Forensics.ML.Data;
using static Forensics.ML.Tests.Data.DataFixtures;

namespace Forensics.ML.Tests.Data;

public class RandomTests
{
    [Fact]
    public void SplitMix64_matches_the_published_outputs()
    {
        var a = new SplitMix64(1234567);
        Assert.Equal([6457827717110365317UL, 3203168211198807973UL, 9817491932198370423UL, 4593380528125082431UL, 16408922859458223821UL],
            Enumerable.Range(0, 5).Select(_ => a.Next()));
        var b = new SplitMix64(0);
        Assert.Equal([0xE220A8397B1DCDAFUL, 0x6E789E6AA1B965F4UL, 0x06C45D188009454FUL, 0xF88BB8A8724C81ECUL], Enumerable.Range(0, 4).Select(_ => b.Next()));
    }

    [Fact]
    public void RandomSource_matches_the_reference_implementation_from_state_1_2_3_4()
    {
        var rng = new RandomSource(1, 2, 3, 4);
        Assert.Equal(
            [11520UL, 0UL, 1509978240UL, 1215971899390074240UL, 1216172134540287360UL, 607988272756665600UL,
             16172922978634559625UL, 8476171486693032832UL, 10595114339597558777UL, 2904607092377533576UL],
            Enumerable.Range(0, 10).Select(_ => rng.NextUInt64()));
    }

    [Fact]
    public void Bounded_draws_and_permutations_are_in_range_and_roughly_uniform()
    {
        var rng = new RandomSource(5);
        var counts = new int[6];
        for (var i = 0; i < 60_000; i++) counts[rng.NextInt(6)]++;
        Assert.All(counts, c => Assert.InRange(c, 9_400, 10_600));
        Assert.Equal(Enumerable.Range(0, 50), rng.Permutation(50).Order());
        Assert.NotEqual(new RandomSource(5).Permutation(50), new RandomSource(6).Permutation(50));
        Assert.Equal(new RandomSource(5).Permutation(50), new RandomSource(5).Permutation(50));
    }

    [Fact]
    public void Derived_seeds_depend_on_every_part_and_its_order()
    {
        Assert.Equal(Seeds.Derive(17, 1, 2), Seeds.Derive(17, 1, 2));
        Assert.NotEqual(Seeds.Derive(17, 1, 2), Seeds.Derive(17, 2, 1));
        Assert.NotEqual(Seeds.Derive(17, 1, 2), Seeds.Derive(18, 1, 2));
        Assert.NotEqual(Seeds.Derive(17, 1), Seeds.Derive(17, 1, 0));
    }
}

public class BalancedSamplerTests
{
    [Fact]
    public void Oversampling_gives_equal_halves_and_every_majority_image_once()
    {
        var set = Set(reals: 10, fakes: 3);
        var sampler = new BalancedSampler(set, new BalancedSamplerOptions { BatchSize = 4, Seed = 3 });
        var batches = sampler.EpochIndices(0);

        Assert.Equal(5, batches.Count);
        Assert.All(batches, b => Assert.Equal(2, b.Count(i => set[i].Label == 1)));
        Assert.All(batches, b => Assert.Equal(4, b.Length));
        var drawn = batches.SelectMany(b => b).ToList();
        Assert.Equal(Enumerable.Range(0, 10), drawn.Where(i => set[i].Label == 0).Order());
        var fakeUses = drawn.Where(i => set[i].Label == 1).CountBy(i => i).Select(p => p.Value).ToList();
        Assert.Equal(3, fakeUses.Count);
        Assert.All(fakeUses, n => Assert.InRange(n, 3, 4)); // 10 draws over 3 fakes: whole passes, then part of one
    }

    [Fact]
    public void Subsampling_uses_the_minority_once_and_a_fresh_majority_subset_each_epoch()
    {
        var set = Set(reals: 10, fakes: 3);
        var sampler = new BalancedSampler(set, new BalancedSamplerOptions { BatchSize = 4, Mode = BalanceMode.SubsampleMajority, Seed = 3 });
        var epoch0 = sampler.EpochIndices(0);
        Assert.Equal([4, 2], epoch0.Select(b => b.Length)); // 3 per class: 2+2, then 1+1
        Assert.All(epoch0, b => Assert.Equal(b.Length / 2, b.Count(i => set[i].Label == 1)));
        Assert.Equal([10, 11, 12], epoch0.SelectMany(b => b).Where(i => set[i].Label == 1).Order());
        var reals0 = epoch0.SelectMany(b => b).Where(i => set[i].Label == 0).Order().ToList();
        Assert.Equal(3, reals0.Distinct().Count());
        var realsPerEpoch = Enumerable.Range(0, 5).Select(e => string.Join(",", sampler.EpochIndices(e).SelectMany(b => b).Where(i => set[i].Label == 0).Order())).Distinct();
        Assert.True(realsPerEpoch.Count() > 1);
    }

    [Fact]
    public void DropLast_drops_the_short_batch()
    {
        var sampler = new BalancedSampler(Set(10, 3), new BalancedSamplerOptions { BatchSize = 4, Mode = BalanceMode.SubsampleMajority, DropLast = true });
        Assert.Equal([4], sampler.EpochIndices(0).Select(b => b.Length));
    }

    [Fact]
    public void Shuffling_is_deterministic_for_seed_and_epoch()
    {
        var set = Set(20, 12);
        string Epoch(ulong seed, int epoch) =>
            string.Join("|", new BalancedSampler(set, new BalancedSamplerOptions { BatchSize = 8, Seed = seed }).EpochIndices(epoch).Select(b => string.Join(",", b)));
        Assert.Equal(Epoch(17, 2), Epoch(17, 2));
        Assert.NotEqual(Epoch(17, 2), Epoch(17, 3));
        Assert.NotEqual(Epoch(17, 2), Epoch(18, 2));
    }

    [Fact]
    public void Plans_carry_labels_and_distinct_per_draw_seeds()
    {
        var set = Set(6, 6);
        var plan = new BalancedSampler(set, new BalancedSamplerOptions { BatchSize = 4 }).Plan(1);
        var draws = plan.SelectMany(b => b.Samples).ToList();
        Assert.Equal(Enumerable.Range(0, 12), draws.Select(d => d.Context.Index));
        Assert.All(draws, d => Assert.Equal(d.Sample.Label, d.Context.Label));
        Assert.All(draws, d => Assert.Null(d.Context.PairSeed));
        Assert.Equal(12, draws.Select(d => d.Context.Seed).Distinct().Count());
        Assert.All(draws, d => Assert.Equal(d.Context.Seed, d.Context.AugmentationSeed));
    }

    [Fact]
    public void Bad_options_or_a_one_class_set_are_clear_errors()
    {
        Assert.Contains("even", Assert.Throws<ArgumentException>(() => new BalancedSampler(Set(2, 2), new BalancedSamplerOptions { BatchSize = 5 })).Message);
        Assert.Contains("0 fake", Assert.Throws<ArgumentException>(() => new BalancedSampler(Set(2, 0))).Message);
    }
}

public class PairSamplerTests
{
    [Fact]
    public void Synced_batches_hold_whole_pairs_with_one_shared_seed()
    {
        var pairs = Pairs(10);
        var plan = new PairSampler(pairs, new PairSamplerOptions { PairsPerBatch = 4, Seed = 9 }).Plan(0);

        Assert.Equal([8, 8, 4], plan.Select(b => b.Samples.Count));
        foreach (var batch in plan)
            for (var k = 0; k < batch.Samples.Count; k += 2)
            {
                var (real, fake) = (batch.Samples[k], batch.Samples[k + 1]);
                Assert.Equal((0, 1), (real.Sample.Label, fake.Sample.Label));
                Assert.Equal(real.Sample.PairKey, fake.Sample.PairKey);
                Assert.NotNull(real.Context.PairSeed);
                Assert.Equal(real.Context.PairSeed, fake.Context.PairSeed);
                Assert.Equal(real.Context.Pair, fake.Context.Pair);
                Assert.True(real.Context.Synced && fake.Context.Synced);
                Assert.Equal(real.Context.AugmentationSeed, fake.Context.AugmentationSeed);
                Assert.NotEqual(real.Context.Seed, fake.Context.Seed);
            }
        var keys = plan.SelectMany(b => b.Samples).Where(s => s.Sample.Label == 0).Select(s => s.Sample.PairKey).ToList();
        Assert.Equal(pairs.Pairs.Select(p => p.Key).Order(), keys.Order()); // every pair once
        Assert.Equal(10, plan.SelectMany(b => b.Samples).Select(s => s.Context.PairSeed).Distinct().Count());
    }

    [Fact]
    public void Unsynced_keeps_pairs_together_but_draws_augmentation_per_image()
    {
        var plan = new PairSampler(Pairs(6), new PairSamplerOptions { PairsPerBatch = 3, Mode = PairMode.Unsynced }).Plan(0);
        foreach (var batch in plan)
            for (var k = 0; k < batch.Samples.Count; k += 2)
            {
                var (real, fake) = (batch.Samples[k].Context, batch.Samples[k + 1].Context);
                Assert.Equal(real.PairSeed, fake.PairSeed);
                Assert.False(real.Synced || fake.Synced);
                Assert.NotEqual(real.AugmentationSeed, fake.AugmentationSeed);
            }
    }

    [Fact]
    public void Independent_mode_draws_reals_and_fakes_separately()
    {
        var pairs = Pairs(12);
        var plan = new PairSampler(pairs, new PairSamplerOptions { PairsPerBatch = 4, Mode = PairMode.Independent, Seed = 1 }).Plan(0);
        Assert.All(plan, b => Assert.Equal(4, b.Samples.Count(s => s.Sample.Label == 1)));
        Assert.All(plan, b => Assert.Equal(4, b.Samples.Count(s => s.Sample.Label == 0)));
        Assert.All(plan.SelectMany(b => b.Samples), s => Assert.Null(s.Context.PairSeed));
        var all = plan.SelectMany(b => b.Samples).Select(s => s.Sample.RelativePath).ToList();
        Assert.Equal(24, all.Distinct().Count());
        // Partners are not kept together: some batch holds a real whose reconstruction is elsewhere.
        Assert.Contains(plan, b => b.Samples.Where(s => s.Sample.Label == 0)
            .Any(r => !b.Samples.Any(f => f.Sample.Label == 1 && f.Sample.PairKey == r.Sample.PairKey)));
    }

    [Fact]
    public void Pair_order_is_deterministic_per_seed_and_epoch()
    {
        var pairs = Pairs(16);
        string Order(ulong seed, int epoch) => string.Join(",",
            new PairSampler(pairs, new PairSamplerOptions { PairsPerBatch = 4, Seed = seed }).Plan(epoch).SelectMany(b => b.Samples).Select(s => s.Sample.RelativePath));
        Assert.Equal(Order(17, 0), Order(17, 0));
        Assert.NotEqual(Order(17, 0), Order(17, 1));
        Assert.NotEqual(Order(17, 0), Order(4, 0));
    }
}

public class EvalPlannerTests
{
    [Fact]
    public void Single_mode_gives_every_image_alone_in_order()
    {
        var set = Set(2, 3);
        var plan = new EvalPlanner(set).Plan(0);
        Assert.Equal(set.Select(s => s.RelativePath), plan.Select(b => Assert.Single(b.Samples).Sample.RelativePath));
    }

    [Fact]
    public void BySize_groups_equal_sizes_into_batches_up_to_the_limit()
    {
        var set = ImageSet.FromManifest(Manifest(
        [
            Entry("0_real/a.jpg", "real", width: 8, height: 8), Entry("0_real/b.jpg", "real", width: 16, height: 8),
            Entry("0_real/c.jpg", "real", width: 8, height: 8), Entry("1_fake/d.png", "fake", width: 8, height: 8),
            Entry("1_fake/e.png", "fake", width: 16, height: 8),
        ]));
        var plan = new EvalPlanner(set, EvalBatching.BySize, maxBatchSize: 2).Plan(0);
        Assert.Equal(["0_real/a.jpg,0_real/c.jpg", "1_fake/d.png", "0_real/b.jpg,1_fake/e.png"],
            plan.Select(b => string.Join(",", b.Samples.Select(s => s.Sample.RelativePath))));
        Assert.Equal([0, 1, 2], plan.Select(b => b.Number));

        // Images of unknown size (not from a manifest) are scored alone.
        var unsized = new ImageSet([new ImageSample("/x/a.png", "a.png", 0, "g", "all"), new ImageSample("/x/b.png", "b.png", 0, "g", "all")]);
        Assert.All(new EvalPlanner(unsized, EvalBatching.BySize, 4).Plan(0), b => Assert.Single(b.Samples));
    }

    [Fact]
    public void BySize_batches_hold_at_most_the_pixel_budget_and_never_less_than_one_image()
    {
        var set = ImageSet.FromManifest(Manifest(
        [
            .. Enumerable.Range(0, 5).Select(i => Entry($"0_real/s{i}.png", "real", width: 8, height: 8)),
            .. Enumerable.Range(0, 3).Select(i => Entry($"1_fake/l{i}.png", "fake", width: 32, height: 32)),
        ]));
        // 200 pixels: three 8x8 images (192) per batch; a 32x32 image (1024) is over the budget and goes alone.
        var plan = new EvalPlanner(set, EvalBatching.BySize, maxBatchSize: 16, maxBatchPixels: 200).Plan(0);
        Assert.Equal([3, 2, 1, 1, 1], plan.Select(b => b.Samples.Count));
        Assert.All(plan.Take(2), b => Assert.All(b.Samples, s => Assert.Equal(8, s.Sample.Width)));
        // The batch size still caps a generous budget.
        Assert.Equal([2, 2, 1, 2, 1], new EvalPlanner(set, EvalBatching.BySize, maxBatchSize: 2, maxBatchPixels: 1 << 20).Plan(0).Select(b => b.Samples.Count));
        Assert.Throws<ArgumentException>(() => new EvalPlanner(set, EvalBatching.BySize, 4, maxBatchPixels: 0));
    }
}
