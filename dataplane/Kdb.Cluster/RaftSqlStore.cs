using System.Security.Cryptography;
using Kdb.Sql;
using Kdb.Sql.Transactions;
using Kdb.Storage;
using Kdb.Transactions;

namespace Kdb.Cluster;

/// <summary>
/// The SQL engine's store for one tenant database on a shard group: snapshots after ReadIndex (linearizable, also on
/// followers), commits as commit records proposed to the group and validated at apply. Transactions too large for one
/// log entry stage their writes in chunks first (DESIGN, "Large transactions").
/// </summary>
public sealed class RaftSqlStore(ClusterCommitter committer, ulong groupId, string databaseId, IUsageSink? usage = null) : ISqlStore, ISqlLockingStore
{
    /// <summary>Commit records up to this size go in one entry; larger ones are staged.</summary>
    internal const int SingleEntryBytes = 7 << 20;

    /// <summary>A staged chunk is stored as one value (≤ 4 MiB) and proposed as one entry.</summary>
    internal const int ChunkBytes = 3 << 20;

    private ClusterHost Host => committer.Host;

    public ulong GroupId => groupId;

    public string DatabaseId => databaseId;

    /// <summary>The newest version of <paramref name="key"/> this replica has applied (row locks: on the leader, where read-write transactions run).</summary>
    public ulong NewestAppliedVersion(ReadOnlySpan<byte> key) => Host.Engine(groupId).NewestVersion(key);

    /// <summary>The group's replicated GC threshold as this replica applied it (read refresh checks against it, as apply does).</summary>
    public ulong GcThreshold => Host.Status(groupId).GcThreshold;

    public async ValueTask<IKvSnapshot> OpenSnapshotAsync(CancellationToken cancellationToken)
    {
        var state = CurrentState();
        if (state == DatabaseState.Suspended)
        {
            throw new SqlException("53400", "database suspended: quota exceeded");
        }
        try
        {
            await Host.ReadIndexAsync(groupId).WaitAsync(cancellationToken);
        }
        catch (ClusterException e)
        {
            throw new SqlException(e.Code, e.Message);
        }
        var snapshot = Host.Engine(groupId).OpenSnapshot();
        if (Host.FindDatabase(groupId, databaseId) is null)
        {
            // Dropped (or moved away) while this read waited: the snapshot would show an empty catalog (42P01).
            snapshot.Dispose();
            throw NotFound();
        }
        return usage is null ? snapshot : new CountingSnapshot(snapshot, usage, databaseId);
    }

    public async ValueTask<CommitOutcome> CommitAsync(CommitRecord record, CancellationToken cancellationToken)
    {
        if (record.Writes.Count > 0 && CurrentRecord() is var current && (current.State == DatabaseState.ReadOnly || current.WritesPaused))
        {
            throw current.State == DatabaseState.ReadOnly ? ReadOnlyError() : WritesPausedError();
        }
        try
        {
            var command = FitsOneEntry(record) ? ShardCommand.Commit(record) : await StageAsync(record, cancellationToken);
            var result = await committer.ProposeAsync(groupId, command, cancellationToken);
            if (result.Status == ApplyStatus.Ok && usage is not null)
            {
                var bytes = 0L;
                foreach (var w in record.Writes)
                {
                    bytes += w.Key.Length + w.ValueOrEnd.Length;
                }
                usage.AddWrite(databaseId, record.Writes.Count, bytes);
            }
            return result.Status switch
            {
                ApplyStatus.Ok => new CommitOutcome(new CommitValidation(CommitVerdict.Valid, default, 0), result.Index),
                ApplyStatus.Rejected => new CommitOutcome(new CommitValidation(result.Verdict, default, result.ConflictVersion), 0),
                ApplyStatus.ReadOnly => throw ReadOnlyError(),
                ApplyStatus.WritesPaused => throw WritesPausedError(),
                ApplyStatus.Suspended => throw new SqlException("53400", "database suspended: quota exceeded"),
                ApplyStatus.NotFound => throw NotFound(),
                _ => throw new SqlException("XX000", "the commit was refused: " + (result.Message ?? result.Status.ToString())),
            };
        }
        catch (ClusterException e)
        {
            throw new SqlException(e.Code, e.Message);
        }
    }

    private static bool FitsOneEntry(CommitRecord record)
    {
        try
        {
            return CommitRecordCodec.GetEncodedLength(record) <= SingleEntryBytes;
        }
        catch (CommitRecordTooLargeException)
        {
            return false;
        }
    }

