namespace Kdb.Raft.Tests.Simulation;

/// <summary>A network that drops, duplicates, delays (and so reorders) and replays messages, and honours directional link cuts.</summary>
internal sealed class SimNetwork(Random rng, Scenario scenario)
{
    private readonly PriorityQueue<Message, (long, long)> _queue = new();
    private readonly List<Message> _history = [];
    private readonly HashSet<(ulong, ulong)> _blocked = [];
    private long _seq;

    public double Drop { get; set; } = scenario.Drop;
    public double Duplicate { get; set; } = scenario.Duplicate;
    public double Replay { get; set; } = scenario.Replay;
    public long Delivered { get; private set; }

    public void Block(ulong from, ulong to) => _blocked.Add((from, to));

    public void Isolate(IReadOnlyCollection<ulong> side, IReadOnlyCollection<ulong> all)
    {
        foreach (var a in side)
        {
            foreach (var b in all)
            {
                if (!side.Contains(b))
                {
                    _blocked.Add((a, b));
                    _blocked.Add((b, a));
                }
            }
        }
    }

    public void Heal() => _blocked.Clear();

    public bool IsBlocked(ulong from, ulong to) => _blocked.Contains((from, to));

    public void Send(Message m, long now)
    {
        if (_blocked.Contains((m.From, m.To)) || rng.NextDouble() < Drop)
        {
            return;
        }
        Enqueue(m, now);
        if (rng.NextDouble() < Duplicate)
        {
            Enqueue(m, now);
        }
        if (_history.Count < 4096)
        {
            _history.Add(m);
        }
        else
        {
            _history[rng.Next(_history.Count)] = m;
        }
        if (Replay > 0 && rng.NextDouble() < Replay)
        {
            // An old message, possibly from an old term, delivered again.
            Enqueue(_history[rng.Next(_history.Count)], now);
        }
    }

    public void Enqueue(Message m, long now) =>
        _queue.Enqueue(m, (now + 1 + rng.Next(scenario.MaxDelayMs), _seq++));

    public bool TryTakeDue(long now, out Message message)
    {
        if (_queue.TryPeek(out var m, out var p) && p.Item1 <= now)
        {
            _queue.Dequeue();
            message = m;
            if (_blocked.Contains((m.From, m.To)))
            {
                message = null!;
                return TryTakeDue(now, out message);
            }
            Delivered++;
            return true;
        }
        message = null!;
        return false;
    }

    public void Requeue(Message m, long at) => _queue.Enqueue(m, (at, _seq++));
}
