using Xunit.Sdk;

namespace Kdb.Storage.Tests;

/// <summary>
/// Changes since a version against a model: random puts, deletes and range deletes across flushes, compactions, reopens
/// and GC thresholds; the changes since each remembered version, replayed onto the model's state at that version (range
/// deletes first, then point changes), must give the state at the snapshot.
/// </summary>
public sealed class ChangesTests
{
    public static IEnumerable<object[]> Seeds() => SeededRuns.Seeds(10, 104729);

    [Theory]
    [MemberData(nameof(Seeds))]
    public void Changes_since_a_version_replayed_onto_that_version_give_the_snapshot(int seed) => SeededRuns.Run("changes test", seed, Run);

    [Fact]
    public void A_value_hidden_by_a_newer_range_delete_is_reported_deleted_and_segments_at_or_below_since_are_skipped()
    {
        using var dir = new TestDir();
        using var engine = KvEngine.Open(dir.Path, new EngineOptions { Durability = DurabilityMode.None, BackgroundCompaction = false });
        var v1 = engine.Apply(new WriteBatch().Put(Keys.K("a"), [1]).Put(Keys.K("b"), [2]));
        engine.Flush();
        var v2 = engine.Apply(new WriteBatch().Put(Keys.K("c"), [3]).Delete(Keys.K("a")));
        var v3 = engine.Apply(new WriteBatch().DeleteRange(Keys.K("b"), Keys.K("d")));
        using var snap = engine.OpenSnapshot();

        var changes = snap.ChangesSince(v1, [], null).ToList();
        Assert.Equal(["a", "c"], changes.Select(c => Keys.S(c.Key)));
        Assert.All(changes, c => Assert.Null(c.Value));
        Assert.Equal([v2, v3], changes.Select(c => c.Version));
        var ranges = snap.RangeDeletesSince(v1, Keys.K("a"), Keys.K("c"));
        var range = Assert.Single(ranges);
        Assert.Equal(("b", "c", v3), (Keys.S(range.Start), Keys.S(range.End), range.Version));
        Assert.Empty(snap.ChangesSince(v3, [], null));
        Assert.Empty(snap.RangeDeletesSince(v3, [], null));
        var all = snap.ChangesSince(0, [], null).ToList();
        Assert.Equal(["a", "b", "c"], all.Select(c => Keys.S(c.Key)));
    }

    private static void Run(int seed, string dir, ref int step)
    {
        var r = new Random(seed);
        var options = new EngineOptions
        {
            Durability = DurabilityMode.None,
            MemtableBytes = 2048 + r.Next(8192),
            CompactionWidth = 2 + r.Next(3),
        };
        var engine = KvEngine.Open(dir, options);
        var live = new SortedDictionary<byte[], byte[]>(ByteComparer.Instance);
        // Remembered versions with the live state right after them; version 0 is the empty start.
        var history = new List<(ulong Version, SortedDictionary<byte[], byte[]> State)> { (0, new(ByteComparer.Instance)) };
        ulong gc = 0;
        var checks = 0;
        try
        {
            for (step = 0; step < 1200; step++)
            {
                var op = r.Next(100);
                if (op < 55)
                {
                    var batch = new WriteBatch();
                    var n = 1 + r.Next(4);
                    var ops = new List<(byte[], byte[]?)>();
                    for (var i = 0; i < n; i++)
                    {
                        var k = ModelTests.RandomKey(r);
                        if (r.Next(4) == 0)
                        {
                            batch.Delete(k);
                            ops.Add((k, null));
                        }
                        else
                        {
                            var v = new byte[r.Next(30)];
                            r.NextBytes(v);
                            batch.Put(k, v);
                            ops.Add((k, v));
                        }
                    }
                    engine.Apply(batch);
                    foreach (var (k, v) in ops)
                    {
                        if (v is null)
                        {
                            live.Remove(k);
                        }
                        else
                        {
                            live[k] = v;
                        }
                    }
                }
                else if (op < 60)
                {
                    var (a, b) = (ModelTests.RandomKey(r), ModelTests.RandomKey(r));
                    var c = ByteComparer.Instance.Compare(a, b);
                    if (c == 0)
                    {
                        continue;
                    }
                    if (c > 0)
                    {
                        (a, b) = (b, a);
                    }
                    engine.Apply(new WriteBatch().DeleteRange(a, b));
                    RemoveRange(live, a, b);
                }
                else if (op < 72)
                {
                    history.Add((engine.LastAppliedIndex, new SortedDictionary<byte[], byte[]>(live, ByteComparer.Instance)));
                }
                else if (op < 80)
                {
                    CheckChanges(engine, live, history, gc, r);
                    checks++;
                }
                else if (op < 86)
                {
                    engine.Flush();
                }
                else if (op < 89)
                {
                    engine.Compact();
                }
                else if (op < 91 && history.Count > 2)
                {
                    // Tombstones at or below the threshold may go: only versions at or above it can be asked for since.
                    var candidate = history[r.Next(history.Count)].Version;
                    if (candidate > gc)
                    {
                        gc = candidate;
                        engine.SetGcThreshold(gc);
                    }
                }
                else if (op < 93)
                {
                    engine.Dispose();
                    engine = KvEngine.Open(dir, options);
                }
            }
            engine.Compact();
            CheckChanges(engine, live, history, gc, r);
            Assert.True(checks > 10, $"only {checks} checks ran");
        }
        finally
        {
            engine.Dispose();
        }
    }

