using Kdb.Storage.Memtable;

namespace Kdb.Storage.Engine;

/// <summary>Read algorithms over a <see cref="VersionSet"/> at a version, shared by the engine
/// (latest) and snapshots (fixed version).</summary>
internal static class Reads
{
    private static ulong MaxCovering(RangeTombstone[] rts, ReadOnlySpan<byte> key, ulong maxVersion)
    {
        ulong m = 0;
        foreach (var rt in rts)
        {
            if (rt.Version <= maxVersion && rt.Version > m && rt.Covers(key))
            {
                m = rt.Version;
            }
        }
        return m;
    }

    /// <summary>Newest point entry and newest covering range tombstone.</summary>
    private static (bool Found, ulong Version, OpKind Kind, byte[]? Value, ulong RangeVersion) Lookup(
        VersionSet vs, ReadOnlySpan<byte> key, ulong maxVersion, bool wantValue)
    {
        ulong rtMax = 0;
        var d = Lookup(vs.Active, key, maxVersion, ref rtMax);
        if (d is not null)
        {
            return (true, d.Version, d.Kind, wantValue ? d.Value : null, rtMax);
        }
        foreach (var f in vs.Frozen)
        {
            d = Lookup(f, key, maxVersion, ref rtMax);
            if (d is not null)
            {
                return (true, d.Version, d.Kind, wantValue ? d.Value : null, rtMax);
            }
        }
        foreach (var s in vs.Segments)
        {
            if (s.RangeTombstones.Length != 0)
            {
                rtMax = Math.Max(rtMax, MaxCovering(s.RangeTombstones, key, maxVersion));
            }
            var pos = s.Find(key);
            if (pos >= 0)
            {
                var kind = s.KindAt(pos);
                var value = wantValue && kind == OpKind.Put ? s.ValueAt(pos).ToArray() : null;
                return (true, s.VersionAt(pos), kind, value, rtMax);
            }
        }
        return (false, 0, OpKind.Delete, null, rtMax);
    }

    private static Delta.Node? Lookup(Delta d, ReadOnlySpan<byte> key, ulong maxVersion, ref ulong rtMax)
    {
        var rts = d.RangeTombstones;
        if (rts.Length != 0)
        {
            rtMax = Math.Max(rtMax, MaxCovering(rts, key, maxVersion));
        }
        return d.Count == 0 ? null : d.Find(key, maxVersion);
    }

    public static GetResult Get(VersionSet vs, ReadOnlySpan<byte> key, ulong maxVersion)
    {
        var r = Lookup(vs, key, maxVersion, wantValue: true);
        return r.Found && r.Kind == OpKind.Put && r.Version >= r.RangeVersion ? new GetResult(r.Value!, r.Version) : default;
    }

    /// <summary>As <see cref="Get"/> without copying: a delta value is its immutable array, a segment value is a
    /// span of the mapped file, which stays mapped while the caller holds a reference on <paramref name="vs"/>.</summary>
    public static bool TryGetLent(VersionSet vs, ReadOnlySpan<byte> key, ulong maxVersion, out ReadOnlySpan<byte> value, out ulong version)
    {
        value = default;
        version = 0;
        ulong rtMax = 0;
        var d = Lookup(vs.Active, key, maxVersion, ref rtMax);
        for (var i = 0; d is null && i < vs.Frozen.Length; i++)
        {
            d = Lookup(vs.Frozen[i], key, maxVersion, ref rtMax);
        }
        if (d is not null)
        {
            // One read of the payload: a tombstone is not an array.
            var payload = d.Value;
            if (payload is null || d.Version < rtMax)
            {
                return false;
            }
            value = payload;
            version = d.Version;
            return true;
        }
        foreach (var s in vs.Segments)
        {
            if (s.RangeTombstones.Length != 0)
            {
                rtMax = Math.Max(rtMax, MaxCovering(s.RangeTombstones, key, maxVersion));
            }
            var pos = s.Find(key);
            if (pos >= 0)
            {
                var v = s.VersionAt(pos);
                if (s.KindAt(pos) != OpKind.Put || v < rtMax)
                {
                    return false;
                }
                value = s.ValueAt(pos);
                version = v;
                return true;
            }
        }
        return false;
    }

    public static ulong NewestVersion(VersionSet vs, ReadOnlySpan<byte> key, ulong maxVersion)
    {
        var r = Lookup(vs, key, maxVersion, wantValue: false);
        return Math.Max(r.Found ? r.Version : 0, r.RangeVersion);
    }

