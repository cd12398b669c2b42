using Kdb.ControlPlane.Data;
using Microsoft.EntityFrameworkCore;
using Npgsql;
using NpgsqlTypes;

namespace Kdb.ControlPlane.Usage;

/// <summary>
/// Idempotent ingestion of a usage batch. What was ingested is kept as ranges of sequence numbers per source
/// (<c>usage_receipt_ranges</c>): a node numbers its records consecutively, so a batch of thousands leaves one
/// range, not one row per record. Ranges never overlap, so those touching a batch are the ones starting inside
/// it and at most one before it: an index range, however long the source's history. Fresh records are summed here per (database, hour) and upserted in key
/// order, so two batches touching the same hours cannot deadlock. Three round trips in all.
/// </summary>
internal static class UsageIngest
{
    private const string LockAndRead = """
        SELECT pg_advisory_xact_lock(hashtextextended(s, 0)) FROM unnest(@sources) AS s;
        SELECT r."Source", r."First", r."Last"
        FROM unnest(@sources, @lows, @highs) AS b(source, lo, hi)
        CROSS JOIN LATERAL (
            (SELECT * FROM usage_receipt_ranges p WHERE p."Source" = b.source AND p."First" < b.lo ORDER BY p."First" DESC LIMIT 1)
            UNION ALL
            (SELECT * FROM usage_receipt_ranges p WHERE p."Source" = b.source AND p."First" BETWEEN b.lo AND b.hi)) r
        WHERE r."Last" >= b.lo
        ORDER BY r."Source", r."First"
        """;

    private const string InsertRanges = """
        INSERT INTO usage_receipt_ranges ("Source", "First", "Last") SELECT * FROM unnest(@sources, @firsts, @lasts)
        """;

    private const string Upsert = """
        INSERT INTO usage_hourly AS u ("DatabaseId", "HourStart", "RowsRead", "RowsWritten", "BytesRead", "BytesWritten", "StorageBytes", "CpuMs", "EgressBytes", "Connections")
        SELECT * FROM unnest(@database, @hour, @rows_read, @rows_written, @bytes_read, @bytes_written, @storage, @cpu, @egress, @connections)
        ON CONFLICT ("DatabaseId", "HourStart") DO UPDATE SET
            "RowsRead" = u."RowsRead" + EXCLUDED."RowsRead", "RowsWritten" = u."RowsWritten" + EXCLUDED."RowsWritten",
            "BytesRead" = u."BytesRead" + EXCLUDED."BytesRead", "BytesWritten" = u."BytesWritten" + EXCLUDED."BytesWritten",
            "StorageBytes" = GREATEST(u."StorageBytes", EXCLUDED."StorageBytes"), "CpuMs" = u."CpuMs" + EXCLUDED."CpuMs",
            "EgressBytes" = u."EgressBytes" + EXCLUDED."EgressBytes", "Connections" = GREATEST(u."Connections", EXCLUDED."Connections")
        """;

    /// <summary>Ingests the records not ingested before (by source and sequence); returns how many were new.</summary>
    public static async Task<int> IngestAsync(ControlPlaneDbContext db, UsageEndpoints.UsageRecord[] records, CancellationToken ct)
    {
        var order = SortedIndexes(records);
        var (sources, lows, highs) = SourceBounds(records, order);
        await db.Database.OpenConnectionAsync(ct);
        try
        {
            var connection = (NpgsqlConnection)db.Database.GetDbConnection();
            await using var tx = await connection.BeginTransactionAsync(ct);

            // Batches of one source take turns (a retry racing its original); other sources run side by side.
            var ranges = new List<(string Source, long First, long Last)>();
            await using (var read = new NpgsqlCommand(LockAndRead, connection, tx))
            {
                read.Parameters.Add(Texts("sources", sources));
                read.Parameters.Add(Bigints("lows", lows));
                read.Parameters.Add(Bigints("highs", highs));
                await using var reader = await read.ExecuteReaderAsync(ct);
                await reader.NextResultAsync(ct);
                while (await reader.ReadAsync(ct))
                {
                    ranges.Add((reader.GetString(0), reader.GetInt64(1), reader.GetInt64(2)));
                }
            }

            var (fresh, runs) = Fresh(records, order, ranges);
            if (fresh.Count > 0)
            {
                var batch = new NpgsqlBatch(connection, tx);
                await using (batch)
                {
                    var insert = new NpgsqlBatchCommand(InsertRanges);
                    insert.Parameters.Add(Texts("sources", runs.ConvertAll(r => r.Source).ToArray()));
                    insert.Parameters.Add(Bigints("firsts", runs.ConvertAll(r => r.First).ToArray()));
                    insert.Parameters.Add(Bigints("lasts", runs.ConvertAll(r => r.Last).ToArray()));
                    batch.BatchCommands.Add(insert);
                    batch.BatchCommands.Add(HourlySums(records, fresh));
                    await batch.ExecuteNonQueryAsync(ct);
                }
            }

            await tx.CommitAsync(ct);
            return fresh.Count;
        }
        finally
        {
            await db.Database.CloseConnectionAsync();
        }
    }

