using static Kdb.Storage.Tests.Keys;

namespace Kdb.Storage.Tests;

public sealed class LentReadTests
{
    private static byte[] Lent(IKvSnapshot snapshot, byte[] key, out bool found, out ulong version)
    {
        found = snapshot.TryGetLent(key, out var value, out version);
        return value.ToArray();
    }

    [Fact]
    public void TryGetLent_MatchesGet_InDeltaSegmentsTombstonesAndRangeDeletes()
    {
        using var dir = new TestDir();
        using var e = KvEngine.Open(dir.Path, new EngineOptions { BackgroundCompaction = false });
        for (var i = 0; i < 200; i++)
        {
            e.Apply(new WriteBatch().Put(K($"k{i:D4}"), K($"segment-{i}")));
        }
        e.Flush();
        e.Apply(new WriteBatch().Put(K("k0001"), K("delta")).Delete(K("k0002")).DeleteRange(K("k0100"), K("k0110")));
        e.Apply(new WriteBatch().Put(K("k0105"), K("after-range")));

        using var s = e.OpenSnapshot();
        foreach (var k in new[] { "k0000", "k0001", "k0002", "k0100", "k0105", "k0109", "k0150", "missing" })
        {
            var expected = s.Get(K(k));
            var lent = Lent(s, K(k), out var found, out var version);
            Assert.Equal(expected.Found, found);
            Assert.Equal(expected.Version, version);
            Assert.Equal(expected.Value ?? [], lent);
        }
        Assert.Equal("delta", S(Lent(s, K("k0001"), out _, out _)));
        Assert.Equal("after-range", S(Lent(s, K("k0105"), out _, out _)));
        Assert.Equal("segment-150", S(Lent(s, K("k0150"), out _, out _)));
    }

    [Fact]
    public void TryGetLent_SpanStaysValid_WhileSnapshotLives_ThroughOverwriteFlushAndCompaction()
    {
        using var dir = new TestDir();
        using var e = KvEngine.Open(dir.Path, new EngineOptions { BackgroundCompaction = false });
        e.Apply(new WriteBatch().Put(K("a"), K("first-" + new string('x', 100))));
        e.Flush();
        using var s = e.OpenSnapshot();
        Assert.True(s.TryGetLent(K("a"), out var value, out _));

        // Replace, flush and merge: the segment the span points into leaves the engine's live set.
        e.Apply(new WriteBatch().Put(K("a"), K("second")));
        e.Flush();
        e.Compact();

        Assert.Equal("first-" + new string('x', 100), S(value.ToArray()));
        Assert.Equal("second", S(e.Get(K("a")).Value!));
    }

    [Fact]
    public void TryGetLent_AfterDispose_Throws()
    {
        using var dir = new TestDir();
        using var e = KvEngine.Open(dir.Path, new EngineOptions { BackgroundCompaction = false });
        e.Apply(new WriteBatch().Put(K("a"), K("v")));
        var s = e.OpenSnapshot();
        s.Dispose();
        Assert.Throws<ObjectDisposedException>(() => s.TryGetLent(K("a"), out _, out _));
    }

    [Fact]
    public async Task TryGetLent_ConcurrentReadersAndCompaction_ReadTheirSnapshotsValues()
    {
        using var dir = new TestDir();
        using var e = KvEngine.Open(dir.Path, new EngineOptions { BackgroundCompaction = false });
        for (var i = 0; i < 100; i++)
        {
            e.Apply(new WriteBatch().Put(K($"k{i:D3}"), K($"v0-{i}")));
        }
        e.Flush();
        var stop = 0;
        var readers = Enumerable.Range(0, 2).Select(_ => Task.Run(() =>
        {
            var reads = 0;
            while (Volatile.Read(ref stop) == 0 || reads < 200)
            {
                using var s = e.OpenSnapshot();
                var i = reads % 100;
                Assert.True(s.TryGetLent(K($"k{i:D3}"), out var value, out var version));
                Assert.True(version > 0);
                var text = S(value.ToArray());
                Assert.StartsWith("v", text);
                Assert.EndsWith($"-{i}", text);
                reads++;
            }
            return reads;
        })).ToArray();
        for (var round = 1; round <= 5; round++)
        {
            for (var i = 0; i < 100; i++)
            {
                e.Apply(new WriteBatch().Put(K($"k{i:D3}"), K($"v{round}-{i}")));
            }
            e.Flush();
            e.Compact();
        }
        Volatile.Write(ref stop, 1);
        foreach (var reads in await Task.WhenAll(readers))
        {
            Assert.True(reads >= 200);
        }
    }
}