    private static void CheckChanges(IKvEngine engine, SortedDictionary<byte[], byte[]> live, List<(ulong Version, SortedDictionary<byte[], byte[]> State)> history, ulong gc, Random r)
    {
        using var snap = engine.OpenSnapshot();
        foreach (var (since, state) in history)
        {
            if (since < gc || (since == 0 && gc > 0))
            {
                continue;
            }
            byte[] start = [];
            byte[]? end = null;
            if (r.Next(3) == 0)
            {
                (start, end) = (ModelTests.RandomKey(r), ModelTests.RandomKey(r));
                if (ByteComparer.Instance.Compare(start, end) >= 0)
                {
                    (start, end) = (end, start);
                }
            }
            var replay = new SortedDictionary<byte[], byte[]>(ByteComparer.Instance);
            foreach (var kv in state)
            {
                if (InRange(kv.Key, start, end))
                {
                    replay[kv.Key] = kv.Value;
                }
            }
            foreach (var rd in snap.RangeDeletesSince(since, start, end))
            {
                Assert.True(rd.Version > since && rd.Version <= snap.Version, $"range delete version {rd.Version} outside ({since}, {snap.Version}]");
                Assert.True(ByteComparer.Instance.Compare(rd.Start, start) >= 0 && (end is null || ByteComparer.Instance.Compare(rd.End, end) <= 0), "range delete not clipped");
                RemoveRange(replay, rd.Start, rd.End);
            }
            byte[]? previous = null;
            foreach (var change in snap.ChangesSince(since, start, end))
            {
                Assert.True(InRange(change.Key, start, end), $"change {Keys.S(change.Key)} outside the range");
                Assert.True(previous is null || ByteComparer.Instance.Compare(previous, change.Key) < 0, "changes not in ascending key order");
                Assert.True(change.Version > since && change.Version <= snap.Version, $"change version {change.Version} outside ({since}, {snap.Version}]");
                previous = change.Key;
                if (change.Value is null)
                {
                    replay.Remove(change.Key);
                }
                else
                {
                    replay[change.Key] = change.Value;
                }
            }
            var expected = live.Where(kv => InRange(kv.Key, start, end)).ToList();
            Assert.True(expected.Count == replay.Count, $"since {since}: {replay.Count} keys after replay, {expected.Count} expected");
            foreach (var (key, value) in expected)
            {
                Assert.True(replay.TryGetValue(key, out var got), $"since {since}: {Keys.S(key)} missing after replay");
                Assert.Equal(value, got);
            }
        }
    }

    private static bool InRange(byte[] key, byte[] start, byte[]? end) =>
        ByteComparer.Instance.Compare(key, start) >= 0 && (end is null || ByteComparer.Instance.Compare(key, end) < 0);

    private static void RemoveRange(SortedDictionary<byte[], byte[]> map, byte[] start, byte[] end)
    {
        foreach (var k in map.Keys.Where(k => InRange(k, start, end)).ToList())
        {
            map.Remove(k);
        }
    }
}
