namespace Kdb.Storage.Engine;

/// <summary>
/// Changes after a version, read from a <see cref="VersionSet"/> at a snapshot version: what a copy taken at that version
/// needs to catch up. Sources are version-ordered (a newer source holds newer versions of a key), so a frozen delta or a
/// segment whose newest version is at most <c>since</c> can neither report a change nor hide one, and is skipped whole.
/// </summary>
internal static class Changes
{
    public static List<KvRangeDelete> RangeDeletesSince(VersionSet vs, ulong since, byte[] start, byte[]? end, ulong maxVersion)
    {
        var list = new List<KvRangeDelete>();
        void Add(RangeTombstone[] rts)
        {
            foreach (var rt in rts)
            {
                if (rt.Version > since && rt.Version <= maxVersion && rt.Intersects(start, end))
                {
                    var s = rt.Start.AsSpan().SequenceCompareTo(start) < 0 ? start : rt.Start;
                    var e = end is not null && rt.End.AsSpan().SequenceCompareTo(end) > 0 ? end : rt.End;
                    list.Add(new KvRangeDelete(s, e, rt.Version));
                }
            }
        }
        Add(vs.Active.RangeTombstones);
        foreach (var f in vs.Frozen)
        {
            if (f.MaxVersion > since)
            {
                Add(f.RangeTombstones);
            }
        }
        foreach (var s in vs.Segments)
        {
            if (s.MaxVersion > since)
            {
                Add(s.RangeTombstones);
            }
        }
        return list;
    }

    /// <summary>Merges the sources that hold versions above <paramref name="since"/>; the caller owns a reference on
    /// <paramref name="vs"/> for the duration and releases it through <paramref name="release"/>.</summary>
    public static IEnumerable<KvChange> ChangesSince(VersionSet vs, ulong since, byte[] start, byte[]? end, ulong maxVersion, Action release)
    {
        try
        {
            // The active delta is always read: its writer updates MaxVersion without a barrier.
            var cursors = new List<ICursor>(1 + vs.Frozen.Length + vs.Segments.Length)
            {
                new DeltaCursor(vs.Active, maxVersion, start, end, reverse: false),
            };
            foreach (var f in vs.Frozen)
            {
                if (f.MaxVersion > since)
                {
                    cursors.Add(new DeltaCursor(f, maxVersion, start, end, reverse: false));
                }
            }
            foreach (var s in vs.Segments)
            {
                if (s.MaxVersion > since)
                {
                    cursors.Add(new SegmentCursor(s, start, end, reverse: false));
                }
            }
            // Only a range tombstone newer than a value can hide it, so those above `since` are all that matter here.
            var rts = RangeDeletesSince(vs, since, start, end, maxVersion);
            while (true)
            {
                var best = -1;
                for (var i = 0; i < cursors.Count; i++)
                {
                    if (cursors[i].Valid && (best < 0 || cursors[i].Key.SequenceCompareTo(cursors[best].Key) < 0))
                    {
                        best = i; // ties keep the lower index: the newer source
                    }
                }
                if (best < 0 || (end is not null && cursors[best].Key.SequenceCompareTo(end) >= 0))
                {
                    yield break;
                }
                var cursor = cursors[best];
                var version = cursor.Version;
                KvChange? change = null;
                if (version > since)
                {
                    var key = cursor.Key.ToArray();
                    var value = cursor.Kind == OpKind.Put ? cursor.Value.ToArray() : null;
                    foreach (var rt in rts)
                    {
                        if (rt.Version > version && key.AsSpan().SequenceCompareTo(rt.Start) >= 0 && key.AsSpan().SequenceCompareTo(rt.End) < 0)
                        {
                            value = null;
                            version = rt.Version;
                        }
                    }
                    change = new KvChange(key, value, version);
                }
                var current = cursor.Key;
                for (var i = 0; i < cursors.Count; i++)
                {
                    if (i != best && cursors[i].Valid && cursors[i].Key.SequenceEqual(current))
                    {
                        cursors[i].Next();
                    }
                }
                cursor.Next();
                if (change is { } c)
                {
                    yield return c;
                }
            }
        }
        finally
        {
            release();
        }
    }
}
