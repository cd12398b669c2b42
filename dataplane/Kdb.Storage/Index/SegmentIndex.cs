using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Kdb.Storage.Index;

/// <summary>Random access to the i-th key of a sorted key set.</summary>
internal interface IKeySource
{
    long Count { get; }
    ReadOnlySpan<byte> KeyAt(long index);

    /// <summary>Hints that the entry at <paramref name="index"/> is about to be read (the search
    /// calls it with the model's prediction, so a source can start loading what lies beside the key).</summary>
    void Prefetch(long index);
}

/// <summary>
/// The per-segment learned index over byte-string keys. Keys usually start with the 16-byte
/// tenant+table+index prefix (DESIGN.md), so the index first routes on the distinct 16-byte
/// prefixes when there are few of them, then, inside a group, skips the bytes every key of the group
/// shares (string keys often share long prefixes) and models the next 8 bytes as a big-endian u64
/// with a <see cref="LearnedIndex"/>. Correctness never depends on the model: the final search
/// compares full keys, and projections that collide only widen the recorded error.
/// With prefix routing, one flat model covers the whole segment: each group's projections are
/// mapped monotonically onto its own slice of one coordinate space (slices in key order, sized by
/// the group's key count, the projection shifted right only as far as its range needs), so a lookup
/// reads one hash slot holding everything about its group, then the shared model's router and leaf,
/// then the keys, instead of chasing a small model object per prefix that falls out of the caches.
/// </summary>
internal sealed class SegmentIndex
{
    private const int PrefixBytes = 16;
    private const int FormatTag = 0x5849_4753; // "SGIX": one model per group (still read)
    private const int FlatTag = 0x3249_4753;   // "SGI2": prefix groups under one flat model
    private const int LinearWindow = 32;
    private const ulong CoordinateSpace = 1UL << 62; // room for per-group slack without overflow

    private readonly int _prefixLen;       // 0 or 16
    private readonly byte[] _prefixes;     // groups × prefixLen
    private readonly Group[] _groups;
    private readonly ulong[] _pfxHi;       // the prefixes as big-endian words: numeric order = byte order
    private readonly ulong[] _pfxLo;
    private readonly int[] _pfxHash;       // open addressing: group index + 1, 0 = empty
    private readonly int _pfxShift;
    private readonly LearnedIndex? _flat;  // over every key's coordinate (flat form only)
    private readonly FlatSlot[] _slots;    // flat form: open addressing by prefix, End == 0 = empty
    private long _lookups;
    private long _windowSum;
    private ProbeCounters? _probes;

    /// <summary>A prefix group. Per-group form: <c>Model</c> over its projections. Flat form: the
    /// group's projections x in [XMin, XMax] map to coordinate CBase + ((x − XMin) &gt;&gt; Shift).</summary>
    private sealed record Group(byte[] Lcp, int Skip, long Start, long End, LearnedIndex? Model,
        ulong XMin = 0, ulong XMax = 0, ulong CBase = 0, int Shift = 0);

    /// <summary>Everything a flat lookup needs about its group, in one 64-byte slot.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct FlatSlot
    {
        public ulong Hi;
        public ulong Lo;
        public ulong XMin;
        public ulong XMax;
        public ulong CBase;
        public long Start;
        public long End;
        public ushort Skip;
        public ushort Shift;
        public int Group;
    }

