using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using Kdb.Cluster;
using Kdb.Node.Admin.Wire;
using Kdb.Storage;
using Kdb.Transactions;

namespace Kdb.Node.Cluster;

/// <summary>
/// Change streams of one database (admin API), for moving it between groups with a brief write pause: a copy taken at
/// one version catches up with the changes since it, round after round. The framing, chunks, checksums and staging are
/// the backup stream's (<see cref="BackupStream"/>); every chunk is marked <c>changes</c> so that neither import takes the
/// other's stream. Records are pairs whose value-length word may carry <see cref="DeleteFlag"/> (no value) or
/// <see cref="RangeDeleteFlag"/> (the value is the tenant-relative end key, empty for the tenant's end); range deletes come
/// first, then point changes in ascending key order, each key once.
/// </summary>
internal static class ChangeStream
{
    /// <summary>In a record's value-length word: the key is deleted; the value is empty.</summary>
    internal const uint DeleteFlag = 0x4000_0000;

    /// <summary>In a record's value-length word: a range delete from the record's key to the value (tenant-relative; empty
    /// means the tenant's end).</summary>
    internal const uint RangeDeleteFlag = 0x2000_0000;

    internal const uint FlagMask = BackupStream.RelativeKeyFlag | DeleteFlag | RangeDeleteFlag;

    /// <summary><c>GET …/export?since=V</c>. With V = 0: a range delete of the whole tenant, then every live pair (applied,
    /// it replaces whatever the target holds). With V &gt; 0: the range deletes after V, then the point changes after V.
    /// The closing chunk's raft_index is the snapshot's version W, the next round's V.</summary>
    public static async Task<IResult> ExportAsync(HttpContext c, ClusterRuntime runtime, string databaseId, string? sinceText)
    {
        if (!ulong.TryParse(sinceText, NumberStyles.None, CultureInfo.InvariantCulture, out var since))
        {
            return Results.Problem(statusCode: 400, title: "Bad request", detail: $"since must be a decimal version (an unsigned 64-bit integer), not '{sinceText}'");
        }
        if (runtime.Host.FindDatabase(databaseId) is not { } found)
        {
            return Results.Problem(statusCode: 404, title: "Not found", detail: $"database {databaseId} is not hosted here");
        }
        if (await ReadIndexWait.CaughtUpAsync(runtime, found.GroupId, c.RequestAborted) is { } unavailable)
        {
            return unavailable;
        }
        using var snapshot = runtime.Host.Engine(found.GroupId).OpenSnapshot();
        // Read after the snapshot was opened: thresholds only rise, so every compaction behind the snapshot's segments ran
        // with a threshold at most this one, and none of them dropped a tombstone above V when this is ≤ V.
        var threshold = runtime.Host.Status(found.GroupId).GcThreshold;
        if (since > 0 && threshold > since)
        {
            return Results.Problem(statusCode: 409, title: "Changes no longer kept",
                detail: $"changes since {since} are no longer kept: the group's GC threshold is {threshold} (tombstones at or below it may be gone); export again since 0");
        }
        if (since > snapshot.Version)
        {
            // After the read index no earlier export of this group can have reached past this snapshot: V came from elsewhere.
            return Results.Problem(statusCode: 400, title: "Bad request",
                detail: $"since {since} is ahead of the group's applied index {snapshot.Version}: it was not the raft_index of an export of this database");
        }
        c.Response.ContentType = "application/x-kdb-changes";
        var tenant = found.Record.TenantId;
        var start = BackupStream.TenantKey(tenant);
        var end = tenant == ulong.MaxValue ? null : BackupStream.TenantKey(tenant + 1);
        using var chunks = new ChunkSink(c.Response.Body, since);
        if (since == 0)
        {
            chunks.Add([], [], RangeDeleteFlag);
            await chunks.FlushIfFullAsync(c.RequestAborted);
            foreach (var e in snapshot.Scan(start, end))
            {
                AddValue(chunks, e.Key, e.Value, start);
                await chunks.FlushIfFullAsync(c.RequestAborted);
            }
        }
        else
        {
            foreach (var rd in snapshot.RangeDeletesSince(since, start, end))
            {
                // Clipped to the tenant: the start carries its prefix; an end past the tenant is its end (empty).
                var relativeEnd = rd.End.Length >= 8 && rd.End.AsSpan(0, 8).SequenceEqual(start) ? rd.End.AsSpan(8) : [];
                chunks.Add(rd.Start.AsSpan(8), relativeEnd, RangeDeleteFlag);
                await chunks.FlushIfFullAsync(c.RequestAborted);
            }
            foreach (var change in snapshot.ChangesSince(since, start, end))
            {
                if (change.Value is { } value)
                {
                    AddValue(chunks, change.Key, value, start);
                }
                else
                {
                    chunks.Add(change.Key.AsSpan(8), [], DeleteFlag);
                }
                await chunks.FlushIfFullAsync(c.RequestAborted);
            }
        }
        await chunks.FinishAsync(snapshot.Version, c.RequestAborted);
        return Results.Empty;
    }

