using Kdb.Raft.Storage;
using Kdb.Raft.Tests.Simulation;

namespace Kdb.Raft.Tests;

public sealed class RaftLogStoreTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "kdb-raft-log-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dir))
        {
            Directory.Delete(_dir, recursive: true);
        }
    }

    private static Entry E(ulong term, ulong index, int size = 10) =>
        new(term, index, EntryType.Normal, Enumerable.Range(0, size).Select(i => (byte)(i + (int)index)).ToArray());

    private static void AssertEntries(IReadOnlyList<Entry> actual, params (ulong Term, ulong Index)[] expected)
    {
        Assert.Equal(expected.Length, actual.Count);
        for (var i = 0; i < expected.Length; i++)
        {
            Assert.Equal(expected[i].Term, actual[i].Term);
            Assert.Equal(expected[i].Index, actual[i].Index);
        }
    }

    [Fact]
    public void Open_AfterAppendAndSync_RecoversEntriesAndHardStateFromRealDisk()
    {
        using (var store = RaftLogStore.Open(PhysicalRaftFileSystem.Instance, _dir))
        {
            store.Append([E(1, 1), E(1, 2), E(2, 3)], new HardState(2, 7, 2), sync: true);
        }
        using var reopened = RaftLogStore.Open(PhysicalRaftFileSystem.Instance, _dir);
        AssertEntries(reopened.Recovered.Entries, (1, 1), (1, 2), (2, 3));
        Assert.Equal(new HardState(2, 7, 2), reopened.Recovered.HardState);
        Assert.Equal(E(2, 3).Data.ToArray(), reopened.Recovered.Entries[2].Data.ToArray());
        Assert.Equal(0, reopened.TornBytesDiscarded);
    }

    [Fact]
    public void Open_ConflictingSuffixRewritten_LaterEntriesWin()
    {
        using (var store = RaftLogStore.Open(PhysicalRaftFileSystem.Instance, _dir))
        {
            store.Append([E(1, 1), E(1, 2), E(1, 3), E(1, 4)], new HardState(1, 1, 1), sync: true);
            store.Append([E(3, 3)], new HardState(3, 2, 1), sync: true);
        }
        using var reopened = RaftLogStore.Open(PhysicalRaftFileSystem.Instance, _dir);
        AssertEntries(reopened.Recovered.Entries, (1, 1), (1, 2), (3, 3));
        Assert.Equal(3UL, reopened.Recovered.HardState.Term);
    }

    [Fact]
    public void Open_TornTail_DiscardsOnlyTheUnsyncedWrite()
    {
        var disk = new SimFileSystem();
        using (var store = RaftLogStore.Open(disk, "/r"))
        {
            store.Append([E(1, 1), E(1, 2)], new HardState(1, 1, 2), sync: true);
            store.Append([E(1, 3, 5000)], null, sync: false);
        }
        // Keep no pending write in full, tear the one after: always a torn tail.
        disk.Crash(new Random(3), tear: true);
        using (var reopened = RaftLogStore.Open(disk, "/r"))
        {
            AssertEntries(reopened.Recovered.Entries, (1, 1), (1, 2));
            Assert.Equal(new HardState(1, 1, 2), reopened.Recovered.HardState);
            // Appending after recovery continues a clean log.
            reopened.Append([E(2, 3)], new HardState(2, 1, 2), sync: true);
        }
        using var again = RaftLogStore.Open(disk, "/r");
        AssertEntries(again.Recovered.Entries, (1, 1), (1, 2), (2, 3));
        Assert.Equal(0, again.TornBytesDiscarded);
    }

    [Fact]
    public void Open_TornTailOnRealDisk_TruncatedAndCounted()
    {
        using (var store = RaftLogStore.Open(PhysicalRaftFileSystem.Instance, _dir))
        {
            store.Append([E(1, 1), E(1, 2)], new HardState(1, 1, 2), sync: true);
        }
        var seg = Directory.GetFiles(_dir, "seg-*.log").Single();
        var good = new FileInfo(seg).Length;
        using (var fs = new FileStream(seg, FileMode.Append))
        {
            // Half a record header and garbage, as a crash mid-write leaves.
            fs.Write([0x20, 0, 0, 0, 0xde, 0xad, 0xbe]);
        }
        using var reopened = RaftLogStore.Open(PhysicalRaftFileSystem.Instance, _dir);
        AssertEntries(reopened.Recovered.Entries, (1, 1), (1, 2));
        Assert.Equal(7, reopened.TornBytesDiscarded);
        Assert.Equal(good, new FileInfo(seg).Length);
    }

    [Fact]
    public void RealDisk_SegmentsArePreallocated_CrashLeavesZerosThatRecoveryCutsWithoutCountingThemTorn()
    {
        var copy = _dir + "-crash";
        try
        {
            using (var store = RaftLogStore.Open(PhysicalRaftFileSystem.Instance, _dir))
            {
                store.Append([E(1, 1), E(1, 2, 3000)], new HardState(1, 1, 2), sync: true);
                var seg = Directory.GetFiles(_dir, "seg-*.log").Single();
                // Zeros ahead of the records, so later syncs change no file size.
                Assert.Equal(1L << 20, new FileInfo(seg).Length);
                // A crash now: what is on disk is the synced records and the zeros after them.
                Directory.CreateDirectory(copy);
                foreach (var f in Directory.GetFiles(_dir))
                {
                    File.Copy(f, Path.Combine(copy, Path.GetFileName(f)));
                }
            }
            // Closed cleanly: the zeros are cut off.
            var closed = new FileInfo(Directory.GetFiles(_dir, "seg-*.log").Single()).Length;
            Assert.True(closed < 4000, $"segment is {closed} bytes after close");
            using var recovered = RaftLogStore.Open(PhysicalRaftFileSystem.Instance, copy);
            AssertEntries(recovered.Recovered.Entries, (1, 1), (1, 2));
            Assert.Equal(E(1, 2, 3000).Data.ToArray(), recovered.Recovered.Entries[1].Data.ToArray());
            Assert.Equal(0, recovered.TornBytesDiscarded);
            Assert.Equal(closed, new FileInfo(Directory.GetFiles(copy, "seg-*.log").Single()).Length);
            recovered.Append([E(2, 3)], new HardState(2, 1, 3), sync: true);
        }
        finally
        {
            if (Directory.Exists(copy))
            {
                Directory.Delete(copy, recursive: true);
            }
        }
    }

    [Fact]
    public void RealDisk_RotatedSegmentsKeepNoZeros_AndReopenAfterManyRotations()
    {
        using (var store = RaftLogStore.Open(PhysicalRaftFileSystem.Instance, _dir, new RaftLogStoreOptions { SegmentBytes = 2000 }))
        {
            for (ulong i = 1; i <= 30; i++)
            {
                store.Append([E(1, i, 300)], new HardState(1, 1, i), sync: true);
            }
            Assert.True(store.SegmentCount > 3);
            var segments = Directory.GetFiles(_dir, "seg-*.log").Order(StringComparer.Ordinal).ToArray();
            // Every closed segment was cut back to its records (the reader refuses anything unreadable in an older segment).
            Assert.All(segments[..^1], f => Assert.True(new FileInfo(f).Length < 4000, $"{f} is {new FileInfo(f).Length} bytes"));
        }
        using var reopened = RaftLogStore.Open(PhysicalRaftFileSystem.Instance, _dir, new RaftLogStoreOptions { SegmentBytes = 2000 });
        Assert.Equal(30, reopened.Recovered.Entries.Count);
        Assert.Equal(0, reopened.TornBytesDiscarded);
    }

    [Fact]
    public void Open_CorruptionInOlderSegment_ThrowsClearError()
    {
        var disk = new SimFileSystem();
        using (var store = RaftLogStore.Open(disk, "/r", new RaftLogStoreOptions { SegmentBytes = 200 }))
        {
            for (ulong i = 1; i <= 20; i++)
            {
                store.Append([E(1, i, 50)], new HardState(1, 1, i), sync: true);
            }
            Assert.True(store.SegmentCount > 2);
        }
        disk.FlipByte("/r/seg-0000000000000001.log", 40);
        var ex = Assert.Throws<InvalidDataException>(() => RaftLogStore.Open(disk, "/r"));
        Assert.Contains("not the last segment", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Open_RandomGarbageSegment_ThrowsOrRecoversNeverLosesSyncedEntries()
    {
        var rng = new Random(11);
        for (var round = 0; round < 50; round++)
        {
            var disk = new SimFileSystem();
            using (var store = RaftLogStore.Open(disk, "/r"))
            {
                store.Append([E(1, 1), E(1, 2)], new HardState(1, 1, 2), sync: true);
                var junk = new byte[rng.Next(1, 200)];
                rng.NextBytes(junk);
                // Unsynced garbage after synced data, then a crash that keeps some of it.
                using var h = disk.OpenAppend("/r/seg-0000000000000001.log");
                h.Write(junk);
            }
            disk.Crash(rng, tear: true);
            using var reopened = RaftLogStore.Open(disk, "/r");
            AssertEntries(reopened.Recovered.Entries, (1, 1), (1, 2));
        }
    }

    [Fact]
    public void Compact_AfterSnapshot_DeletesOldSegmentsAndReopensFromSnapshot()
    {
        var disk = new SimFileSystem();
        using (var store = RaftLogStore.Open(disk, "/r", new RaftLogStoreOptions { SegmentBytes = 300 }))
        {
            for (ulong i = 1; i <= 40; i++)
            {
                store.Append([E(1, i, 40)], new HardState(1, 1, i), sync: true);
            }
            var before = store.SegmentCount;
            store.SaveSnapshot(new SnapshotMetadata(30, 1, new ConfState([1, 2, 3], [4])), new byte[] { 1, 2, 3 }, replacesLog: false);
            store.Compact(30);
            Assert.True(store.SegmentCount < before);
        }
        using var reopened = RaftLogStore.Open(disk, "/r");
        var rec = reopened.Recovered;
        Assert.Equal(30UL, rec.Snapshot!.Index);
        Assert.Equal(new ulong[] { 1, 2, 3 }, rec.Snapshot.Conf.Voters);
        Assert.Equal(new ulong[] { 4 }, rec.Snapshot.Conf.Learners);
        Assert.Equal(new byte[] { 1, 2, 3 }, rec.SnapshotData.ToArray());
        Assert.Equal(31UL, rec.Entries[0].Index);
        Assert.Equal(40UL, rec.Entries[^1].Index);
        Assert.Equal(new HardState(1, 1, 40), rec.HardState);
    }

    [Fact]
    public void SaveSnapshot_FromLeader_VoidsConflictingLog()
    {
        var disk = new SimFileSystem();
        using (var store = RaftLogStore.Open(disk, "/r"))
        {
            store.Append([E(1, 1), E(1, 2), E(1, 3), E(1, 4), E(1, 5)], new HardState(1, 0, 1), sync: true);
            store.SaveSnapshot(new SnapshotMetadata(3, 2, new ConfState([1], [])), new byte[] { 9 }, replacesLog: true);
            store.Append([E(2, 4)], new HardState(2, 0, 3), sync: true);
        }
        using var reopened = RaftLogStore.Open(disk, "/r");
        AssertEntries(reopened.Recovered.Entries, (2, 4));
        Assert.Equal(3UL, reopened.Recovered.Snapshot!.Index);
    }

    [Fact]
    public void Open_CrashBetweenSnapshotFileAndMarker_DropsEntriesThatDoNotContinueIt()
    {
        var disk = new SimFileSystem();
        using (var store = RaftLogStore.Open(disk, "/r"))
        {
            store.Append([E(1, 1), E(1, 2), E(1, 3), E(1, 4)], new HardState(1, 0, 1), sync: true);
        }
        // The snapshot file is durable but the marker record never made it.
        disk.WriteAtomic("/r/snapshot", LogFormat.EncodeSnapshot(new SnapshotMetadata(3, 2, new ConfState([1], [])), [7]));
        using var reopened = RaftLogStore.Open(disk, "/r");
        Assert.Empty(reopened.Recovered.Entries);
        Assert.Equal(3UL, reopened.Recovered.Snapshot!.Index);
    }

    [Fact]
    public void Open_CorruptSnapshotFile_ThrowsClearError()
    {
        var disk = new SimFileSystem();
        using (var store = RaftLogStore.Open(disk, "/r"))
        {
            store.SaveSnapshot(new SnapshotMetadata(3, 2, new ConfState([1], [])), new byte[] { 1, 2, 3, 4 }, replacesLog: true);
        }
        disk.FlipByte("/r/snapshot", 30);
        var ex = Assert.Throws<InvalidDataException>(() => RaftLogStore.Open(disk, "/r"));
        Assert.Contains("snapshot", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void PersistedEnums_Values_AreFrozen()
    {
        Assert.Equal(1, (byte)LogRecordType.Entry);
        Assert.Equal(2, (byte)LogRecordType.HardState);
        Assert.Equal(3, (byte)LogRecordType.SnapshotInstalled);
        Assert.Equal(1, (byte)EntryType.Normal);
        Assert.Equal(2, (byte)EntryType.ConfChange);
        Assert.Equal(1, (byte)ConfChangeType.AddVoter);
        Assert.Equal(2, (byte)ConfChangeType.AddLearner);
        Assert.Equal(3, (byte)ConfChangeType.RemoveNode);
        Assert.Equal(1, (byte)MessageType.Append);
        Assert.Equal(13, (byte)MessageType.ReadIndexResponse);
    }

    [Fact]
    public void SyncAll_ManyGroupsAppendedWithoutSync_OneSharedSyncMakesEveryGroupDurable()
    {
        var disks = Enumerable.Range(0, 6).Select(_ => new SimFileSystem()).ToArray();
        var stores = disks.Select(d => RaftLogStore.Open(d, "/raft", new RaftLogStoreOptions { SegmentBytes = 4096 })).ToArray();
        for (var g = 0; g < stores.Length; g++)
        {
            stores[g].Append([E(1, 1), E(1, 2, size: 50 + g)], new HardState(1, 1, 1), sync: false);
        }
        var before = disks.Select(d => d.SyncCount).ToArray();
        // The first store's caller-side sync and the workers' must all happen, once each.
        RaftLogStore.SyncAll(stores);
        for (var g = 0; g < stores.Length; g++)
        {
            Assert.Equal(before[g] + 1, disks[g].SyncCount);
        }
        // A clean store costs no fsync.
        RaftLogStore.SyncAll(stores);
        Assert.Equal(before.Select(b => b + 1), disks.Select(d => d.SyncCount));
        var rng = new Random(3);
        for (var g = 0; g < stores.Length; g++)
        {
            stores[g].Dispose();
            disks[g].Crash(rng, tear: true);
            using var reopened = RaftLogStore.Open(disks[g], "/raft");
            AssertEntries(reopened.Recovered.Entries, (1, 1), (1, 2));
            Assert.Equal(50 + g, reopened.Recovered.Entries[1].Data.Length);
        }
    }

    [Fact]
    public void Sync_AfterDispose_ThrowsEvenWhenItsDescriptorNumberWasReused()
    {
        var store = RaftLogStore.Open(PhysicalRaftFileSystem.Instance, Path.Combine(_dir, "closed"));
        store.Append([E(1, 1)], new HardState(1, 1, 0), sync: false);
        store.Dispose();
        // Linux hands out the lowest free descriptor, so these files likely take the closed segment's number.
        var others = Enumerable.Range(0, 8).Select(i => File.Create(Path.Combine(_dir, "other" + i))).ToArray();
        try
        {
            Assert.Throws<ObjectDisposedException>(store.Sync);
        }
        finally
        {
            foreach (var f in others)
            {
                f.Dispose();
            }
        }
    }

    [Fact]
    public void SyncAll_OneStoreFails_ThrowsAfterTheOthersAreDurable()
    {
        var dirs = Enumerable.Range(0, 4).Select(i => Path.Combine(_dir, "g" + i)).ToArray();
        var stores = dirs.Select(d => RaftLogStore.Open(PhysicalRaftFileSystem.Instance, d)).ToArray();
        foreach (var s in stores)
        {
            s.Append([E(1, 1)], new HardState(1, 1, 0), sync: false);
        }
        stores[2].Dispose();
        var ex = Assert.Throws<IOException>(() => RaftLogStore.SyncAll(stores));
        Assert.Contains("could not be made durable", ex.Message, StringComparison.Ordinal);
        foreach (var i in new[] { 0, 1, 3 })
        {
            stores[i].Dispose();
            using var reopened = RaftLogStore.Open(PhysicalRaftFileSystem.Instance, dirs[i]);
            AssertEntries(reopened.Recovered.Entries, (1, 1));
        }
    }
}