    private SegmentIndex(int prefixLen, byte[] prefixes, Group[] groups, LearnedIndex? flat = null)
    {
        _prefixLen = prefixLen;
        _prefixes = prefixes;
        _groups = groups;
        _flat = flat;
        var g = prefixLen == 0 ? 0 : groups.Length;
        _pfxHi = new ulong[g];
        _pfxLo = new ulong[g];
        for (var i = 0; i < g; i++)
        {
            _pfxHi[i] = BinaryPrimitives.ReadUInt64BigEndian(prefixes.AsSpan(i * PrefixBytes));
            _pfxLo[i] = BinaryPrimitives.ReadUInt64BigEndian(prefixes.AsSpan((i * PrefixBytes) + 8));
        }
        // A present prefix (the common case: a key of an existing table) is found with one or two
        // probes of a small hash table instead of a ~log2(groups)-step mispredicting binary search.
        var bits = g == 0 ? 0 : Math.Max(4, 64 - BitOperations.LeadingZeroCount((ulong)g * 2));
        _pfxShift = 64 - bits;
        _pfxHash = flat is null ? new int[g == 0 ? 0 : 1 << bits] : [];
        _slots = flat is null ? [] : new FlatSlot[g == 0 ? 0 : 1 << bits];
        for (var i = 0; i < g; i++)
        {
            var h = PrefixHash(_pfxHi[i], _pfxLo[i], _pfxShift);
            if (flat is null)
            {
                while (_pfxHash[h] != 0)
                {
                    h = (h + 1) & (_pfxHash.Length - 1);
                }
                _pfxHash[h] = i + 1;
                continue;
            }
            while (_slots[h].End != 0)
            {
                h = (h + 1) & (_slots.Length - 1);
            }
            var gr = groups[i];
            _slots[h] = new FlatSlot
            {
                Hi = _pfxHi[i], Lo = _pfxLo[i], XMin = gr.XMin, XMax = gr.XMax, CBase = gr.CBase,
                Start = gr.Start, End = gr.End, Skip = (ushort)gr.Skip, Shift = (ushort)gr.Shift, Group = i,
            };
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int PrefixHash(ulong hi, ulong lo, int shift) =>
        (int)((((hi * 0x9E37_79B9_7F4A_7C15UL) ^ lo) * 0xC2B2_AE3D_27D4_EB4FUL) >> shift);

    /// <summary>The group of exactly this prefix, or −1.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int FindPrefix(ulong hi, ulong lo)
    {
        var t = _pfxHash;
        var h = PrefixHash(hi, lo, _pfxShift);
        while (true)
        {
            var e = t[h] - 1;
            if (e < 0)
            {
                return -1;
            }
            if (_pfxHi[e] == hi && _pfxLo[e] == lo)
            {
                return e;
            }
            h = (h + 1) & (t.Length - 1);
        }
    }

    /// <summary>The flat slot of exactly this prefix, or a null reference.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ref FlatSlot FindSlot(ulong hi, ulong lo)
    {
        var t = _slots;
        var h = PrefixHash(hi, lo, _pfxShift);
        while (true)
        {
            ref var e = ref t[h];
            if (e.End == 0)
            {
                return ref Unsafe.NullRef<FlatSlot>();
            }
            if (e.Hi == hi && e.Lo == lo)
            {
                return ref e;
            }
            h = (h + 1) & (t.Length - 1);
        }
    }

    /// <summary>Where lookups record their probe lengths (the owning engine's counters; none for a bare index).</summary>
    internal ProbeCounters? Probes
    {
        get => _probes;
        set => _probes = value;
    }

    public long Lookups => _lookups;
    public long WindowSum => _windowSum;

    public long ModelBytes
    {
        get
        {
            long b = _prefixes.Length + (_flat?.ModelBytes ?? 0) + (_slots.Length * 64L);
            foreach (var g in _groups)
            {
                b += (g.Model?.ModelBytes ?? 0) + g.Lcp.Length + 24;
            }
            return b;
        }
    }

    public long MaxError
    {
        get
        {
            long m = _flat?.MaxError ?? 0;
            foreach (var g in _groups)
            {
                m = Math.Max(m, g.Model?.MaxError ?? 0);
            }
            return m;
        }
    }

    public double WeightedLog2Error
    {
        get
        {
            var s = _flat?.WeightedLog2Error ?? 0;
            foreach (var g in _groups)
            {
                s += g.Model?.WeightedLog2Error ?? 0;
            }
            return s;
        }
    }

    public static SegmentIndex Build<TSource>(TSource keys, int epsilon = 8)
        where TSource : IKeySource
    {
        var n = keys.Count;
        if (n == 0)
        {
            return new SegmentIndex(0, [], []);
        }
        // Route on 16-byte prefixes only when they are few (≤ 1 per 64 keys); otherwise one group.
        var prefixLen = PrefixBytes;
        long distinct = 1;
        for (long i = 0; i < n && prefixLen != 0; i++)
        {
            var k = keys.KeyAt(i);
            if (k.Length < PrefixBytes)
            {
                prefixLen = 0;
            }
            else if (i > 0 && !k[..PrefixBytes].SequenceEqual(keys.KeyAt(i - 1)[..PrefixBytes]))
            {
                distinct++;
            }
        }
        if (distinct > Math.Max(1, n / 64))
        {
            prefixLen = 0;
        }
        var groups = new List<Group>();
        using var prefixes = new ByteWriter();
        long gs = 0;
        while (gs < n)
        {
            var ge = gs + 1;
            if (prefixLen == 0)
            {
                ge = n;
            }
            else
            {
                var p = keys.KeyAt(gs)[..prefixLen].ToArray();
                while (ge < n && keys.KeyAt(ge)[..prefixLen].SequenceEqual(p))
                {
                    ge++;
                }
                prefixes.Bytes(p);
            }
            var first = keys.KeyAt(gs);
            var last = keys.KeyAt(ge - 1);
            var skip = Math.Max(prefixLen, first.CommonPrefixLength(last));
            var lcp = first[prefixLen..skip].ToArray();
            if (prefixLen == 0)
            {
                var xs = new ulong[ge - gs];
                for (var i = gs; i < ge; i++)
                {
                    xs[i - gs] = Project(keys.KeyAt(i), skip);
                }
                groups.Add(new Group(lcp, skip, gs, ge, LearnedIndex.Build(xs, gs, epsilon)));
            }
            else
            {
                groups.Add(new Group(lcp, skip, gs, ge, null, Project(first, skip), Project(last, skip)));
            }
            gs = ge;
        }
        if (prefixLen == 0)
        {
            return new SegmentIndex(prefixLen, prefixes.WrittenSpan.ToArray(), groups.ToArray());
        }
        // Flat form: slices in key order, each as wide as its share of the keys (at least 2), so the
        // coordinates are about as dense everywhere as the keys are and one model fits them all.
        var coords = new ulong[n];
        ulong cbase = 0;
        for (var gi = 0; gi < groups.Count; gi++)
        {
            var g = groups[gi];
            var width = Math.Max(2UL, (ulong)((double)CoordinateSpace * (g.End - g.Start) / n));
            var range = g.XMax - g.XMin;
            var shift = 0;
            while ((range >> shift) >= width)
            {
                shift++;
            }
            g = g with { CBase = cbase, Shift = shift };
            groups[gi] = g;
            for (var i = g.Start; i < g.End; i++)
            {
                coords[i] = Coordinate(g.CBase, g.XMin, g.XMax, g.Shift, Project(keys.KeyAt(i), g.Skip));
            }
            cbase += width;
        }
        return new SegmentIndex(prefixLen, prefixes.WrittenSpan.ToArray(), groups.ToArray(), LearnedIndex.Build(coords, 0, epsilon));
    }

    /// <summary>A group's projection on its slice of the flat coordinate space; monotone, and
    /// clamped to the slice so that a query outside the group's range lands on its first or last key.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Coordinate(ulong cbase, ulong xmin, ulong xmax, int shift, ulong x) =>
        cbase + ((Math.Clamp(x, xmin, xmax) - xmin) >> shift);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static ulong Project(ReadOnlySpan<byte> key, int skip) =>
        key.Length >= skip + 8
            ? BinaryPrimitives.ReadUInt64BigEndian(key.Slice(skip, 8))
            : ProjectShort(key, skip);

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static ulong ProjectShort(ReadOnlySpan<byte> key, int skip)
    {
        Span<byte> tmp = stackalloc byte[8];
        tmp.Clear();
        if (key.Length > skip)
        {
            key[skip..].CopyTo(tmp);
        }
        return BinaryPrimitives.ReadUInt64BigEndian(tmp);
    }

    /// <summary>First position whose key ≥ <paramref name="key"/> (Count when none).</summary>
    public long LowerBound<TSource>(ReadOnlySpan<byte> key, TSource keys)
        where TSource : IKeySource
    {
        if (_groups.Length == 0)
        {
            return 0;
        }
        Group g;
        if (_prefixLen == 0)
        {
            g = _groups[0];
        }
        else if (key.Length >= PrefixBytes)
        {
            // Two word compares per step instead of a 16-byte span compare.
            var pa = BinaryPrimitives.ReadUInt64BigEndian(key);
            var pb = BinaryPrimitives.ReadUInt64BigEndian(key[8..]);
            if (_flat is not null)
            {
                ref var slot = ref FindSlot(pa, pb);
                if (!Unsafe.IsNullRef(ref slot))
                {
                    return slot.Skip == PrefixBytes ? SearchSlot(ref slot, key, keys) : SearchGroup(_groups[slot.Group], key, keys);
                }
            }
            var found = _flat is null ? FindPrefix(pa, pb) : -1;
            if (found >= 0)
            {
                return SearchGroup(_groups[found], key, keys);
            }
            int lo = 0, hi = _groups.Length;
            while (lo < hi)
            {
                var mid = (lo + hi) >>> 1;
                var h = _pfxHi[mid];
                if (h < pa || (h == pa && _pfxLo[mid] < pb))
                {
                    lo = mid + 1;
                }
                else
                {
                    hi = mid;
                }
            }
            if (lo == _groups.Length)
            {
                return keys.Count;
            }
            if (_pfxHi[lo] != pa || _pfxLo[lo] != pb)
            {
                return _groups[lo].Start;
            }
            g = _groups[lo];
        }
        else
        {
            var kp = key.Length >= _prefixLen ? key[.._prefixLen] : key;
            int lo = 0, hi = _groups.Length;
            while (lo < hi)
            {
                var mid = (lo + hi) >>> 1;
                if (_prefixes.AsSpan(mid * _prefixLen, _prefixLen).SequenceCompareTo(kp) < 0)
                {
                    lo = mid + 1;
                }
                else
                {
                    hi = mid;
                }
            }
            if (lo == _groups.Length)
            {
                return keys.Count;
            }
            if (key.Length < _prefixLen || !_prefixes.AsSpan(lo * _prefixLen, _prefixLen).SequenceEqual(kp))
            {
                return _groups[lo].Start;
            }
            g = _groups[lo];
        }
        return SearchGroup(g, key, keys);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private long SearchGroup<TSource>(Group g, ReadOnlySpan<byte> key, TSource keys)
        where TSource : IKeySource
    {
        // With no shared bytes past the routed prefix (the common case) the query already matches [0, skip).
        if (g.Skip != _prefixLen) // Skip − prefix length is the length of Lcp; this avoids loading it
        {
            var mine = key.Length >= g.Skip ? key[_prefixLen..g.Skip] : key[Math.Min(_prefixLen, key.Length)..];
            var c = mine.SequenceCompareTo(g.Lcp);
            if (c < 0)
            {
                return g.Start;
            }
            if (c > 0)
            {
                return g.End;
            }
        }
        var skip = g.Skip;
        var q = Project(key, skip);
        long wlo, whi, pred;
        if (g.Model is { } model)
        {
            (wlo, whi, pred) = model.Window(q);
        }
        else
        {
            (wlo, whi, pred) = _flat!.Window(Coordinate(g.CBase, g.XMin, g.XMax, g.Shift, q));
            (wlo, whi, pred) = Clamp(wlo, whi, pred, g.Start, g.End);
        }
        return Walk(wlo, whi, pred, key, q, skip, keys);
    }

    /// <summary>A flat lookup in a group whose keys share nothing past the prefix (the common case),
    /// from its hash slot alone.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private long SearchSlot<TSource>(ref FlatSlot s, ReadOnlySpan<byte> key, TSource keys)
        where TSource : IKeySource
    {
        var q = Project(key, PrefixBytes);
        var (wlo, whi, pred) = _flat!.Window(Coordinate(s.CBase, s.XMin, s.XMax, s.Shift, q));
        (wlo, whi, pred) = Clamp(wlo, whi, pred, s.Start, s.End);
        return Walk(wlo, whi, pred, key, q, PrefixBytes, keys);
    }

    /// <summary>The flat model's window may reach into neighbouring groups, whose keys the group's
    /// projection does not order; the lower bound is inside the group, so the window is cut to it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (long Lo, long Hi, long Pred) Clamp(long wlo, long whi, long pred, long start, long end)
    {
        wlo = Math.Max(wlo, start);
        whi = Math.Min(whi, end);
        return (wlo, whi, Math.Clamp(pred, wlo, whi));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private long Walk<TSource>(long wlo, long whi, long pred, ReadOnlySpan<byte> key, ulong q, int skip, TSource keys)
        where TSource : IKeySource
    {
        keys.Prefetch(pred);
        _lookups++;
        _windowSum += whi - wlo + 1;
        var found = Search(wlo, whi, pred, key, q, skip, keys, out var probes);
        _probes?.Record(probes, found != pred);
        return found;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static long Search<TSource>(long wlo, long whi, long pred, ReadOnlySpan<byte> key, ulong q, int skip, TSource keys, out long probes)
        where TSource : IKeySource
    {
        // Every key of the group shares bytes [0, skip) with the query, so projections order keys
        // exactly unless they are equal; only then are the full keys compared.
        var n = whi - wlo;
        if (n <= LinearWindow)
        {
            // Walk from the prediction towards the lower bound: the typical miss is a few positions,
            // so this touches one or two cache lines where a search of the whole window touches all.
            var i = pred;
            if (i < whi && Below(keys.KeyAt(i), key, q, skip))
            {
                i++;
                while (i < whi && Below(keys.KeyAt(i), key, q, skip))
                {
                    i++;
                }
                probes = i - pred + 1;
                return i;
            }
            while (i > wlo && !Below(keys.KeyAt(i - 1), key, q, skip))
            {
                i--;
            }
            probes = pred - i + 1;
            return i;
        }
        var b = wlo;
        probes = 0;
        while (n > 0)
        {
            probes++;
            var half = n >> 1;
            if (Below(keys.KeyAt(b + half), key, q, skip))
            {
                b += half + 1;
                n -= half + 1;
            }
            else
            {
                n = half;
            }
        }
        return b;
    }

    /// <summary>Whether <paramref name="k"/> (a key of the group) sorts before the query.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool Below(ReadOnlySpan<byte> k, ReadOnlySpan<byte> key, ulong q, int skip)
    {
        var p = Project(k, skip);
        return p < q || (p == q && k.SequenceCompareTo(key) < 0);
    }

    public void Write(ByteWriter w)
    {
        w.I32(_flat is null ? FormatTag : FlatTag);
        w.I32(_prefixLen);
        w.I32(_groups.Length);
        w.Bytes(_prefixes);
        foreach (var g in _groups)
        {
            w.I32(g.Skip);
            w.I32(g.Lcp.Length);
            w.Bytes(g.Lcp);
            w.I64(g.Start);
            w.I64(g.End);
            if (g.Model is { } model)
            {
                model.Write(w);
            }
            else
            {
                w.U64(g.XMin);
                w.U64(g.XMax);
                w.U64(g.CBase);
                w.I32(g.Shift);
            }
        }
        _flat?.Write(w);
    }

    public static SegmentIndex Read(ReadOnlySpan<byte> data)
    {
        var r = new ByteReader(data);
        var tag = r.I32();
        if (tag is not (FormatTag or FlatTag))
        {
            throw new FormatException("bad segment-index tag");
        }
        var flat = tag == FlatTag;
        var prefixLen = r.I32();
        var count = r.I32();
        if (prefixLen is not (0 or PrefixBytes) || count < 0 || (flat && prefixLen == 0))
        {
            throw new FormatException("bad segment-index header");
        }
        var prefixes = r.Take(checked(prefixLen * count)).ToArray();
        var groups = new Group[count];
        for (var i = 0; i < count; i++)
        {
            var skip = r.I32();
            var lcp = r.Take(r.I32()).ToArray();
            var start = r.I64();
            var end = r.I64();
            if (skip < prefixLen || skip > KvEngine.MaxKeyBytes || end <= start || start < 0)
            {
                throw new FormatException("bad segment-index group");
            }
            if (flat)
            {
                var xmin = r.U64();
                var xmax = r.U64();
                var cbase = r.U64();
                var shift = r.I32();
                if (shift is < 0 or > 63 || xmax < xmin)
                {
                    throw new FormatException("bad segment-index group");
                }
                groups[i] = new Group(lcp, skip, start, end, null, xmin, xmax, cbase, shift);
            }
            else
            {
                groups[i] = new Group(lcp, skip, start, end, LearnedIndex.Read(ref r));
            }
        }
        return new SegmentIndex(prefixLen, prefixes, groups, flat ? LearnedIndex.Read(ref r) : null);
    }
}
