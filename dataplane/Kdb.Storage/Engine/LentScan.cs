namespace Kdb.Storage.Engine;

/// <summary>
/// A forward scan over a version set that lends keys and values from their sources (a delta's immutable arrays, a
/// segment's mapped file) instead of copying each into fresh arrays as <see cref="Reads.Scan"/> does: an export of a
/// whole database then allocates nothing per pair. Same merge as <see cref="Reads.Scan"/> (newest source wins a key,
/// tombstones and covered values skipped). The caller's reference on the version set keeps the lent memory alive and is
/// released on <see cref="Dispose"/>.
/// </summary>
internal sealed class LentScan : IKvLentScan
{
    private readonly ICursor[] _cursors;
    private readonly RangeTombstone[] _rts;
    private readonly byte[]? _end;
    private Action? _release;
    private int _current = -1;

    public LentScan(VersionSet vs, byte[] start, byte[]? end, ulong maxVersion, Action release)
    {
        _end = end;
        _release = release;
        var cursors = new List<ICursor>(1 + vs.Frozen.Length + vs.Segments.Length)
        {
            new DeltaCursor(vs.Active, maxVersion, start, end, reverse: false),
        };
        var rts = new List<RangeTombstone>();
        AddRts(rts, vs.Active.RangeTombstones, start, end, maxVersion);
        foreach (var f in vs.Frozen)
        {
            cursors.Add(new DeltaCursor(f, maxVersion, start, end, reverse: false));
            AddRts(rts, f.RangeTombstones, start, end, maxVersion);
        }
        foreach (var s in vs.Segments)
        {
            cursors.Add(new SegmentCursor(s, start, end, reverse: false));
            AddRts(rts, s.RangeTombstones, start, end, maxVersion);
        }
        _cursors = [.. cursors];
        _rts = [.. rts];
    }

    public ReadOnlySpan<byte> Key => Current.Key;

    public ReadOnlySpan<byte> Value => Current.Value;

    public ulong Version => Current.Version;

    private ICursor Current => _current >= 0 ? _cursors[_current] : throw new InvalidOperationException("the scan is not on a pair");

    public bool MoveNext()
    {
        ObjectDisposedException.ThrowIf(_release is null, this);
        if (_current >= 0)
        {
            AdvancePast(_current);
            _current = -1;
        }
        while (true)
        {
            var best = -1;
            for (var i = 0; i < _cursors.Length; i++)
            {
                // Ties keep the lower index: the newer source.
                if (_cursors[i].Valid && (best < 0 || _cursors[i].Key.SequenceCompareTo(_cursors[best].Key) < 0))
                {
                    best = i;
                }
            }
            if (best < 0 || (_end is not null && _cursors[best].Key.SequenceCompareTo(_end) >= 0))
            {
                return false;
            }
            var cursor = _cursors[best];
            if (cursor.Kind == OpKind.Put && !Covered(cursor.Key, cursor.Version))
            {
                _current = best;
                return true;
            }
            AdvancePast(best);
        }
    }

    /// <summary>Moves every source past the key of <paramref name="best"/> (older versions of it in other sources).</summary>
    private void AdvancePast(int best)
    {
        // The lent key stays valid after its cursor moves (immutable memory), but compare the others first anyway.
        var key = _cursors[best].Key;
        for (var i = 0; i < _cursors.Length; i++)
        {
            if (i != best && _cursors[i].Valid && _cursors[i].Key.SequenceEqual(key))
            {
                _cursors[i].Next();
            }
        }
        _cursors[best].Next();
    }

    private bool Covered(ReadOnlySpan<byte> key, ulong version)
    {
        foreach (var rt in _rts)
        {
            if (rt.Version > version && rt.Covers(key))
            {
                return true;
            }
        }
        return false;
    }

    private static void AddRts(List<RangeTombstone> into, RangeTombstone[] list, byte[] start, byte[]? end, ulong maxVersion)
    {
        foreach (var rt in list)
        {
            if (rt.Version <= maxVersion && rt.Intersects(start, end))
            {
                into.Add(rt);
            }
        }
    }

    public void Dispose()
    {
        _current = -1;
        Interlocked.Exchange(ref _release, null)?.Invoke();
    }
}

/// <summary>The fallback of <see cref="IKvSnapshot.ScanLent"/> for snapshots that do not lend: copies, as <see cref="IKvReader.Scan"/>.</summary>
internal sealed class CopyingLentScan(IEnumerable<KvEntry> entries) : IKvLentScan
{
    private readonly IEnumerator<KvEntry> _entries = entries.GetEnumerator();
    private KvEntry _current;
    private bool _on;

    public ReadOnlySpan<byte> Key => On.Key;

    public ReadOnlySpan<byte> Value => On.Value;

    public ulong Version => On.Version;

    private KvEntry On => _on ? _current : throw new InvalidOperationException("the scan is not on a pair");

    public bool MoveNext()
    {
        _on = _entries.MoveNext();
        _current = _on ? _entries.Current : default;
        return _on;
    }

    public void Dispose()
    {
        _on = false;
        _entries.Dispose();
    }
}