    /// <summary>Record indexes ordered by (source, sequence).</summary>
    private static int[] SortedIndexes(UsageEndpoints.UsageRecord[] records)
    {
        var order = new int[records.Length];
        for (var i = 0; i < order.Length; i++)
        {
            order[i] = i;
        }

        Array.Sort(order, (a, b) =>
        {
            var bySource = string.CompareOrdinal(records[a].Source, records[b].Source);
            return bySource != 0 ? bySource : records[a].Sequence.CompareTo(records[b].Sequence);
        });
        return order;
    }

    /// <summary>Each source of the batch with its lowest and highest sequence.</summary>
    private static (string[] Sources, long[] Lows, long[] Highs) SourceBounds(UsageEndpoints.UsageRecord[] records, int[] order)
    {
        var sources = new List<string>();
        var lows = new List<long>();
        var highs = new List<long>();
        foreach (var i in order)
        {
            var r = records[i];
            if (sources.Count == 0 || sources[^1] != r.Source)
            {
                sources.Add(r.Source!);
                lows.Add(r.Sequence);
                highs.Add(r.Sequence);
            }
            else
            {
                highs[^1] = r.Sequence;
            }
        }

        return (sources.ToArray(), lows.ToArray(), highs.ToArray());
    }

    /// <summary>
    /// The records no stored range covers (a repeat inside the batch counts once), and the new ranges they
    /// form: runs of consecutive sequences of one source.
    /// </summary>
    private static (List<int> Fresh, List<(string Source, long First, long Last)> Runs) Fresh(
        UsageEndpoints.UsageRecord[] records, int[] order, List<(string Source, long First, long Last)> ranges)
    {
        var fresh = new List<int>(records.Length);
        var runs = new List<(string Source, long First, long Last)>();
        var next = 0;
        string? previousSource = null;
        var previousSequence = long.MinValue;
        foreach (var i in order)
        {
            var (source, sequence) = (records[i].Source!, records[i].Sequence);
            if (source == previousSource && sequence == previousSequence)
            {
                continue;
            }

            // Ranges are sorted like the records: skip those wholly before this record.
            while (next < ranges.Count && (string.CompareOrdinal(ranges[next].Source, source) < 0 || (ranges[next].Source == source && ranges[next].Last < sequence)))
            {
                next++;
            }

            var covered = next < ranges.Count && ranges[next].Source == source && ranges[next].First <= sequence;
            if (!covered)
            {
                fresh.Add(i);
                if (runs.Count > 0 && runs[^1].Source == source && runs[^1].Last == sequence - 1)
                {
                    runs[^1] = (source, runs[^1].First, sequence);
                }
                else
                {
                    runs.Add((source, sequence, sequence));
                }
            }

            (previousSource, previousSequence) = (source, sequence);
        }

        return (fresh, runs);
    }

    /// <summary>The fresh records summed per (database, hour), as one upsert whose rows are in key order.</summary>
    private static NpgsqlBatchCommand HourlySums(UsageEndpoints.UsageRecord[] records, List<int> fresh)
    {
        var sums = new Dictionary<(string Database, long HourTicks), long[]>();
        foreach (var i in fresh)
        {
            var r = records[i];
            var ticks = r.HourStart.UtcTicks;
            var key = (r.DatabaseId!, ticks - (ticks % TimeSpan.TicksPerHour));
            if (!sums.TryGetValue(key, out var s))
            {
                sums[key] = s = new long[8];
            }

            s[0] += r.RowsRead;
            s[1] += r.RowsWritten;
            s[2] += r.BytesRead;
            s[3] += r.BytesWritten;
            s[4] = Math.Max(s[4], r.StorageBytes);
            s[5] += r.CpuMs;
            s[6] += r.EgressBytes;
            s[7] = Math.Max(s[7], r.Connections);
        }

        var keys = sums.Keys.ToArray();
        Array.Sort(keys, (a, b) =>
        {
            var byDatabase = string.CompareOrdinal(a.Database, b.Database);
            return byDatabase != 0 ? byDatabase : a.HourTicks.CompareTo(b.HourTicks);
        });
        var n = keys.Length;
        var databases = new string[n];
        var hours = new DateTimeOffset[n];
        var columns = new long[8][];
        for (var c = 0; c < columns.Length; c++)
        {
            columns[c] = new long[n];
        }

        for (var k = 0; k < n; k++)
        {
            databases[k] = keys[k].Database;
            hours[k] = new DateTimeOffset(keys[k].HourTicks, TimeSpan.Zero);
            var s = sums[keys[k]];
            for (var c = 0; c < columns.Length; c++)
            {
                columns[c][k] = s[c];
            }
        }

        var command = new NpgsqlBatchCommand(Upsert);
        command.Parameters.Add(Texts("database", databases));
        command.Parameters.Add(new NpgsqlParameter("hour", NpgsqlDbType.Array | NpgsqlDbType.TimestampTz) { Value = hours });
        string[] names = ["rows_read", "rows_written", "bytes_read", "bytes_written", "storage", "cpu", "egress", "connections"];
        for (var c = 0; c < columns.Length; c++)
        {
            command.Parameters.Add(Bigints(names[c], columns[c]));
        }

        return command;
    }

    private static NpgsqlParameter Texts(string name, string[] values) => new(name, NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = values };

    private static NpgsqlParameter Bigints(string name, long[] values) => new(name, NpgsqlDbType.Array | NpgsqlDbType.Bigint) { Value = values };
}
