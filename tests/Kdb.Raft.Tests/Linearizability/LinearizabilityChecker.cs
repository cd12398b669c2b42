namespace Kdb.Raft.Tests.Linearizability;

/// <summary>The Wing–Gong–Lowe algorithm as Porcupine implements it: per-key partitioning, a cache of (linearized set, state)
/// to prune repeated work, and backtracking over a linked list of call/return events.</summary>
internal static class LinearizabilityChecker
{
    public sealed record Result(bool Ok, int? FailedKey, string? Detail);

    public static Result Check(IReadOnlyList<KvOperation> history, int maxStepsPerKey = 5_000_000)
    {
        var byKey = new SortedDictionary<int, List<KvOperation>>();
        foreach (var op in history)
        {
            if (!byKey.TryGetValue(op.Key, out var list))
            {
                byKey[op.Key] = list = [];
            }
            list.Add(op);
        }
        foreach (var (key, ops) in byKey)
        {
            var ok = CheckSingle(ops, maxStepsPerKey, out var detail);
            if (!ok)
            {
                return new Result(false, key, detail);
            }
        }
        return new Result(true, null, null);
    }

    private sealed class Node
    {
        public KvOperation? Op;
        public int Id;
        public bool IsCall;
        public Node? Match;
        public Node? Prev;
        public Node? Next;
    }

    private static bool CheckSingle(List<KvOperation> ops, int maxSteps, out string? detail)
    {
        detail = null;
        // Events sorted by time; at equal times calls come first, which treats touching operations as concurrent (the permissive reading).
        var events = new List<(long Time, int Kind, int Id)>(ops.Count * 2);
        for (var i = 0; i < ops.Count; i++)
        {
            events.Add((ops[i].Call, 0, i));
            events.Add((ops[i].Return, 1, i));
        }
        events.Sort((a, b) => a.Time != b.Time ? a.Time.CompareTo(b.Time) : a.Kind != b.Kind ? a.Kind.CompareTo(b.Kind) : a.Id.CompareTo(b.Id));
        var head = new Node();
        var tail = head;
        var calls = new Node[ops.Count];
        foreach (var (_, kind, id) in events)
        {
            var n = new Node { Op = ops[id], Id = id, IsCall = kind == 0, Prev = tail };
            tail.Next = n;
            tail = n;
            if (kind == 0)
            {
                calls[id] = n;
            }
            else
            {
                calls[id].Match = n;
                n.Match = calls[id];
            }
        }

        var words = (ops.Count + 63) / 64;
        var linearized = new ulong[words];
        var cache = new Dictionary<ulong, List<(ulong[] Set, int State)>>();
        var stack = new Stack<(Node Call, int State)>();
        var state = 0;
        var entry = head.Next;
        var steps = 0;
        while (head.Next is not null)
        {
            if (++steps > maxSteps)
            {
                detail = $"gave up after {maxSteps} steps over {ops.Count} operations";
                return false;
            }
            if (entry!.IsCall)
            {
                if (KvModel.Step(state, entry.Op!, out var next))
                {
                    linearized[entry.Id / 64] |= 1UL << (entry.Id % 64);
                    if (CacheAdd(cache, linearized, next))
                    {
                        stack.Push((entry, state));
                        state = next;
                        Lift(entry);
                        entry = head.Next;
                        continue;
                    }
                    linearized[entry.Id / 64] &= ~(1UL << (entry.Id % 64));
                }
                entry = entry.Next;
            }
            else
            {
                if (stack.Count == 0)
                {
                    var op = entry.Op!;
                    detail = $"no linearization: stuck before the return of {op.Kind} key={op.Key} value={op.Value} expected={op.Expected} output={op.Output} client={op.ClientId} call={op.Call} return={op.Return}";
                    return false;
                }
                var (call, prevState) = stack.Pop();
                state = prevState;
                linearized[call.Id / 64] &= ~(1UL << (call.Id % 64));
                Unlift(call);
                entry = call.Next;
            }
        }
        return true;
    }

    private static bool CacheAdd(Dictionary<ulong, List<(ulong[] Set, int State)>> cache, ulong[] set, int state)
    {
        var h = (ulong)(uint)state * 0x9E3779B97F4A7C15UL;
        foreach (var w in set)
        {
            h = (h ^ w) * 0x100000001B3UL;
        }
        if (!cache.TryGetValue(h, out var bucket))
        {
            cache[h] = bucket = [];
        }
        foreach (var (s, st) in bucket)
        {
            if (st == state && s.AsSpan().SequenceEqual(set))
            {
                return false;
            }
        }
        bucket.Add(((ulong[])set.Clone(), state));
        return true;
    }

    private static void Lift(Node call)
    {
        call.Prev!.Next = call.Next;
        call.Next!.Prev = call.Prev;
        var ret = call.Match!;
        ret.Prev!.Next = ret.Next;
        if (ret.Next is not null)
        {
            ret.Next.Prev = ret.Prev;
        }
    }

    private static void Unlift(Node call)
    {
        var ret = call.Match!;
        ret.Prev!.Next = ret;
        if (ret.Next is not null)
        {
            ret.Next.Prev = ret;
        }
        call.Prev!.Next = call;
        call.Next!.Prev = call;
    }
}
