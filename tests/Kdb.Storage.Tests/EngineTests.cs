using static Kdb.Storage.Tests.Keys;

namespace Kdb.Storage.Tests;

public sealed class EngineTests
{
    [Fact]
    public void Put_KeyOver4KiB_ThrowsArgumentException()
    {
        var ex = Assert.Throws<ArgumentException>(() => new WriteBatch().Put(new byte[4097], [1]));
        Assert.Contains("4096", ex.Message);
        Assert.Throws<ArgumentException>(() => new WriteBatch().Put([1], new byte[(4 << 20) + 1]));
        Assert.Throws<ArgumentException>(() => new WriteBatch().Put([], [1]));
        Assert.Throws<ArgumentException>(() => new WriteBatch().DeleteRange(K("b"), K("a")));
        new WriteBatch().Put(new byte[4096], new byte[4 << 20]); // the limits themselves are accepted
    }

    [Fact]
    public void Apply_Standalone_ReturnsSequentialVersionsDurableAcrossReopen()
    {
        using var dir = new TestDir();
        using (var e = KvEngine.Open(dir.Path))
        {
            Assert.Equal(1UL, e.Apply(new WriteBatch().Put(K("a"), K("1"))));
            Assert.Equal(2UL, e.Apply(new WriteBatch().Put(K("b"), K("2")).Delete(K("a"))));
            Assert.Equal(10UL, e.Apply(new WriteBatch().Put(K("c"), K("3")), 10));
            Assert.Throws<ArgumentOutOfRangeException>(() => e.Apply(new WriteBatch().Put(K("d"), K("4")), 10));
        }
        using (var e = KvEngine.Open(dir.Path))
        {
            Assert.False(e.Get(K("a")).Found);
            Assert.Equal(2UL, e.NewestVersion(K("a")));
            Assert.Equal(K("2"), e.Get(K("b")).Value);
            Assert.Equal(10UL, e.Get(K("c")).Version);
            Assert.Equal(10UL, e.LastAppliedIndex);
            Assert.Equal(0UL, e.NewestVersion(K("zz")));
            Assert.Equal(11UL, e.Apply(new WriteBatch().Put(K("d"), K("4"))));
        }
    }

    [Fact]
    public void DeleteRange_HidesOlderKeysAndReportsItsVersion()
    {
        using var dir = new TestDir();
        using var e = KvEngine.Open(dir.Path, new EngineOptions { Durability = DurabilityMode.None });
        for (var i = 0; i < 100; i++)
        {
            e.Apply(new WriteBatch().Put(K($"t1/{i:D3}"), K("v")));
        }
        e.Flush();
        var rv = e.Apply(new WriteBatch().DeleteRange(K("t1/"), K("t10")).Put(K("t1/050"), K("same-batch")));
        Assert.Empty(e.Scan(K("t1/"), K("t1/050")));
        Assert.Equal(K("same-batch"), e.Get(K("t1/050")).Value);
        Assert.Equal(rv, e.NewestVersion(K("t1/007")));
        Assert.Equal(rv, e.NewestVersion(K("t1/never-written")));
        Assert.Equal(rv, e.NewestVersionInRange(K("t1/9"), K("t1/99")));
        Assert.Equal(0UL, e.NewestVersionInRange(K("u"), null));
        e.Flush();
        e.Compact();
        Assert.Single(e.Scan(K("t1/"), K("t10")));
        Assert.Equal(rv, e.NewestVersion(K("t1/007")));
    }

    [Fact]
    public void Compact_TombstonesAtOrBelowGcThreshold_AreDroppedOthersKept()
    {
        using var dir = new TestDir();
        using var e = KvEngine.Open(dir.Path, new EngineOptions { Durability = DurabilityMode.None, BackgroundCompaction = false });
        e.Apply(new WriteBatch().Put(K("a"), K("1")).Put(K("b"), K("1")).Put(K("c"), K("1")));
        var va = e.Apply(new WriteBatch().Delete(K("a")));
        var vr = e.Apply(new WriteBatch().DeleteRange(K("b"), K("bb")));
        var vc = e.Apply(new WriteBatch().Delete(K("c")));
        e.SetGcThreshold(vr);
        e.Compact();
        Assert.Equal(0UL, e.NewestVersion(K("a")));
        Assert.Equal(0UL, e.NewestVersion(K("b")));
        Assert.Equal(vc, e.NewestVersion(K("c")));
        Assert.True(va < vr);
        Assert.Equal(1, e.Stats.SegmentCount);
    }

