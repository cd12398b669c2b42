namespace Kdb.Raft.Tests;

/// <summary>A lossless synchronous cluster for unit tests: Ready output is "persisted" in memory and messages delivered in order.</summary>
internal sealed class TestCluster
{
    public Dictionary<ulong, IRaftNode> Nodes { get; } = [];
    public Dictionary<ulong, List<Entry>> Applied { get; } = [];
    public Dictionary<ulong, List<ReadState>> Reads { get; } = [];
    public List<Message> Sent { get; } = [];
    public HashSet<ulong> Down { get; } = [];
    /// <summary>Every <see cref="Ready.Bootstrap"/> a node handed out, in order.</summary>
    public Dictionary<ulong, List<ulong[]>> Bootstraps { get; } = [];
    public HashSet<(ulong From, ulong To)> Blocked { get; } = [];

    public TestCluster(int n, Func<RaftConfig, RaftConfig>? tweak = null)
    {
        var voters = Enumerable.Range(1, n).Select(i => (ulong)i).ToArray();
        foreach (var id in voters)
        {
            var cfg = new RaftConfig { Id = id, GroupId = 9, BootstrapVoters = voters, RandomSeed = 5 };
            Nodes[id] = RaftNodeFactory.Create(tweak?.Invoke(cfg) ?? cfg);
            Applied[id] = [];
            Reads[id] = [];
        }
    }

    public void Add(ulong id, ulong[] bootstrap)
    {
        Nodes[id] = RaftNodeFactory.Create(new RaftConfig { Id = id, GroupId = 9, BootstrapVoters = bootstrap, RandomSeed = 5 });
        Applied[id] = [];
        Reads[id] = [];
    }

    public void Settle()
    {
        for (var round = 0; round < 1000; round++)
        {
            var any = false;
            var inbox = new List<Message>();
            foreach (var (id, node) in Nodes)
            {
                if (Down.Contains(id))
                {
                    continue;
                }
                while (node.HasReady)
                {
                    any = true;
                    var rd = node.GetReady();
                    inbox.AddRange(rd.EarlyMessages);
                    inbox.AddRange(rd.Messages);
                    Sent.AddRange(rd.EarlyMessages);
                    Sent.AddRange(rd.Messages);
                    Applied[id].AddRange(rd.CommittedEntries);
                    Reads[id].AddRange(rd.ReadStates);
                    if (rd.Bootstrap is { } bootstrap)
                    {
                        (Bootstraps.TryGetValue(id, out var seen) ? seen : Bootstraps[id] = []).Add(bootstrap);
                    }
                    node.Advance(rd);
                }
            }
            foreach (var m in inbox)
            {
                if (!Down.Contains(m.To) && !Blocked.Contains((m.From, m.To)) && Nodes.TryGetValue(m.To, out var target))
                {
                    target.Step(m);
                }
            }
            if (!any && inbox.Count == 0)
            {
                return;
            }
        }
    }

    public void TickAll(int ticks)
    {
        for (var t = 0; t < ticks; t++)
        {
            foreach (var (id, n) in Nodes)
            {
                if (!Down.Contains(id))
                {
                    n.Tick();
                }
            }
            Settle();
        }
    }

    public IRaftNode Leader() => Nodes.Values.Single(n => n.Role == RaftRole.Leader && !Down.Contains(n.Id));
}
