using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using Google.Protobuf;
using Kdb.Cluster;
using Kdb.Node.Admin.Wire;
using Kdb.Transactions;

namespace Kdb.Node.Cluster;

/// <summary>
/// Backup export and import of one database (admin API): a consistent snapshot of the tenant's keyspace at a Raft
/// index, streamed as length-prefixed <see cref="BackupChunk"/> messages, each with a CRC32C, closed by a chunk with
/// totals. Import verifies the whole stream (staged on disk) before it writes anything.
/// </summary>
internal static class BackupStream
{
    internal const int ChunkBytes = 1 << 20;
    private const int MaxFrameBytes = 16 << 20;

    // Seconds per stage of exports and imports on this node (kdb_node_backup_stage_seconds_total{stage}), summed rather
    // than bucketed: the provisioning benchmark differences two scrapes around one backup and one restore.
    private static readonly Meter Meter = new("Kdb.Node.Backup");

    private static readonly Counter<double> StageSeconds = Meter.CreateCounter<double>(
        "kdb_node_backup_stage", unit: "s", description: "Seconds this node spent in each stage of backup exports and imports");

    private static long Stage(string stage, long started)
    {
        var now = Stopwatch.GetTimestamp();
        StageSeconds.Add(Stopwatch.GetElapsedTime(started, now).TotalSeconds, new KeyValuePair<string, object?>("stage", stage));
        return now;
    }

