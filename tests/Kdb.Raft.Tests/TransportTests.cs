using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using Google.Protobuf;
using Kdb.Raft.Storage;
using Kdb.Raft.Transport;
using Kdb.Raft.Transport.Wire;

namespace Kdb.Raft.Tests;

public sealed class TransportTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private static async Task<T> WaitForAsync<T>(Func<T?> probe, TimeSpan timeout)
        where T : class
    {
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed < timeout)
        {
            if (probe() is { } v)
            {
                return v;
            }
            await Task.Delay(10);
        }
        throw new TimeoutException("condition not reached within " + timeout);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Send_BetweenTwoNodes_AllFieldsArrive(bool callerFlushes)
    {
        var received = new ConcurrentQueue<Message>();
        await using var b = await RaftTransport.StartAsync(new RaftTransportOptions { OnMessage = received.Enqueue, CallerFlushes = callerFlushes });
        await using var a = await RaftTransport.StartAsync(new RaftTransportOptions
        {
            OnMessage = _ => { },
            Peers = new Dictionary<ulong, Uri> { [2] = new($"http://127.0.0.1:{b.Port}") },
            CallerFlushes = callerFlushes,
        });
        var sent = new Message
        {
            Type = MessageType.Snapshot,
            GroupId = 77,
            From = 1,
            To = 2,
            Term = 5,
            LogTerm = 4,
            Index = 99,
            Commit = 98,
            Reject = true,
            RejectHint = 12,
            Context = 1234,
            Entries = [new Entry(4, 100, EntryType.Normal, new byte[] { 1, 2, 3 }), new Entry(5, 101, EntryType.ConfChange, new ConfChange(ConfChangeType.AddLearner, 9).Encode())],
            Snapshot = new SnapshotMetadata(90, 3, new ConfState([1, 2, 3], [9])),
            SnapshotOffset = 4096,
            SnapshotChunk = new byte[] { 9, 8, 7 },
            SnapshotDone = true,
            Quiesce = true,
        };
        a.Send(sent);
        var got = await WaitForAsync(() =>
        {
            a.Flush();
            return received.TryPeek(out var m) ? m : null;
        }, TimeSpan.FromSeconds(30));
        Assert.Equal(sent.ToString(), got.ToString());
        Assert.Equal(sent.Entries[1].Data.ToArray(), got.Entries[1].Data.ToArray());
        Assert.Equal(EntryType.ConfChange, got.Entries[1].Type);
        Assert.Equal(sent.Snapshot, got.Snapshot! with { Conf = sent.Snapshot.Conf });
        Assert.Equal(new ulong[] { 1, 2, 3 }, got.Snapshot!.Conf.Voters);
        Assert.Equal(new ulong[] { 9 }, got.Snapshot.Conf.Learners);
        Assert.Equal(4096, got.SnapshotOffset);
        Assert.Equal(new byte[] { 9, 8, 7 }, got.SnapshotChunk.ToArray());
        Assert.True(got.SnapshotDone);
        Assert.True(got.Quiesce);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Send_PeerNotListening_ReportsItUnreachable(bool callerFlushes)
    {
        var unreachable = new ConcurrentQueue<ulong>();
        int closedPort;
        using (var l = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0))
        {
            l.Start();
            closedPort = ((System.Net.IPEndPoint)l.LocalEndpoint).Port;
        }
        await using var a = await RaftTransport.StartAsync(new RaftTransportOptions
        {
            OnMessage = _ => { },
            Peers = new Dictionary<ulong, Uri> { [7] = new($"http://127.0.0.1:{closedPort}") },
            OnPeerUnreachable = unreachable.Enqueue,
            CallerFlushes = callerFlushes,
        });
        a.Send(new Message { Type = MessageType.Heartbeat, GroupId = 1, From = 1, To = 7, Term = 1 });
        var peer = await WaitForAsync(() =>
        {
            a.Flush();
            return unreachable.TryPeek(out var id) ? id.ToString(System.Globalization.CultureInfo.InvariantCulture) : null;
        }, TimeSpan.FromSeconds(30));
        Assert.Equal("7", peer);
    }

    /// <summary>The flushed sender under HTTP/2 flow control: one flush far larger than the initial 64 KiB windows and the 16 KiB
    /// frame size (it waits for the peer's window updates and finishes in the background), thousands of small messages in
    /// order, and a peer that restarts on the same port (the sender reconnects).</summary>
    [Fact]
    public async Task CallerFlushes_LargeAndManyMessagesAndPeerRestart_AllArriveInOrder()
    {
        var received = new ConcurrentQueue<Message>();
        var b = await RaftTransport.StartAsync(new RaftTransportOptions { OnMessage = received.Enqueue, CallerFlushes = true });
        var port = b.Port;
        await using var a = await RaftTransport.StartAsync(new RaftTransportOptions
        {
            OnMessage = _ => { },
            Peers = new Dictionary<ulong, Uri> { [2] = new($"http://127.0.0.1:{port}") },
            CallerFlushes = true,
        });
        var rng = new Random(5);
        var big = new byte[7 << 20];
        rng.NextBytes(big);
        a.Send(new Message { Type = MessageType.Append, GroupId = 1, From = 1, To = 2, Term = 1, Entries = [new Entry(1, 1, EntryType.Normal, big)] });
        for (var i = 0; i < 3000; i++)
        {
            a.Send(new Message { Type = MessageType.Heartbeat, GroupId = (ulong)i + 10, From = 1, To = 2, Term = 1 });
        }
        a.Flush();
        await WaitForAsync(() =>
        {
            a.Flush();
            return received.Count >= 3001 ? received : null;
        }, TimeSpan.FromSeconds(60));
        var all = received.ToArray();
        // Heartbeats travel on their own stream and may pass the append; each stream keeps its order.
        Assert.Equal(big, Assert.Single(all, m => m.Type == MessageType.Append).Entries[0].Data.ToArray());
        Assert.Equal(Enumerable.Range(10, 3000).Select(i => (ulong)i), all.Where(m => m.Type == MessageType.Heartbeat).Select(m => m.GroupId));
        Assert.Equal(0, a.MessagesDropped);

        // The peer goes away and comes back on the same port: later messages arrive on a new stream.
        await b.DisposeAsync();
        var again = new ConcurrentQueue<Message>();
        await using var b2 = await RaftTransport.StartAsync(new RaftTransportOptions { OnMessage = again.Enqueue, ListenPort = port, CallerFlushes = true });
        await WaitForAsync(() =>
        {
            a.Send(new Message { Type = MessageType.Heartbeat, GroupId = 5, From = 1, To = 2, Term = 2 });
            a.Flush();
            return again.IsEmpty ? null : again;
        }, TimeSpan.FromSeconds(60));
        Assert.All(again, m => Assert.Equal(2UL, m.Term));
    }

    /// <summary>A follower behind by many large appends: the appends arrive whole and in order, entries larger than the
    /// frame size and the 64 KiB initial window included, and a heartbeat flushed after all of them arrives before the
    /// last (it is cut into frames ahead of the backlog, on its own stream), so the follower keeps hearing its leader.</summary>
    [Fact]
    public async Task CallerFlushes_BacklogOfLargeAppends_AppendsInOrderAndHeartbeatPassesThem()
    {
        var received = new ConcurrentQueue<Message>();
        await using var b = await RaftTransport.StartAsync(new RaftTransportOptions { OnMessage = received.Enqueue, CallerFlushes = true });
        await using var a = await RaftTransport.StartAsync(new RaftTransportOptions
        {
            OnMessage = _ => { },
            Peers = new Dictionary<ulong, Uri> { [2] = new($"http://127.0.0.1:{b.Port}") },
            CallerFlushes = true,
        });
        var rng = new Random(11);
        var payloads = new List<byte[]>();
        for (var i = 0; i < 8; i++)
        {
            // 4 MiB and more, with a small entry beside the large one (copied inline) and one slice of a larger array.
            var data = new byte[(4 << 20) + (i * 4099)];
            rng.NextBytes(data);
            payloads.Add(data);
            var small = new byte[100 + i];
            rng.NextBytes(small);
            var sliced = new ReadOnlyMemory<byte>(data, 7, 64 << 10);
            a.Send(new Message
            {
                Type = MessageType.Append, GroupId = 1, From = 1, To = 2, Term = 3, Index = (ulong)i * 3, LogTerm = 3, Commit = (ulong)i,
                Entries = [new Entry(3, ((ulong)i * 3) + 1, EntryType.Normal, data), new Entry(3, ((ulong)i * 3) + 2, EntryType.Normal, small),
                    new Entry(3, ((ulong)i * 3) + 3, EntryType.ConfChange, sliced)],
            });
            // An append without entries (a commit update) keeps its place among the large ones.
            a.Send(new Message { Type = MessageType.Append, GroupId = 1, From = 1, To = 2, Term = 3, Index = ((ulong)i * 3) + 3, LogTerm = 3, Commit = 100 + (ulong)i });
        }
        a.Send(new Message { Type = MessageType.Heartbeat, GroupId = 1, From = 1, To = 2, Term = 3, Commit = 7, Context = 42 });
        a.Flush();
        await WaitForAsync(() =>
        {
            a.Flush();
            return received.Count >= 17 ? received : null;
        }, TimeSpan.FromSeconds(120));
        var all = received.ToArray();
        var appends = all.Where(m => m.Type == MessageType.Append).ToArray();
        Assert.Equal(16, appends.Length);
        for (var i = 0; i < 8; i++)
        {
            var full = appends[2 * i];
            Assert.Equal((ulong)i * 3, full.Index);
            Assert.Equal((ulong)i, full.Commit);
            Assert.Equal(3, full.Entries.Length);
            Assert.Equal(payloads[i], full.Entries[0].Data.ToArray());
            Assert.Equal(100 + i, full.Entries[1].Data.Length);
            Assert.Equal(EntryType.ConfChange, full.Entries[2].Type);
            Assert.Equal(payloads[i].AsSpan(7, 64 << 10).ToArray(), full.Entries[2].Data.ToArray());
            Assert.Equal(100 + (ulong)i, appends[(2 * i) + 1].Commit);
            Assert.Empty(appends[(2 * i) + 1].Entries);
        }
        var heartbeat = Array.FindIndex(all, m => m.Type == MessageType.Heartbeat);
        Assert.Equal(42UL, all[heartbeat].Context);
        Assert.True(heartbeat < Array.FindIndex(all, m => m == appends[^2]), $"the heartbeat arrived at {heartbeat}, behind the whole backlog");
        Assert.Equal(0, a.MessagesDropped);
        Assert.Equal(0, b.MalformedFrames);
    }

    /// <summary>The spliced encoding (large entry data as pieces of their own) reads back as the same batch protobuf writes.</summary>
    [Fact]
    public void WireEncoding_Spliced_ParsesAsTheSameBatch()
    {
        var large = new byte[(64 << 10) + 3];
        new Random(3).NextBytes(large);
        var m = new Message
        {
            Type = MessageType.Append, GroupId = 9, From = 1, To = 2, Term = 4, LogTerm = 4, Index = 10, Commit = 9, Context = 5,
            Entries = [new Entry(4, 11, EntryType.Normal, large), new Entry(4, 12, EntryType.Normal, ReadOnlyMemory<byte>.Empty),
                new Entry(4, 13, EntryType.Normal, new byte[] { 1, 2, 3 }), new Entry(4, 14, EntryType.Normal, large.AsMemory(1))],
        };
        Assert.True(WireEncoding.WantsSplice(m));
        var pieces = new Queue<Piece>();
        var length = WireEncoding.EncodeSpliced(m, pieces);
        Assert.True(pieces.Count >= 5, "the large entries are pieces of their own");
        var bytes = pieces.SelectMany(p => p.Array.AsSpan(p.Offset, p.Count).ToArray()).ToArray();
        Assert.Equal(length, bytes.Length);
        Assert.Equal(length - 5, (int)BinaryPrimitives.ReadUInt32BigEndian(bytes.AsSpan(1)));
        var expected = new RaftBatch { Messages = { MessageCodec.ToWire(m) } };
        Assert.Equal(expected, RaftBatch.Parser.ParseFrom(bytes.AsSpan(5).ToArray()));
        Assert.Equal(expected.CalculateSize(), length - 5);
    }

    internal static byte[] Frame(byte[] payload, byte flag = 0)
    {
        var b = new byte[5 + payload.Length];
        b[0] = flag;
        BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(1), (uint)payload.Length);
        payload.CopyTo(b, 5);
        return b;
    }

    private static byte[] ValidBatch(ulong to) =>
        new RaftBatch { Messages = { new RaftMessage { Type = (uint)MessageType.Heartbeat, From = 1, To = to, Term = 1, GroupId = 1 } } }.ToByteArray();

    public static TheoryData<string, byte[]> BadStreams() => new()
    {
        { "compressed flag", Frame(ValidBatch(2), flag: 1) },
        { "truncated header", [0, 0, 0] },
        { "truncated payload", Frame(ValidBatch(2))[..^2] },
        { "oversized length", [0, 0xff, 0xff, 0xff, 0xff, 1, 2, 3] },
        { "not protobuf", Frame([0xff, 0xff, 0xff, 0xff, 0x0f]) },
        { "unknown message type", Frame(new RaftBatch { Messages = { new RaftMessage { Type = 200, From = 1, To = 2 } } }.ToByteArray()) },
        { "no sender", Frame(new RaftBatch { Messages = { new RaftMessage { Type = 3, To = 2 } } }.ToByteArray()) },
        { "snapshot without metadata", Frame(new RaftBatch { Messages = { new RaftMessage { Type = 9, From = 1, To = 2 } } }.ToByteArray()) },
    };

    [Theory]
    [MemberData(nameof(BadStreams))]
    public async Task Stream_MalformedOrTruncatedFrame_RejectedCountedAndNodeKeepsServing(string name, byte[] body)
    {
        var received = new ConcurrentQueue<Message>();
        await using var server = await RaftTransport.StartAsync(new RaftTransportOptions { OnMessage = received.Enqueue });
        using var http = new HttpClient();
        var uri = new Uri($"http://127.0.0.1:{server.Port}{RaftTransport.StreamPath}");
        // A valid frame first, then the bad one: the valid one is delivered, the bad one rejected.
        var content = Frame(ValidBatch(2)).Concat(body).ToArray();
        using (var req = new HttpRequestMessage(HttpMethod.Post, uri) { Version = HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact, Content = new ByteArrayContent(content) })
        {
            using var resp = await http.SendAsync(req);
            await resp.Content.ReadAsByteArrayAsync();
            Assert.Equal("3", resp.TrailingHeaders.GetValues("grpc-status").Single());
        }
        Assert.Equal(1, server.MalformedFrames);
        Assert.Single(received);
        // The node still serves a good stream afterwards.
        using (var req = new HttpRequestMessage(HttpMethod.Post, uri) { Version = HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact, Content = new ByteArrayContent(Frame(ValidBatch(2))) })
        {
            using var resp = await http.SendAsync(req);
            await resp.Content.ReadAsByteArrayAsync();
            Assert.Equal("0", resp.TrailingHeaders.GetValues("grpc-status").Single());
        }
        Assert.Equal(2, received.Count);
        Assert.Equal(1, server.MalformedFrames);
        Assert.False(string.IsNullOrEmpty(name));
    }

    [Fact]
    public async Task Stream_RandomGarbage_NeverCrashesAndIsCounted()
    {
        var received = new ConcurrentQueue<Message>();
        await using var server = await RaftTransport.StartAsync(new RaftTransportOptions { OnMessage = received.Enqueue });
        using var http = new HttpClient();
        var uri = new Uri($"http://127.0.0.1:{server.Port}{RaftTransport.StreamPath}");
        var rng = new Random(4);
        for (var i = 0; i < 20; i++)
        {
            var junk = new byte[rng.Next(1, 300)];
            rng.NextBytes(junk);
            junk[0] = 0;
            using var req = new HttpRequestMessage(HttpMethod.Post, uri) { Version = HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact, Content = new ByteArrayContent(junk) };
            using var resp = await http.SendAsync(req);
            await resp.Content.ReadAsByteArrayAsync();
        }
        Assert.True(server.MalformedFrames >= 15, $"only {server.MalformedFrames} of 20 garbage streams counted");
    }

    /// <summary>Three replicas with real segmented logs on disk talking over the real HTTP/2 transport on loopback.</summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Cluster_ThreeNodesOverHttp2_CommitsEverywhereAndSurvivesLeaderStop(bool callerFlushes)
    {
        var root = Path.Combine(Path.GetTempPath(), "kdb-raft-transport-" + Guid.NewGuid().ToString("N"));
        var nodes = new TransportNode[3];
        try
        {
            for (var i = 0; i < 3; i++)
            {
                nodes[i] = await TransportNode.StartAsync((ulong)i + 1, Path.Combine(root, "n" + (i + 1)), callerFlushes);
            }
            foreach (var n in nodes)
            {
                foreach (var p in nodes)
                {
                    if (p != n)
                    {
                        n.Transport.SetPeer(p.Id, new Uri($"http://127.0.0.1:{p.Transport.Port}"));
                    }
                }
                n.Run();
            }
            var clock = Stopwatch.StartNew();
            var acked = new List<int>();
            for (var i = 0; i < 50; i++)
            {
                var leader = await WaitForAsync(() => nodes.FirstOrDefault(n => n.Running && n.IsLeader), TimeSpan.FromSeconds(60));
                if (await leader.ProposeAsync(BitConverter.GetBytes(i)))
                {
                    acked.Add(i);
                }
            }
            Assert.NotEmpty(acked);
            output.WriteLine($"{acked.Count} writes acknowledged after {clock.ElapsedMilliseconds} ms");
            var old = nodes.First(n => n.IsLeader);
            await old.StopAsync();
            var survivors = nodes.Where(n => n != old).ToArray();
            var stoppedAt = clock.ElapsedMilliseconds;
            var next = await WaitForAsync(() => survivors.FirstOrDefault(n => n.IsLeader), TimeSpan.FromSeconds(60));
            output.WriteLine($"new leader {next.Id} after {clock.ElapsedMilliseconds - stoppedAt} ms");
            for (var i = 100; i < 110; i++)
            {
                if (await next.ProposeAsync(BitConverter.GetBytes(i)))
                {
                    acked.Add(i);
                }
            }
            output.WriteLine($"{acked.Count} writes acknowledged after {clock.ElapsedMilliseconds} ms");
            await WaitForAsync(() => survivors.All(n => acked.All(a => n.AppliedValues.Contains(a))) ? survivors : null, TimeSpan.FromSeconds(60));
            output.WriteLine($"all acknowledged writes applied on survivors after {clock.ElapsedMilliseconds} ms");
        }
        finally
        {
            foreach (var n in nodes)
            {
                if (n is not null)
                {
                    await n.StopAsync();
                }
            }
            if (Directory.Exists(root))
            {
                Directory.Delete(root, recursive: true);
            }
        }
    }

    private sealed class TransportNode
    {
        private readonly BlockingCollection<object> _inbox = new();
        private readonly Dictionary<ulong, (ulong Term, TaskCompletionSource<bool> Done)> _pending = [];
        private IRaftNode _core = null!;
        private IRaftLogStore _store = null!;
        private Thread? _thread;
        private volatile bool _stop;

        public ulong Id { get; private init; }
        public IRaftTransport Transport { get; private set; } = null!;
        public volatile bool IsLeader;
        public bool Running => _thread is not null && !_stop;
        public ConcurrentBag<int> AppliedValues { get; } = [];

        public static async Task<TransportNode> StartAsync(ulong id, string dir, bool callerFlushes)
        {
            var n = new TransportNode { Id = id };
            n._store = RaftLogStore.Open(PhysicalRaftFileSystem.Instance, dir);
            n._core = RaftNodeFactory.Create(new RaftConfig { Id = id, GroupId = 1, BootstrapVoters = [1, 2, 3], RandomSeed = id, TickMs = 20 }, n._store.Recovered);
            n.Transport = await RaftTransport.StartAsync(new RaftTransportOptions { OnMessage = m => n._inbox.Add(m), CallerFlushes = callerFlushes });
            return n;
        }

        public void Run()
        {
            _thread = new Thread(Loop) { IsBackground = true };
            _thread.Start();
        }

        public Task<bool> ProposeAsync(byte[] data)
        {
            var done = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
            _inbox.Add((data, done));
            return done.Task.WaitAsync(TimeSpan.FromSeconds(30)).ContinueWith(t => t.IsCompletedSuccessfully && t.Result, TaskScheduler.Default);
        }

        public async Task StopAsync()
        {
            if (_stop)
            {
                return;
            }
            _stop = true;
            IsLeader = false;
            _thread?.Join();
            await Transport.DisposeAsync();
            _store.Dispose();
        }

        private void Loop()
        {
            var sw = Stopwatch.StartNew();
            long nextTick = 20;
            while (!_stop)
            {
                if (_inbox.TryTake(out var item, 5))
                {
                    Handle(item);
                    while (_inbox.TryTake(out item))
                    {
                        Handle(item);
                    }
                }
                if (sw.ElapsedMilliseconds >= nextTick)
                {
                    _core.Tick(sw.ElapsedMilliseconds);
                    nextTick = sw.ElapsedMilliseconds + 20;
                }
                while (_core.HasReady)
                {
                    var rd = _core.GetReady();
                    if (rd.Snapshot is { } s)
                    {
                        _store.SaveSnapshot(s, rd.SnapshotData, replacesLog: true);
                    }
                    _store.Append(rd.Entries, rd.HardState, rd.MustSync);
                    foreach (var m in rd.Messages)
                    {
                        Transport.Send(m);
                    }
                    foreach (var e in rd.CommittedEntries)
                    {
                        if (e.Data.Length == 4)
                        {
                            AppliedValues.Add(BitConverter.ToInt32(e.Data.Span));
                        }
                        if (_pending.Remove(e.Index, out var p))
                        {
                            p.Done.TrySetResult(p.Term == e.Term);
                        }
                    }
                    _core.Advance(rd);
                    IsLeader = _core.Role == RaftRole.Leader;
                }
                Transport.Flush();
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
                case (byte[] data, TaskCompletionSource<bool> done):
                    var r = _core.Propose(data);
                    if (r.IsAccepted)
                    {
                        _pending[r.Index] = (r.Term, done);
                    }
                    else
                    {
                        done.TrySetResult(false);
                    }
                    break;
            }
        }
    }
}
