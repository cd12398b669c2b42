using System.Buffers.Binary;
using System.Globalization;
using Google.Protobuf;
using Kdb.Node.Admin;
using Kdb.Node.Admin.Wire;
using Kdb.Testing.Cluster;
using Npgsql;

namespace Kdb.Cluster.Tests;

/// <summary>
/// Change streams (export?since=V, import?changes=true) between databases on two groups, as a move uses them: a full copy
/// since 0 into a database that already holds other data, catch-up rounds after inserts, updates, deletes, a dropped and
/// a new table, retries, the GC threshold's 409, and refused streams.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class ChangeStreamTests(ThreeNodeCluster cluster)
{
    private static readonly string[] Tables = ["items", "notes", "extra"];

    [Fact]
    public async Task Catch_up_rounds_reproduce_the_source_and_replays_change_nothing()
    {
        var sourceGroup = await cluster.CreateGroupAsync((ulong)Random.Shared.NextInt64(1, long.MaxValue));
        var targetGroup = await cluster.CreateGroupAsync((ulong)Random.Shared.NextInt64(1, long.MaxValue));
        var (source, _) = await cluster.CreateDatabaseAsync(sourceGroup, cluster.Nodes[0]);
        var (target, _) = await cluster.CreateDatabaseAsync(targetGroup, cluster.Nodes[1]);
        await SqlAsync(cluster.Nodes[0], source,
            "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, price numeric(10,2)); CREATE INDEX ON items (name)",
            "INSERT INTO items SELECT g, 'item' || g, g * 1.25 FROM generate_series(1, 2000) g",
            "CREATE TABLE notes (id int PRIMARY KEY, body text)",
            "INSERT INTO notes SELECT g, repeat('n', g % 50) FROM generate_series(1, 300) g",
            // About 8 MB: the copy spans several import entries (cut at about 4 MiB), proposed several at a time.
            "CREATE TABLE big (id int PRIMARY KEY, payload text NOT NULL)",
            "INSERT INTO big SELECT g, repeat(md5(g::text), 125) FROM generate_series(1, 2000) g");
        // The target holds something else first: a since-0 stream replaces it (a retried move starts over this way).
        await SqlAsync(cluster.Nodes[1], target, "CREATE TABLE junk (id int PRIMARY KEY)", "INSERT INTO junk SELECT g FROM generate_series(1, 50) g");

        var sourceAdmin = cluster.Admin(cluster.Nodes[2]);
        var targetAdmin = cluster.Admin(cluster.Nodes[0]);
        var full = await ExportChangesAsync(sourceAdmin, source, 0);
        var w1 = LastChunk(full).RaftIndex;
        Assert.True(w1 > 0);
        Assert.True(full.Length > 5 << 20, $"the full copy holds {full.Length} bytes: one import entry would take it");
        await targetAdmin.ImportChangesAsync(target, new MemoryStream(full));
        Assert.Equal(await TotalsAsync(source), await TotalsAsync(target));
        Assert.Equal(await DumpAsync(cluster.Nodes[0], source), await DumpAsync(cluster.Nodes[2], target));
        await using (var conn = await OpenAsync(cluster.Nodes[1], target))
        {
            await using var junk = new NpgsqlCommand("SELECT count(*) FROM junk", conn);
            await Assert.ThrowsAsync<PostgresException>(() => junk.ExecuteScalarAsync());
        }

        // Round 2: every kind of change after W1.
        await SqlAsync(cluster.Nodes[1], source,
            "INSERT INTO items SELECT g, 'item' || g, g * 2 FROM generate_series(2001, 2300) g",
            "UPDATE items SET name = 'renamed' || id, price = price + 1 WHERE id % 7 = 0",
            "DELETE FROM items WHERE id % 11 = 0",
            "DROP TABLE notes",
            "CREATE TABLE extra (id int PRIMARY KEY, tag text); CREATE INDEX ON extra (tag)",
            "INSERT INTO extra SELECT g, 't' || (g % 13) FROM generate_series(1, 400) g",
            "UPDATE big SET payload = 'short' || id WHERE id % 100 = 0",
            "DELETE FROM big WHERE id > 1900");
        var round = await ExportChangesAsync(sourceAdmin, source, w1);
        var last = LastChunk(round);
        Assert.True(last.RaftIndex > w1);
        Assert.True(last.Changes && last.ChangesSince == w1);
        Assert.True(round.Length < full.Length, $"the catch-up round ({round.Length} bytes) is not smaller than the full copy ({full.Length})");
        await targetAdmin.ImportChangesAsync(target, new MemoryStream(round));
        var totals = await TotalsAsync(source);
        Assert.Equal(totals, await TotalsAsync(target));
        var dump = await DumpAsync(cluster.Nodes[0], source);
        Assert.Equal(dump, await DumpAsync(cluster.Nodes[2], target));
        Assert.Contains("renamed14", dump, StringComparison.Ordinal);
        Assert.Contains("notes: missing", dump, StringComparison.Ordinal);

        // A retry of the same round (or of the full copy followed by the round) leaves the same state.
        await targetAdmin.ImportChangesAsync(target, new MemoryStream(round));
        Assert.Equal(totals, await TotalsAsync(target));
        await targetAdmin.ImportChangesAsync(target, new MemoryStream(full));
        await targetAdmin.ImportChangesAsync(target, new MemoryStream(round));
        Assert.Equal(totals, await TotalsAsync(target));
        Assert.Equal(dump, await DumpAsync(cluster.Nodes[1], target));

        // Nothing changed since the last round: an empty stream, applying it is harmless.
        var quiet = await ExportChangesAsync(sourceAdmin, source, last.RaftIndex);
        Assert.Equal(0, LastChunk(quiet).TotalRows);
        await targetAdmin.ImportChangesAsync(target, new MemoryStream(quiet));
        Assert.Equal(totals, await TotalsAsync(target));
    }

    [Fact]
    public async Task Changes_past_the_gc_threshold_are_409_and_bad_streams_are_refused_without_applying_anything()
    {
        var group = await cluster.CreateGroupAsync((ulong)Random.Shared.NextInt64(1, long.MaxValue));
        var (source, _) = await cluster.CreateDatabaseAsync(group, cluster.Nodes[0]);
        var (target, _) = await cluster.CreateDatabaseAsync(group, cluster.Nodes[0]);
        await SqlAsync(cluster.Nodes[0], source, "CREATE TABLE items (id int PRIMARY KEY, name text)", "INSERT INTO items SELECT g, 'x' || g FROM generate_series(1, 500) g");
        var admin = cluster.Admin(cluster.Nodes[1]);
        var full = await ExportChangesAsync(admin, source, 0);
        var w1 = LastChunk(full).RaftIndex;
        await admin.ImportChangesAsync(target, new MemoryStream(full));
        await SqlAsync(cluster.Nodes[0], source, "DELETE FROM items WHERE id <= 100");
        var round = await ExportChangesAsync(admin, source, w1);
        var w2 = LastChunk(round).RaftIndex;
        var before = await TotalsAsync(target);

        // Refused streams: truncated, a flipped byte, random bytes, an unknown since, and each import given the other's kind.
        await RefusedAsync(round[..(round.Length / 2)], changes: true, 422);
        var flipped = (byte[])round.Clone();
        flipped[flipped.Length / 2] ^= 0x40;
        await RefusedAsync(flipped, changes: true, 422);
        var random = new byte[4096];
        new Random(7).NextBytes(random);
        await RefusedAsync(random, changes: true, 422);
        await RefusedAsync(await ExportBackupAsync(admin, source), changes: true, 400, "backup stream");
        await RefusedAsync(round, changes: false, 400, "change stream");
        await RefusedAsync(full, changes: false, 400, "change stream");
        // Well-framed streams (checksums right) whose records break the rules: points out of key order, a range delete
        // after a point, an unknown flag, a delete carrying a value.
        byte[] k1 = [0, 0, 0, 99, 0, 0, 0, 0, 1], k2 = [0, 0, 0, 99, 0, 0, 0, 0, 2];
        await RefusedAsync(Craft(w2, (k2, [7], 0), (k1, [7], 0)), changes: true, 422);
        await RefusedAsync(Craft(w2, (k1, [7], 0), (k1, k2, 0x2000_0000)), changes: true, 422);
        await RefusedAsync(Craft(w2, (k1, [7], 0x1000_0000)), changes: true, 422);
        await RefusedAsync(Craft(w2, (k1, [7], 0x4000_0000)), changes: true, 422);
        Assert.Equal(before, await TotalsAsync(target));
        // The same framing with valid records is taken (a delete of a key that never existed changes no pair).
        await admin.ImportChangesAsync(target, new MemoryStream(Craft(w2, (k1, [], 0x4000_0000), (k2, [], 0x4000_0000))));
        Assert.Equal(before, await TotalsAsync(target));
        foreach (var since in new[] { "-1", "abc", "99999999999999" })
        {
            using var bad = await cluster.SendAsync(cluster.Nodes[2], HttpMethod.Get, $"/internal/v1/databases/{source}/export?since={since}");
            Assert.Equal(400, (int)bad.StatusCode);
        }

        // The GC threshold passes W1 (advanced through Raft as the node's service does it): changes since W1 may have lost
        // their tombstones, since W2 (at the threshold) not.
        var leader = await cluster.LeaderOfAsync(group);
        using (var advance = await cluster.SendAsync(leader, HttpMethod.Post, $"/internal/v1/groups/{group}/propose",
            new ProposeRequest { Command = ByteString.CopyFrom(ShardCommand.AdvanceGcThreshold(w2)) }, cluster.PeerToken))
        {
            Assert.True(advance.IsSuccessStatusCode, await advance.Content.ReadAsStringAsync());
            var result = ApplyResult.Decode(ProposeResponse.Parser.ParseFrom(await advance.Content.ReadAsByteArrayAsync()).Result.Span);
            Assert.True(result.IsOk, result.Message);
        }
        var refused = await Assert.ThrowsAsync<NodeAdminException>(() => ExportChangesAsync(admin, source, w1));
        Assert.Equal(409, (int)refused.Status);
        Assert.Equal("Changes no longer kept", refused.Title);
        Assert.Contains(w1.ToString(CultureInfo.InvariantCulture), refused.Detail, StringComparison.Ordinal);
        Assert.Contains(w2.ToString(CultureInfo.InvariantCulture), refused.Detail, StringComparison.Ordinal);
        Assert.Equal(0, LastChunk(await ExportChangesAsync(admin, source, w2)).TotalRows);
        // Since 0 is always a full copy, whatever the threshold.
        Assert.True(LastChunk(await ExportChangesAsync(admin, source, 0)).TotalRows > 400);
        await admin.ImportChangesAsync(target, new MemoryStream(round));
        Assert.Equal(await TotalsAsync(source), await TotalsAsync(target));

        async Task RefusedAsync(byte[] stream, bool changes, int status, string? mention = null)
        {
            var e = await Assert.ThrowsAsync<NodeAdminException>(() => changes
                ? admin.ImportChangesAsync(target, new MemoryStream(stream))
                : admin.ImportAsync(target, new MemoryStream(stream)));
            Assert.True(status == (int)e.Status, $"{(int)e.Status} {e.Title}: {e.Detail}");
            if (mention is not null)
            {
                Assert.Contains(mention, e.Detail, StringComparison.Ordinal);
            }
        }
    }

    /// <summary>A one-chunk change stream of the given records (tenant-relative key, value, flags in the value-length word).</summary>
    private static byte[] Craft(ulong since, params (byte[] Key, byte[] Value, uint Flags)[] records)
    {
        var data = new MemoryStream();
        foreach (var (key, value, flags) in records)
        {
            var word = new byte[4];
            BinaryPrimitives.WriteInt32LittleEndian(word, key.Length);
            data.Write(word);
            data.Write(key);
            BinaryPrimitives.WriteUInt32LittleEndian(word, (uint)value.Length | flags);
            data.Write(word);
            data.Write(value);
        }
        var crc = CheckpointPacker.Crc32C(data.ToArray());
        var chunk = new BackupChunk
        {
            Sequence = 0, Data = ByteString.CopyFrom(data.ToArray()), Crc32C = crc, Last = true, RaftIndex = since + 1,
            TotalCrc32C = ~System.Numerics.BitOperations.Crc32C(0xFFFFFFFFu, crc), TotalRows = records.Length, Changes = true, ChangesSince = since,
        };
        var frame = new byte[4 + chunk.CalculateSize()];
        BinaryPrimitives.WriteInt32LittleEndian(frame, frame.Length - 4);
        chunk.WriteTo(frame.AsSpan(4));
        return frame;
    }

    private static async Task<byte[]> ExportChangesAsync(NodeAdminClient admin, string db, ulong since)
    {
        using var buffer = new MemoryStream();
        await admin.ExportChangesAsync(db, since, buffer);
        return buffer.ToArray();
    }

    private static async Task<byte[]> ExportBackupAsync(NodeAdminClient admin, string db)
    {
        using var buffer = new MemoryStream();
        await admin.ExportAsync(db, buffer);
        return buffer.ToArray();
    }

    /// <summary>The full-export digest (rows and CRC of every pair), as a mover compares source and copy.</summary>
    private async Task<(long Rows, ulong Crc)> TotalsAsync(string db)
    {
        using var buffer = new MemoryStream();
        await cluster.Admin(cluster.Nodes[2]).ExportTotalsAsync(db, buffer);
        var last = LastChunk(buffer.ToArray());
        Assert.False(last.Changes);
        return (last.TotalRows, last.TotalCrc32C);
    }

    private static BackupChunk LastChunk(byte[] stream)
    {
        var offset = 0;
        BackupChunk? chunk = null;
        while (offset < stream.Length)
        {
            var length = BinaryPrimitives.ReadInt32LittleEndian(stream.AsSpan(offset));
            chunk = BackupChunk.Parser.ParseFrom(stream, offset + 4, length);
            offset += 4 + length;
        }
        Assert.NotNull(chunk);
        Assert.True(chunk.Last);
        return chunk;
    }

    private static async Task<NpgsqlConnection> OpenAsync(ClusterNodeProcess node, string db)
    {
        var conn = new NpgsqlConnection(ThreeNodeCluster.ConnectionString(node, db));
        await conn.OpenAsync();
        return conn;
    }

    private static async Task SqlAsync(ClusterNodeProcess node, string db, params string[] statements)
    {
        await using var conn = await OpenAsync(node, db);
        foreach (var sql in statements)
        {
            await using var cmd = new NpgsqlCommand(sql, conn) { CommandTimeout = 120 };
            await cmd.ExecuteNonQueryAsync();
        }
    }

    /// <summary>Every table's rows in key order, and lookups through the secondary indexes (a copied index must point at the
    /// copy's rows); a missing table reads "missing".</summary>
    private static async Task<string> DumpAsync(ClusterNodeProcess node, string db)
    {
        await using var conn = await OpenAsync(node, db);
        var text = new System.Text.StringBuilder();
        foreach (var table in Tables)
        {
            text.Append(table).Append(": ");
            try
            {
                await using var cmd = new NpgsqlCommand($"SELECT * FROM {table} ORDER BY id", conn);
                await using var reader = await cmd.ExecuteReaderAsync();
                while (await reader.ReadAsync())
                {
                    for (var i = 0; i < reader.FieldCount; i++)
                    {
                        text.Append(Convert.ToString(reader.GetValue(i), CultureInfo.InvariantCulture)).Append(i + 1 < reader.FieldCount ? "," : ";");
                    }
                }
            }
            catch (PostgresException e) when (e.SqlState == "42P01")
            {
                text.Append("missing");
            }
            text.Append('\n');
        }
        foreach (var query in new[] { "SELECT count(*) || '|' || sum(length(payload)) || '|' || min(payload) || '|' || max(id) FROM big", "SELECT id FROM items WHERE name = 'item5'", "SELECT id FROM items WHERE name = 'renamed14'", "SELECT count(*) FROM extra WHERE tag = 't3'" })
        {
            try
            {
                await using var cmd = new NpgsqlCommand(query, conn);
                text.Append(query).Append(" -> ").Append(Convert.ToString(await cmd.ExecuteScalarAsync(), CultureInfo.InvariantCulture)).Append('\n');
            }
            catch (PostgresException e) when (e.SqlState == "42P01")
            {
                text.Append(query).Append(" -> missing\n");
            }
        }
        return text.ToString();
    }
}
