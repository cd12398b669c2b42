using System.Diagnostics;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using Kdb.Storage.Index;

namespace Kdb.Storage.Benchmarks;

/// <summary>Index lookup: RMI vs Array.BinarySearch vs Eytzinger layout vs SortedDictionary vs
/// Dictionary, all over the same sorted keys, random present keys, single thread.</summary>
internal static unsafe class LookupBench
{
    private static long _sink;

    public static void RunU64(string name, int n, int queries, bool withSorted, bool withHash, Action<string, double, string> emit)
    {
        var sw = Stopwatch.StartNew();
        var keys = Datasets.U64(name, n);
        var q = Queries(keys, queries, 1);
        var tag = $"{name}.{n / 1_000_000}m";
        Console.Error.WriteLine($"# {tag}: generated in {sw.Elapsed.TotalSeconds:F1}s");

        sw.Restart();
        var rmi = LearnedIndex.Build(keys, 0);
        Console.Error.WriteLine($"# {tag}: RMI built in {sw.Elapsed.TotalSeconds:F2}s, {rmi.LeafCount} leaves, max err {rmi.MaxError}, avg log2 err {rmi.WeightedLog2Error / n:F2}");
        // Sanity: the RMI must agree with binary search on every query before it is timed.
        foreach (var x in q.AsSpan(0, Math.Min(q.Length, 100_000)))
        {
            var bs = Array.BinarySearch(keys, x);
            if (rmi.LowerBound(keys, x) != bs)
            {
                throw new InvalidOperationException($"RMI mismatch on {tag}");
            }
        }
        var eyt = new Eytzinger(keys);
        var (t, ratio) = Interleaved(q, x => rmi.LowerBound(keys, x), x => Array.BinarySearch(keys, x), eyt.Search);
        emit($"lookup_rmi_ns.{tag}", t[0], "ns");
        emit($"lookup_binary_search_ns.{tag}", t[1], "ns");
        emit($"lookup_eytzinger_ns.{tag}", t[2], "ns");
        if (withSorted)
        {
            var sd = new SortedDictionary<ulong, int>();
            for (var i = 0; i < keys.Length; i++)
            {
                sd.Add(keys[i], i);
            }
            emit($"lookup_sorteddictionary_ns.{tag}", Time(q, x => sd.TryGetValue(x, out var v) ? v : -1), "ns");
            sd = null;
            GC.Collect();
        }
        if (withHash)
        {
            var d = new Dictionary<ulong, int>(keys.Length);
            for (var i = 0; i < keys.Length; i++)
            {
                d.Add(keys[i], i);
            }
            emit($"lookup_dictionary_ns.{tag}", Time(q, x => d.TryGetValue(x, out var v) ? v : -1), "ns");
            d = null;
            GC.Collect();
        }
        emit($"lookup_rmi_over_binary_search.{tag}", ratio[1], "x");
        emit($"lookup_rmi_over_btree.{tag}", ratio[2], "x");
        emit($"model_bytes_per_key.{tag}", (double)rmi.ModelBytes / n, "B");
        eyt.Dispose();
    }

    public static void RunPrefixed(int n, int queries, Action<string, double, string> emit)
    {
        var keys = Datasets.Prefixed(n);
        var tag = $"prefixed.{n / 1_000_000}m";
        // 24 bytes per key in one native block (a byte[] stops at 2 GiB; 100M keys are 2.4 GB).
        var flat = (byte*)NativeMemory.Alloc((nuint)n * 24);
        for (var i = 0; i < n; i++)
        {
            keys[i].WriteTo(new Span<byte>(flat + ((long)i * 24), 24));
        }
        var src = new Flat24(flat, n);
        var sw = Stopwatch.StartNew();
        var idx = SegmentIndex.Build(src);
        Console.Error.WriteLine($"# {tag}: index built in {sw.Elapsed.TotalSeconds:F2}s, max err {idx.MaxError}, avg log2 err {idx.WeightedLog2Error / n:F2}");
        var r = new Random(2);
        var qi = new int[queries];
        for (var i = 0; i < queries; i++)
        {
            qi[i] = r.Next(n);
        }
        foreach (var i in qi.AsSpan(0, Math.Min(queries, 100_000)))
        {
            if (idx.LowerBound(src.KeyAt(i), src) != i)
            {
                throw new InvalidOperationException("prefixed RMI mismatch");
            }
        }
        var eyt = new Eytzinger24(keys);
        var (t, ratio) = Interleaved(qi, i => idx.LowerBound(src.KeyAt(i), src), i => Array.BinarySearch(keys, keys[i]), i => eyt.Search(keys[i]));
        emit($"lookup_rmi_ns.{tag}", t[0], "ns");
        emit($"lookup_binary_search_ns.{tag}", t[1], "ns");
        emit($"lookup_eytzinger_ns.{tag}", t[2], "ns");
        emit($"lookup_rmi_over_binary_search.{tag}", ratio[1], "x");
        emit($"lookup_rmi_over_btree.{tag}", ratio[2], "x");
        emit($"model_bytes_per_key.{tag}", (double)idx.ModelBytes / n, "B");
        NativeMemory.Free(flat);
    }

    private readonly struct Flat24(byte* flat, int n) : IKeySource
    {
        public long Count => n;
        public ReadOnlySpan<byte> KeyAt(long index) => new(flat + (index * 24), 24);
        public void Prefetch(long index)
        {
        }
    }

