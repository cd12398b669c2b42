using System.Collections.Concurrent;
using System.Diagnostics;
using Kdb.Raft.Storage;

namespace Kdb.Raft.Benchmarks;

/// <summary>Three replicas in one process, each on its own thread with its own fsynced segmented log; messages pass through in-memory queues
/// (no network or serialization: this measures consensus + durable log, not the transport).</summary>
internal static class InProcessCluster
{
    public sealed record Result(double CommitsPerSecond, double P50Ms, double P99Ms)
    {
        public double CpuUsPerOp { get; init; }
        /// <summary>Traced process runs only: mean ms per stage (<see cref="StageBreakdown.Stages"/>) and the writes behind them.</summary>
        public (double[] MeanMs, int Writes)? Stages { get; init; }
    }

    public static double MeasureFsyncRate(string dir, int seconds)
    {
        Directory.CreateDirectory(dir);
        var path = Path.Combine(dir, "fsync-baseline");
        using var fs = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1);
        var buf = new byte[128];
        var sw = Stopwatch.StartNew();
        var n = 0;
        while (sw.Elapsed.TotalSeconds < seconds)
        {
            fs.Write(buf);
            fs.Flush(flushToDisk: true);
            n++;
        }
        return n / sw.Elapsed.TotalSeconds;
    }

    private sealed record ProposeRequest(byte[] Data, TaskCompletionSource<bool> Done);

    private sealed class Node
    {
        private readonly BlockingCollection<object> _inbox = new();
        private readonly Dictionary<ulong, (ulong Term, TaskCompletionSource<bool> Done)> _pending = [];
        private readonly IRaftNode _core;
        private readonly IRaftLogStore _store;
        private readonly Thread _thread;
        private volatile bool _stop;

        public Node(ulong id, string dir, Node[] peers, bool asyncAppend)
        {
            Peers = peers;
            _store = RaftLogStore.Open(PhysicalRaftFileSystem.Instance, dir);
            _core = RaftNodeFactory.Create(new RaftConfig { Id = id, GroupId = 1, BootstrapVoters = [1, 2, 3], RandomSeed = id, MaxInflightMessages = 64, AsyncLeaderAppend = asyncAppend }, _store.Recovered);
            _thread = new Thread(Loop) { IsBackground = true, Name = $"raft-{id}" };
        }

        public Node[] Peers { get; }
        public volatile bool IsLeader;

        public void Start() => _thread.Start();

        public void Post(object o) => _inbox.Add(o);

        public void Stop()
        {
            _stop = true;
            _thread.Join();
            _store.Dispose();
        }

        private void Loop()
        {
            var sw = Stopwatch.StartNew();
            var nextTick = 10L;
            while (!_stop)
            {
                if (_inbox.TryTake(out var item, 1))
                {
                    Handle(item);
                    // Drain what is queued so one fsync covers a batch.
                    while (_inbox.TryTake(out item))
                    {
                        Handle(item);
                    }
                }
                if (sw.ElapsedMilliseconds >= nextTick)
                {
                    _core.Tick(sw.ElapsedMilliseconds);
                    nextTick += 10;
                }
                while (_core.HasReady)
                {
                    var rd = _core.GetReady();
                    if (rd.Snapshot is { } snap)
                    {
                        _store.SaveSnapshot(snap, rd.SnapshotData, replacesLog: true);
                    }
                    foreach (var m in rd.EarlyMessages)
                    {
                        Peers[m.To - 1].Post(m);
                    }
                    _store.Append(rd.Entries, rd.HardState, rd.MustSync);
                    foreach (var m in rd.Messages)
                    {
                        Peers[m.To - 1].Post(m);
                    }
                    foreach (var e in rd.CommittedEntries)
                    {
                        if (_pending.Remove(e.Index, out var p))
                        {
                            p.Done.TrySetResult(p.Term == e.Term);
                        }
                    }
                    _core.Advance(rd);
                    IsLeader = _core.Role == RaftRole.Leader;
                }
            }
            foreach (var (_, p) in _pending)
            {
                p.Done.TrySetResult(false);
            }
        }

        private void Handle(object item)
        {
            switch (item)
            {
                case Message m:
                    _core.Step(m);
                    break;
                case ProposeRequest p:
                    var r = _core.Propose(p.Data);
                    if (r.IsAccepted)
                    {
                        _pending[r.Index] = (r.Term, p.Done);
                    }
                    else
                    {
                        p.Done.TrySetResult(false);
                    }
                    break;
            }
        }
    }

    public static async Task<Result> RunAsync(string dir, int proposers, TimeSpan duration, bool asyncAppend)
    {
        var nodes = new Node[3];
        for (var i = 0; i < 3; i++)
        {
            nodes[i] = new Node((ulong)i + 1, Path.Combine(dir, "n" + (i + 1)), nodes, asyncAppend);
        }
        foreach (var n in nodes)
        {
            n.Start();
        }
        try
        {
            Node? leader = null;
            var wait = Stopwatch.StartNew();
            while (leader is null && wait.Elapsed < TimeSpan.FromSeconds(30))
            {
                await Task.Delay(20);
                leader = nodes.FirstOrDefault(n => n.IsLeader);
            }
            if (leader is null)
            {
                throw new InvalidOperationException("no leader elected within 30 s");
            }
            var payload = new byte[100];
            var warmUntil = Stopwatch.GetTimestamp() + (long)(0.5 * Stopwatch.Frequency);
            var endAt = warmUntil + (long)(duration.TotalSeconds * Stopwatch.Frequency);
            var latencies = new List<double>[proposers];
            var tasks = new Task[proposers];
            for (var p = 0; p < proposers; p++)
            {
                var mine = latencies[p] = new List<double>(100_000);
                tasks[p] = Task.Run(async () =>
                {
                    while (true)
                    {
                        var start = Stopwatch.GetTimestamp();
                        if (start >= endAt)
                        {
                            return;
                        }
                        var done = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
                        // Follow leadership changes (a loaded machine can delay ticks past an election timeout).
                        var current = nodes.FirstOrDefault(n => n.IsLeader) ?? leader;
                        current.Post(new ProposeRequest(payload, done));
                        var ok = await done.Task;
                        if (!ok)
                        {
                            await Task.Delay(5);
                        }
                        var end = Stopwatch.GetTimestamp();
                        if (ok && start >= warmUntil && end <= endAt)
                        {
                            mine.Add((end - start) * 1000.0 / Stopwatch.Frequency);
                        }
                    }
                });
            }
            await Task.WhenAll(tasks);
            var all = latencies.SelectMany(l => l).OrderBy(x => x).ToArray();
            if (all.Length == 0)
            {
                return new Result(0, 0, 0);
            }
            return new Result(all.Length / duration.TotalSeconds, all[all.Length / 2], all[Math.Min(all.Length - 1, (int)(all.Length * 0.99))]);
        }
        finally
        {
            foreach (var n in nodes)
            {
                n.Stop();
            }
        }
    }
}
