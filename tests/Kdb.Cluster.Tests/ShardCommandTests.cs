using Kdb.Sql.Sessions;
using Kdb.Transactions;

namespace Kdb.Cluster.Tests;

public sealed class ShardCommandTests
{
    [Fact]
    public void Persisted_enum_values_never_change()
    {
        Assert.Equal(1, (byte)ShardCommandType.Commit);
        Assert.Equal(2, (byte)ShardCommandType.CreateDatabase);
        Assert.Equal(3, (byte)ShardCommandType.DropDatabase);
        Assert.Equal(4, (byte)ShardCommandType.SetRole);
        Assert.Equal(5, (byte)ShardCommandType.SetDatabaseState);
        Assert.Equal(6, (byte)ShardCommandType.AdvanceGcThreshold);
        Assert.Equal(7, (byte)ShardCommandType.StageChunk);
        Assert.Equal(8, (byte)ShardCommandType.ImportChunk);
        Assert.Equal(9, (byte)ShardCommandType.SwapDatabase);
        Assert.Equal(10, (byte)ShardCommandType.AdoptDatabase);
        Assert.Equal(11, (byte)ShardCommandType.SetWritesPaused);
        Assert.Equal(16, (byte)ShardCommandType.CreateDatabaseBatch);
        Assert.Equal(0, (byte)DatabaseState.Active);
        Assert.Equal(1, (byte)DatabaseState.ReadOnly);
        Assert.Equal(2, (byte)DatabaseState.Suspended);
        Assert.Equal(6, (byte)ApplyStatus.Suspended);
        Assert.Equal(7, (byte)ApplyStatus.WritesPaused);
    }

    [Fact]
    public void Writes_pause_is_apart_from_the_quota_state_survives_a_reopen_and_keeps_old_records_readable()
    {
        using var dir = new TempDirectory();
        using var engine = Kdb.Storage.KvEngine.Open(dir.Path, new Kdb.Storage.EngineOptions { RaftMode = true });
        var sm = new ShardStateMachine(engine);
        var owner = new DatabaseRole("owner", SqlRoleKind.Owner, "SCRAM-SHA-256$4096:c2FsdA==$a:b");
        Assert.Equal(ApplyStatus.Ok, sm.Apply(1, ShardCommand.CreateDatabase("db_a", 7, owner)).Status);
        // An unpaused record keeps the first format, so records written before the flag existed read the same.
        Assert.Equal(1, engine.Get(SystemKeys.Database("db_a")).Value![0]);
        Assert.Equal(ApplyStatus.Ok, sm.Apply(2, ShardCommand.SetWritesPaused("db_a", true)).Status);
        Assert.True(sm.FindDatabase("db_a")!.WritesPaused);

        var key = new byte[] { 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 9, 0, 0, 0, 0, 1 };
        var write = new CommitRecord(7, 2, [], [], [TxWrite.Put(key, new byte[] { 1 })]);
        Assert.Equal(ApplyStatus.WritesPaused, sm.Apply(3, ShardCommand.Commit(write)).Status);
        Assert.NotEqual(ApplyStatus.Ok, sm.Apply(4, ShardCommand.StageChunk(5, 0, new CommitRecord(7, 0, [], [], [TxWrite.Put(key, new byte[] { 1 })]))).Status);
        Assert.Equal(ApplyStatus.Ok, sm.Apply(5, ShardCommand.Commit(new CommitRecord(7, 2, [key], [], []))).Status); // reads go on

        // Quota states come and go without lifting the pause.
        Assert.Equal(ApplyStatus.Ok, sm.Apply(6, ShardCommand.SetDatabaseState("db_a", DatabaseState.ReadOnly)).Status);
        Assert.Equal(ApplyStatus.Ok, sm.Apply(7, ShardCommand.SetDatabaseState("db_a", DatabaseState.Active)).Status);
        Assert.Equal(ApplyStatus.WritesPaused, sm.Apply(8, ShardCommand.Commit(write)).Status);

        // The flag is persisted with the record: a replica restarted on the same data is still paused.
        var reopened = new ShardStateMachine(engine);
        Assert.Equal((DatabaseState.Active, true), (reopened.FindDatabase("db_a")!.State, reopened.FindDatabase("db_a")!.WritesPaused));
        var badFlag = ShardCommand.SetWritesPaused("db_a", true);
        badFlag[^1] = 2;
        Assert.Equal(ApplyStatus.Invalid, reopened.Apply(9, badFlag).Status);
        Assert.Equal(ApplyStatus.NotFound, reopened.Apply(10, ShardCommand.SetWritesPaused("db_x", false)).Status);
        Assert.Equal(ApplyStatus.Ok, reopened.Apply(11, ShardCommand.SetWritesPaused("db_a", false)).Status);
        Assert.Equal(ApplyStatus.Ok, reopened.Apply(12, ShardCommand.Commit(write with { ReadVersion = 11 })).Status);
        Assert.Equal(1, engine.Get(SystemKeys.Database("db_a")).Value![0]);
        Assert.Equal(ShardCommandType.SetWritesPaused, ShardCommand.TypeOf(ShardCommand.SetWritesPaused("db_a", true)));
    }

