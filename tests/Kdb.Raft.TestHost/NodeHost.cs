using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using Kdb.Raft.Storage;
using Kdb.Raft.Transport;

namespace Kdb.Raft.TestHost;

/// <summary>A small KV node process over the real transport and the real fsynced log, driven by line commands on stdin:
/// <c>put id key value</c> and <c>get id key</c>; it answers <c>ok id</c>, <c>val id value</c> or <c>fail id leader</c>,
/// and reports <c>role Role term leader</c> whenever its role changes. Used by the real-process tests and benchmarks.
/// <c>--async-append</c> turns on <see cref="RaftConfig.AsyncLeaderAppend"/>; <c>--httpclient</c> sends through the
/// transport's HttpClient tasks instead of flushing each round on the loop thread (<see cref="RaftTransportOptions.CallerFlushes"/>);
/// <c>--trace</c> records each stage of every write (<see cref="HostTrace"/>), printed on the <c>trace</c> command.</summary>
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
        var trace = args.Contains("--trace") ? new HostTrace() : null;
        using var store = RaftLogStore.Open(PhysicalRaftFileSystem.Instance, dir);
        var config = new RaftConfig { Id = id, GroupId = 1, BootstrapVoters = [.. voters], RandomSeed = id, TickMs = 20, HeartbeatTicks = 3, AsyncLeaderAppend = args.Contains("--async-append") };
        var core = RaftNodeFactory.Create(config, store.Recovered);
        await using var transport = await RaftTransport.StartAsync(new RaftTransportOptions
        {
            ListenPort = port,
            Peers = peers,
            OnMessage = trace is null ? inbox.Add : m => inbox.Add(new TracedMessage(m, HostTrace.Now)),
            CallerFlushes = !args.Contains("--httpclient"),
        });
        var stdin = new Thread(() =>
        {
            while (Console.In.ReadLine() is { } line)
            {
                inbox.Add(trace is null ? line : new TracedLine(line, HostTrace.Now));
            }
            inbox.Add("exit");
        }) { IsBackground = true };
        stdin.Start();
        // The loop blocks between inputs: it gets a thread of its own, not one the transport's thread pool needs.
        var done = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        var loop = new Thread(() =>
        {
            try
            {
                done.TrySetResult(Loop(core, store, transport, inbox, trace));
            }
            catch (Exception e)
            {
                done.TrySetException(e);
            }
        }) { IsBackground = true, Name = "raft-loop" };
        loop.Start();
        return await done.Task;
    }

    private static int Loop(IRaftNode core, IRaftLogStore store, IRaftTransport transport, BlockingCollection<object> inbox, HostTrace? trace)
    {
        // Replies of one loop round go out in one write.
        var output = Console.Out;
        var pendingOut = new System.Text.StringBuilder();
        void Say(string line) => pendingOut.Append(line).Append('\n');

        var kv = new Dictionary<int, int>();
        var pendingWrites = new Dictionary<ulong, (ulong Term, string ReqId)>();
        var pendingReads = new Dictionary<ulong, (string ReqId, int Key, ulong? Index)>();
        ulong nextRead = 0;
        var sw = Stopwatch.StartNew();
        long nextTick = 20;
        var lastRole = (RaftRole)0;
        while (true)
        {
            // Sleep until input or the next tick, not a fixed poll: an idle node should cost (almost) nothing.
            if (inbox.TryTake(out var item, (int)Math.Clamp(nextTick - sw.ElapsedMilliseconds, 0, 20)))
            {
                do
                {
                    var readTs = 0L;
                    switch (item)
                    {
                        case TracedMessage tm:
                            trace!.Stepped(tm.Message, tm.ReceivedTs, HostTrace.Now);
                            item = tm.Message;
                            break;
                        case TracedLine tl:
                            readTs = tl.ReadTs;
                            item = tl.Line;
                            break;
                    }
                    switch (item)
                    {
                        case Message m:
                            core.Step(m);
                            break;
                        case "trace":
                            Say(trace?.Drain() ?? "traceend");
                            break;
                        case "exit":
                            output.Write(pendingOut.ToString());
                            output.Flush();
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
                                    trace?.Add("prop", HostTrace.Now, r.Index, ulong.Parse(parts[1], CultureInfo.InvariantCulture), 0, readTs);
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
                // A leader's appends may go out while it fsyncs them (AsyncLeaderAppend); everything else waits for durability.
                var readyTs = HostTrace.Now;
                foreach (var m in rd.EarlyMessages)
                {
                    trace?.Sent(m, HostTrace.Now);
                    transport.Send(m);
                }
                if (rd.EarlyMessages.Count > 0)
                {
                    // The appends leave now, while this node fsyncs them.
                    transport.Flush();
                }
                store.Append(rd.Entries, rd.HardState, rd.MustSync);
                if (trace is not null && rd.Entries.Count > 0)
                {
                    trace.Add("persist", HostTrace.Now, rd.Entries[0].Index, rd.Entries[^1].Index);
                }
                foreach (var m in rd.Messages)
                {
                    trace?.Sent(m, HostTrace.Now);
                    transport.Send(m);
                }
                transport.Flush();
                foreach (var e in rd.CommittedEntries)
                {
                    if (e.Type == EntryType.Normal && e.Data.Length == 8)
                    {
                        kv[BinaryPrimitives.ReadInt32LittleEndian(e.Data.Span)] = BinaryPrimitives.ReadInt32LittleEndian(e.Data.Span[4..]);
                    }
                    if (pendingWrites.Remove(e.Index, out var w))
                    {
                        trace?.Add("commit", readyTs, e.Index);
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
            if (pendingOut.Length > 0)
            {
                output.Write(pendingOut.ToString());
                output.Flush();
                pendingOut.Clear();
                trace?.Add("flush", HostTrace.Now);
            }
        }
    }
}

internal sealed record TracedMessage(Message Message, long ReceivedTs);

internal sealed record TracedLine(string Line, long ReadTs);
