namespace Kdb.Raft;

/// <summary>The in-memory view of the log: entries after the compaction point, plus commit/apply/stable cursors.</summary>
internal sealed class RaftLog
{
    private readonly List<Entry> _entries = [];
    private ulong _offsetIndex;
    private ulong _offsetTerm;

    public ulong Committed { get; private set; }
    public ulong Applied { get; set; }
    /// <summary>Entries up to here have been handed to the host for persistence.</summary>
    public ulong Stabled { get; set; }

    public ulong FirstIndex => _offsetIndex + 1;
    public ulong LastIndex => _offsetIndex + (ulong)_entries.Count;
    public ulong LastTerm => _entries.Count == 0 ? _offsetTerm : _entries[^1].Term;
    public ulong CompactedIndex => _offsetIndex;

    public void Reset(ulong index, ulong term)
    {
        _entries.Clear();
        _offsetIndex = index;
        _offsetTerm = term;
        Committed = Math.Max(Committed, index);
        Stabled = index;
    }

    public void LoadPersisted(IReadOnlyList<Entry> entries, ulong commit)
    {
        foreach (var e in entries)
        {
            if (e.Index <= _offsetIndex)
            {
                continue;
            }
            if (e.Index != LastIndex + 1)
            {
                throw new InvalidDataException($"persisted log has a gap: expected {LastIndex + 1}, got {e.Index}");
            }
            _entries.Add(e);
        }
        Stabled = LastIndex;
        Committed = Math.Max(_offsetIndex, Math.Min(commit, LastIndex));
    }

    /// <summary>Term of the entry at <paramref name="index"/>, or null when compacted away or not present.</summary>
    public ulong? TermAt(ulong index)
    {
        if (index == _offsetIndex)
        {
            return _offsetTerm;
        }
        if (index < _offsetIndex || index > LastIndex)
        {
            return null;
        }
        return _entries[(int)(index - _offsetIndex - 1)].Term;
    }

    public bool MatchTerm(ulong index, ulong term) => TermAt(index) == term;

    public Entry At(ulong index) => _entries[(int)(index - _offsetIndex - 1)];

    public bool IsUpToDate(ulong lastIndex, ulong lastTerm) =>
        lastTerm > LastTerm || (lastTerm == LastTerm && lastIndex >= LastIndex);

    public void Append(Entry entry)
    {
        if (entry.Index != LastIndex + 1)
        {
            throw new InvalidOperationException($"append at {entry.Index} after {LastIndex}");
        }
        _entries.Add(entry);
    }

    /// <summary>Follower side of AppendEntries. Returns false when the entry at <paramref name="prevIndex"/> does not match.</summary>
    public bool MaybeAppend(ulong prevIndex, ulong prevTerm, ulong leaderCommit, Entry[] entries, out ulong lastNew)
    {
        lastNew = 0;
        if (!MatchTerm(prevIndex, prevTerm))
        {
            return false;
        }
        lastNew = prevIndex + (ulong)entries.Length;
        for (var i = 0; i < entries.Length; i++)
        {
            var e = entries[i];
            if (e.Index <= _offsetIndex || MatchTerm(e.Index, e.Term))
            {
                continue;
            }
            if (e.Index <= Committed)
            {
                throw new InvalidOperationException($"conflict at committed index {e.Index} (committed {Committed})");
            }
            if (e.Index <= LastIndex)
            {
                _entries.RemoveRange((int)(e.Index - _offsetIndex - 1), (int)(LastIndex - e.Index + 1));
                Stabled = Math.Min(Stabled, e.Index - 1);
            }
            for (var j = i; j < entries.Length; j++)
            {
                _entries.Add(entries[j]);
            }
            break;
        }
        CommitTo(Math.Min(leaderCommit, lastNew));
        return true;
    }

    public void CommitTo(ulong index)
    {
        if (index > Committed)
        {
            if (index > LastIndex)
            {
                throw new InvalidOperationException($"commit {index} beyond last index {LastIndex}");
            }
            Committed = index;
        }
    }

    /// <summary>Entries in [lo, hi] capped at <paramref name="maxBytes"/> (at least one entry).</summary>
    public Entry[] Slice(ulong lo, ulong hi, long maxBytes)
    {
        if (lo > hi || lo > LastIndex)
        {
            return [];
        }
        hi = Math.Min(hi, LastIndex);
        var count = 0;
        long bytes = 0;
        for (var i = lo; i <= hi; i++)
        {
            bytes += At(i).Data.Length + 24;
            if (count > 0 && bytes > maxBytes)
            {
                break;
            }
            count++;
        }
        var result = new Entry[count];
        _entries.CopyTo((int)(lo - _offsetIndex - 1), result, 0, count);
        return result;
    }

    /// <summary>Index searched back from <paramref name="index"/> whose term is at most <paramref name="term"/>, to skip a whole conflicting term per round trip.</summary>
    public ulong FindConflictByTerm(ulong index, ulong term)
    {
        index = Math.Min(index, LastIndex);
        while (index > _offsetIndex)
        {
            var t = TermAt(index);
            if (t is null || t.Value <= term)
            {
                break;
            }
            index--;
        }
        return index;
    }

    public void CompactTo(ulong index)
    {
        if (index <= _offsetIndex)
        {
            return;
        }
        if (index > Applied)
        {
            throw new InvalidOperationException($"compact {index} beyond applied {Applied}");
        }
        var term = TermAt(index) ?? throw new InvalidOperationException($"compact at unknown index {index}");
        _entries.RemoveRange(0, (int)(index - _offsetIndex));
        _offsetIndex = index;
        _offsetTerm = term;
    }
}
