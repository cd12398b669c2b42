namespace Kdb.Storage.Tests;

/// <summary>Randomized operations against a SortedDictionary reference, with reopen, flush,
/// compaction and snapshots at random points.</summary>
public sealed class ModelTests
{
    private sealed class Model
    {
        public readonly SortedDictionary<byte[], (byte[]? Value, ulong Version)> Entries = new(ByteComparer.Instance);
        public readonly List<(byte[] Start, byte[] End, ulong Version)> Ranges = [];

        public Model Clone()
        {
            var m = new Model();
            foreach (var kv in Entries)
            {
                m.Entries[kv.Key] = kv.Value;
            }
            m.Ranges.AddRange(Ranges);
            return m;
        }

        public ulong NewestVersion(byte[] key)
        {
            ulong v = Entries.TryGetValue(key, out var e) ? e.Version : 0;
            foreach (var r in Ranges)
            {
                if (ByteComparer.Instance.Compare(key, r.Start) >= 0 && ByteComparer.Instance.Compare(key, r.End) < 0)
                {
                    v = Math.Max(v, r.Version);
                }
            }
            return v;
        }

        public ulong NewestInRange(byte[] start, byte[]? end)
        {
            ulong v = 0;
            foreach (var kv in Entries)
            {
                if (ByteComparer.Instance.Compare(kv.Key, start) >= 0 && (end is null || ByteComparer.Instance.Compare(kv.Key, end) < 0))
                {
                    v = Math.Max(v, kv.Value.Version);
                }
            }
            foreach (var r in Ranges)
            {
                if ((end is null || ByteComparer.Instance.Compare(r.Start, end) < 0) && ByteComparer.Instance.Compare(r.End, start) > 0)
                {
                    v = Math.Max(v, r.Version);
                }
            }
            return v;
        }

        public List<KvEntry> Scan(byte[] start, byte[]? end, int limit, bool reverse)
        {
            var list = new List<KvEntry>();
            foreach (var kv in Entries)
            {
                if (kv.Value.Value is not null && ByteComparer.Instance.Compare(kv.Key, start) >= 0
                    && (end is null || ByteComparer.Instance.Compare(kv.Key, end) < 0))
                {
                    list.Add(new KvEntry(kv.Key, kv.Value.Value, kv.Value.Version));
                }
            }
            if (reverse)
            {
                list.Reverse();
            }
            return limit > 0 && list.Count > limit ? list.GetRange(0, limit) : list;
        }
    }

    internal static byte[] RandomKey(Random r)
    {
        // A small key space with shared prefixes and varying lengths forces overwrites, prefix
        // relations and duplicate learned-index projections.
        // The last two shapes aim at the delta's cached 24-byte key words: keys equal in their first
        // 24 bytes, and keys that differ only by trailing zero bytes (equal once zero-padded).
        return r.Next(6) switch
        {
            0 => Keys.K("k" + r.Next(60)),
            1 => Keys.K("user/0000000000/" + r.Next(40).ToString("D3")),
            2 => [(byte)r.Next(3), (byte)r.Next(3)],
            3 => Keys.K("t" + r.Next(30).ToString("D2") + new string('x', r.Next(3))),
            4 => Keys.K("tenant-table-index-0123/" + r.Next(25)),
            _ => ZeroTail(r),
        };
    }

    private static byte[] ZeroTail(Random r)
    {
        var k = new byte[r.Next(1, 27)];
        k[0] = (byte)(1 + r.Next(2));
        return k;
    }

    public static IEnumerable<object[]> Seeds() => SeededRuns.Seeds(12, 7919);

