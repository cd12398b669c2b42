using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Kdb.Storage.Index;

/// <summary>
/// Two-level learned index over sorted u64 projections (duplicates allowed). The root is a radix
/// table over the projection's high bits that narrows the leaf to a few candidates; leaves are
/// linear models found by greedy error-bounded segmentation (the "shrinking cone"), so skewed data
/// gets more, shorter leaves instead of one model that breaks (a single linear root fails on
/// lognormal and osm-like keys). Each leaf's maximum error is measured at build time with the exact
/// arithmetic used at lookup, over both ends of every run of equal projections, so a lookup that
/// searches [pred − err, pred + err] always contains the lower bound. The bound is never clamped:
/// data that does not fit ε simply produces another leaf (or, for a long run of equal projections,
/// a leaf whose recorded error covers the run).
/// </summary>
internal sealed class LearnedIndex
{
    private const int FormatTag = 0x4C58_4931; // "1IXL"

    // Build-time arrays (structure of arrays); dropped once the lookup copy exists.
    private readonly ulong[] _x0;    // leaf origin projection
    private readonly double[] _slope; // positions per projection unit, relative to the origin
    private readonly long[] _start;   // L + 1 entries: absolute first position of each leaf, then the end
    private readonly int[] _err;
    private readonly long _end;
    private readonly RadixRouter? _router;
    private readonly Leaf[] _leaves;  // the same parameters, one cache line per lookup

    /// <summary>Lookup copy of a leaf: origin, slope, first and one-past-last position, error.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct Leaf
    {
        public ulong X0;
        public double Slope;
        public long Start;
        public int Span;
        public int Err;
    }

    private LearnedIndex(ulong[] x0, double[] slope, long[] start, int[] err, RadixRouter? router)
    {
        _x0 = x0;
        _slope = slope;
        _start = start;
        _err = err;
        _router = router;
        _leaves = new Leaf[x0.Length];
        for (var i = 0; i < x0.Length; i++)
        {
            _leaves[i] = new Leaf
            {
                X0 = x0[i],
                Slope = slope[i],
                Start = start[i],
                Span = (int)Math.Min(start[i + 1] - start[i], int.MaxValue),
                Err = err[i],
            };
        }
        _end = start[^1];
        if (router is not null)
        {
            _x0 = [];
            _slope = [];
            _err = [];
            _start = [];
        }
    }

    public int LeafCount => _leaves.Length;

    public long ModelBytes => (_leaves.Length * 32L) + 8 + (_router?.Bytes ?? 0);

    public int MaxError
    {
        get
        {
            var m = 0;
            foreach (ref readonly var l in _leaves.AsSpan())
            {
                m = Math.Max(m, l.Err);
            }
            return m;
        }
    }

    /// <summary>Sum over leaves of keys × log2(2·err + 1); divide by the key count for the average.</summary>
    public double WeightedLog2Error
    {
        get
        {
            double s = 0;
            foreach (ref readonly var l in _leaves.AsSpan())
            {
                s += l.Span * Math.Log2((2.0 * l.Err) + 1);
            }
            return s;
        }
    }

    public static LearnedIndex Build(ReadOnlySpan<ulong> xs, long basePos, int epsilon = 8)
    {
        var n = xs.Length;
        if (n == 0)
        {
            return new LearnedIndex([], [], [basePos], [], RadixRouter.Build([]));
        }
        var x0 = new List<ulong>();
        var slopes = new List<double>();
        var starts = new List<long>();
        // Pass 1: greedy cone over distinct projections; targets are the first and one-past-last
        // position of each run of equal projections.
        ulong ox = xs[0];
        long oy = 0;
        double lo = 0, hi = double.PositiveInfinity;
        var i = 0;
        while (i < n)
        {
            var x = xs[i];
            var j = i + 1;
            while (j < n && xs[j] == x)
            {
                j++;
            }
            if (i == 0)
            {
                i = j;
                continue;
            }
            var dx = (double)(x - ox);
            var sLo = (j - epsilon - oy) / dx;
            var sHi = (i + epsilon - oy) / dx;
            var nlo = Math.Max(lo, sLo);
            var nhi = Math.Min(hi, sHi);
            if (nlo > nhi)
            {
                x0.Add(ox);
                starts.Add(basePos + oy);
                slopes.Add(ChooseSlope(lo, hi));
                ox = x;
                oy = i;
                lo = 0;
                hi = double.PositiveInfinity;
            }
            else
            {
                lo = nlo;
                hi = nhi;
            }
            i = j;
        }
        x0.Add(ox);
        starts.Add(basePos + oy);
        slopes.Add(ChooseSlope(lo, hi));
        starts.Add(basePos + n);

        var L = x0.Count;
        var startArr = starts.ToArray();
        var model = new LearnedIndex(x0.ToArray(), slopes.ToArray(), startArr, new int[L], null);
        // Pass 2: measure the real error of each leaf with the lookup arithmetic.
        var leaf = 0;
        i = 0;
        while (i < n)
        {
            var x = xs[i];
            var j = i + 1;
            while (j < n && xs[j] == x)
            {
                j++;
            }
            while (leaf + 1 < L && model._x0[leaf + 1] <= x)
            {
                leaf++;
            }
            var p = model.PredictInLeaf(leaf, x);
            var e = Math.Max(Math.Abs(p - (basePos + i)), Math.Abs(p - (basePos + j)));
            if (e > model._err[leaf])
            {
                model._err[leaf] = (int)Math.Min(e, int.MaxValue);
            }
            i = j;
        }
        return new LearnedIndex(model._x0, model._slope, startArr, model._err, RadixRouter.Build(model._x0));
    }

