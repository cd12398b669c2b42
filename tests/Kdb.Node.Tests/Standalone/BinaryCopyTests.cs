using Npgsql;
using NpgsqlTypes;

namespace Kdb.Node.Tests.Standalone;

/// <summary>
/// COPY in the binary format through Npgsql's binary importer and exporter (every value round-trips exactly),
/// binary COPY's errors (bad values, garbage streams: SQLSTATE, nothing inserted, connection usable) and regclass
/// values printed as names in the text format.
/// </summary>
[Collection(StandaloneCollection.Name)]
public sealed class BinaryCopyTests(StandaloneNodeFixture fixture)
{
    private StandaloneNode Node => fixture.Node;

    private static string Unique(string prefix) => prefix + "_" + Guid.NewGuid().ToString("N")[..8];

    private static async Task<object?> ScalarAsync(NpgsqlConnection c, string sql)
    {
        await using var cmd = new NpgsqlCommand(sql, c);
        return await cmd.ExecuteScalarAsync();
    }

    [Fact]
    public async Task BinaryImportThenExport_EveryType_RoundTripsExactly()
    {
        await using var c = await Node.OpenAsync("Pooling=false");
        var table = Unique("bcopy");
        await ScalarAsync(c, $"CREATE TABLE {table} (id int PRIMARY KEY, b bool, i2 int2, i8 int8, f8 float8, n numeric(12,3), t text, v varchar(5), by bytea, d date, ts timestamp, tz timestamptz, iv interval, u uuid)");
        var ts = new DateTime(2024, 2, 29, 13, 14, 15, DateTimeKind.Unspecified).AddTicks(1234560);
        var tz = new DateTime(1999, 12, 31, 23, 59, 59, DateTimeKind.Utc);
        var uuid = Guid.NewGuid();
        await using (var import = await c.BeginBinaryImportAsync($"COPY {table} (id, b, i2, i8, f8, n, t, v, by, d, ts, tz, iv, u) FROM STDIN (FORMAT BINARY)"))
        {
            for (var i = 1; i <= 300; i++)
            {
                await import.StartRowAsync();
                await import.WriteAsync(i, NpgsqlDbType.Integer);
                await import.WriteAsync(i % 2 == 0, NpgsqlDbType.Boolean);
                await import.WriteAsync((short)-i, NpgsqlDbType.Smallint);
                await import.WriteAsync(long.MinValue + i, NpgsqlDbType.Bigint);
                await import.WriteAsync(i / 8.0, NpgsqlDbType.Double);
                await import.WriteAsync(i + 0.1234m, NpgsqlDbType.Numeric);
                if (i % 7 == 0)
                {
                    await import.WriteNullAsync();
                }
                else
                {
                    await import.WriteAsync("héllo\t\n\\" + i, NpgsqlDbType.Text);
                }

                await import.WriteAsync("v" + (i % 1000), NpgsqlDbType.Varchar);
                await import.WriteAsync(new byte[] { 0, 255, (byte)i }, NpgsqlDbType.Bytea);
                await import.WriteAsync(new DateOnly(2024, 1, 1).AddDays(i), NpgsqlDbType.Date);
                await import.WriteAsync(ts.AddSeconds(i), NpgsqlDbType.Timestamp);
                await import.WriteAsync(tz.AddMinutes(i), NpgsqlDbType.TimestampTz);
                await import.WriteAsync(new NpgsqlInterval(1, i, 5_000_000), NpgsqlDbType.Interval);
                await import.WriteAsync(uuid, NpgsqlDbType.Uuid);
            }

            Assert.Equal(300UL, await import.CompleteAsync());
        }

        // numeric(12,3) rounds what binary COPY brought in, as PostgreSQL's binary input applies the typmod.
        Assert.Equal(7.123m, await ScalarAsync(c, $"SELECT n FROM {table} WHERE id = 7"));
        Assert.Equal(42L, await ScalarAsync(c, $"SELECT count(*) FROM {table} WHERE t IS NULL"));

        var seen = 0;
        await using (var export = await c.BeginBinaryExportAsync($"COPY (SELECT id, b, i2, i8, f8, n, t, v, by, d, ts, tz, iv, u FROM {table} ORDER BY id) TO STDOUT (FORMAT BINARY)"))
        {
            while (await export.StartRowAsync() == 14)
            {
                var i = ++seen;
                Assert.Equal(i, await export.ReadAsync<int>());
                Assert.Equal(i % 2 == 0, await export.ReadAsync<bool>());
                Assert.Equal((short)-i, await export.ReadAsync<short>());
                Assert.Equal(long.MinValue + i, await export.ReadAsync<long>());
                Assert.Equal(i / 8.0, await export.ReadAsync<double>());
                Assert.Equal(Math.Round(i + 0.1234m, 3), await export.ReadAsync<decimal>());
                if (i % 7 == 0)
                {
                    Assert.True(export.IsNull);
                    await export.SkipAsync();
                }
                else
                {
                    Assert.Equal("héllo\t\n\\" + i, await export.ReadAsync<string>());
                }

                Assert.Equal("v" + (i % 1000), await export.ReadAsync<string>());
                Assert.Equal(new byte[] { 0, 255, (byte)i }, await export.ReadAsync<byte[]>());
                Assert.Equal(new DateOnly(2024, 1, 1).AddDays(i), await export.ReadAsync<DateOnly>());
                Assert.Equal(ts.AddSeconds(i), await export.ReadAsync<DateTime>(NpgsqlDbType.Timestamp));
                Assert.Equal(tz.AddMinutes(i), (await export.ReadAsync<DateTime>(NpgsqlDbType.TimestampTz)).ToUniversalTime());
                var interval = await export.ReadAsync<NpgsqlInterval>();
                Assert.Equal((1, i, 5_000_000L), (interval.Months, interval.Days, interval.Time));
                Assert.Equal(uuid, await export.ReadAsync<Guid>());
            }
        }

        Assert.Equal(300, seen);
    }