    // This group's copy, not any copy on the node: while a database moves, both its groups can have a replica here.
    private DatabaseRecord CurrentRecord() => Host.FindDatabase(groupId, databaseId) ?? throw NotFound();

    private DatabaseState CurrentState() => CurrentRecord().State;

    private SqlException NotFound() => new("3D000", $"database \"{databaseId}\" does not exist");

    private static SqlException ReadOnlyError() => new("25006", "cannot execute a write: the database is read-only (storage quota exceeded)");

    /// <summary>The HINT of a write refused during a move's pause: what tells it from a read-only database's 25006.</summary>
    public const string WritesPausedHint = "retry in a moment: the pause lasts until the move's last changes are copied";

    /// <summary>True for a write refused because a move paused writes (clients should retry), not for a read-only database.</summary>
    public static bool IsWritesPaused(SqlException e) => e.SqlState == "25006" && e.Hint == WritesPausedHint;

    private static SqlException WritesPausedError() => new("25006", "cannot execute a write: writes are paused for a moment while the database moves to another shard group; retry", hint: WritesPausedHint);

    /// <summary>Proposes the writes in chunks under a fresh transaction id and returns the small final commit record.</summary>
    private async Task<byte[]> StageAsync(CommitRecord record, CancellationToken cancellationToken)
    {
        var transactionId = 0UL;
        while (transactionId == 0)
        {
            transactionId = BitConverter.ToUInt64(RandomNumberGenerator.GetBytes(8));
        }
        var sequence = 0u;
        var chunk = new List<TxWrite>();
        var bytes = 0L;
        var inflight = new List<Task<ApplyResult>>();
        foreach (var write in record.Writes)
        {
            var size = write.Key.Length + write.ValueOrEnd.Length + 16;
            if (bytes + size > ChunkBytes && chunk.Count > 0)
            {
                inflight.Add(ProposeChunk(record.Tenant, transactionId, sequence++, chunk, cancellationToken));
                chunk = [];
                bytes = 0;
                if (inflight.Count >= 4)
                {
                    await Drain(inflight);
                }
            }
            chunk.Add(write);
            bytes += size;
        }
        if (chunk.Count > 0)
        {
            inflight.Add(ProposeChunk(record.Tenant, transactionId, sequence, chunk, cancellationToken));
        }
        await Drain(inflight);
        var final = record with { Writes = [], StagedTransactionId = transactionId };
        if (!FitsOneEntry(final))
        {
            final = final with { PointReads = [], RangeReads = CoveringRange(record) };
        }
        return ShardCommand.Commit(final);
    }

    private Task<ApplyResult> ProposeChunk(ulong tenant, ulong transactionId, uint sequence, List<TxWrite> writes, CancellationToken cancellationToken) =>
        committer.ProposeAsync(groupId, ShardCommand.StageChunk(transactionId, sequence, new CommitRecord(tenant, 0, [], [], writes)), cancellationToken);

    private static async Task Drain(List<Task<ApplyResult>> inflight)
    {
        foreach (var t in inflight)
        {
            var r = await t;
            if (r.Status != ApplyStatus.Ok)
            {
                throw r.Status switch
                {
                    ApplyStatus.ReadOnly => ReadOnlyError(),
                    ApplyStatus.WritesPaused => WritesPausedError(),
                    _ => new SqlException("XX000", "staging a large transaction failed: " + (r.Message ?? r.Status.ToString())),
                };
            }
        }
        inflight.Clear();
    }

    /// <summary>A read set too large to send: one range over everything it read (conservative — more conflicts, never fewer).</summary>
    private static KeyRange[] CoveringRange(CommitRecord record)
    {
        byte[]? min = null;
        byte[]? max = null;
        var unbounded = false;
        void Widen(ReadOnlySpan<byte> start, ReadOnlySpan<byte> end)
        {
            if (min is null || start.SequenceCompareTo(min) < 0)
            {
                min = start.ToArray();
            }
            if (end.IsEmpty)
            {
                unbounded = true;
            }
            else if (max is null || end.SequenceCompareTo(max) > 0)
            {
                max = end.ToArray();
            }
        }
        foreach (var k in record.PointReads)
        {
            Widen(k.Span, [.. k.Span, 0]);
        }
        foreach (var r in record.RangeReads)
        {
            Widen(r.Start.Span, r.End.Span);
        }
        if (min is null)
        {
            return [];
        }
        // Stay inside the tenant's keyspace: its prefix end bounds an open range.
        var end = unbounded ? SystemKeys.TenantEnd(record.Tenant) ?? [] : max!;
        return [new KeyRange(min, end)];
    }
}