    [Theory]
    [MemberData(nameof(Seeds))]
    public void RandomOperations_AgainstSortedDictionary_Match(int seed) => SeededRuns.Run("model test", seed, Run);

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
        var model = new Model();
        var snaps = new List<(IKvSnapshot Snap, Model Model)>();
        try
        {
            for (step = 0; step < 1500; step++)
            {
                var op = r.Next(100);
                if (op < 45)
                {
                    var batch = new WriteBatch();
                    var n = 1 + r.Next(4);
                    var puts = new List<(byte[], byte[]?)>();
                    for (var i = 0; i < n; i++)
                    {
                        var k = RandomKey(r);
                        if (r.Next(5) == 0)
                        {
                            batch.Delete(k);
                            puts.Add((k, null));
                        }
                        else
                        {
                            var v = new byte[r.Next(40)];
                            r.NextBytes(v);
                            batch.Put(k, v);
                            puts.Add((k, v));
                        }
                    }
                    var ver = engine.Apply(batch);
                    foreach (var (k, v) in puts)
                    {
                        model.Entries[k] = (v, ver);
                    }
                }
                else if (op < 48)
                {
                    var a = RandomKey(r);
                    var b = RandomKey(r);
                    var c = ByteComparer.Instance.Compare(a, b);
                    if (c == 0)
                    {
                        continue;
                    }
                    if (c > 0)
                    {
                        (a, b) = (b, a);
                    }
                    var ver = engine.Apply(new WriteBatch().DeleteRange(a, b));
                    model.Ranges.Add((a, b, ver));
                    foreach (var k in model.Entries.Keys.ToList())
                    {
                        if (ByteComparer.Instance.Compare(k, a) >= 0 && ByteComparer.Instance.Compare(k, b) < 0)
                        {
                            model.Entries[k] = (null, model.Entries[k].Version);
                        }
                    }
                }
                else if (op < 70)
                {
                    var k = RandomKey(r);
                    Check(engine, model, k, "engine");
                }
                else if (op < 78)
                {
                    CheckScan(engine, model, r, "engine");
                }
                else if (op < 82)
                {
                    snaps.Add((engine.OpenSnapshot(), model.Clone()));
                }
                else if (op < 88 && snaps.Count > 0)
                {
                    var i = r.Next(snaps.Count);
                    var (s, m) = snaps[i];
                    Check(s, m, RandomKey(r), "snapshot");
                    CheckScan(s, m, r, "snapshot");
                    if (r.Next(3) == 0)
                    {
                        s.Dispose();
                        snaps.RemoveAt(i);
                    }
                }
                else if (op < 92)
                {
                    engine.Flush();
                }
                else if (op < 94)
                {
                    engine.Compact();
                }
                else if (op < 96)
                {
                    foreach (var (s, _) in snaps)
                    {
                        s.Dispose();
                    }
                    snaps.Clear();
                    engine.Dispose();
                    engine = KvEngine.Open(dir, options);
                }
            }
            foreach (var k in model.Entries.Keys)
            {
                Check(engine, model, k, "final");
            }
            Assert.Equal(model.Scan([], null, 0, false).Count, engine.Scan([], null).Count());
        }
        finally
        {
            foreach (var (s, _) in snaps)
            {
                s.Dispose();
            }
            engine.Dispose();
        }
    }

    private static void Check(IKvReader reader, Model model, byte[] k, string what)
    {
        var got = reader.Get(k);
        model.Entries.TryGetValue(k, out var e);
        if (e.Value is null)
        {
            Assert.False(got.Found, $"{what}: {Keys.S(k)} should be absent");
        }
        else
        {
            Assert.True(got.Found, $"{what}: {Keys.S(k)} should be present");
            Assert.Equal(e.Value, got.Value);
            Assert.Equal(e.Version, got.Version);
        }
        Assert.Equal(model.NewestVersion(k), reader.NewestVersion(k));
    }

    private static void CheckScan(IKvReader reader, Model model, Random r, string what)
    {
        var a = RandomKey(r);
        byte[]? b = r.Next(4) == 0 ? null : RandomKey(r);
        if (b is not null && ByteComparer.Instance.Compare(a, b) > 0)
        {
            (a, b) = (b, a);
        }
        if (r.Next(5) == 0)
        {
            a = [];
        }
        var limit = r.Next(3) == 0 ? r.Next(1, 10) : 0;
        var reverse = r.Next(2) == 0;
        var expected = model.Scan(a, b, limit, reverse);
        var actual = reader.Scan(a, b, limit, reverse).ToList();
        Assert.True(expected.Count == actual.Count, $"{what}: scan count {actual.Count} != {expected.Count} (reverse={reverse}, limit={limit})");
        for (var i = 0; i < expected.Count; i++)
        {
            Assert.Equal(expected[i].Key, actual[i].Key);
            Assert.Equal(expected[i].Value, actual[i].Value);
            Assert.Equal(expected[i].Version, actual[i].Version);
        }
        Assert.Equal(model.NewestInRange(a, b), reader.NewestVersionInRange(a, b));
    }
}