    [Fact]
    public async Task BinaryImport_BadValueOrGarbage_FailsWithSqlState_InsertsNothing()
    {
        await using var c = await Node.OpenAsync("Pooling=false");
        var table = Unique("bcopybad");
        await ScalarAsync(c, $"CREATE TABLE {table} (id int PRIMARY KEY, v varchar(3))");

        var tooLong = await Assert.ThrowsAsync<PostgresException>(async () =>
        {
            await using var import = await c.BeginBinaryImportAsync($"COPY {table} FROM STDIN (FORMAT BINARY)");
            await import.WriteRowAsync(default, 1, "abc");
            await import.WriteRowAsync(default, 2, "abcd");
            await import.CompleteAsync();
        });
        Assert.Equal("22001", tooLong.SqlState);

        var garbage = await Assert.ThrowsAsync<PostgresException>(async () =>
        {
            await using var raw = await c.BeginRawBinaryCopyAsync($"COPY {table} FROM STDIN (FORMAT BINARY)");
            await raw.WriteAsync("this is not a binary copy stream"u8.ToArray());
        });
        Assert.Equal("22P04", garbage.SqlState);

        var truncated = await Assert.ThrowsAsync<PostgresException>(async () =>
        {
            await using var raw = await c.BeginRawBinaryCopyAsync($"COPY {table} FROM STDIN (FORMAT BINARY)");
            await raw.WriteAsync(Kdb.PgWire.Session.PgBinaryCopy.Header().Concat(new byte[] { 0, 2, 0, 0, 0, 4, 0, 0 }).ToArray());
        });
        Assert.Equal("22P04", truncated.SqlState);

        var options = await Assert.ThrowsAsync<PostgresException>(() => ScalarAsync(c, $"COPY {table} FROM STDIN (FORMAT BINARY, DELIMITER ',')"));
        Assert.Equal("42601", options.SqlState);

        Assert.Equal(0L, await ScalarAsync(c, $"SELECT count(*) FROM {table}"));
    }

    [Fact]
    public async Task Regclass_PrintsAsName_InText_AndAsOid_InBinary()
    {
        await using var c = await Node.OpenAsync("Pooling=false");
        var table = Unique("regc");
        await ScalarAsync(c, $"CREATE TABLE {table} (id int PRIMARY KEY)");
        var oid = Convert.ToUInt32(await ScalarAsync(c, $"SELECT oid FROM pg_class WHERE relname = '{table}'"), System.Globalization.CultureInfo.InvariantCulture);

        // Text results, as psql receives them.
        await using (var text = new NpgsqlCommand($"SELECT '{table}'::regclass, c.oid::regclass, '{table}_pkey'::regclass, 'integer'::regtype FROM pg_class c WHERE c.relname = '{table}'", c) { AllResultTypesAreUnknown = true })
        await using (var reader = await text.ExecuteReaderAsync())
        {
            Assert.True(await reader.ReadAsync());
            Assert.Equal(table, reader.GetString(0));
            Assert.Equal(table, reader.GetString(1));
            Assert.Equal(table + "_pkey", reader.GetString(2));
            Assert.Equal("integer", reader.GetString(3));
        }

        // COPY TO in text prints the name; binary COPY sends the oid.
        using (var copy = await c.BeginTextExportAsync($"COPY (SELECT '{table}'::regclass) TO STDOUT"))
        {
            Assert.Equal(table, (await copy.ReadToEndAsync()).TrimEnd('\n'));
        }

        await using (var export = await c.BeginBinaryExportAsync($"COPY (SELECT '{table}'::regclass) TO STDOUT (FORMAT BINARY)"))
        {
            Assert.Equal(1, await export.StartRowAsync());
            Assert.Equal(oid, await export.ReadAsync<uint>(NpgsqlDbType.Oid));
            Assert.Equal(-1, await export.StartRowAsync());
        }

        // No rows: the header and the trailer share one message.
        await using (var empty = await c.BeginBinaryExportAsync($"COPY (SELECT id FROM {table}) TO STDOUT (FORMAT BINARY)"))
        {
            Assert.Equal(-1, await empty.StartRowAsync());
        }
    }
}