    public static ulong NewestVersionInRange(VersionSet vs, byte[] start, byte[]? end, ulong maxVersion)
    {
        ulong best = 0;
        void Rts(RangeTombstone[] rts)
        {
            foreach (var rt in rts)
            {
                if (rt.Version <= maxVersion && rt.Version > best && rt.Intersects(start, end))
                {
                    best = rt.Version;
                }
            }
        }
        void DeltaRange(Delta d)
        {
            Rts(d.RangeTombstones);
            for (var n = d.Seek(start); n is not null && (end is null || n.Key.AsSpan().SequenceCompareTo(end) < 0); n = Delta.NextOf(n))
            {
                if (n.Version <= maxVersion && n.Version > best)
                {
                    best = n.Version;
                }
            }
        }
        DeltaRange(vs.Active);
        foreach (var f in vs.Frozen)
        {
            if (f.MaxVersion <= best)
            {
                return best;
            }
            DeltaRange(f);
        }
        foreach (var s in vs.Segments)
        {
            // Sources are version-ordered: nothing older can beat what was found.
            if (s.MaxVersion <= best)
            {
                return best;
            }
            Rts(s.RangeTombstones);
            for (var p = s.LowerBound(start); p < s.Count && (end is null || s.KeyAt(p).SequenceCompareTo(end) < 0); p++)
            {
                var v = s.VersionAt(p);
                if (v > best)
                {
                    best = v;
                }
            }
        }
        return best;
    }

    /// <summary>Merges all sources; the caller owns a reference on <paramref name="vs"/> for the
    /// duration and releases it through <paramref name="release"/>.</summary>
    public static IEnumerable<KvEntry> Scan(VersionSet vs, byte[] start, byte[]? end, int limit, bool reverse, ulong maxVersion, Action release)
    {
        try
        {
            var cursors = new List<ICursor>(2 + vs.Frozen.Length + vs.Segments.Length)
            {
                new DeltaCursor(vs.Active, maxVersion, start, end, reverse),
            };
            var rts = new List<RangeTombstone>();
            void AddRts(RangeTombstone[] list)
            {
                foreach (var rt in list)
                {
                    if (rt.Version <= maxVersion && rt.Intersects(start, end))
                    {
                        rts.Add(rt);
                    }
                }
            }
            AddRts(vs.Active.RangeTombstones);
            foreach (var f in vs.Frozen)
            {
                cursors.Add(new DeltaCursor(f, maxVersion, start, end, reverse));
                AddRts(f.RangeTombstones);
            }
            foreach (var s in vs.Segments)
            {
                cursors.Add(new SegmentCursor(s, start, end, reverse));
                AddRts(s.RangeTombstones);
            }
            var emitted = 0;
            while (limit <= 0 || emitted < limit)
            {
                var best = -1;
                for (var i = 0; i < cursors.Count; i++)
                {
                    if (!cursors[i].Valid)
                    {
                        continue;
                    }
                    if (best < 0)
                    {
                        best = i;
                        continue;
                    }
                    var c = cursors[i].Key.SequenceCompareTo(cursors[best].Key);
                    if (reverse ? c > 0 : c < 0)
                    {
                        best = i; // ties keep the lower index: the newer source
                    }
                }
                if (best < 0)
                {
                    yield break;
                }
                var key = cursors[best].Key.ToArray();
                if (reverse ? key.AsSpan().SequenceCompareTo(start) < 0 : end is not null && key.AsSpan().SequenceCompareTo(end) >= 0)
                {
                    yield break;
                }
                var version = cursors[best].Version;
                var kind = cursors[best].Kind;
                var value = kind == OpKind.Put ? cursors[best].Value.ToArray() : null;
                foreach (var c in cursors)
                {
                    if (c.Valid && c.Key.SequenceEqual(key))
                    {
                        c.Next();
                    }
                }
                if (kind != OpKind.Put)
                {
                    continue;
                }
                var covered = false;
                foreach (var rt in rts)
                {
                    if (rt.Version > version && rt.Covers(key))
                    {
                        covered = true;
                        break;
                    }
                }
                if (covered)
                {
                    continue;
                }
                emitted++;
                yield return new KvEntry(key, value!, version);
            }
        }
        finally
        {
            release();
        }
    }
}
