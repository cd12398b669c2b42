using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using Kdb.Raft.Storage;
using Kdb.Raft.Transport;

namespace Kdb.Raft.Benchmarks;

/// <summary>A small KV node process over the real transport and the real fsynced log, driven by line commands on stdin:
/// <c>put id key value</c> and <c>get id key</c>; it answers <c>ok id</c>, <c>val id value</c> or <c>fail id leader</c>,
/// and reports <c>role Role term leader</c> whenever its role changes. Used by the real-process tests and benchmarks.</summary>
internal static class NodeHost
{
    public static async Task<int> RunAsync(string[] args)
    {
        string Arg(string name) => args[Array.IndexOf(args, name) + 1];
        var id = ulong.Parse(Arg("--id"), CultureInfo.InvariantCulture);
        var dir = Arg("--dir");
        var port = int.Parse(Arg("--port"), CultureInfo.InvariantCulture);
        var peers = new Dictionary<ulong, Uri>();
        var voters = new List<ulong>();
        foreach (var p in Arg("--peers").Split(','))
        {
            var pair = p.Split('=');
            var pid = ulong.Parse(pair[0], CultureInfo.InvariantCulture);
            voters.Add(pid);
            if (pid != id)
            {
                peers[pid] = new Uri(pair[1]);
            }
        }
        var inbox = new BlockingCollection<object>();
        var output = Console.Out;
        var outLock = new Lock();
        void Say(string line)
        {
            lock (outLock)
            {
                output.WriteLine(line);
                output.Flush();
            }
        }
        using var store = RaftLogStore.Open(PhysicalRaftFileSystem.Instance, dir);
        var core = RaftNodeFactory.Create(new RaftConfig { Id = id, GroupId = 1, BootstrapVoters = [.. voters], RandomSeed = id, TickMs = 20 }, store.Recovered);
        await using var transport = await RaftTransport.StartAsync(new RaftTransportOptions { ListenPort = port, Peers = peers, OnMessage = inbox.Add });
        var stdin = new Thread(() =>
        {
            while (Console.In.ReadLine() is { } line)
            {
                inbox.Add(line);
            }
            inbox.Add("exit");
        }) { IsBackground = true };
        stdin.Start();

        var kv = new Dictionary<int, int>();
        var pendingWrites = new Dictionary<ulong, (ulong Term, string ReqId)>();
        var pendingReads = new Dictionary<ulong, (string ReqId, int Key, ulong? Index)>();
        ulong nextRead = 0;
        var sw = Stopwatch.StartNew();
        long nextTick = 20;
        var lastRole = (RaftRole)0;
        while (true)
        {
            if (inbox.TryTake(out var item, 2))
            {
                do
                {
                    switch (item)
                    {
                        case Message m:
                            core.Step(m);
                            break;
                        case "exit":
                            return 0;
                        case string line:
                            var parts = line.Split(' ');
                            if (parts[0] == "put")
                            {
                                var cmd = new byte[8];
                                BinaryPrimitives.WriteInt32LittleEndian(cmd, int.Parse(parts[2], CultureInfo.InvariantCulture));
                                BinaryPrimitives.WriteInt32LittleEndian(cmd.AsSpan(4), int.Parse(parts[3], CultureInfo.InvariantCulture));
                                var r = core.Propose(cmd);
                                if (r.IsAccepted)
                                {
                                    pendingWrites[r.Index] = (r.Term, parts[1]);
                                }
                                else
                                {
                                    Say($"fail {parts[1]} {r.Leader}");
                                }
                            }
                            else if (parts[0] == "get")
                            {
                                var ctx = ++nextRead;
                                if (core.ReadIndex(ctx) == ReadIndexStatus.Pending)
                                {
                                    pendingReads[ctx] = (parts[1], int.Parse(parts[2], CultureInfo.InvariantCulture), null);
                                }
                                else
                                {
                                    Say($"fail {parts[1]} {core.Leader}");
                                }
                            }
                            break;
                    }
                }
                while (inbox.TryTake(out item));
            }
            if (sw.ElapsedMilliseconds >= nextTick)
            {
                core.Tick(sw.ElapsedMilliseconds);
                nextTick = sw.ElapsedMilliseconds + 20;
            }
            while (core.HasReady)
            {
                var rd = core.GetReady();
                if (rd.Snapshot is { } snap)
                {
                    store.SaveSnapshot(snap, rd.SnapshotData, replacesLog: true);
                }
                // Durable before anything that depends on it leaves this process.
                store.Append(rd.Entries, rd.HardState, rd.MustSync);
                foreach (var m in rd.Messages)
                {
                    transport.Send(m);
                }
                foreach (var e in rd.CommittedEntries)
                {
                    if (e.Type == EntryType.Normal && e.Data.Length == 8)
                    {
                        kv[BinaryPrimitives.ReadInt32LittleEndian(e.Data.Span)] = BinaryPrimitives.ReadInt32LittleEndian(e.Data.Span[4..]);
                    }
                    if (pendingWrites.Remove(e.Index, out var w))
                    {
                        Say(w.Term == e.Term ? $"ok {w.ReqId}" : $"fail {w.ReqId} {core.Leader}");
                    }
                }
                foreach (var rs in rd.ReadStates)
                {
                    if (pendingReads.TryGetValue(rs.Context, out var pr))
                    {
                        pendingReads[rs.Context] = (pr.ReqId, pr.Key, rs.Index);
                    }
                }
                core.Advance(rd);
                if (core.Role != lastRole)
                {
                    lastRole = core.Role;
                    Say($"role {core.Role} {core.Term} {core.Leader}");
                }
                foreach (var (ctx, pr) in pendingReads.ToArray())
                {
                    if (pr.Index is { } idx && core.AppliedIndex >= idx)
                    {
                        pendingReads.Remove(ctx);
                        Say($"val {pr.ReqId} {(kv.TryGetValue(pr.Key, out var v) ? v : 0)}");
                    }
                }
            }
        }
    }
}