    private static void AddValue(ChunkSink chunks, byte[] key, byte[] value, byte[] tenantPrefix)
    {
        // As in a backup: an index entry's value is a row key of this tenant, sent tenant-relative.
        var relative = BackupStream.ValueIsRowKey(key, value, tenantPrefix);
        chunks.Add(key.AsSpan(8), relative ? value.AsSpan(8) : value, relative ? BackupStream.RelativeKeyFlag : 0);
    }

    /// <summary><c>POST …/import?changes=true</c>: verified and staged like a backup import (nothing is applied unless the
    /// whole stream checks out), then proposed: the range deletes alone and applied first, then the point changes, several
    /// entries in flight (each key once, so their order does not matter). The database need not be empty, and applying
    /// the same stream again leaves the same state.</summary>
    public static async Task<IResult> ImportAsync(HttpContext c, ClusterRuntime runtime, string databaseId)
    {
        if (runtime.Host.FindDatabase(databaseId) is not { } found)
        {
            return Results.Problem(statusCode: 404, title: "Not found", detail: $"database {databaseId} is not hosted here");
        }
        if (c.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
        {
            limit.MaxRequestBodySize = null;
        }
        await using var staging = BackupStream.OpenStaging(runtime.Host.DataDirectory);
        if (await BackupStream.StageAsync(c.Request.Body, staging, new ChangeRecordCheck(), c.RequestAborted) is { } refused)
        {
            return refused;
        }
        staging.Position = 0;
        await ProposeStagedAsync(runtime, found.GroupId, databaseId, found.Record.TenantId, staging, c.RequestAborted);
        return AdminEndpoints.Proto(new ApplyResponse { Index = runtime.Host.Status(found.GroupId).AppliedIndex });
    }

    private static async Task ProposeStagedAsync(ClusterRuntime runtime, ulong groupId, string databaseId, ulong tenant, FileStream staging, CancellationToken ct)
    {
        var inFlight = new Queue<(Task<ApplyResult> Result, byte[] Command)>();
        var tenantEnd = SystemKeys.TenantEnd(tenant) ?? [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];
        var header = new byte[4];
        var data = ArrayPool<byte>.Shared.Rent(BackupStream.ImportBatchBytes + BackupStream.ChunkBytes + (64 << 10));
        try
        {
            while (await BackupStream.ReadExactlyAsync(staging, header, ct))
            {
                var length = BinaryPrimitives.ReadInt32LittleEndian(header);
                if (length > data.Length)
                {
                    ArrayPool<byte>.Shared.Return(data);
                    data = ArrayPool<byte>.Shared.Rent(length);
                }
                if (!await BackupStream.ReadExactlyAsync(staging, data.AsMemory(0, length), ct))
                {
                    throw new InvalidOperationException("the import's staging file is truncated");
                }
                // Values point into the staged record's buffer: every entry is encoded before the buffer is read into again.
                var writes = new List<TxWrite>();
                var ranges = false;
                var batchBytes = 0;
                var offset = 0;
                while (offset < length)
                {
                    var keyLength = BinaryPrimitives.ReadInt32LittleEndian(data.AsSpan(offset));
                    var key = Prefixed(tenant, data.AsSpan(offset + 4, keyLength));
                    offset += 4 + keyLength;
                    var raw = BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(offset));
                    var valueLength = (int)(raw & ~FlagMask);
                    var value = data.AsMemory(offset + 4, valueLength);
                    offset += 4 + valueLength;
                    var isRange = (raw & RangeDeleteFlag) != 0;
                    if (isRange != ranges && writes.Count > 0)
                    {
                        await ProposeAsync(writes, ranges);
                        writes = [];
                        batchBytes = 0;
                    }
                    ranges = isRange;
                    writes.Add((raw & FlagMask) switch
                    {
                        RangeDeleteFlag => TxWrite.DeleteRange(key, valueLength == 0 ? tenantEnd : Prefixed(tenant, value.Span)),
                        DeleteFlag => TxWrite.Delete(key),
                        BackupStream.RelativeKeyFlag => TxWrite.Put(key, Prefixed(tenant, value.Span)),
                        _ => TxWrite.Put(key, value),
                    });
                    batchBytes += key.Length + valueLength + 24;
                    if (batchBytes >= BackupStream.ImportEntryMaxBytes || offset >= length)
                    {
                        await ProposeAsync(writes, ranges);
                        writes = [];
                        batchBytes = 0;
                    }
                }
            }
            while (inFlight.Count > 0)
            {
                await BackupStream.SettleAsync(runtime, groupId, inFlight.Dequeue(), ct);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(data);
            foreach (var (pending, _) in inFlight)
            {
                await pending.ContinueWith(static _ => { }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            }
        }

        async Task ProposeAsync(List<TxWrite> writes, bool ranges)
        {
            var command = ShardCommand.ImportChunk(databaseId, new CommitRecord(tenant, 0, [], [], writes));
            if (ranges)
            {
                // A range delete applied after a point change inside it would delete that change: range deletes go alone,
                // with nothing else in flight, and are applied before the next entry is proposed.
                while (inFlight.Count > 0)
                {
                    await BackupStream.SettleAsync(runtime, groupId, inFlight.Dequeue(), ct);
                }
                await BackupStream.SettleAsync(runtime, groupId, (runtime.Committer.ProposeAsync(groupId, command, ct), command), ct);
                return;
            }
            if (inFlight.Count >= BackupStream.ImportInFlight)
            {
                await BackupStream.SettleAsync(runtime, groupId, inFlight.Dequeue(), ct);
            }
            inFlight.Enqueue((runtime.Committer.ProposeAsync(groupId, command, ct), command));
        }
    }

    private static byte[] Prefixed(ulong tenant, ReadOnlySpan<byte> relative)
    {
        var key = new byte[8 + relative.Length];
        BinaryPrimitives.WriteUInt64BigEndian(key, tenant);
        relative.CopyTo(key.AsSpan(8));
        return key;
    }

    /// <summary>Gathers records into chunks of about <see cref="BackupStream.ChunkBytes"/> and sends them, marked as a
    /// change stream since one version, from two pooled buffers (pairs and frame).</summary>
    private sealed class ChunkSink(Stream body, ulong since) : IDisposable
    {
        private byte[] _data = ArrayPool<byte>.Shared.Rent(BackupStream.ChunkBytes + (64 << 10));
        private byte[] _frame = ArrayPool<byte>.Shared.Rent(BackupStream.ChunkBytes + (64 << 10));
        private int _length;
        private uint _sequence;
        private uint _totalCrc = 0xFFFFFFFFu;
        private long _records;

        public void Add(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, uint flags)
        {
            var need = _length + 8 + key.Length + value.Length;
            if (need + 64 > _data.Length)
            {
                _data = BackupStream.Grow(_data, _length, need + 64);
                ArrayPool<byte>.Shared.Return(_frame);
                _frame = ArrayPool<byte>.Shared.Rent(_data.Length + 64);
            }
            BinaryPrimitives.WriteInt32LittleEndian(_data.AsSpan(_length), key.Length);
            key.CopyTo(_data.AsSpan(_length + 4));
            _length += 4 + key.Length;
            BinaryPrimitives.WriteUInt32LittleEndian(_data.AsSpan(_length), (uint)value.Length | flags);
            value.CopyTo(_data.AsSpan(_length + 4));
            _length += 4 + value.Length;
            _records++;
        }

        public async ValueTask FlushIfFullAsync(CancellationToken ct)
        {
            if (_length >= BackupStream.ChunkBytes)
            {
                _totalCrc = await BackupStream.WriteChunkAsync(body, _sequence++, _data.AsMemory(0, _length), _frame, _totalCrc, last: false, 0, 0, ct, changesSince: since);
                _length = 0;
            }
        }

        public async Task FinishAsync(ulong version, CancellationToken ct) =>
            await BackupStream.WriteChunkAsync(body, _sequence, _data.AsMemory(0, _length), _frame, _totalCrc, last: true, version, _records, ct, changesSince: since);

        public void Dispose()
        {
            ArrayPool<byte>.Shared.Return(_data);
            ArrayPool<byte>.Shared.Return(_frame);
        }
    }
}

/// <summary>
/// Checks the records of a change stream while it is staged, across chunks: known flags only, lengths within the engine's
/// limits, range deletes before every point change with start &lt; end, point keys strictly ascending (each key once, which
/// lets their entries apply in any order), one <c>changes_since</c> throughout.
/// </summary>
internal sealed class ChangeRecordCheck
{
    private const int MaxRelativeKey = KvEngine.MaxKeyBytes - 8;
    private readonly byte[] _lastKey = new byte[MaxRelativeKey];
    private int _lastKeyLength = -1;
    private ulong? _since;

    public bool SameSince(ulong since)
    {
        _since ??= since;
        return _since == since;
    }

    /// <summary>The records in <paramref name="data"/>, or null when one is malformed.</summary>
    public long? Count(ReadOnlySpan<byte> data)
    {
        long n = 0;
        var offset = 0;
        while (offset < data.Length)
        {
            if (offset + 4 > data.Length)
            {
                return null;
            }
            var keyLength = BinaryPrimitives.ReadInt32LittleEndian(data[offset..]);
            if (keyLength is < 0 or > MaxRelativeKey || offset + 8 + keyLength > data.Length)
            {
                return null;
            }
            var key = data.Slice(offset + 4, keyLength);
            offset += 4 + keyLength;
            var raw = BinaryPrimitives.ReadUInt32LittleEndian(data[offset..]);
            var valueLength = (int)(raw & ~ChangeStream.FlagMask);
            if (offset + 4 + valueLength > data.Length)
            {
                return null;
            }
            var value = data.Slice(offset + 4, valueLength);
            offset += 4 + valueLength;
            var ok = (raw & ChangeStream.FlagMask) switch
            {
                ChangeStream.RangeDeleteFlag => _lastKeyLength < 0 && valueLength <= MaxRelativeKey && (valueLength == 0 || key.SequenceCompareTo(value) < 0),
                ChangeStream.DeleteFlag => valueLength == 0 && keyLength > 0 && Ascending(key),
                BackupStream.RelativeKeyFlag => valueLength <= MaxRelativeKey && keyLength > 0 && Ascending(key),
                0 => valueLength <= KvEngine.MaxValueBytes && keyLength > 0 && Ascending(key),
                _ => false,
            };
            if (!ok)
            {
                return null;
            }
            n++;
        }
        return n;
    }

    private bool Ascending(ReadOnlySpan<byte> key)
    {
        if (_lastKeyLength >= 0 && key.SequenceCompareTo(_lastKey.AsSpan(0, _lastKeyLength)) <= 0)
        {
            return false;
        }
        key.CopyTo(_lastKey);
        _lastKeyLength = key.Length;
        return true;
    }
}