    [Fact]
    public void Snapshot_WritesAfterOpen_AreInvisible()
    {
        using var dir = new TestDir();
        using var e = KvEngine.Open(dir.Path, new EngineOptions { Durability = DurabilityMode.None, MemtableBytes = 4096, CompactionWidth = 2 });
        for (var i = 0; i < 200; i++)
        {
            e.Apply(new WriteBatch().Put(K($"k{i:D4}"), K("old")));
        }
        using var snap = e.OpenSnapshot();
        for (var i = 0; i < 200; i++)
        {
            e.Apply(new WriteBatch().Put(K($"k{i:D4}"), K("new")).Delete(K($"k{(i + 1) % 200:D4}")));
        }
        e.Flush();
        e.Compact();
        Assert.Equal(200UL, snap.Version);
        Assert.All(snap.Scan([], null), x => Assert.Equal(K("old"), x.Value));
        Assert.Equal(200, snap.Scan([], null).Count());
        Assert.Equal(K("old"), snap.Get(K("k0005")).Value);
        Assert.Equal(K("new"), e.Get(K("k0199")).Value);
        Assert.False(e.Get(K("k0000")).Found);
    }

    [Fact]
    public async Task ConcurrentReadersAndWriters_SeeOnlyWholeBatches()
    {
        using var dir = new TestDir();
        using var e = KvEngine.Open(dir.Path, new EngineOptions { Durability = DurabilityMode.None, MemtableBytes = 16 << 10, CompactionWidth = 2 });
        using var stop = new CancellationTokenSource();
        var failures = 0;
        var readers = Enumerable.Range(0, 2).Select(_ => Task.Run(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                // Each batch writes the same value to a and b: a reader must never see them differ.
                var rows = e.Scan(K("a"), K("c")).ToList();
                if (rows.Count == 2 && !rows[0].Value.AsSpan().SequenceEqual(rows[1].Value))
                {
                    Interlocked.Increment(ref failures);
                }
            }
        })).ToArray();
        var writers = Enumerable.Range(0, 2).Select(w => Task.Run(() =>
        {
            for (var i = 0; i < 3000; i++)
            {
                var v = K($"{w}-{i}");
                e.Apply(new WriteBatch().Put(K("a"), v).Put(K("b"), v).Put(K($"filler{w}/{i}"), new byte[64]));
            }
        })).ToArray();
        await Task.WhenAll(writers);
        await stop.CancelAsync();
        await Task.WhenAll(readers);
        Assert.Equal(0, failures);
        Assert.Equal(6000UL, e.LastAppliedIndex);
    }

    [Fact]
    public void RaftMode_LastAppliedIndexDurableAfterFlush_UnflushedReplayedByRaft()
    {
        using var dir = new TestDir();
        var opts = new EngineOptions { RaftMode = true };
        using (var e = KvEngine.Open(dir.Path, opts))
        {
            Assert.Throws<ArgumentException>(() => e.Apply(new WriteBatch().Put(K("a"), K("1"))));
            e.Apply(new WriteBatch().Put(K("a"), K("1")), 5);
            e.Apply(new WriteBatch(), 7);
            e.Flush();
            e.Apply(new WriteBatch().Put(K("b"), K("2")), 9);
            Assert.Empty(Directory.GetFiles(dir.Path, "*.wal"));
        }
        using (var e = KvEngine.Open(dir.Path, opts))
        {
            Assert.Equal(7UL, e.LastAppliedIndex);
            Assert.Equal(5UL, e.Get(K("a")).Version);
            Assert.False(e.Get(K("b")).Found);
            e.Apply(new WriteBatch().Put(K("b"), K("2")), 9);
        }
        Assert.Throws<InvalidOperationException>(() => KvEngine.Open(dir.Path, new EngineOptions()));
    }

    [Fact]
    public void Checkpoint_CopyOpensAtReturnedVersion()
    {
        using var dir = new TestDir();
        using var cp = new TestDir();
        var target = Path.Combine(cp.Path, "copy");
        using var e = KvEngine.Open(dir.Path, new EngineOptions { Durability = DurabilityMode.None });
        for (var i = 0; i < 500; i++)
        {
            e.Apply(new WriteBatch().Put(K($"k{i}"), K($"v{i}")));
        }
        var v = e.Checkpoint(target);
        e.Apply(new WriteBatch().Put(K("later"), K("x")));
        Assert.Equal(500UL, v);
        using var c = KvEngine.Open(target, new EngineOptions { Durability = DurabilityMode.None });
        Assert.Equal(500UL, c.LastAppliedIndex);
        Assert.Equal(500, c.Scan([], null).Count());
        Assert.False(c.Get(K("later")).Found);
        Assert.Equal(K("v42"), c.Get(K("k42")).Value);
    }

    [Fact]
    public void ManyFlushes_BackgroundCompaction_BoundsSegmentCount()
    {
        using var dir = new TestDir();
        using var e = KvEngine.Open(dir.Path, new EngineOptions { Durability = DurabilityMode.None, CompactionWidth = 4 });
        var r = new Random(3);
        for (var f = 0; f < 40; f++)
        {
            for (var i = 0; i < 50; i++)
            {
                e.Apply(new WriteBatch().Put(K($"k{r.Next(2000):D5}"), new byte[20]));
            }
            e.Flush();
        }
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (e.Stats.SegmentCount > 12 && DateTime.UtcNow < deadline)
        {
            Thread.Sleep(20);
        }
        Assert.True(e.Stats.SegmentCount <= 12, $"segments: {e.Stats.SegmentCount}");
        Assert.True(e.Stats.Compactions > 0);
        Assert.Equal(e.Scan([], null).Count(), e.Scan([], null).Select(x => Keys.S(x.Key)).Distinct().Count());
    }

    [Fact]
    public void OpKind_PersistedValues_AreFrozen()
    {
        Assert.Equal(1, (byte)OpKind.Put);
        Assert.Equal(2, (byte)OpKind.Delete);
        Assert.Equal(3, (byte)OpKind.DeleteRange);
        Assert.Equal(0, (byte)DurabilityMode.SyncPerBatch);
        Assert.Equal(1, (byte)DurabilityMode.Periodic);
        Assert.Equal(2, (byte)DurabilityMode.None);
    }

    [Fact]
    public void PeriodicDurability_SyncsAndReopens()
    {
        using var dir = new TestDir();
        using (var e = KvEngine.Open(dir.Path, new EngineOptions { Durability = DurabilityMode.Periodic, SyncIntervalMs = 5 }))
        {
            e.Apply(new WriteBatch().Put(K("p"), K("1")));
            Thread.Sleep(50);
        }
        using var e2 = KvEngine.Open(dir.Path);
        Assert.True(e2.Get(K("p")).Found);
    }
    [Fact]
    public void InOrderAppends_MixedWithInsertsBeforeAndBetween_KeepOrderAndNewestVersions()
    {
        // The delta appends keys that arrive in order at its tail without a search; every other
        // insert (before the start, between, same key again, same key twice in one batch) must
        // keep the list and its tails right.
        var seed = Environment.TickCount;
        var r = new Random(seed);
        using var dir = new TestDir();
        using var e = KvEngine.Open(dir.Path, new EngineOptions { Durability = DurabilityMode.None });
        var model = new SortedDictionary<string, string>(StringComparer.Ordinal);
        var next = 1000;
        for (var step = 0; step < 3000; step++)
        {
            var b = new WriteBatch();
            var kind = r.Next(10);
            var k = kind < 6 ? (next++).ToString("D6") : r.Next(0, next + 5).ToString("D6");
            var v = $"{step}";
            if (kind == 9)
            {
                b.Delete(K(k));
                model.Remove(k);
            }
            else
            {
                b.Put(K(k), K("first"));
                b.Put(K(k), K(v)); // same key twice in a batch: the last wins
                model[k] = v;
            }
            e.Apply(b);
        }
        Assert.True(model.Keys.SequenceEqual(e.Scan([], null).Select(x => S(x.Key))), $"seed={seed}");
        Assert.True(model.Keys.Reverse().SequenceEqual(e.Scan([], null, reverse: true).Select(x => S(x.Key))), $"seed={seed}");
        foreach (var (k, v) in model)
        {
            Assert.True(v == S(e.Get(K(k)).Value!), $"seed={seed} key={k}");
        }
    }
}