    [Fact]
    public void Apply_result_round_trips_and_rejects_garbage()
    {
        var r = new ApplyResult(ApplyStatus.Rejected, 42, CommitVerdict.Conflict, 41);
        Assert.Equal(r, ApplyResult.Decode(r.Encode()));
        Assert.Throws<InvalidDataException>(() => ApplyResult.Decode(r.Encode().AsSpan(1)));
        var bad = r.Encode();
        bad[0] = 200;
        Assert.Throws<InvalidDataException>(() => ApplyResult.Decode(bad));
    }

    [Fact]
    public void Every_truncation_or_random_command_is_refused_at_apply_without_touching_state()
    {
        using var dir = new TempDirectory();
        using var engine = Kdb.Storage.KvEngine.Open(dir.Path, new Kdb.Storage.EngineOptions { RaftMode = true });
        var sm = new ShardStateMachine(engine);
        var create = ShardCommand.CreateDatabase("db_a", 7, new DatabaseRole("owner", SqlRoleKind.Owner, "SCRAM-SHA-256$4096:c2FsdA==$a:b"));
        ulong index = 1;
        for (var cut = 0; cut < create.Length; cut++)
        {
            var result = sm.Apply(index++, create.AsMemory(0, cut));
            Assert.Equal(ApplyStatus.Invalid, result.Status);
        }
        var random = new Random(7);
        for (var i = 0; i < 500; i++)
        {
            var bytes = new byte[random.Next(0, 64)];
            random.NextBytes(bytes);
            if (bytes.Length > 1)
            {
                bytes[0] = ShardCommand.FormatVersion;
            }
            var at = index++;
            Assert.Equal(at, sm.Apply(at, bytes).Index);
        }
        Assert.Null(sm.FindDatabase("db_a"));
        Assert.Equal(ApplyStatus.Ok, sm.Apply(index++, create).Status);
        Assert.Equal(7UL, sm.FindDatabase("db_a")!.TenantId);
    }

    [Fact]
    public void Databases_roles_states_and_commits_apply_deterministically()
    {
        using var dir = new TempDirectory();
        using var engine = Kdb.Storage.KvEngine.Open(dir.Path, new Kdb.Storage.EngineOptions { RaftMode = true });
        var sm = new ShardStateMachine(engine);
        var owner = new DatabaseRole("owner", SqlRoleKind.Owner, "SCRAM-SHA-256$4096:c2FsdA==$a:b");
        Assert.Equal(ApplyStatus.Ok, sm.Apply(1, ShardCommand.CreateDatabase("db_a", 7, owner)).Status);
        Assert.Equal(ApplyStatus.Ok, sm.Apply(2, ShardCommand.CreateDatabase("db_a", 7, owner)).Status); // Idempotent redelivery.
        Assert.Equal(ApplyStatus.AlreadyExists, sm.Apply(3, ShardCommand.CreateDatabase("db_a", 8, owner)).Status);
        Assert.Equal(ApplyStatus.AlreadyExists, sm.Apply(4, ShardCommand.CreateDatabase("db_b", 7, owner)).Status);
        Assert.Equal(ApplyStatus.Invalid, sm.Apply(5, ShardCommand.CreateDatabase("db_z", 0, owner)).Status);

        var key = new byte[] { 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 9, 0, 0, 0, 0, 1 };
        var put = new CommitRecord(7, 5, [key], [], [TxWrite.Put(key, new byte[] { 42 })]);
        Assert.Equal(ApplyStatus.Ok, sm.Apply(6, ShardCommand.Commit(put)).Status);
        // The same read version again: the key it read changed at 6, so it conflicts.
        var again = sm.Apply(7, ShardCommand.Commit(put));
        Assert.Equal(ApplyStatus.Rejected, again.Status);
        Assert.Equal(CommitVerdict.Conflict, again.Verdict);
        // Tenant 0 (the group's metadata) is never writable by a commit record.
        var forged = new CommitRecord(0, 6, [], [], [TxWrite.Put(new byte[16], new byte[] { 1 })]);
        Assert.NotEqual(ApplyStatus.Ok, sm.Apply(8, ShardCommand.Commit(forged)).Status);

        Assert.Equal(ApplyStatus.Ok, sm.Apply(9, ShardCommand.SetDatabaseState("db_a", DatabaseState.ReadOnly)).Status);
        var write = new CommitRecord(7, 8, [], [], [TxWrite.Put(key, new byte[] { 43 })]);
        Assert.Equal(ApplyStatus.ReadOnly, sm.Apply(10, ShardCommand.Commit(write)).Status);
        Assert.Equal(ApplyStatus.Ok, sm.Apply(11, ShardCommand.SetDatabaseState("db_a", DatabaseState.Active)).Status);
        Assert.Equal(ApplyStatus.Ok, sm.Apply(12, ShardCommand.Commit(write)).Status);

        Assert.Equal(ApplyStatus.Ok, sm.Apply(13, ShardCommand.SetRole("db_a", new DatabaseRole("reader", SqlRoleKind.ReadOnly, "SCRAM-SHA-256$4096:c2FsdA==$c:d"))).Status);
        Assert.Equal(SqlRoleKind.ReadOnly, sm.FindDatabase("db_a")!.FindRole("reader")!.Kind);
        Assert.Equal(ApplyStatus.Ok, sm.Apply(14, ShardCommand.SetRole("db_a", new DatabaseRole("reader", SqlRoleKind.ReadOnly, ""))).Status);
        Assert.Null(sm.FindDatabase("db_a")!.FindRole("reader"));

        Assert.Equal(ApplyStatus.Ok, sm.Apply(15, ShardCommand.DropDatabase("db_a")).Status);
        Assert.False(engine.Get(key).Found);
        Assert.Null(sm.FindDatabase("db_a"));
        // A dropped database's tenant id is never reused.
        Assert.Equal(ApplyStatus.AlreadyExists, sm.Apply(16, ShardCommand.CreateDatabase("db_c", 7, owner)).Status);
    }

