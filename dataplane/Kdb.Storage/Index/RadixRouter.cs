using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Kdb.Storage.Index;

/// <summary>
/// The root of the learned index: a radix table over the high bits of (x − min) that maps a
/// projection to a short range of candidate leaves. A bucket that still holds many leaves (clustered
/// data with huge jumps, as in osm-like keys, packs most leaves into a few buckets) gets its own
/// radix table over its narrower range, recursively, so routing stays a few table reads instead of
/// a long binary search over leaf origins.
/// </summary>
internal sealed class RadixRouter
{
    private const int SplitAbove = 16;
    private const int MaxDepth = 6;

    private readonly ulong[] _min;
    private readonly int[] _shift;
    private readonly int[] _offset;  // into _table and _child
    private readonly int[] _buckets;
    private readonly int[] _table;   // per node R + 1 entries: first leaf whose bucket ≥ b
    private readonly int[] _child;   // per node R entries: sub-node of a heavy bucket, or −1

    private RadixRouter(ulong[] min, int[] shift, int[] offset, int[] buckets, int[] table, int[] child)
    {
        _min = min;
        _shift = shift;
        _offset = offset;
        _buckets = buckets;
        _table = table;
        _child = child;
    }

    public long Bytes => (_min.Length * 20L) + (_table.Length * 4L) + (_child.Length * 4L);

    public static RadixRouter Build(ulong[] x0)
    {
        var min = new List<ulong>();
        var shift = new List<int>();
        var offset = new List<int>();
        var buckets = new List<int>();
        var table = new List<int>();
        var child = new List<int>();
        int BuildNode(int lo, int hi, int depth)
        {
            var node = min.Count;
            var count = hi - lo;
            var r = Math.Clamp(BitOperations.Log2((uint)Math.Max(count, 1)) + 1, 1, 16);
            var range = x0[hi - 1] - x0[lo];
            var bits = 64 - BitOperations.LeadingZeroCount(range);
            var s = Math.Max(0, bits - r);
            var R = 1 << r;
            min.Add(x0[lo]);
            shift.Add(s);
            offset.Add(table.Count);
            buckets.Add(R);
            var tOff = table.Count;
            var li = lo;
            for (var b = 0; b <= R; b++)
            {
                while (li < hi && (long)((x0[li] - x0[lo]) >> s) < b)
                {
                    li++;
                }
                table.Add(li);
            }
            // Child slots are laid out per table offset so _child and _table share the index.
            for (var b = 0; b <= R; b++)
            {
                child.Add(-1);
            }
            if (depth < MaxDepth && range > 0)
            {
                for (var b = 0; b < R; b++)
                {
                    var blo = table[tOff + b];
                    var bhi = table[tOff + b + 1];
                    if (bhi - blo > SplitAbove && x0[bhi - 1] > x0[blo])
                    {
                        var c = BuildNode(blo, bhi, depth + 1);
                        child[tOff + b] = c;
                    }
                }
            }
            return node;
        }
        if (x0.Length > 0)
        {
            BuildNode(0, x0.Length, 0);
        }
        return new RadixRouter([.. min], [.. shift], [.. offset], [.. buckets], [.. table], [.. child]);
    }

    /// <summary>The last leaf whose origin ≤ x lies in [lo, hi].</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public (int Lo, int Hi) Route(ulong x)
    {
        ref var table = ref MemoryMarshal.GetArrayDataReference(_table);
        var node = 0;
        while (true)
        {
            var off = _offset[node];
            var min = _min[node];
            if (x < min)
            {
                var first = Unsafe.Add(ref table, off) - 1;
                return (Math.Max(first, 0), Math.Max(first, 0));
            }
            var b = (x - min) >> _shift[node];
            var R = _buckets[node];
            var bi = off + (b >= (ulong)R ? R - 1 : (int)b);
            var c = _child[bi];
            if (c >= 0)
            {
                node = c;
                continue;
            }
            return (Math.Max(Unsafe.Add(ref table, bi) - 1, 0), Unsafe.Add(ref table, bi + 1) - 1);
        }
    }

    public void Write(ByteWriter w)
    {
        w.I32(_min.Length);
        w.I32(_table.Length);
        w.Bytes(MemoryMarshal.AsBytes(_min.AsSpan()));
        w.Bytes(MemoryMarshal.AsBytes(_shift.AsSpan()));
        w.Bytes(MemoryMarshal.AsBytes(_offset.AsSpan()));
        w.Bytes(MemoryMarshal.AsBytes(_buckets.AsSpan()));
        w.Bytes(MemoryMarshal.AsBytes(_table.AsSpan()));
        w.Bytes(MemoryMarshal.AsBytes(_child.AsSpan()));
    }

    public static RadixRouter Read(ref ByteReader r, int leafCount)
    {
        var nodes = r.I32();
        var tableLen = r.I32();
        if (nodes < 0 || tableLen < 0)
        {
            throw new FormatException("bad radix router header");
        }
        var min = MemoryMarshal.Cast<byte, ulong>(r.Take(checked(nodes * 8))).ToArray();
        var shift = MemoryMarshal.Cast<byte, int>(r.Take(checked(nodes * 4))).ToArray();
        var offset = MemoryMarshal.Cast<byte, int>(r.Take(checked(nodes * 4))).ToArray();
        var buckets = MemoryMarshal.Cast<byte, int>(r.Take(checked(nodes * 4))).ToArray();
        var table = MemoryMarshal.Cast<byte, int>(r.Take(checked(tableLen * 4))).ToArray();
        var child = MemoryMarshal.Cast<byte, int>(r.Take(checked(tableLen * 4))).ToArray();
        for (var i = 0; i < nodes; i++)
        {
            if (shift[i] is < 0 or > 63 || buckets[i] < 1 || offset[i] < 0 || (long)offset[i] + buckets[i] + 1 > tableLen)
            {
                throw new FormatException("bad radix node");
            }
        }
        foreach (var t in table)
        {
            if (t < 0 || t > leafCount)
            {
                throw new FormatException("bad radix entry");
            }
        }
        foreach (var c in child)
        {
            if (c < -1 || c >= nodes)
            {
                throw new FormatException("bad radix child");
            }
        }
        return new RadixRouter(min, shift, offset, buckets, table, child);
    }
}
