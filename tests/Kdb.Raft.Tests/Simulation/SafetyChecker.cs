namespace Kdb.Raft.Tests.Simulation;

/// <summary>Raft's safety properties, checked incrementally as nodes emit output. Throws <see cref="SafetyViolationException"/>.</summary>
internal sealed class SafetyChecker
{
    private readonly Dictionary<ulong, ulong> _leaderOfTerm = [];
    // (index, term) -> (data hash, term of the previous entry): log matching.
    private readonly Dictionary<(ulong, ulong), (ulong Hash, ulong PrevTerm)> _entries = [];
    private readonly Dictionary<ulong, (ulong Term, ulong Hash, ulong CommitTerm)> _committed = [];
    private readonly Dictionary<ulong, (ulong Term, ulong Hash)> _applied = [];
    private readonly Dictionary<(ulong Node, ulong Term), ulong> _votes = [];
    public ulong MaxCommitted { get; private set; }
    public long Checks { get; private set; }
    public int ConfChangesCommitted { get; private set; }
    public int LeaderChanges => _leaderOfTerm.Count;

    public static ulong Hash(Entry e)
    {
        var h = 14695981039346656037UL ^ (ulong)e.Type;
        foreach (var b in e.Data.Span)
        {
            h = (h ^ b) * 1099511628211UL;
        }
        return h;
    }

    private static void Fail(string what) => throw new SafetyViolationException(what);

    public void OnLeader(ulong node, ulong term, NodeLog log)
    {
        Checks++;
        if (_leaderOfTerm.TryGetValue(term, out var other) && other != node)
        {
            Fail($"two leaders in term {term}: {other} and {node}");
        }
        _leaderOfTerm[term] = node;
        // Leader completeness: every committed entry is in the new leader's log.
        foreach (var (index, c) in _committed)
        {
            // Only entries committed in earlier terms must be there; a slow candidate may still win an older term.
            if (index <= log.SnapshotIndex || c.CommitTerm >= term)
            {
                continue;
            }
            var t = log.TermAt(index);
            if (t != c.Term)
            {
                Fail($"leader completeness: node {node} leads term {term} without committed entry {index} (term {c.Term}), has {t?.ToString() ?? "none"}");
            }
        }
    }

    public void OnPersisted(ulong node, NodeLog log, IReadOnlyList<Entry> entries)
    {
        foreach (var e in entries)
        {
            Checks++;
            var prev = e.Index == 1 ? 0 : log.TermAt(e.Index - 1);
            if (prev is null)
            {
                continue;
            }
            var h = Hash(e);
            if (_entries.TryGetValue((e.Index, e.Term), out var seen))
            {
                if (seen.Hash != h || seen.PrevTerm != prev.Value)
                {
                    Fail($"log matching: node {node} has entry {e.Index}/t{e.Term} differing from another log (hash or previous term {prev} vs {seen.PrevTerm})");
                }
            }
            else
            {
                _entries[(e.Index, e.Term)] = (h, prev.Value);
            }
        }
    }

    public void OnCommitted(ulong node, ulong nodeTerm, NodeLog log, ulong from, ulong to)
    {
        for (var i = Math.Max(from, log.SnapshotIndex + 1); i <= to; i++)
        {
            Checks++;
            var e = log.At(i) ?? throw new SafetyViolationException($"node {node} committed {i} but does not have it");
            var h = Hash(e);
            if (_committed.TryGetValue(i, out var c))
            {
                if (c.Term != e.Term || c.Hash != h)
                {
                    Fail($"committed entry changed: index {i} was t{c.Term}, node {node} committed t{e.Term}");
                }
                if (nodeTerm < c.CommitTerm)
                {
                    _committed[i] = (c.Term, c.Hash, nodeTerm);
                }
            }
            else
            {
                _committed[i] = (e.Term, h, nodeTerm);
                if (e.Type == EntryType.ConfChange)
                {
                    ConfChangesCommitted++;
                }
            }
            MaxCommitted = Math.Max(MaxCommitted, i);
        }
    }

    public void OnApplied(ulong node, Entry e)
    {
        Checks++;
        var h = Hash(e);
        if (_applied.TryGetValue(e.Index, out var a))
        {
            if (a.Term != e.Term || a.Hash != h)
            {
                Fail($"state machine safety: node {node} applied t{e.Term} at {e.Index}, another node applied t{a.Term}");
            }
        }
        else
        {
            _applied[e.Index] = (e.Term, h);
        }
        if (_committed.TryGetValue(e.Index, out var c) && (c.Term != e.Term || c.Hash != h))
        {
            Fail($"node {node} applied {e.Index}/t{e.Term} which differs from the committed entry t{c.Term}");
        }
    }

    public void OnVoteGranted(ulong voter, ulong term, ulong candidate)
    {
        Checks++;
        if (_votes.TryGetValue((voter, term), out var prev) && prev != candidate)
        {
            Fail($"node {voter} voted twice in term {term}: for {prev} and for {candidate}");
        }
        _votes[(voter, term)] = candidate;
    }
}

internal sealed class SafetyViolationException(string message) : Exception(message);

/// <summary>Mirror of what a node's durable log holds, maintained by the simulated host.</summary>
internal sealed class NodeLog
{
    private readonly List<Entry> _entries = [];

    public ulong SnapshotIndex { get; private set; }
    public ulong SnapshotTerm { get; private set; }
    public ulong LastIndex => SnapshotIndex + (ulong)_entries.Count;

    public void Reset(ulong index, ulong term)
    {
        _entries.Clear();
        SnapshotIndex = index;
        SnapshotTerm = term;
    }

    public void Append(Entry e)
    {
        if (e.Index <= SnapshotIndex)
        {
            return;
        }
        if (e.Index <= LastIndex)
        {
            _entries.RemoveRange((int)(e.Index - SnapshotIndex - 1), (int)(LastIndex - e.Index + 1));
        }
        if (e.Index != LastIndex + 1)
        {
            throw new SafetyViolationException($"host log gap: appending {e.Index} after {LastIndex}");
        }
        _entries.Add(e);
    }

    public ulong? TermAt(ulong index) =>
        index == SnapshotIndex ? SnapshotTerm : index < SnapshotIndex || index > LastIndex ? null : _entries[(int)(index - SnapshotIndex - 1)].Term;

    public Entry? At(ulong index) => index <= SnapshotIndex || index > LastIndex ? null : _entries[(int)(index - SnapshotIndex - 1)];
}