    private static double ChooseSlope(double lo, double hi) =>
        double.IsPositiveInfinity(hi) ? lo : (lo + hi) / 2;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private long PredictInLeaf(int leaf, ulong x)
    {
        var s = _start[leaf];
        var span = _start[leaf + 1] - s;
        var ox = _x0[leaf];
        if (x <= ox)
        {
            return s;
        }
        var d = _slope[leaf] * (double)(x - ox);
        return d >= span ? s + span : s + (long)d;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int Route(ulong x)
    {
        var (lo, hi) = _router!.Route(x);
        ref var lr = ref MemoryMarshal.GetArrayDataReference(_leaves);
        // Last leaf in [lo, hi] whose origin ≤ x.
        while (lo < hi)
        {
            var mid = (lo + hi + 1) >> 1;
            if (Unsafe.Add(ref lr, mid).X0 <= x)
            {
                lo = mid;
            }
            else
            {
                hi = mid - 1;
            }
        }
        return lo;
    }

    /// <summary>The lower bound of <paramref name="x"/> (first position whose projection ≥ x, or of a
    /// full key with this projection) lies in [lo, hi]; <c>Pred</c>, inside it, is the model's guess.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public (long Lo, long Hi, long Pred) Window(ulong x)
    {
        if (_leaves.Length == 0)
        {
            return (_end, _end, _end);
        }
        ref var leaf = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_leaves), Route(x));
        long off = 0;
        if (x > leaf.X0)
        {
            // Same arithmetic as PredictInLeaf, which measured the error at build time.
            var d = leaf.Slope * (double)(x - leaf.X0);
            off = d >= leaf.Span ? leaf.Span : (long)d;
        }
        var p = leaf.Start + off;
        return (Math.Max(leaf.Start, p - leaf.Err), Math.Min(leaf.Start + leaf.Span, p + leaf.Err), p);
    }

    /// <summary>Lower bound in a sorted u64 array this index was built over (basePos 0).</summary>
    public long LowerBound(ulong[] keys, ulong x)
    {
        var (lo, hi, _) = Window(x);
        return LastMile.LowerBound(keys, lo, hi, x);
    }

    public void Write(ByteWriter w)
    {
        var L = _leaves.Length;
        w.I32(FormatTag);
        w.I32(L);
        foreach (ref readonly var l in _leaves.AsSpan())
        {
            w.U64(l.X0);
        }
        foreach (ref readonly var l in _leaves.AsSpan())
        {
            w.F64(l.Slope);
        }
        foreach (ref readonly var l in _leaves.AsSpan())
        {
            w.I64(l.Start);
        }
        w.I64(_end);
        foreach (ref readonly var l in _leaves.AsSpan())
        {
            w.I32(l.Err);
        }
        _router!.Write(w);
    }

    public static LearnedIndex Read(ref ByteReader r)
    {
        if (r.I32() != FormatTag)
        {
            throw new FormatException("bad learned-index tag");
        }
        var L = r.I32();
        if (L < 0)
        {
            throw new FormatException("bad learned-index header");
        }
        var x0 = MemoryMarshal.Cast<byte, ulong>(r.Take(checked(L * 8))).ToArray();
        var slope = MemoryMarshal.Cast<byte, double>(r.Take(checked(L * 8))).ToArray();
        var start = MemoryMarshal.Cast<byte, long>(r.Take(checked((L + 1) * 8))).ToArray();
        var err = MemoryMarshal.Cast<byte, int>(r.Take(checked(L * 4))).ToArray();
        var router = RadixRouter.Read(ref r, L);
        return new LearnedIndex(x0, slope, start, err, router);
    }
}

/// <summary>The last-mile search inside a predicted window.</summary>
internal static class LastMile
{
    /// <summary>Window size up to which a SIMD count beats a binary search (64 keys = 16 AVX2
    /// compares, about the cost of 6 dependent, mispredicting binary-search steps).</summary>
    public const int LinearMax = 64;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static long LowerBound(ulong[] keys, long lo, long hi, ulong x)
    {
        var len = (int)(hi - lo);
        ref var start = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(keys), (nint)lo);
        if (len <= LinearMax)
        {
            return lo + CountLess(ref start, len, x);
        }
        return lo + BranchlessLowerBound(ref start, len, x);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int CountLess(ref ulong start, int len, ulong x)
    {
        var c = 0;
        var i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var vx = Vector256.Create(x);
            for (; i + 4 <= len; i += 4)
            {
                var v = Vector256.LoadUnsafe(ref start, (nuint)i);
                c += BitOperations.PopCount(Vector256.LessThan(v, vx).ExtractMostSignificantBits());
            }
        }
        for (; i < len; i++)
        {
            c += Unsafe.Add(ref start, i) < x ? 1 : 0;
        }
        return c;
    }

    /// <summary>First index in [0, len] whose key ≥ x; no data-dependent branches in the loop.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int BranchlessLowerBound(ref ulong start, int len, ulong x)
    {
        if (len == 0)
        {
            return 0;
        }
        var b = 0;
        var n = len;
        while (n > 1)
        {
            var half = n >> 1;
            b = Unsafe.Add(ref start, b + half - 1) < x ? b + half : b;
            n -= half;
        }
        return b + (Unsafe.Add(ref start, b) < x ? 1 : 0);
    }
}
