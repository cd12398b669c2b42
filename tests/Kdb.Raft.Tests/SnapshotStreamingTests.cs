using Kdb.Raft.Storage;

namespace Kdb.Raft.Tests;

/// <summary>A follower streams a snapshot from its leader into a staging file next to its log, chunk by chunk, verifies the
/// leader's checksum, and only then installs it; a corrupted or truncated transfer is rejected and retried.</summary>
public sealed class SnapshotStreamingTests : IDisposable
{
    private const int ChunkBytes = 1000;
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "kdb-raft-stream-" + Guid.NewGuid().ToString("N"));
    private readonly Dictionary<ulong, IRaftLogStore> _stores = [];
    private readonly TestCluster _cluster;
    private readonly IRaftNode _leader;
    private readonly ulong _lagging;
    private readonly byte[] _snapshot = new byte[10 * ChunkBytes + 123];
    private readonly SnapshotMetadata _meta;

    public SnapshotStreamingTests()
    {
        _cluster = new TestCluster(3, cfg =>
        {
            var store = RaftLogStore.Open(PhysicalRaftFileSystem.Instance, Path.Combine(_dir, cfg.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)));
            _stores[cfg.Id] = store;
            return cfg with { SnapshotChunkBytes = ChunkBytes, SnapshotWindowChunks = 3, SnapshotSink = store.CreateSnapshotSink };
        });
        _cluster.TickAll(30);
        _leader = _cluster.Leader();
        _lagging = _cluster.Nodes.Keys.First(id => id != _leader.Id);
        _cluster.Down.Add(_lagging);
        for (var i = 0; i < 20; i++)
        {
            _leader.Propose(new byte[] { (byte)i });
            _cluster.Settle();
        }
        new Random(7).NextBytes(_snapshot);
        _meta = _leader.CaptureSnapshotMetadata();
        Assert.True(_leader.Compact(_meta, _snapshot, Crc32C.Compute(_snapshot), retainEntries: 0));
        _cluster.Down.Remove(_lagging);
    }

    public void Dispose()
    {
        foreach (var s in _stores.Values)
        {
            s.Dispose();
        }
        Directory.Delete(_dir, recursive: true);
    }

    private IRaftNode Lagging => _cluster.Nodes[_lagging];

    private string LaggingLog => Path.Combine(_dir, _lagging.ToString(System.Globalization.CultureInfo.InvariantCulture));

    /// <summary>Ticks and pumps until the lagging member installs a snapshot (persisting it as a host does) or the rounds run out.</summary>
    private Ready? Transfer(Func<Message, Message?> network, int rounds)
    {
        Ready? installed = null;
        for (var t = 0; t < rounds && installed is null; t++)
        {
            foreach (var n in _cluster.Nodes.Values)
            {
                n.Tick();
            }
            installed = SnapshotFileTests.Pump(_cluster, _lagging, network, rd =>
            {
                Assert.NotNull(rd.SnapshotFile);
                _stores[_lagging].SaveSnapshotFile(rd.Snapshot!, rd.SnapshotFile!, rd.SnapshotChecksum, replacesLog: true);
            });
        }
        return installed;
    }

    private void AssertOldStateKept(ulong commitBefore)
    {
        Assert.Equal(commitBefore, Lagging.CommitIndex);
        Assert.True(Lagging.AppliedIndex < _meta.Index);
        Assert.Empty(Directory.GetFiles(LaggingLog, "snapshot-*.data"));
    }

    [Fact]
    public void A_snapshot_larger_than_a_chunk_streams_to_a_staging_file_and_installs_from_it()
    {
        var stagedSizes = new List<long>();
        var installed = Transfer(m =>
        {
            if (m.Type == MessageType.Snapshot && m.To == _lagging)
            {
                // What the follower has written so far sits in its staging file, not in memory.
                var staging = Directory.GetFiles(LaggingLog, "snapshot.incoming-*");
                stagedSizes.Add(staging.Length == 1 ? new FileInfo(staging[0]).Length : -1);
            }
            return m;
        }, rounds: 20);
        Assert.NotNull(installed);
        Assert.Equal(_meta.Index, installed.Snapshot!.Index);
        Assert.Equal(Crc32C.Compute(_snapshot), installed.SnapshotChecksum);
        Assert.True(installed.SnapshotData.Span.SequenceEqual(_snapshot));
        Assert.True(_cluster.Sent.Count(m => m.Type == MessageType.Snapshot && m.To == _lagging) >= 11);
        Assert.Contains(stagedSizes, size => size >= 5 * ChunkBytes);
        // The store took the staging file by rename: one data file, no staging left; a reopened store has the snapshot.
        Assert.Empty(Directory.GetFiles(LaggingLog, "snapshot.incoming-*"));
        Assert.Single(Directory.GetFiles(LaggingLog, "snapshot-*.data"));
        _stores[_lagging].Dispose();
        using var reopened = RaftLogStore.Open(PhysicalRaftFileSystem.Instance, LaggingLog);
        _stores[_lagging] = reopened;
        Assert.True(reopened.Recovered.SnapshotData.Span.SequenceEqual(_snapshot));
        Assert.Equal(_meta.Index, reopened.Recovered.Snapshot!.Index);
        Assert.Equal(_leader.CommitIndex, Lagging.CommitIndex);
    }

    [Fact]
    public void A_corrupted_chunk_is_rejected_the_follower_keeps_its_state_and_a_later_transfer_succeeds()
    {
        var commitBefore = Lagging.CommitIndex;
        var rejections = 0;
        Message? Corrupt(Message m)
        {
            if (m.Type == MessageType.SnapshotResponse && m.Reject && m.From == _lagging)
            {
                rejections++;
            }
            if (m.Type != MessageType.Snapshot || m.SnapshotOffset != 3 * ChunkBytes)
            {
                return m;
            }
            var chunk = m.SnapshotChunk.ToArray();
            chunk[17] ^= 0x40;
            return new Message
            {
                Type = m.Type, GroupId = m.GroupId, From = m.From, To = m.To, Term = m.Term, Commit = m.Commit, Context = m.Context,
                Snapshot = m.Snapshot, SnapshotOffset = m.SnapshotOffset, SnapshotChunk = chunk, SnapshotDone = m.SnapshotDone,
            };
        }
        // Every attempt is corrupted on the way: nothing is installed, and nothing staged is left behind between attempts.
        Assert.Null(Transfer(Corrupt, rounds: 15));
        Assert.True(rejections >= 1, "the follower rejected the corrupted snapshot");
        AssertOldStateKept(commitBefore);

        var installed = Transfer(m => m, rounds: 20);
        Assert.NotNull(installed);
        Assert.True(installed.SnapshotData.Span.SequenceEqual(_snapshot));
        Assert.Equal(_leader.CommitIndex, Lagging.CommitIndex);
    }

    [Fact]
    public void A_truncated_transfer_installs_nothing_and_the_resumed_transfer_completes()
    {
        var commitBefore = Lagging.CommitIndex;
        // The last chunk arrives cut short (a sender that lost bytes): the checksum catches it.
        Message? CutLast(Message m) => m.Type == MessageType.Snapshot && m.SnapshotDone && m.SnapshotChunk.Length > 50
            ? new Message
            {
                Type = m.Type, GroupId = m.GroupId, From = m.From, To = m.To, Term = m.Term, Commit = m.Commit, Context = m.Context,
                Snapshot = m.Snapshot, SnapshotOffset = m.SnapshotOffset, SnapshotChunk = m.SnapshotChunk[..^50], SnapshotDone = true,
            }
            : m;
        Assert.Null(Transfer(CutLast, rounds: 10));
        AssertOldStateKept(commitBefore);

        // The stream stops before its end (the connection broke): still nothing installed.
        Assert.Null(Transfer(m => m.Type == MessageType.Snapshot && m.SnapshotDone ? null : m, rounds: 10));
        AssertOldStateKept(commitBefore);

        var installed = Transfer(m => m, rounds: 20);
        Assert.NotNull(installed);
        Assert.True(installed.SnapshotData.Span.SequenceEqual(_snapshot));
        Assert.Equal(_leader.CommitIndex, Lagging.CommitIndex);
    }
}