    private static ulong[] Queries(ulong[] keys, int count, int seed)
    {
        var r = new Random(seed);
        var q = new ulong[count];
        for (var i = 0; i < count; i++)
        {
            q[i] = keys[r.Next(keys.Length)];
        }
        return q;
    }

    /// <summary>ns per lookup: a warm-up pass, then the best of three timed passes.</summary>
    private static double Time(ulong[] q, Func<ulong, long> f)
    {
        double best = double.MaxValue;
        for (var pass = 0; pass < 4; pass++)
        {
            long s = 0;
            var t = CpuClock.NowNs();
            foreach (var x in q)
            {
                s += f(x);
            }
            var ns = (double)(CpuClock.NowNs() - t) / q.Length;
            _sink += s;
            if (pass > 0)
            {
                best = Math.Min(best, ns);
            }
        }
        return best;
    }

    public static long Sink => _sink;

    // The machine is shared and its load swings within seconds, so the structures take turns on short
    // chunks of the queries (every structure gets the same chunk in a round), after one warm-up
    // pass. Each structure's time is the median over rounds, and each ratio the median of the
    // per-round ratios against the first structure: a burst of load inflates one round for all
    // alike instead of one structure's whole pass.
    private static (double[] Ns, double[] RatioToFirst) Interleaved<T>(T[] q, params Func<T, long>[] fs)
    {
        const int Chunk = 50_000;
        var chunks = Math.Max(1, q.Length / Chunk);
        var passes = 3;
        var ns = new double[fs.Length][];
        for (var i = 0; i < fs.Length; i++)
        {
            TimeChunk(q, 0, q.Length, fs[i]);
            ns[i] = new double[chunks * passes];
        }
        var ratios = new double[fs.Length][];
        for (var i = 0; i < fs.Length; i++)
        {
            ratios[i] = new double[chunks * passes];
        }
        for (var round = 0; round < chunks * passes; round++)
        {
            var c = round % chunks;
            var len = Math.Min(Chunk, q.Length - (c * Chunk));
            for (var i = 0; i < fs.Length; i++)
            {
                ns[i][round] = TimeChunk(q, c * Chunk, len, fs[i]);
            }
            for (var i = 0; i < fs.Length; i++)
            {
                ratios[i][round] = ns[0][round] / ns[i][round];
            }
        }
        var med = new double[fs.Length];
        var rat = new double[fs.Length];
        for (var i = 0; i < fs.Length; i++)
        {
            med[i] = Median(ns[i]);
            rat[i] = Median(ratios[i]);
        }
        return (med, rat);
    }

    private static double Median(double[] xs)
    {
        var c = (double[])xs.Clone();
        Array.Sort(c);
        return c[c.Length / 2];
    }

    private static double TimeChunk<T>(T[] q, int start, int len, Func<T, long> f)
    {
        long s = 0;
        var t = CpuClock.NowNs();
        foreach (var x in q.AsSpan(start, len))
        {
            s += f(x);
        }
        _sink += s;
        return (double)(CpuClock.NowNs() - t) / len;
    }

    /// <summary>Eytzinger (BFS) layout with branchless descent and prefetch of the 16th descendant
    /// (one cache line holds 8 keys: four levels down), the static search tree of Khuong &amp; Morin.</summary>
    private sealed class Eytzinger : IDisposable
    {
        private readonly ulong[] _a;
        private readonly ulong* _p;
        private readonly long _n;

        public Eytzinger(ulong[] sorted)
        {
            _n = sorted.Length;
            _a = GC.AllocateUninitializedArray<ulong>(sorted.Length + 1 + 64, pinned: true);
            long i = 0;
            Fill(sorted, ref i, 1);
            _p = (ulong*)Unsafe.AsPointer(ref _a[0]);
        }

        private void Fill(ulong[] s, ref long i, long k)
        {
            // Iterative in-order fill to avoid deep recursion on 100M keys.
            var stack = new Stack<long>();
            var cur = k;
            while (stack.Count > 0 || cur <= _n)
            {
                while (cur <= _n)
                {
                    stack.Push(cur);
                    cur *= 2;
                }
                cur = stack.Pop();
                _a[cur] = s[i++];
                cur = (cur * 2) + 1;
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public long Search(ulong x)
        {
            long k = 1;
            var p = _p;
            var n = _n;
            while (k <= n)
            {
                if (Sse.IsSupported && k * 16 <= n)
                {
                    Sse.Prefetch0(p + (k * 16));
                }
                k = (2 * k) + (p[k] < x ? 1 : 0);
            }
            k >>= BitOperations.TrailingZeroCount(~k) + 1;
            return k;
        }

        public void Dispose()
        {
        }
    }

    private sealed class Eytzinger24
    {
        private readonly Key24[] _a;
        private readonly long _n;

        public Eytzinger24(Key24[] sorted)
        {
            _n = sorted.Length;
            _a = new Key24[sorted.Length + 1];
            var stack = new Stack<long>();
            long cur = 1, i = 0;
            while (stack.Count > 0 || cur <= _n)
            {
                while (cur <= _n)
                {
                    stack.Push(cur);
                    cur *= 2;
                }
                cur = stack.Pop();
                _a[cur] = sorted[i++];
                cur = (cur * 2) + 1;
            }
        }

        public long Search(Key24 x)
        {
            long k = 1;
            ref var a0 = ref _a[0];
            while (k <= _n)
            {
                k = (2 * k) + (Unsafe.Add(ref a0, (nint)k).CompareTo(x) < 0 ? 1 : 0);
            }
            k >>= BitOperations.TrailingZeroCount(~k) + 1;
            return k;
        }
    }
}
