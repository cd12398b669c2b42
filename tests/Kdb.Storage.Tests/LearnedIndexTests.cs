using System.Buffers.Binary;
using Kdb.Storage.Index;

namespace Kdb.Storage.Tests;

/// <summary>Property tests of the learned index on adversarial key sets: every present key found,
/// every absent key gets the exact lower bound, and a round trip through the persisted form.</summary>
public sealed class LearnedIndexTests
{
    public static IEnumerable<object[]> U64Sets() =>
        new[] { "dense", "uniform", "step", "gaps", "dups", "sawtooth", "outliers", "lognormal", "tiny", "allsame" }
            .Select(s => new object[] { s });

    private static ulong[] MakeU64(string kind, int seed)
    {
        var r = new Random(seed);
        var n = 20_000;
        var xs = new ulong[n];
        for (var i = 0; i < n; i++)
        {
            xs[i] = kind switch
            {
                "dense" => (ulong)i,
                "uniform" => (ulong)r.NextInt64() * 2,
                // Step function: plateaus of equal keys then a jump.
                "step" => (ulong)(i / 500) * 1_000_000_000UL,
                // Huge gaps between small dense runs.
                "gaps" => ((ulong)(i / 100) << 40) + (ulong)(i % 100),
                "dups" => (ulong)r.Next(50),
                "sawtooth" => ((ulong)(i / 1000) * 1_000_000UL) + ((ulong)(i % 1000) * (ulong)(i % 1000)),
                "outliers" => i < n - 3 ? (ulong)i : ulong.MaxValue - (ulong)(n - i),
                "lognormal" => (ulong)Math.Min(Math.Exp(NextGaussian(r) * 3) * 1e6, 1.8e19),
                "tiny" => (ulong)i % 3,
                _ => 42UL,
            };
        }
        Array.Sort(xs);
        return xs;
    }

    private static double NextGaussian(Random r) =>
        Math.Sqrt(-2 * Math.Log(1 - r.NextDouble())) * Math.Cos(2 * Math.PI * r.NextDouble());

    private static long Reference(ulong[] xs, ulong x)
    {
        long lo = 0, hi = xs.Length;
        while (lo < hi)
        {
            var mid = (lo + hi) / 2;
            if (xs[mid] < x)
            {
                lo = mid + 1;
            }
            else
            {
                hi = mid;
            }
        }
        return lo;
    }

    [Theory]
    [MemberData(nameof(U64Sets))]
    public void LowerBound_AdversarialU64_MatchesBinarySearch(string kind)
    {
        var xs = MakeU64(kind, 17);
        var idx = LearnedIndex.Build(xs, 0);
        using var w = new ByteWriter();
        idx.Write(w);
        var reader = new ByteReader(w.WrittenSpan);
        var loaded = LearnedIndex.Read(ref reader);
        var r = new Random(5);
        foreach (var model in new[] { idx, loaded })
        {
            foreach (var x in xs)
            {
                Assert.Equal(Reference(xs, x), model.LowerBound(xs, x));
            }
            for (var i = 0; i < 20_000; i++)
            {
                var x = r.Next(4) switch
                {
                    0 => (ulong)r.NextInt64() * 2 + 1,
                    1 => xs[r.Next(xs.Length)] + 1,
                    2 => xs[r.Next(xs.Length)] - 1,
                    _ => (ulong)r.Next(100),
                };
                Assert.Equal(Reference(xs, x), model.LowerBound(xs, x));
            }
            Assert.Equal(0, model.LowerBound(xs, 0));
            Assert.Equal(Reference(xs, ulong.MaxValue), model.LowerBound(xs, ulong.MaxValue));
        }
        Assert.True(idx.MaxError >= 0);
    }

    [Fact]
    public void Build_SmoothData_KeepsWindowsSmall()
    {
        var xs = MakeU64("uniform", 3);
        var idx = LearnedIndex.Build(xs, 0);
        Assert.True(idx.WeightedLog2Error / xs.Length < 7, "average window should stay small on smooth data");
        Assert.True(idx.ModelBytes < xs.Length * 2L, "model should stay under 2 bytes per key");
    }

    private sealed class FlatKeys(List<byte[]> keys) : IKeySource
    {
        public long Count => keys.Count;
        public ReadOnlySpan<byte> KeyAt(long index) => keys[(int)index];
        public void Prefetch(long index)
        {
        }
    }

    public static IEnumerable<object[]> ByteSets() =>
        new[] { "prefixed", "longprefix", "strings", "shortlong", "fewprefixes", "dupprojection", "prefixmix" }.Select(s => new object[] { s });

