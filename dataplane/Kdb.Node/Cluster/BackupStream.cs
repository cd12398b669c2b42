using System.Buffers.Binary;
using Google.Protobuf;
using Kdb.Cluster;
using Kdb.Node.Admin.Wire;
using Kdb.Transactions;

namespace Kdb.Node.Cluster;

/// <summary>
/// Backup export and import of one database (admin API): a consistent snapshot of the tenant's keyspace at a Raft
/// index, streamed as length-prefixed <see cref="BackupChunk"/> messages, each with a CRC32C, closed by a chunk with
/// totals. Import verifies the whole stream before it writes anything.
/// </summary>
internal static class BackupStream
{
    private const int ChunkBytes = 1 << 20;
    private const int MaxFrameBytes = 16 << 20;

    public static async Task<IResult> ExportAsync(HttpContext c, ClusterRuntime runtime, string databaseId)
    {
        if (runtime.Host.FindDatabase(databaseId) is not { } found)
        {
            return Results.Problem(statusCode: 404, title: "Not found", detail: $"database {databaseId} is not hosted here");
        }
        await runtime.Host.ReadIndexAsync(found.GroupId).WaitAsync(c.RequestAborted);
        using var snapshot = runtime.Host.Engine(found.GroupId).OpenSnapshot();
        c.Response.ContentType = "application/x-kdb-backup";
        var body = c.Response.Body;
        var start = TenantKey(found.Record.TenantId);
        var end = found.Record.TenantId == ulong.MaxValue ? null : TenantKey(found.Record.TenantId + 1);
        var data = new MemoryStream();
        uint sequence = 0;
        var totalCrc = 0xFFFFFFFFu;
        long rows = 0;
        var u32 = new byte[4];
        foreach (var e in snapshot.Scan(start, end))
        {
            BinaryPrimitives.WriteInt32LittleEndian(u32, e.Key.Length - 8);
            data.Write(u32);
            data.Write(e.Key.AsSpan(8));
            // A secondary-index entry's value is its row's full key: write it tenant-relative too, or an import into
            // another tenant would point its index at the source database's rows.
            var relative = ValueIsRowKey(e.Key, e.Value, start);
            var value = relative ? e.Value.AsSpan(8) : e.Value;
            BinaryPrimitives.WriteUInt32LittleEndian(u32, (uint)value.Length | (relative ? RelativeKeyFlag : 0));
            data.Write(u32);
            data.Write(value);
            rows++;
            if (data.Length >= ChunkBytes)
            {
                totalCrc = await WriteChunkAsync(body, sequence++, data, totalCrc, last: false, 0, 0, c.RequestAborted);
            }
        }
        await WriteChunkAsync(body, sequence, data, totalCrc, last: true, snapshot.Version, rows, c.RequestAborted);
        return Results.Empty;
    }

    public static async Task<IResult> ImportAsync(HttpContext c, ClusterRuntime runtime, string databaseId)
    {
        if (runtime.Host.FindDatabase(databaseId) is not { } found)
        {
            return Results.Problem(statusCode: 404, title: "Not found", detail: $"database {databaseId} is not hosted here");
        }
        // A backup is as large as its database: Kestrel's 30 MB default would hang restores of larger ones. Each chunk
        // is checked on its own and the whole stream before anything is written.
        if (c.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
        {
            limit.MaxRequestBodySize = null;
        }
        var chunks = new List<byte[]>();
        var totalCrc = 0xFFFFFFFFu;
        long rows = 0;
        var ended = false;
        var reader = c.Request.Body;
        var header = new byte[4];
        uint expected = 0;
        while (!ended)
        {
            if (!await ReadExactlyAsync(reader, header, c.RequestAborted))
            {
                return Corrupt("the backup stream ended before its last chunk");
            }
            var length = BinaryPrimitives.ReadInt32LittleEndian(header);
            if (length is < 0 or > MaxFrameBytes)
            {
                return Corrupt("a chunk length is out of range");
            }
            var frame = new byte[length];
            if (!await ReadExactlyAsync(reader, frame, c.RequestAborted))
            {
                return Corrupt("the backup stream is truncated");
            }
            BackupChunk chunk;
            try
            {
                chunk = BackupChunk.Parser.ParseFrom(frame);
            }
            catch (InvalidProtocolBufferException)
            {
                return Corrupt($"chunk {expected} is not a valid message");
            }
            var bytes = chunk.Data.ToByteArray();
            if (chunk.Sequence != expected++ || CheckpointCrc(bytes) != chunk.Crc32C)
            {
                return Corrupt($"chunk {chunk.Sequence} failed its checksum or is out of order");
            }
            totalCrc = Fold(totalCrc, chunk.Crc32C);
            if (CountPairs(bytes) is not { } pairs)
            {
                return Corrupt($"chunk {chunk.Sequence} holds malformed pairs");
            }
            rows += pairs;
            chunks.Add(bytes);
            if (chunk.Last)
            {
                ended = true;
                if (chunk.TotalCrc32C != ~totalCrc || chunk.TotalRows != rows)
                {
                    return Corrupt("the backup's totals do not match its chunks");
                }
            }
        }
        await runtime.Host.ReadIndexAsync(found.GroupId).WaitAsync(c.RequestAborted);
        var tenantStart = TenantKey(found.Record.TenantId);
        var tenantEnd = found.Record.TenantId == ulong.MaxValue ? null : TenantKey(found.Record.TenantId + 1);
        if (runtime.Host.Engine(found.GroupId).Scan(tenantStart, tenantEnd, limit: 1).Any())
        {
            return Results.Problem(statusCode: 409, title: "Conflict", detail: "import needs a new or emptied database");
        }
        var writes = new List<TxWrite>();
        var batchBytes = 0;
        foreach (var data in chunks)
        {
            var offset = 0;
            while (offset < data.Length)
            {
                var keyLength = BinaryPrimitives.ReadInt32LittleEndian(data.AsSpan(offset));
                var key = new byte[8 + keyLength];
                BinaryPrimitives.WriteUInt64BigEndian(key, found.Record.TenantId);
                data.AsSpan(offset + 4, keyLength).CopyTo(key.AsSpan(8));
                offset += 4 + keyLength;
                var rawLength = BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(offset));
                var valueLength = (int)(rawLength & ~RelativeKeyFlag);
                ReadOnlyMemory<byte> value = data.AsMemory(offset + 4, valueLength);
                if ((rawLength & RelativeKeyFlag) != 0)
                {
                    var rowKey = new byte[8 + valueLength];
                    BinaryPrimitives.WriteUInt64BigEndian(rowKey, found.Record.TenantId);
                    value.Span.CopyTo(rowKey.AsSpan(8));
                    value = rowKey;
                }
                offset += 4 + valueLength;
                writes.Add(TxWrite.Put(key, value));
                batchBytes += key.Length + valueLength + 16;
                if (batchBytes >= 3 << 20)
                {
                    await ProposeImportAsync(runtime, found.GroupId, databaseId, found.Record.TenantId, writes, c.RequestAborted);
                    writes = [];
                    batchBytes = 0;
                }
            }
        }
        if (writes.Count > 0)
        {
            await ProposeImportAsync(runtime, found.GroupId, databaseId, found.Record.TenantId, writes, c.RequestAborted);
        }
        return AdminEndpoints.Proto(new ApplyResponse { Index = runtime.Host.Status(found.GroupId).AppliedIndex });
    }

