using System.Diagnostics;
using Kdb.Storage.Segments;

namespace Kdb.Storage.Engine;

/// <summary>
/// Size-tiered compaction. Chosen over leveled because this engine is the Raft state machine of
/// every replica: applies are write-heavy and must keep up with the log, and size-tiered rewrites
/// each byte once per tier (log₄ of data/flush size) instead of up to ~10× per level. The read
/// cost it adds — several overlapping segments — is bounded by the trigger below and made cheap by
/// the per-segment learned index. It also merges only adjacent (by age) segments, which keeps
/// segments ordered by version: point reads stop at the first source holding the key, and a merge
/// that includes the oldest segment knows nothing older can be hidden by a tombstone, so it may
/// drop tombstones at or below the GC threshold.
/// </summary>
internal sealed partial class StorageEngine
{
    private const double TierRatio = 4.0;

    public void Compact()
    {
        Flush();
        CompactOnce(force: true);
    }

    /// <summary>Picks and merges one run; false when there was nothing to do.</summary>
    private bool CompactOnce(bool force)
    {
        lock (_compactionLock)
        {
            if (_disposed)
            {
                return false;
            }
            var vs = Acquire();
            try
            {
                var segs = vs.Segments;
                var gc = Volatile.Read(ref _gcThreshold);
                int lo, hi;
                if (force)
                {
                    if (segs.Length == 0 || (segs.Length == 1 && segs[0].MinVersion > gc && segs[0].RangeTombstones.Length == 0))
                    {
                        return false;
                    }
                    (lo, hi) = (0, segs.Length - 1);
                }
                else if (!PickRun(segs, out lo, out hi))
                {
                    return false;
                }
                var run = segs[lo..(hi + 1)];
                var includesOldest = hi == segs.Length - 1;
                var started = Stopwatch.GetTimestamp();
                var merged = Merge(run, includesOldest, gc);
                if (merged is null && _disposed)
                {
                    return false;
                }
                lock (_stateLock)
                {
                    var cur = _current;
                    var at = Array.IndexOf(cur.Segments, run[0]);
                    var list = new List<Segment>(cur.Segments.Length);
                    list.AddRange(cur.Segments.AsSpan(0, at));
                    if (merged is not null)
                    {
                        list.Add(merged);
                    }
                    list.AddRange(cur.Segments.AsSpan(at + run.Length));
                    var next = VersionSet.Create(cur.Active, cur.Frozen, list.ToArray(), merged);
                    try
                    {
                        WriteManifestLocked(next);
                    }
                    catch
                    {
                        next.Release();
                        throw;
                    }
                    foreach (var s in run)
                    {
                        s.MarkObsolete();
                    }
                    Install(next);
                    _compactions++;
                }

                _compactionDurations.Record(Stopwatch.GetTimestamp() - started);
                Interlocked.Add(ref _compactionBytes, merged?.FileSize ?? 0);
                return true;
            }
            finally
            {
                vs.Release();
            }
        }
    }

    /// <summary>A run of adjacent segments whose sizes are within <see cref="TierRatio"/> of each
    /// other and at least CompactionWidth long; or, when segments pile up (3 × width), the newest
    /// width segments regardless, to bound read amplification.</summary>
    private bool PickRun(Segment[] segs, out int lo, out int hi)
    {
        var width = Math.Max(2, _options.CompactionWidth);
        for (var i = 0; i < segs.Length; i++)
        {
            double min = segs[i].FileSize, max = min;
            var j = i;
            while (j + 1 < segs.Length)
            {
                var sz = segs[j + 1].FileSize;
                var nmin = Math.Min(min, sz);
                var nmax = Math.Max(max, sz);
                if (nmax > TierRatio * nmin)
                {
                    break;
                }
                (min, max) = (nmin, nmax);
                j++;
            }
            if (j - i + 1 >= width)
            {
                (lo, hi) = (i, j);
                return true;
            }
        }
        if (segs.Length >= 3 * width)
        {
            (lo, hi) = (0, width - 1);
            return true;
        }
        (lo, hi) = (0, -1);
        return false;
    }

    /// <summary>Writes the merge of <paramref name="run"/> (newest first) to a new segment; null when
    /// the result is empty or the engine is closing.</summary>
    private Segment? Merge(Segment[] run, bool includesOldest, ulong gc)
    {
        var allRts = new List<RangeTombstone>();
        foreach (var s in run)
        {
            allRts.AddRange(s.RangeTombstones);
        }
        var cursors = new SegmentCursor[run.Length];
        for (var i = 0; i < run.Length; i++)
        {
            cursors[i] = new SegmentCursor(run[i], [], null, reverse: false);
        }
        ulong no;
        lock (_stateLock)
        {
            no = _nextFileNo++;
        }
        var path = SegmentPath(_dir, no);
        using (var w = new SegmentWriter(path))
        {
            long steps = 0;
            while (true)
            {
                if ((++steps & 4095) == 0 && _disposed)
                {
                    return null;
                }
                var best = -1;
                for (var i = 0; i < cursors.Length; i++)
                {
                    if (cursors[i].Valid && (best < 0 || cursors[i].Key.SequenceCompareTo(cursors[best].Key) < 0))
                    {
                        best = i;
                    }
                }
                if (best < 0)
                {
                    break;
                }
                var c = cursors[best];
                var key = c.Key;
                var version = c.Version;
                var kind = c.Kind;
                var keep = true;
                foreach (var rt in allRts)
                {
                    if (rt.Version > version && rt.Covers(key))
                    {
                        keep = false;
                        break;
                    }
                }
                if (keep && kind == OpKind.Delete && includesOldest && version <= gc)
                {
                    keep = false;
                }
                if (keep)
                {
                    w.Add(key, version, kind, kind == OpKind.Put ? c.Value : default);
                }
                var keyCopy = key.ToArray();
                foreach (var other in cursors)
                {
                    if (other.Valid && other.Key.SequenceEqual(keyCopy))
                    {
                        other.Next();
                    }
                }
            }
            foreach (var rt in allRts)
            {
                if (!(includesOldest && rt.Version <= gc))
                {
                    w.AddRangeTombstone(rt);
                }
            }
            if (w.Count == 0 && !HasKeptRts(allRts, includesOldest, gc))
            {
                return null;
            }
            Interlocked.Add(ref _segmentBytesWritten, w.Finish());
            _indexBuilds.Record(w.IndexBuildTicks);
        }
        return Track(Segment.Open(path, no, verify: false));
    }

    private static bool HasKeptRts(List<RangeTombstone> rts, bool includesOldest, ulong gc)
    {
        foreach (var rt in rts)
        {
            if (!(includesOldest && rt.Version <= gc))
            {
                return true;
            }
        }
        return false;
    }
}
