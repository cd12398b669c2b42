using static Kdb.Storage.Tests.Keys;

namespace Kdb.Storage.Tests;

/// <summary>The engine's learned-index and compaction histograms: counted per lookup, kept across compactions.</summary>
public sealed class IndexHistogramTests
{
    [Fact]
    public void Probe_build_and_compaction_histograms_count_the_work_and_survive_compaction()
    {
        using var dir = new TestDir();
        using var e = KvEngine.Open(dir.Path, new EngineOptions { Durability = DurabilityMode.None, BackgroundCompaction = false });
        var fresh = e.Stats;
        Assert.Equal(EngineStats.ProbeLengthBounds.Count + 1, fresh.ProbeLengthBuckets.Count);
        Assert.All(fresh.ProbeLengthBuckets, c => Assert.Equal(0, c));
        Assert.Equal(0, fresh.IndexBuilds.Count);

        // Four segments of interleaved keys (so every lookup searches several), each flush building one model.
        for (var segment = 0; segment < 4; segment++)
        {
            var batch = new WriteBatch();
            for (var i = segment; i < 4000; i += 4)
            {
                batch.Put(K($"key/{i:D6}"), K("v" + i));
            }

            e.Apply(batch);
            e.Flush();
        }

        var built = e.Stats;
        Assert.Equal(4, built.IndexBuilds.Count);
        Assert.Equal(4, built.IndexBuilds.Buckets.Sum());
        Assert.True(built.IndexBuilds.SumSeconds > 0);

        for (var i = 0; i < 4000; i += 7)
        {
            Assert.Equal(K("v" + i), e.Get(K($"key/{i:D6}")).Value);
        }

        var read = e.Stats;
        var lookups = read.ProbeLengthBuckets.Sum();
        Assert.True(lookups >= 4000 / 7, $"{lookups} lookups counted");
        Assert.Equal(read.IndexLookups, lookups);
        Assert.True(read.ProbeLengthSum >= lookups);
        Assert.InRange(read.Mispredicts, 0, lookups);

        e.Compact();
        var compacted = e.Stats;
        Assert.Equal(1, compacted.SegmentCount);
        Assert.Equal(compacted.Compactions, compacted.CompactionDurations.Count);
        Assert.True(compacted.CompactionDurations.Count >= 1);
        Assert.True(compacted.CompactionBytes > 0);
        Assert.Equal(4 + compacted.Compactions, compacted.IndexBuilds.Count);

        // The segments that counted those lookups are gone; the engine's histogram is not.
        Assert.Equal(lookups, compacted.ProbeLengthBuckets.Sum());
        Assert.Equal(0, compacted.IndexLookups);
        Assert.Equal(K("v21"), e.Get(K("key/000021")).Value);
        Assert.Equal(lookups + 1, e.Stats.ProbeLengthBuckets.Sum());
    }
}
