using static Kdb.Storage.Tests.Keys;

namespace Kdb.Storage.Tests;

/// <summary>
/// <see cref="IKvSnapshot.ScanLent"/> against <see cref="IKvReader.Scan"/>: the same pairs and versions in the same order
/// over random puts, deletes and range deletes spread over the active delta, segments and compactions, for random ranges;
/// and the lent memory's lifetime (the scan's own reference, disposal).
/// </summary>
public sealed class LentScanTests
{
    public static IEnumerable<object[]> Seeds() => SeededRuns.Seeds(8, 7919);

    [Theory]
    [MemberData(nameof(Seeds))]
    public void ScanLent_gives_the_same_pairs_as_Scan(int seed) => SeededRuns.Run("lent scan", seed, Run);

    private static void Run(int seed, string directory, ref int step)
    {
        var rng = new Random(seed);
        using var e = KvEngine.Open(directory, new EngineOptions { Durability = DurabilityMode.None, BackgroundCompaction = false });
        for (step = 0; step < 60; step++)
        {
            var batch = new WriteBatch();
            for (var i = rng.Next(1, 30); i > 0; i--)
            {
                var key = K($"k{rng.Next(400):D4}");
                switch (rng.Next(10))
                {
                    case 0:
                        batch.Delete(key);
                        break;
                    case 1:
                        var a = rng.Next(400);
                        batch.DeleteRange(K($"k{a:D4}"), K($"k{a + rng.Next(1, 20):D4}"));
                        break;
                    default:
                        var value = new byte[rng.Next(0, 300)];
                        rng.NextBytes(value);
                        batch.Put(key, value);
                        break;
                }
            }
            e.Apply(batch);
            switch (rng.Next(12))
            {
                case 0:
                    e.Flush();
                    break;
                case 1:
                    e.Compact();
                    break;
            }
            if (step % 10 == 9)
            {
                using var s = e.OpenSnapshot();
                for (var r = 0; r < 5; r++)
                {
                    var from = rng.Next(410);
                    var start = r == 0 ? [] : K($"k{from:D4}");
                    var end = r == 1 ? null : K($"k{from + rng.Next(1, 200):D4}");
                    var expected = s.Scan(start, end).Select(p => (S(p.Key), Convert.ToHexString(p.Value), p.Version)).ToList();
                    var lent = new List<(string, string, ulong)>();
                    using (var scan = s.ScanLent(start, end))
                    {
                        while (scan.MoveNext())
                        {
                            lent.Add((S(scan.Key.ToArray()), Convert.ToHexString(scan.Value), scan.Version));
                        }
                        Assert.False(scan.MoveNext());
                    }
                    Assert.Equal(expected, lent);
                }
            }
        }
    }

    [Fact]
    public void ScanLent_stays_valid_after_its_snapshot_is_disposed_and_the_segments_are_compacted_away()
    {
        using var dir = new TestDir();
        using var e = KvEngine.Open(dir.Path, new EngineOptions { BackgroundCompaction = false });
        e.Apply(new WriteBatch().Put(K("a"), K("one")).Put(K("b"), K("two")).Put(K("c"), K("three")));
        e.Flush();
        var s = e.OpenSnapshot();
        using var scan = s.ScanLent([], null);
        s.Dispose();
        e.Apply(new WriteBatch().Put(K("b"), K("newer")).Delete(K("c")));
        e.Flush();
        e.Compact();

        var seen = new List<string>();
        while (scan.MoveNext())
        {
            seen.Add(S(scan.Key.ToArray()) + "=" + S(scan.Value.ToArray()));
        }
        Assert.Equal(["a=one", "b=two", "c=three"], seen);
    }

    [Fact]
    public void ScanLent_refuses_reads_off_a_pair_and_after_dispose()
    {
        using var dir = new TestDir();
        using var e = KvEngine.Open(dir.Path, new EngineOptions { BackgroundCompaction = false });
        e.Apply(new WriteBatch().Put(K("a"), K("one")));
        using var s = e.OpenSnapshot();
        var scan = s.ScanLent([], null);
        Assert.Throws<InvalidOperationException>(() => scan.Key.Length);
        Assert.True(scan.MoveNext());
        Assert.Equal("one", S(scan.Value.ToArray()));
        scan.Dispose();
        Assert.Throws<ObjectDisposedException>(() => scan.MoveNext());
        s.Dispose();
        Assert.Throws<ObjectDisposedException>(() => s.ScanLent([], null));
    }
}
