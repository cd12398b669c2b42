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

    // Persisted as six arrays (min, shift, offset into the slots, buckets, first leaf per slot, child
    // per slot); held interleaved so that a routing step reads one node and one or two adjacent
    // slots, a cache line or two, instead of six arrays.
    private readonly Node[] _nodes;
    private readonly Slot[] _slots;

    [StructLayout(LayoutKind.Sequential)]
    private struct Node
    {
        public ulong Min;
        public int Shift;
        public int Offset;  // into _slots
        public int Buckets;
    }

    /// <summary>Per node R + 1 slots: the first leaf whose bucket ≥ b, and the sub-node of a heavy
    /// bucket (or −1).</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct Slot
    {
        public int First;
        public int Child;
    }

    private RadixRouter(ulong[] min, int[] shift, int[] offset, int[] buckets, int[] table, int[] child)
    {
        _nodes = new Node[min.Length];
        for (var i = 0; i < min.Length; i++)
        {
            _nodes[i] = new Node { Min = min[i], Shift = shift[i], Offset = offset[i], Buckets = buckets[i] };
        }
        _slots = new Slot[table.Length];
        for (var i = 0; i < table.Length; i++)
        {
            _slots[i] = new Slot { First = table[i], Child = child[i] };
        }
    }

    public long Bytes => (_nodes.Length * 20L) + (_slots.Length * 8L);

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
        ref var slots = ref MemoryMarshal.GetArrayDataReference(_slots);
        ref var nodes = ref MemoryMarshal.GetArrayDataReference(_nodes);
        var node = 0;
        while (true)
        {
            ref var nd = ref Unsafe.Add(ref nodes, node);
            var off = nd.Offset;
            if (x < nd.Min)
            {
                var first = Math.Max(Unsafe.Add(ref slots, off).First - 1, 0);
                return (first, first);
            }
            var b = (x - nd.Min) >> nd.Shift;
            var R = nd.Buckets;
            var bi = off + (b >= (ulong)R ? R - 1 : (int)b);
            ref var slot = ref Unsafe.Add(ref slots, bi);
            if (slot.Child >= 0)
            {
                node = slot.Child;
                continue;
            }
            return (Math.Max(slot.First - 1, 0), Unsafe.Add(ref slots, bi + 1).First - 1);
        }
    }

    public void Write(ByteWriter w)
    {
        w.I32(_nodes.Length);
        w.I32(_slots.Length);
        foreach (ref readonly var n in _nodes.AsSpan())
        {
            w.U64(n.Min);
        }
        foreach (ref readonly var n in _nodes.AsSpan())
        {
            w.I32(n.Shift);
        }
        foreach (ref readonly var n in _nodes.AsSpan())
        {
            w.I32(n.Offset);
        }
        foreach (ref readonly var n in _nodes.AsSpan())
        {
            w.I32(n.Buckets);
        }
        foreach (ref readonly var t in _slots.AsSpan())
        {
            w.I32(t.First);
        }
        foreach (ref readonly var t in _slots.AsSpan())
        {
            w.I32(t.Child);
        }
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