    [Fact]
    public void Staged_chunks_become_visible_only_with_their_commit_and_are_discarded_past_the_gc_threshold()
    {
        using var dir = new TempDirectory();
        using var engine = Kdb.Storage.KvEngine.Open(dir.Path, new Kdb.Storage.EngineOptions { RaftMode = true });
        var sm = new ShardStateMachine(engine);
        sm.Apply(1, ShardCommand.CreateDatabase("db_a", 7, new DatabaseRole("owner", SqlRoleKind.Owner, "SCRAM-SHA-256$4096:c2FsdA==$a:b")));
        byte[] Key(int i) => [0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 9, 0, 0, 0, 0, (byte)i];
        Assert.Equal(ApplyStatus.Ok, sm.Apply(2, ShardCommand.StageChunk(99, 0, new CommitRecord(7, 0, [], [], [TxWrite.Put(Key(1), new byte[] { 1 })]))).Status);
        Assert.Equal(ApplyStatus.Ok, sm.Apply(3, ShardCommand.StageChunk(99, 1, new CommitRecord(7, 0, [], [], [TxWrite.Put(Key(2), new byte[] { 2 })]))).Status);
        Assert.False(engine.Get(Key(1)).Found);
        Assert.Equal(ApplyStatus.Ok, sm.Apply(4, ShardCommand.Commit(new CommitRecord(7, 3, [], [], []) { StagedTransactionId = 99 })).Status);
        Assert.True(engine.Get(Key(1)).Found);
        Assert.True(engine.Get(Key(2)).Found);

        Assert.Equal(ApplyStatus.Ok, sm.Apply(5, ShardCommand.StageChunk(100, 0, new CommitRecord(7, 0, [], [], [TxWrite.Put(Key(3), new byte[] { 3 })]))).Status);
        Assert.Equal(ApplyStatus.Ok, sm.Apply(6, ShardCommand.AdvanceGcThreshold(5)).Status);
        Assert.Equal(5UL, sm.GcThreshold);
        Assert.Equal(ApplyStatus.Ok, sm.Apply(7, ShardCommand.AdvanceGcThreshold(6)).Status);
        // Its chunks were discarded when the threshold passed them; a late commit makes nothing visible... and reads below the threshold are too old.
        var late = sm.Apply(8, ShardCommand.Commit(new CommitRecord(7, 5, [], [], []) { StagedTransactionId = 100 }));
        Assert.Equal(CommitVerdict.SnapshotTooOld, late.Verdict);
        Assert.False(engine.Get(Key(3)).Found);
    }
}

internal sealed class TempDirectory : IDisposable
{
    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "kdb-cluster-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
