using Kdb.Storage.Memtable;
using Kdb.Storage.Segments;

namespace Kdb.Storage.Engine;

/// <summary>
/// An immutable view of the engine's sources, newest first: the active delta, frozen deltas, then
/// segments. Sources are ordered by version (every batch lands whole in one delta, flushes keep that
/// order and compaction merges only adjacent segments), so a point read stops at the first source
/// that knows the key. Reference-counted; it pins its segments until released.
/// </summary>
internal sealed class VersionSet
{
    private int _refs = 1;

    public VersionSet(Delta active, Delta[] frozen, Segment[] segments)
    {
        Active = active;
        Frozen = frozen;
        Segments = segments;
    }

    public Delta Active { get; }
    /// <summary>Newest first.</summary>
    public Delta[] Frozen { get; }
    /// <summary>Newest first.</summary>
    public Segment[] Segments { get; }

    /// <summary>Creates a successor holding its own references on the given segments.</summary>
    public static VersionSet Create(Delta active, Delta[] frozen, Segment[] segments, Segment? alreadyOwned = null)
    {
        foreach (var s in segments)
        {
            if (!ReferenceEquals(s, alreadyOwned))
            {
                s.AddRef();
            }
        }
        return new VersionSet(active, frozen, segments);
    }

    public bool TryAddRef()
    {
        while (true)
        {
            var r = Volatile.Read(ref _refs);
            if (r == 0)
            {
                return false;
            }
            if (Interlocked.CompareExchange(ref _refs, r + 1, r) == r)
            {
                return true;
            }
        }
    }

    public void Release()
    {
        if (Interlocked.Decrement(ref _refs) == 0)
        {
            foreach (var s in Segments)
            {
                s.Release();
            }
        }
    }
}
