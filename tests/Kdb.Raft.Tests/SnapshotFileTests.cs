using Kdb.Raft.Storage;

namespace Kdb.Raft.Tests;

/// <summary>Snapshots as files: the log store takes a packed file by rename, a crash at any point of the hand-over leaves
/// the old snapshot or the new one, and the core compacts at an index captured before the packing.</summary>
public sealed class SnapshotFileTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "kdb-raft-snapfile-" + Guid.NewGuid().ToString("N"));

    public SnapshotFileTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Log => Path.Combine(_dir, "raft");

    private string WritePacked(string name, int size, int seed)
    {
        var bytes = new byte[size];
        new Random(seed).NextBytes(bytes);
        var path = Path.Combine(_dir, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private static ConfState Conf => new([1, 2, 3], []);

    [Fact]
    public void SaveSnapshotFile_moves_the_file_in_and_a_reopened_store_maps_it_with_its_checksum()
    {
        var packed = WritePacked("a.pack", 300_000, 1);
        var bytes = File.ReadAllBytes(packed);
        var crc = Crc32C.Compute(bytes);
        using (var store = RaftLogStore.Open(PhysicalRaftFileSystem.Instance, Log))
        {
            store.Append([new Entry(1, 1, EntryType.Normal, new byte[] { 1 }), new Entry(1, 2, EntryType.Normal, new byte[] { 2 })], new HardState(1, 1, 2), sync: true);
            var data = store.SaveSnapshotFile(new SnapshotMetadata(2, 1, Conf), packed, crc, replacesLog: false);
            Assert.False(File.Exists(packed), "the file was moved, not copied");
            Assert.True(data.Span.SequenceEqual(bytes));
        }
        using var reopened = RaftLogStore.Open(PhysicalRaftFileSystem.Instance, Log);
        Assert.Equal(2UL, reopened.Recovered.Snapshot!.Index);
        Assert.Equal([1UL, 2, 3], reopened.Recovered.Snapshot.Conf.Voters);
        Assert.True(reopened.Recovered.SnapshotData.Span.SequenceEqual(bytes));
        Assert.Equal(crc, reopened.Recovered.SnapshotChecksum);
    }

    [Fact]
    public void A_crash_around_the_hand_over_leaves_the_old_or_the_new_snapshot_and_no_stray_file()
    {
        var first = WritePacked("first.pack", 5000, 2);
        var firstBytes = File.ReadAllBytes(first);
        using (var store = RaftLogStore.Open(PhysicalRaftFileSystem.Instance, Log))
        {
            store.SaveSnapshotFile(new SnapshotMetadata(5, 1, Conf), first, Crc32C.Compute(firstBytes), replacesLog: false);
        }
        var dataFiles = Directory.GetFiles(Log, "snapshot-*.data");
        Assert.Single(dataFiles);

        // Crash after the new file was moved in, before the metadata named it: the old snapshot stays, the stray goes.
        File.WriteAllBytes(Path.Combine(Log, "snapshot-0000000000000099.data"), [1, 2, 3]);
        // And a staging file of a snapshot that was being received.
        File.WriteAllBytes(Path.Combine(Log, "snapshot.incoming-0000000000000100"), [4, 5]);
        using (var store = RaftLogStore.Open(PhysicalRaftFileSystem.Instance, Log))
        {
            Assert.Equal(5UL, store.Recovered.Snapshot!.Index);
            Assert.True(store.Recovered.SnapshotData.Span.SequenceEqual(firstBytes));
            Assert.Equal(dataFiles, Directory.GetFiles(Log, "snapshot-*.data"));
            Assert.Empty(Directory.GetFiles(Log, "snapshot.incoming-*"));

            // Crash after the new metadata landed, before the old file was deleted: the new snapshot, the old file goes.
            var second = WritePacked("second.pack", 7000, 3);
            var secondBytes = File.ReadAllBytes(second);
            store.SaveSnapshotFile(new SnapshotMetadata(9, 2, Conf), second, Crc32C.Compute(secondBytes), replacesLog: false);
            Assert.False(File.Exists(dataFiles[0]));
        }
        File.WriteAllBytes(dataFiles[0], firstBytes);
        using (var store = RaftLogStore.Open(PhysicalRaftFileSystem.Instance, Log))
        {
            Assert.Equal(9UL, store.Recovered.Snapshot!.Index);
            Assert.Equal(7000, store.Recovered.SnapshotData.Length);
            Assert.False(File.Exists(dataFiles[0]), "the replaced data file is removed at open");
            Assert.Single(Directory.GetFiles(Log, "snapshot-*.data"));
        }
    }

    [Fact]
    public void A_corrupted_or_missing_data_file_is_reported_not_used()
    {
        var packed = WritePacked("c.pack", 4096, 4);
        using (var store = RaftLogStore.Open(PhysicalRaftFileSystem.Instance, Log))
        {
            store.SaveSnapshotFile(new SnapshotMetadata(3, 1, Conf), packed, Crc32C.Compute(File.ReadAllBytes(packed)), replacesLog: false);
        }
        var data = Directory.GetFiles(Log, "snapshot-*.data").Single();
        var bytes = File.ReadAllBytes(data);
        bytes[1234] ^= 0x10;
        File.WriteAllBytes(data, bytes);
        Assert.Throws<InvalidDataException>(() => RaftLogStore.Open(PhysicalRaftFileSystem.Instance, Log).Dispose());
        File.Delete(data);
        Assert.Throws<InvalidDataException>(() => RaftLogStore.Open(PhysicalRaftFileSystem.Instance, Log).Dispose());
    }

    [Fact]
    public void An_inline_snapshot_saved_after_a_file_snapshot_replaces_it()
    {
        var packed = WritePacked("d.pack", 2048, 5);
        using (var store = RaftLogStore.Open(PhysicalRaftFileSystem.Instance, Log))
        {
            store.SaveSnapshotFile(new SnapshotMetadata(3, 1, Conf), packed, Crc32C.Compute(File.ReadAllBytes(packed)), replacesLog: false);
            store.SaveSnapshot(new SnapshotMetadata(4, 1, Conf), new byte[] { 7, 8, 9 }, replacesLog: false);
            Assert.Empty(Directory.GetFiles(Log, "snapshot-*.data"));
        }
        using var reopened = RaftLogStore.Open(PhysicalRaftFileSystem.Instance, Log);
        Assert.Equal(4UL, reopened.Recovered.Snapshot!.Index);
        Assert.Equal(new byte[] { 7, 8, 9 }, reopened.Recovered.SnapshotData.ToArray());
    }

    [Fact]
    public void Compact_at_a_captured_index_keeps_later_entries_and_refuses_a_superseded_snapshot()
    {
        var c = new TestCluster(3, cfg => cfg with { SnapshotChunkBytes = 64 });
        c.TickAll(30);
        var leader = c.Leader();
        var lagging = c.Nodes.Keys.First(id => id != leader.Id);
        c.Down.Add(lagging);
        for (var i = 0; i < 10; i++)
        {
            leader.Propose(new byte[] { (byte)i });
            c.Settle();
        }
        // Captured on the loop, packed elsewhere while the group keeps committing.
        var captured = leader.CaptureSnapshotMetadata();
        Assert.Equal(leader.AppliedIndex, captured.Index);
        for (var i = 0; i < 10; i++)
        {
            leader.Propose(new byte[] { (byte)(100 + i) });
            c.Settle();
        }
        Assert.True(leader.AppliedIndex > captured.Index);
        var data = new byte[500];
        new Random(6).NextBytes(data);
        Assert.True(leader.CanCompact(captured));
        Assert.True(leader.Compact(captured, data, Crc32C.Compute(data), retainEntries: 0));
        // An older capture is superseded now.
        Assert.False(leader.CanCompact(captured));
        Assert.False(leader.Compact(captured with { Index = captured.Index - 1 }, data, 0, 0));

        // The lagging member installs the snapshot at the captured index, then gets the entries after it from the log.
        c.Down.Remove(lagging);
        Ready? installed = null;
        for (var t = 0; t < 40 && c.Nodes[lagging].CommitIndex < leader.CommitIndex; t++)
        {
            foreach (var n in c.Nodes.Values)
            {
                n.Tick();
            }
            installed ??= Pump(c, lagging, m => m);
        }
        Assert.NotNull(installed);
        Assert.Equal(captured.Index, installed.Snapshot!.Index);
        Assert.Equal(data, installed.SnapshotData.ToArray());
        Assert.Equal(leader.CommitIndex, c.Nodes[lagging].CommitIndex);
        Assert.Contains(c.Applied[lagging], e => e.Index == leader.CommitIndex && e.Data.Span[0] == 109);
    }

    /// <summary>Runs the cluster's Readies and messages through <paramref name="network"/> (which may change or drop a
    /// message) for a while; returns the first Ready of <paramref name="watched"/> that installs a snapshot.</summary>
    internal static Ready? Pump(TestCluster c, ulong watched, Func<Message, Message?> network, Action<Ready>? persist = null)
    {
        Ready? installed = null;
        for (var k = 0; k < 60; k++)
        {
            var messages = new List<Message>();
            foreach (var (id, n) in c.Nodes)
            {
                if (c.Down.Contains(id))
                {
                    continue;
                }
                while (n.HasReady)
                {
                    var rd = n.GetReady();
                    if (id == watched && rd.Snapshot is not null)
                    {
                        installed ??= rd;
                        persist?.Invoke(rd);
                    }
                    messages.AddRange(rd.EarlyMessages);
                    messages.AddRange(rd.Messages);
                    c.Sent.AddRange(rd.Messages);
                    c.Applied[id].AddRange(rd.CommittedEntries);
                    n.Advance(rd);
                }
            }
            foreach (var m in messages)
            {
                if (!c.Down.Contains(m.To) && network(m) is { } delivered)
                {
                    c.Nodes[m.To].Step(delivered);
                }
            }
        }
        return installed;
    }
}