    public static async Task<IResult> ExportAsync(HttpContext c, ClusterRuntime runtime, string databaseId)
    {
        if (runtime.Host.FindDatabase(databaseId) is not { } found)
        {
            return Results.Problem(statusCode: 404, title: "Not found", detail: $"database {databaseId} is not hosted here");
        }
        var started = Stopwatch.GetTimestamp();
        var writing = TimeSpan.Zero;
        if (await ReadIndexWait.CaughtUpAsync(runtime, found.GroupId, c.RequestAborted) is { } unavailable)
        {
            return unavailable;
        }
        using var snapshot = runtime.Host.Engine(found.GroupId).OpenSnapshot();
        c.Response.ContentType = "application/x-kdb-backup";
        var body = c.Response.Body;
        // `?totals=true`: the same scan and checksums, but only the closing chunk (no pairs) is sent. A restore compares
        // the imported copy's totals with the backup's without streaming the whole copy back.
        var totalsOnly = string.Equals(c.Request.Query["totals"], "true", StringComparison.Ordinal);
        var start = TenantKey(found.Record.TenantId);
        var end = found.Record.TenantId == ulong.MaxValue ? null : TenantKey(found.Record.TenantId + 1);
        // Pairs go straight into one pooled chunk buffer and each chunk is framed into another: the stream is never held
        // whole, and a chunk costs two copies, not four.
        var data = ArrayPool<byte>.Shared.Rent(ChunkBytes + (64 << 10));
        var frame = ArrayPool<byte>.Shared.Rent(ChunkBytes + (64 << 10));
        var spareFrame = ArrayPool<byte>.Shared.Rent(ChunkBytes + (64 << 10));
        // One frame is on its way to the reader while the next chunk is scanned into `data`: the scan no longer waits
        // for the network and the reader, only for the write before it when it has a frame ready.
        Task sent = Task.CompletedTask;
        try
        {
            var length = 0;
            uint sequence = 0;
            var totalCrc = 0xFFFFFFFFu;
            long rows = 0;
            // Keys and values are lent from the engine (no arrays per pair): they are copied straight into the chunk.
            using var scan = snapshot.ScanLent(start, end);
            while (scan.MoveNext())
            {
                // A secondary-index entry's value is its row's full key: write it tenant-relative too, or an import into
                // another tenant would point its index at the source database's rows.
                var grown = false;
                {
                    var key = scan.Key;
                    var value = scan.Value; // read once: each read verifies the stored value's checksum
                    var relative = ValueIsRowKey(key, value, start);
                    var valueLength = relative ? value.Length - 8 : value.Length;
                    var need = length + 8 + key.Length - 8 + valueLength;
                    if (need + 64 > data.Length)
                    {
                        // A row larger than a chunk: the buffers grow with it (the frames below, once the send using one ended).
                        data = Grow(data, length, need + 64);
                        grown = true;
                    }
                    BinaryPrimitives.WriteInt32LittleEndian(data.AsSpan(length), key.Length - 8);
                    key[8..].CopyTo(data.AsSpan(length + 4));
                    length += 4 + key.Length - 8;
                    BinaryPrimitives.WriteUInt32LittleEndian(data.AsSpan(length), (uint)valueLength | (relative ? RelativeKeyFlag : 0));
                    value[(value.Length - valueLength)..].CopyTo(data.AsSpan(length + 4));
                    length += 4 + valueLength;
                }
                if (grown)
                {
                    // A chunk's framing adds a few bytes.
                    var waiting = Stopwatch.GetTimestamp();
                    await sent;
                    writing += Stopwatch.GetElapsedTime(waiting);
                    ArrayPool<byte>.Shared.Return(frame);
                    ArrayPool<byte>.Shared.Return(spareFrame);
                    frame = ArrayPool<byte>.Shared.Rent(data.Length + 64);
                    spareFrame = ArrayPool<byte>.Shared.Rent(data.Length + 64);
                }
                rows++;
                if (length >= ChunkBytes)
                {
                    if (totalsOnly)
                    {
                        totalCrc = Fold(totalCrc, CheckpointPacker.Crc32C(data.AsSpan(0, length)));
                    }
                    else
                    {
                        var waiting = Stopwatch.GetTimestamp();
                        await sent;
                        writing += Stopwatch.GetElapsedTime(waiting);
                        (frame, spareFrame) = (spareFrame, frame);
                        (var size, totalCrc) = FrameChunk(sequence, data.AsMemory(0, length), frame, totalCrc, last: false, 0, 0);
                        sent = body.WriteAsync(frame.AsMemory(0, size), c.RequestAborted).AsTask();
                    }
                    sequence++;
                    length = 0;
                }
            }
            var finishing = Stopwatch.GetTimestamp();
            await sent;
            if (totalsOnly)
            {
                totalCrc = Fold(totalCrc, CheckpointPacker.Crc32C(data.AsSpan(0, length)));
                await WriteChunkAsync(body, sequence, ReadOnlyMemory<byte>.Empty, frame, totalCrc, last: true, snapshot.Version, rows, c.RequestAborted, folded: true);
            }
            else
            {
                await WriteChunkAsync(body, sequence, data.AsMemory(0, length), frame, totalCrc, last: true, snapshot.Version, rows, c.RequestAborted);
            }
            writing += Stopwatch.GetElapsedTime(finishing);
        }
        finally
        {
            // A failed or abandoned write still holds its frame until it ends: wait for it before the buffers go back.
            try
            {
                await sent;
            }
            catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException)
            {
            }
            ArrayPool<byte>.Shared.Return(data);
            ArrayPool<byte>.Shared.Return(frame);
            ArrayPool<byte>.Shared.Return(spareFrame);
        }
        if (!totalsOnly)
        {
            // Framing and sending (including waiting for the reader) apart from scanning, checksumming and copying.
            StageSeconds.Add(writing.TotalSeconds, new KeyValuePair<string, object?>("stage", "export_send"));
            StageSeconds.Add((Stopwatch.GetElapsedTime(started) - writing).TotalSeconds, new KeyValuePair<string, object?>("stage", "export_scan"));
        }
        return Results.Empty;
    }

    /// <summary>
    /// Imports a backup stream into a new or emptied database. The stream is checked chunk by chunk while it is staged
    /// to an unlinked file on the node's disk (memory stays bounded whatever the backup's size), and only once all of it
    /// and its totals are checked is anything proposed: in entries of about 4 MiB, several in flight.
    /// </summary>
    public static async Task<IResult> ImportAsync(HttpContext c, ClusterRuntime runtime, string databaseId)
    {
        if (runtime.Host.FindDatabase(databaseId) is not { } found)
        {
            return Results.Problem(statusCode: 404, title: "Not found", detail: $"database {databaseId} is not hosted here");
        }
        // A backup is as large as its database: Kestrel's 30 MB default would hang restores of larger ones.
        if (c.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
        {
            limit.MaxRequestBodySize = null;
        }
        var stage = Stopwatch.GetTimestamp();
        await using var staging = OpenStaging(runtime.Host.DataDirectory);
        if (await StageAsync(c.Request.Body, staging, null, c.RequestAborted) is { } refused)
        {
            return refused;
        }
        stage = Stage("import_receive_stage", stage);
        await runtime.Host.ReadIndexAsync(found.GroupId).WaitAsync(c.RequestAborted);
        var tenantStart = TenantKey(found.Record.TenantId);
        var tenantEnd = found.Record.TenantId == ulong.MaxValue ? null : TenantKey(found.Record.TenantId + 1);
        if (runtime.Host.Engine(found.GroupId).Scan(tenantStart, tenantEnd, limit: 1).Any())
        {
            return Results.Problem(statusCode: 409, title: "Conflict", detail: "import needs a new or emptied database");
        }
        staging.Position = 0;
        stage = Stage("import_check_empty", stage);
        await ProposeStagedAsync(runtime, found.GroupId, databaseId, found.Record.TenantId, staging, c.RequestAborted);
        Stage("import_propose_apply", stage);
        return AdminEndpoints.Proto(new ApplyResponse { Index = runtime.Host.Status(found.GroupId).AppliedIndex });
    }

    /// <summary>Staged records (and so import entries) gather export chunks up to this size: a 4 MiB Raft entry costs
    /// its replication and fsyncs once where 1 MiB entries paid them four times.</summary>
    internal const int ImportBatchBytes = 4 << 20;

    /// <summary>An entry is cut here at the latest (under the 8 MiB commit record limit with room for its encoding).</summary>
    internal const int ImportEntryMaxBytes = 6 << 20;

    internal const int ImportInFlight = 4;

    /// <summary>
    /// A staging file, unlinked as soon as it is open so a crash leaves nothing behind; files left by a crash between
    /// create and unlink are removed first.
    /// </summary>
    internal static FileStream OpenStaging(string dataDirectory)
    {
        var directory = Path.Combine(dataDirectory, "import-staging");
        Directory.CreateDirectory(directory);
        foreach (var stale in Directory.EnumerateFiles(directory))
        {
            File.Delete(stale);
        }
        var path = Path.Combine(directory, Guid.NewGuid().ToString("N"));
        var file = new FileStream(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, bufferSize: 1 << 16, FileOptions.Asynchronous);
        File.Delete(path);
        return file;
    }

    /// <summary>Checks the stream chunk by chunk and stages the pairs as records <c>[u32 length][pairs]</c> of about
    /// <see cref="ImportBatchBytes"/> (consecutive chunks gathered); a problem when the stream is corrupt or of the other
    /// kind, else null once the last chunk's totals matched. <paramref name="changes"/>: a change stream is expected and
    /// its records checked by it; null: a backup.</summary>
    internal static async Task<IResult?> StageAsync(Stream reader, FileStream staging, ChangeRecordCheck? changes, CancellationToken ct)
    {
        var refused = await StageOrRefuseAsync(reader, staging, changes, ct);
        return refused switch
        {
            null => null,
            { WrongKind: true } => Results.Problem(statusCode: 400, title: "Bad request", detail: refused.Value.Reason),
            _ => Results.Problem(statusCode: 422, title: changes is null ? "Corrupt backup" : "Corrupt change stream", detail: refused.Value.Reason + "; nothing was imported"),
        };
    }

    private static async Task<(string Reason, bool WrongKind)?> StageOrRefuseAsync(Stream reader, FileStream staging, ChangeRecordCheck? changes, CancellationToken ct)
    {
        var header = new byte[4];
        var frame = ArrayPool<byte>.Shared.Rent(ChunkBytes + (64 << 10));
        var record = ArrayPool<byte>.Shared.Rent(ImportBatchBytes + ChunkBytes + (64 << 10));
        var recordLength = 0;
        try
        {
            var totalCrc = 0xFFFFFFFFu;
            long rows = 0;
            uint expected = 0;
            while (true)
            {
                if (!await ReadExactlyAsync(reader, header, ct))
                {
                    return ("the stream ended before its last chunk", false);
                }
                var length = BinaryPrimitives.ReadInt32LittleEndian(header);
                if (length is < 0 or > MaxFrameBytes)
                {
                    return ("a chunk length is out of range", false);
                }
                if (length > frame.Length)
                {
                    ArrayPool<byte>.Shared.Return(frame);
                    frame = ArrayPool<byte>.Shared.Rent(length);
                }
                if (!await ReadExactlyAsync(reader, frame.AsMemory(0, length), ct))
                {
                    return ("the stream is truncated", false);
                }
                // The pairs stay where they were read (the frame buffer) until they are copied into the staged record.
                if (ChunkFrame.Read(frame.AsMemory(0, length)) is not { } chunk)
                {
                    return ($"chunk {expected} is not a valid message", false);
                }
                var data = chunk.Data;
                if (chunk.Sequence != expected++ || CheckpointPacker.Crc32C(data.Span) != chunk.Crc32C)
                {
                    return ($"chunk {chunk.Sequence} failed its checksum or is out of order", false);
                }
                if (chunk.Changes != changes is not null)
                {
                    // Applying a change stream as a restore (or a backup as changes) would silently lose the deletes or the
                    // emptiness check: say which endpoint takes it.
                    return (chunk.Changes
                        ? "this is a change stream (export?since=…): import it with ?changes=true"
                        : "this is a backup stream, not a change stream (export?since=…): import it without ?changes=true", true);
                }
                if (changes is not null && !changes.SameSince(chunk.ChangesSince))
                {
                    return ($"chunk {chunk.Sequence} belongs to a change stream since another version", false);
                }
                totalCrc = Fold(totalCrc, chunk.Crc32C);
                if ((changes is null ? CountPairs(data.Span) : changes.Count(data.Span)) is not { } pairs)
                {
                    return ($"chunk {chunk.Sequence} holds malformed records", false);
                }
                rows += pairs;
                if (recordLength + data.Length > record.Length)
                {
                    recordLength = await WriteRecordAsync(staging, record, recordLength, ct);
                    if (data.Length > record.Length)
                    {
                        ArrayPool<byte>.Shared.Return(record);
                        record = ArrayPool<byte>.Shared.Rent(data.Length);
                    }
                }
                data.Span.CopyTo(record.AsSpan(recordLength));
                recordLength += data.Length;
                if (recordLength >= ImportBatchBytes)
                {
                    recordLength = await WriteRecordAsync(staging, record, recordLength, ct);
                }
                if (chunk.Last)
                {
                    if (chunk.TotalCrc32C != ~totalCrc || chunk.TotalRows != rows)
                    {
                        return ("the stream's totals do not match its chunks", false);
                    }
                    await WriteRecordAsync(staging, record, recordLength, ct);
                    return null;
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(frame);
            ArrayPool<byte>.Shared.Return(record);
        }
    }

    /// <summary>Appends one staged record (none when empty); returns the record buffer's new fill, 0.</summary>
    private static async Task<int> WriteRecordAsync(FileStream staging, byte[] record, int length, CancellationToken ct)
    {
        if (length > 0)
        {
            var header = new byte[4];
            BinaryPrimitives.WriteInt32LittleEndian(header, length);
            await staging.WriteAsync(header, ct);
            await staging.WriteAsync(record.AsMemory(0, length), ct);
        }
        return 0;
    }

    /// <summary>Proposes the staged pairs under the target's tenant, up to <see cref="ImportInFlight"/> entries at once (the
    /// rows are distinct keys, so the order the entries apply in does not matter).</summary>
    private static async Task ProposeStagedAsync(ClusterRuntime runtime, ulong groupId, string databaseId, ulong tenant, FileStream staging, CancellationToken ct)
    {
        var inFlight = new Queue<(Task<ApplyResult> Result, byte[] Command)>();
        var header = new byte[4];
        var data = ArrayPool<byte>.Shared.Rent(ImportBatchBytes + ChunkBytes + (64 << 10));
        try
        {
            while (await ReadExactlyAsync(staging, header, ct))
            {
                var length = BinaryPrimitives.ReadInt32LittleEndian(header);
                if (length > data.Length)
                {
                    ArrayPool<byte>.Shared.Return(data);
                    data = ArrayPool<byte>.Shared.Rent(length);
                }
                if (!await ReadExactlyAsync(staging, data.AsMemory(0, length), ct))
                {
                    throw new InvalidOperationException("the import's staging file is truncated");
                }
                // Values point into the staged chunk's buffer: every batch is encoded before the buffer is read into again.
                var writes = new List<TxWrite>();
                var batchBytes = 0;
                var offset = 0;
                while (offset < length)
                {
                    var keyLength = BinaryPrimitives.ReadInt32LittleEndian(data.AsSpan(offset));
                    var key = new byte[8 + keyLength];
                    BinaryPrimitives.WriteUInt64BigEndian(key, tenant);
                    data.AsSpan(offset + 4, keyLength).CopyTo(key.AsSpan(8));
                    offset += 4 + keyLength;
                    var rawLength = BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(offset));
                    var valueLength = (int)(rawLength & ~RelativeKeyFlag);
                    ReadOnlyMemory<byte> value = data.AsMemory(offset + 4, valueLength);
                    if ((rawLength & RelativeKeyFlag) != 0)
                    {
                        var rowKey = new byte[8 + valueLength];
                        BinaryPrimitives.WriteUInt64BigEndian(rowKey, tenant);
                        value.Span.CopyTo(rowKey.AsSpan(8));
                        value = rowKey;
                    }
                    offset += 4 + valueLength;
                    writes.Add(TxWrite.Put(key, value));
                    batchBytes += key.Length + valueLength + 16;
                    if (batchBytes >= ImportEntryMaxBytes || offset >= length)
                    {
                        var command = ShardCommand.ImportChunk(databaseId, new CommitRecord(tenant, 0, [], [], writes));
                        // Entries of one import hold about as many pairs each: sized once, the list is not regrown (and
                        // its large-object-heap copies not made again) for every entry.
                        writes = new List<TxWrite>(writes.Count);
                        batchBytes = 0;
                        if (inFlight.Count >= ImportInFlight)
                        {
                            await SettleAsync(runtime, groupId, inFlight.Dequeue(), ct);
                        }
                        inFlight.Enqueue((runtime.Committer.ProposeAsync(groupId, command, ct), command));
                    }
                }
            }
            while (inFlight.Count > 0)
            {
                await SettleAsync(runtime, groupId, inFlight.Dequeue(), ct);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(data);
            // A failed batch leaves the others running: wait for them so none outlives the request's buffers or reports later.
            foreach (var (pending, _) in inFlight)
            {
                await pending.ContinueWith(static _ => { }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            }
        }
    }

    /// <summary>Proposals of one entry before the import gives up on it.</summary>
    private const int ImportEntryAttempts = 3;

    /// <summary>
    /// Waits for one import entry; proposes it again when the group lost its leader or the outcome is unknown (a 4 MiB
    /// entry on a loaded group outlasts elections). Applying an import entry twice writes the same pairs twice, so a
    /// retry cannot change the result, and one lost entry would otherwise fail the whole restore after the rest is in.
    /// </summary>
    internal static async Task SettleAsync(ClusterRuntime runtime, ulong groupId, (Task<ApplyResult> Result, byte[] Command) entry, CancellationToken ct)
    {
        var pending = entry.Result;
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                Check(await pending);
                return;
            }
            catch (ClusterException e) when (e.Code is "40001" or "08007" && attempt < ImportEntryAttempts && !ct.IsCancellationRequested)
            {
                pending = runtime.Committer.ProposeAsync(groupId, entry.Command, ct);
            }
        }
    }

    private static void Check(ApplyResult result)
    {
        if (!result.IsOk)
        {
            throw new InvalidOperationException("the import was refused: " + (result.Message ?? result.Status.ToString()));
        }
    }

    /// <summary>Set in a pair's value length: the value is a row key of this tenant, stored without its 8-byte prefix.</summary>
    internal const uint RelativeKeyFlag = 0x8000_0000;

    /// <summary>Keys with a non-zero index id (bytes 12-15) in an ordinary table are secondary-index entries whose value is
    /// the row's full key (dataplane/Kdb.Sql TableWriter).</summary>
    internal static bool ValueIsRowKey(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, ReadOnlySpan<byte> tenantPrefix) =>
        key.Length >= 16
        && BinaryPrimitives.ReadUInt32BigEndian(key[8..]) is not 0 and not DataApiEndpoints.KvTable
        && BinaryPrimitives.ReadUInt32BigEndian(key[12..]) != 0
        && value.Length >= 16
        && value[..8].SequenceEqual(tenantPrefix);

    /// <summary>Frames and sends one chunk; returns the folded total. <c>folded</c>: the data's CRC is already in the total
    /// (a totals-only closing chunk, sent without its pairs). <c>changesSince</c>: a chunk of a change stream.</summary>
    internal static async Task<uint> WriteChunkAsync(Stream body, uint sequence, ReadOnlyMemory<byte> data, byte[] frame, uint totalCrc, bool last,
        ulong index, long rows, CancellationToken ct, bool folded = false, ulong? changesSince = null)
    {
        var (size, total) = FrameChunk(sequence, data, frame, totalCrc, last, index, rows, folded, changesSince);
        await body.WriteAsync(frame.AsMemory(0, size), ct);
        return total;
    }

    /// <summary>Frames one chunk into <paramref name="frame"/> (length prefix included): the chunk only borrows
    /// <paramref name="data"/> until this returns. Returns the frame's size and the running total CRC.</summary>
    internal static (int Size, uint TotalCrc) FrameChunk(uint sequence, ReadOnlyMemory<byte> data, byte[] frame, uint totalCrc, bool last,
        ulong index, long rows, bool folded = false, ulong? changesSince = null)
    {
        var crc = CheckpointPacker.Crc32C(data.Span);
        if (!folded)
        {
            totalCrc = Fold(totalCrc, crc);
        }
        var chunk = new BackupChunk { Sequence = sequence, Data = UnsafeByteOperations.UnsafeWrap(data), Crc32C = crc, Last = last };
        if (changesSince is { } since)
        {
            chunk.Changes = true;
            chunk.ChangesSince = since;
        }
        if (last)
        {
            chunk.RaftIndex = index;
            chunk.TotalCrc32C = ~totalCrc;
            chunk.TotalRows = rows;
        }
        var size = chunk.CalculateSize();
        BinaryPrimitives.WriteInt32LittleEndian(frame, size);
        chunk.WriteTo(frame.AsSpan(4, size));
        return (4 + size, totalCrc);
    }

    internal static byte[] Grow(byte[] buffer, int keep, int need)
    {
        var bigger = ArrayPool<byte>.Shared.Rent(Math.Max(need, buffer.Length * 2));
        buffer.AsSpan(0, keep).CopyTo(bigger);
        ArrayPool<byte>.Shared.Return(buffer);
        return bigger;
    }

    private static uint Fold(uint state, uint chunkCrc) => System.Numerics.BitOperations.Crc32C(state, chunkCrc);

    private static long? CountPairs(ReadOnlySpan<byte> data)
    {
        long n = 0;
        var offset = 0;
        while (offset < data.Length)
        {
            for (var part = 0; part < 2; part++)
            {
                if (offset + 4 > data.Length)
                {
                    return null;
                }
                var length = (int)(BinaryPrimitives.ReadUInt32LittleEndian(data[offset..]) & (part == 0 ? uint.MaxValue : ~RelativeKeyFlag));
                if (length < 0 || offset + 4 + length > data.Length)
                {
                    return null;
                }
                offset += 4 + length;
            }
            n++;
        }
        return n;
    }

    internal static byte[] TenantKey(ulong tenant)
    {
        var key = new byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(key, tenant);
        return key;
    }

    internal static async Task<bool> ReadExactlyAsync(Stream stream, Memory<byte> buffer, CancellationToken ct)
    {
        var read = 0;
        while (read < buffer.Length)
        {
            var n = await stream.ReadAsync(buffer[read..], ct);
            if (n == 0)
            {
                return false;
            }
            read += n;
        }
        return true;
    }
}

/// <summary>
/// The fields of one <see cref="BackupChunk"/> frame read in place: <see cref="Data"/> is a slice of the frame, where
/// Google.Protobuf's parser copied each megabyte of pairs into a fresh (large-object-heap) buffer only for the import
/// to copy them again into its staged record. Same reading as the generated parser: the last occurrence of a field
/// wins, fields of another wire type or number are stepped over; null for bytes that are no valid message (groups
/// included, which the export never writes).
/// </summary>
internal readonly record struct ChunkFrame(uint Sequence, ReadOnlyMemory<byte> Data, uint Crc32C, bool Last, ulong TotalCrc32C, long TotalRows,
    ulong ChangesSince, bool Changes)
{
    public static ChunkFrame? Read(ReadOnlyMemory<byte> frame)
    {
        var span = frame.Span;
        var pos = 0;
        var chunk = new ChunkFrame(0, ReadOnlyMemory<byte>.Empty, 0, false, 0, 0, 0, false);
        while (pos < span.Length)
        {
            if (!TryVarint(span, ref pos, out var tag) || tag > uint.MaxValue || tag >> 3 == 0)
            {
                return null;
            }
            var field = (int)(tag >> 3);
            switch (tag & 7)
            {
                case 0:
                    if (!TryVarint(span, ref pos, out var v))
                    {
                        return null;
                    }
                    chunk = field switch
                    {
                        BackupChunk.SequenceFieldNumber => chunk with { Sequence = (uint)v },
                        BackupChunk.Crc32CFieldNumber => chunk with { Crc32C = (uint)v },
                        BackupChunk.LastFieldNumber => chunk with { Last = v != 0 },
                        BackupChunk.TotalCrc32CFieldNumber => chunk with { TotalCrc32C = v },
                        BackupChunk.TotalRowsFieldNumber => chunk with { TotalRows = (long)v },
                        BackupChunk.ChangesSinceFieldNumber => chunk with { ChangesSince = v },
                        BackupChunk.ChangesFieldNumber => chunk with { Changes = v != 0 },
                        _ => chunk,
                    };
                    break;
                case 1 when span.Length - pos >= 8:
                    pos += 8;
                    break;
                case 2:
                    if (!TryVarint(span, ref pos, out var length) || length > (ulong)(span.Length - pos))
                    {
                        return null;
                    }
                    if (field == BackupChunk.DataFieldNumber)
                    {
                        chunk = chunk with { Data = frame.Slice(pos, (int)length) };
                    }
                    pos += (int)length;
                    break;
                case 5 when span.Length - pos >= 4:
                    pos += 4;
                    break;
                default:
                    // Groups (3, 4), wire types 6 and 7, or a fixed-size field cut short.
                    return null;
            }
        }
        return chunk;
    }

    private static bool TryVarint(ReadOnlySpan<byte> span, ref int pos, out ulong value)
    {
        value = 0;
        for (var shift = 0; shift < 64 && pos < span.Length; shift += 7)
        {
            var b = span[pos++];
            value |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80)
            {
                return true;
            }
        }
        return false;
    }
}