    private static List<byte[]> MakeBytes(string kind, Random r)
    {
        var set = new SortedSet<byte[]>(ByteComparer.Instance);
        for (var i = 0; i < 8000; i++)
        {
            byte[] k;
            switch (kind)
            {
                case "prefixed":
                    k = new byte[24];
                    BinaryPrimitives.WriteUInt64BigEndian(k, (ulong)r.Next(5));
                    BinaryPrimitives.WriteUInt32BigEndian(k.AsSpan(8), (uint)r.Next(3));
                    BinaryPrimitives.WriteUInt32BigEndian(k.AsSpan(12), (uint)r.Next(2));
                    BinaryPrimitives.WriteUInt64BigEndian(k.AsSpan(16), (ulong)r.NextInt64());
                    break;
                case "longprefix":
                    k = Keys.K(new string('a', 100) + r.Next(1_000_000).ToString("D7"));
                    break;
                case "strings":
                    k = Keys.K("user_" + r.Next(100_000) + (r.Next(2) == 0 ? "" : "_x"));
                    break;
                case "shortlong":
                    k = new byte[1 + r.Next(30)];
                    r.NextBytes(k);
                    k[0] %= 4;
                    break;
                case "prefixmix":
                    // The flat model's slices: groups of very different sizes, each with its own
                    // adversarial suffixes (full range with extremes, dense, steps, shared bytes past
                    // the prefix with colliding projections, outliers).
                    var g = r.Next(r.Next(1, 40));
                    k = new byte[24 + (g % 5 == 3 ? r.Next(6) : 0)];
                    BinaryPrimitives.WriteUInt64BigEndian(k, 7);
                    BinaryPrimitives.WriteUInt64BigEndian(k.AsSpan(8), (ulong)g);
                    BinaryPrimitives.WriteUInt64BigEndian(k.AsSpan(16), (g % 5) switch
                    {
                        0 => r.Next(8) switch { 0 => 0, 1 => ulong.MaxValue, _ => (ulong)r.NextInt64() * 2 },
                        1 => (ulong)r.Next(3000),
                        2 => ((ulong)(uint)r.Next(4) << 60) | (uint)r.Next(10),
                        3 => 0xABCD_0000_0000_0000UL | (uint)r.Next(50),
                        _ => r.Next(50) == 0 ? ulong.MaxValue - (ulong)r.Next(3) : (ulong)r.Next(1000),
                    });
                    r.NextBytes(k.AsSpan(24));
                    break;
                case "fewprefixes":
                    k = new byte[16 + r.Next(12)];
                    r.NextBytes(k);
                    k.AsSpan(0, 16).Fill((byte)r.Next(3));
                    break;
                default:
                    // Keys that differ only after the 8 projected bytes: every projection collides.
                    k = Keys.K("samepre_12345678" + r.Next(100_000).ToString("D6"));
                    break;
            }
            set.Add(k);
        }
        return [.. set];
    }

    [Theory]
    [MemberData(nameof(ByteSets))]
    public void SegmentIndex_AdversarialKeys_FindsPresentAndLowerBoundsAbsent(string kind)
    {
        var r = new Random(kind.Length * 31);
        var keys = MakeBytes(kind, r);
        var src = new FlatKeys(keys);
        var built = SegmentIndex.Build(src);
        using var w = new ByteWriter();
        built.Write(w);
        var loaded = SegmentIndex.Read(w.WrittenSpan);
        foreach (var idx in new[] { built, loaded })
        {
            for (var i = 0; i < keys.Count; i++)
            {
                Assert.Equal(i, idx.LowerBound(keys[i], src));
            }
            var probes = MakeBytes(kind, new Random(99));
            probes.Add([]);
            probes.Add([0xFF, 0xFF]);
            probes.Add(Keys.K("a"));
            foreach (var p in probes)
            {
                var expected = keys.BinarySearch(p, ByteComparer.Instance);
                if (expected < 0)
                {
                    expected = ~expected;
                }
                Assert.Equal(expected, idx.LowerBound(p, src));
            }
        }
    }

    [Fact]
    public void Engine_ScanAfterFlush_ReturnsKeysInOrder()
    {
        using var dir = new TestDir();
        using var e = KvEngine.Open(dir.Path, new EngineOptions { Durability = DurabilityMode.None });
        var keys = MakeBytes("strings", new Random(1));
        var shuffled = keys.OrderBy(_ => Guid.NewGuid()).ToList();
        foreach (var k in shuffled)
        {
            e.Apply(new WriteBatch().Put(k, k));
        }
        e.Flush();
        var got = e.Scan([], null).Select(x => x.Key).ToList();
        Assert.Equal(keys.Count, got.Count);
        for (var i = 0; i < keys.Count; i++)
        {
            Assert.Equal(keys[i], got[i]);
        }
        var stats = e.Stats;
        Assert.True(stats.SegmentCount >= 1);
        Assert.True(stats.MaxError >= 0 && stats.AvgLog2Error >= 0);
    }
}