    private static async Task ProposeImportAsync(ClusterRuntime runtime, ulong groupId, string databaseId, ulong tenant, List<TxWrite> writes, CancellationToken ct)
    {
        var result = await runtime.Committer.ProposeAsync(groupId, ShardCommand.ImportChunk(databaseId, new CommitRecord(tenant, 0, [], [], writes)), ct);
        if (!result.IsOk)
        {
            throw new InvalidOperationException("the import was refused: " + (result.Message ?? result.Status.ToString()));
        }
    }

    /// <summary>Set in a pair's value length: the value is a row key of this tenant, stored without its 8-byte prefix.</summary>
    private const uint RelativeKeyFlag = 0x8000_0000;

    /// <summary>Keys with a non-zero index id (bytes 12-15) in an ordinary table are secondary-index entries whose value is
    /// the row's full key (dataplane/Kdb.Sql TableWriter).</summary>
    private static bool ValueIsRowKey(byte[] key, byte[] value, byte[] tenantPrefix) =>
        key.Length >= 16
        && BinaryPrimitives.ReadUInt32BigEndian(key.AsSpan(8)) is not 0 and not DataApiEndpoints.KvTable
        && BinaryPrimitives.ReadUInt32BigEndian(key.AsSpan(12)) != 0
        && value.Length >= 16
        && value.AsSpan(0, 8).SequenceEqual(tenantPrefix);

    private static IResult Corrupt(string detail) => Results.Problem(statusCode: 422, title: "Corrupt backup", detail: detail + "; nothing was imported");

    private static async Task<uint> WriteChunkAsync(Stream body, uint sequence, MemoryStream data, uint totalCrc, bool last, ulong index, long rows, CancellationToken ct)
    {
        var bytes = data.ToArray();
        data.SetLength(0);
        var crc = CheckpointCrc(bytes);
        totalCrc = Fold(totalCrc, crc);
        var chunk = new BackupChunk { Sequence = sequence, Data = ByteString.CopyFrom(bytes), Crc32C = crc, Last = last };
        if (last)
        {
            chunk.RaftIndex = index;
            chunk.TotalCrc32C = ~totalCrc;
            chunk.TotalRows = rows;
        }
        var frame = chunk.ToByteArray();
        var header = new byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(header, frame.Length);
        await body.WriteAsync(header, ct);
        await body.WriteAsync(frame, ct);
        return totalCrc;
    }

    private static uint CheckpointCrc(byte[] bytes) => CheckpointPacker.Crc32C(bytes);

    private static uint Fold(uint state, uint chunkCrc) => System.Numerics.BitOperations.Crc32C(state, chunkCrc);

    private static long? CountPairs(byte[] data)
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
                var length = (int)(BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(offset)) & (part == 0 ? uint.MaxValue : ~RelativeKeyFlag));
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

    private static byte[] TenantKey(ulong tenant)
    {
        var key = new byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(key, tenant);
        return key;
    }

    private static async Task<bool> ReadExactlyAsync(Stream stream, byte[] buffer, CancellationToken ct)
    {
        var read = 0;
        while (read < buffer.Length)
        {
            var n = await stream.ReadAsync(buffer.AsMemory(read), ct);
            if (n == 0)
            {
                return false;
            }
            read += n;
        }
        return true;
    }
}
