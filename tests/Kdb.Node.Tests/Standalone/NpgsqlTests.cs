using Npgsql;
using NpgsqlTypes;

namespace Kdb.Node.Tests.Standalone;

/// <summary>Npgsql 10 with a default connection string (type loading on, binary results) against a standalone node process.</summary>
[Collection(StandaloneCollection.Name)]
public sealed class NpgsqlTests(StandaloneNodeFixture fixture)
{
    private StandaloneNode Node => fixture.Node;

    private static string Unique(string prefix) => prefix + "_" + Guid.NewGuid().ToString("N")[..8];

    private static async Task ExecAsync(NpgsqlConnection c, string sql)
    {
        await using var cmd = new NpgsqlCommand(sql, c);
        await cmd.ExecuteNonQueryAsync();
    }

    [Fact]
    public async Task Open_DefaultConnectionString_LoadsTypesAndReportsServer()
    {
        await using var c = await Node.OpenAsync("Pooling=false");

        Assert.Equal(15, c.PostgreSqlVersion.Major);
        await using var cmd = new NpgsqlCommand("SELECT current_database(), current_user", c);
        await using var reader = await cmd.ExecuteReaderAsync();
        Assert.True(await reader.ReadAsync());
        Assert.Equal(StandaloneNode.Database, reader.GetString(0));
        Assert.Equal(StandaloneNode.Owner, reader.GetString(1));
    }

    [Fact]
    public async Task Parameters_EverySupportedType_RoundTripExactly()
    {
        await using var c = await Node.OpenAsync("Pooling=false");
        var table = Unique("types");
        await ExecAsync(c, $"""
            CREATE TABLE {table} (id int PRIMARY KEY, b bool, i2 int2, i4 int4, i8 int8, f4 float4, f8 float8, n numeric(20,4), nn numeric,
              t text, v varchar(20), c char(5), by bytea, d date, ts timestamp, tz timestamptz, iv interval, u uuid, j jsonb)
            """);
        var timestamp = new DateTime(2024, 2, 29, 13, 14, 15, DateTimeKind.Unspecified).AddTicks(1234560);
        var timestamptz = new DateTime(1999, 12, 31, 23, 59, 59, DateTimeKind.Utc).AddTicks(5_000_000);
        var interval = new NpgsqlInterval(14, 3, 14_706_500_000);
        var uuid = Guid.Parse("6f9619ff-8b86-d011-b42d-00cf4fc964ff");
        var bytes = new byte[] { 0, 1, 2, 127, 128, 255 };
        await using (var insert = new NpgsqlCommand(
            $"INSERT INTO {table} VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)", c))
        {
            object[] values = [1, true, (short)-32768, int.MaxValue, long.MinValue, 1.5f, Math.PI, 12345.6789m, -1234567890.0123456789012m,
                "héllo wörld ✓", "varchar value", "ab", bytes, new DateOnly(2024, 2, 29), timestamp, timestamptz, interval, uuid, "{\"b\": null, \"a\": [1, 2]}"];
            foreach (var value in values)
            {
                insert.Parameters.Add(value is string s && s.StartsWith('{') ? new NpgsqlParameter { Value = s, NpgsqlDbType = NpgsqlDbType.Jsonb } : new NpgsqlParameter { Value = value });
            }

            Assert.Equal(1, await insert.ExecuteNonQueryAsync());
        }

        await using var select = new NpgsqlCommand($"SELECT * FROM {table} WHERE id = $1", c) { Parameters = { new() { Value = 1 } } };
        await using var r = await select.ExecuteReaderAsync();
        Assert.True(await r.ReadAsync());
        Assert.True(r.GetBoolean(1));
        Assert.Equal((short)-32768, r.GetInt16(2));
        Assert.Equal(int.MaxValue, r.GetInt32(3));
        Assert.Equal(long.MinValue, r.GetInt64(4));
        Assert.Equal(1.5f, r.GetFloat(5));
        Assert.Equal(Math.PI, r.GetDouble(6));
        Assert.Equal("12345.6789", r.GetDecimal(7).ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(-1234567890.0123456789012m, r.GetDecimal(8));
        Assert.Equal("héllo wörld ✓", r.GetString(9));
        Assert.Equal("varchar value", r.GetString(10));
        Assert.Equal("ab   ", r.GetString(11));
        Assert.Equal(bytes, r.GetFieldValue<byte[]>(12));
        Assert.Equal(new DateOnly(2024, 2, 29), r.GetFieldValue<DateOnly>(13));
        Assert.Equal(timestamp, r.GetDateTime(14));
        Assert.Equal(DateTimeKind.Unspecified, r.GetDateTime(14).Kind);
        Assert.Equal(timestamptz, r.GetFieldValue<DateTime>(15));
        Assert.Equal(DateTimeKind.Utc, r.GetFieldValue<DateTime>(15).Kind);
        Assert.Equal(interval, r.GetFieldValue<NpgsqlInterval>(16));
        Assert.Equal(uuid, r.GetGuid(17));
        Assert.Equal("{\"a\": [1, 2], \"b\": null}", r.GetString(18));
        Assert.False(await r.ReadAsync());
    }

    [Fact]
    public async Task Parameters_Nulls_RoundTripAsDbNull()
    {
        await using var c = await Node.OpenAsync("Pooling=false");
        var table = Unique("nulls");
        await ExecAsync(c, $"CREATE TABLE {table} (id int PRIMARY KEY, t text, n numeric, d date, u uuid)");
        await using (var insert = new NpgsqlCommand($"INSERT INTO {table} VALUES (1, $1, $2, $3, $4)", c))
        {
            insert.Parameters.Add(new NpgsqlParameter { Value = DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
            insert.Parameters.Add(new NpgsqlParameter { Value = DBNull.Value, NpgsqlDbType = NpgsqlDbType.Numeric });
            insert.Parameters.Add(new NpgsqlParameter { Value = DBNull.Value, NpgsqlDbType = NpgsqlDbType.Date });
            insert.Parameters.Add(new NpgsqlParameter { Value = DBNull.Value, NpgsqlDbType = NpgsqlDbType.Uuid });
            await insert.ExecuteNonQueryAsync();
        }

        await using var select = new NpgsqlCommand($"SELECT t, n, d, u FROM {table}", c);
        await using var r = await select.ExecuteReaderAsync();
        Assert.True(await r.ReadAsync());
        for (var i = 0; i < 4; i++)
        {
            Assert.True(r.IsDBNull(i));
        }
    }

    [Fact]
    public async Task Prepare_ExecutedManyTimes_ReusesStatement()
    {
        await using var c = await Node.OpenAsync("Pooling=false");
        var table = Unique("prep");
        await ExecAsync(c, $"CREATE TABLE {table} (id int PRIMARY KEY, v text)");
        await using var insert = new NpgsqlCommand($"INSERT INTO {table} VALUES ($1, $2)", c);
        insert.Parameters.Add(new NpgsqlParameter<int> { TypedValue = 0 });
        insert.Parameters.Add(new NpgsqlParameter<string> { TypedValue = string.Empty });
        await insert.PrepareAsync();
        Assert.True(insert.IsPrepared);
        for (var i = 1; i <= 50; i++)
        {
            ((NpgsqlParameter<int>)insert.Parameters[0]).TypedValue = i;
            ((NpgsqlParameter<string>)insert.Parameters[1]).TypedValue = "row " + i;
            Assert.Equal(1, await insert.ExecuteNonQueryAsync());
        }

        await using var sum = new NpgsqlCommand($"SELECT count(*), sum(id) FROM {table}", c);
        await sum.PrepareAsync();
        await using var r = await sum.ExecuteReaderAsync();
        Assert.True(await r.ReadAsync());
        Assert.Equal(50L, r.GetInt64(0));
        Assert.Equal(1275L, Convert.ToInt64(r.GetValue(1), System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task Transaction_RollbackDiscards_CommitKeeps()
    {
        await using var c = await Node.OpenAsync("Pooling=false");
        var table = Unique("txn");
        await ExecAsync(c, $"CREATE TABLE {table} (id int PRIMARY KEY)");

        await using (var tx = await c.BeginTransactionAsync())
        {
            await ExecAsync(c, $"INSERT INTO {table} VALUES (1)");
            await tx.RollbackAsync();
        }

        await using (var tx = await c.BeginTransactionAsync())
        {
            await ExecAsync(c, $"INSERT INTO {table} VALUES (2)");
            await ExecAsync(c, $"INSERT INTO {table} VALUES (3)");
            await tx.CommitAsync();
        }

        await using var other = await Node.OpenAsync("Pooling=false");
        await using var cmd = new NpgsqlCommand($"SELECT string_agg(id::text, ',' ORDER BY id) FROM {table}", other);
        Assert.Equal("2,3", await cmd.ExecuteScalarAsync());
    }

    [Fact]
    public async Task Batch_SeveralStatements_EachResultInOrder()
    {
        await using var c = await Node.OpenAsync("Pooling=false");
        var table = Unique("batch");
        await ExecAsync(c, $"CREATE TABLE {table} (id int PRIMARY KEY, v int)");
        await using var batch = new NpgsqlBatch(c)
        {
            BatchCommands =
            {
                new NpgsqlBatchCommand($"INSERT INTO {table} VALUES ($1, 10), ($2, 20)") { Parameters = { new() { Value = 1 }, new() { Value = 2 } } },
                new NpgsqlBatchCommand($"UPDATE {table} SET v = v + 1 WHERE id = $1") { Parameters = { new() { Value = 2 } } },
                new NpgsqlBatchCommand($"SELECT id, v FROM {table} ORDER BY id"),
            },
        };
        await using var r = await batch.ExecuteReaderAsync();
        var rows = new List<string>();
        while (await r.ReadAsync())
        {
            rows.Add($"{r.GetInt32(0)}:{r.GetInt32(1)}");
        }

        Assert.Equal(["1:10", "2:21"], rows);
        Assert.Equal(2, batch.BatchCommands[0].RecordsAffected);
        Assert.Equal(1, batch.BatchCommands[1].RecordsAffected);
    }

    [Fact]
    public async Task Pool_ReusedConnection_IsResetBetweenUsers()
    {
        var pooled = Node.ConnectionString(extra: "Pooling=true;Maximum Pool Size=1;Application Name=" + Unique("pool"));
        await using (var c = new NpgsqlConnection(pooled))
        {
            await c.OpenAsync();
            await ExecAsync(c, "SET statement_timeout = '123s'");
            await using var check = new NpgsqlCommand("SHOW statement_timeout", c);
            Assert.Equal("123s", await check.ExecuteScalarAsync());
        }

        // Same physical connection (pool of one): Npgsql resets it with DISCARD ALL before reuse.
        await using (var c = new NpgsqlConnection(pooled))
        {
            await c.OpenAsync();
            await using var check = new NpgsqlCommand("SHOW statement_timeout", c);
            Assert.Equal("0", await check.ExecuteScalarAsync());
        }

        NpgsqlConnection.ClearPool(new NpgsqlConnection(pooled));
    }

    [Fact]
    public async Task Pool_PreparedStatementSurvivesReturnToPool()
    {
        // With prepared statements Npgsql resets a pooled connection without DISCARD ALL (SET SESSION AUTHORIZATION
        // DEFAULT; RESET ALL; CLOSE ALL; UNLISTEN *; ...) to keep them.
        var pooled = Node.ConnectionString(extra: "Pooling=true;Maximum Pool Size=1;Application Name=" + Unique("poolprep"));
        for (var round = 0; round < 3; round++)
        {
            await using var c = new NpgsqlConnection(pooled);
            await c.OpenAsync();
            await using var cmd = new NpgsqlCommand("SELECT $1::int + 1", c) { Parameters = { new() { Value = round } } };
            await cmd.PrepareAsync();
            Assert.Equal(round + 1, await cmd.ExecuteScalarAsync());
        }

        NpgsqlConnection.ClearPool(new NpgsqlConnection(pooled));
    }

    [Fact]
    public async Task ConcurrentWriteOfSameRow_SecondWaitsForTheFirst_ThenFailsWith40001()
    {
        var table = Unique("conflict");
        await using var a = await Node.OpenAsync("Pooling=false");
        await using var b = await Node.OpenAsync("Pooling=false");
        await ExecAsync(a, $"CREATE TABLE {table} (id int PRIMARY KEY, balance int)");
        await ExecAsync(a, $"INSERT INTO {table} VALUES (1, 100)");

        await using var ta = await a.BeginTransactionAsync();
        await using var tb = await b.BeginTransactionAsync();
        await using (var read = new NpgsqlCommand($"SELECT balance FROM {table} WHERE id = 1", a))
        {
            Assert.Equal(100, await read.ExecuteScalarAsync());
        }

        await using (var read = new NpgsqlCommand($"SELECT balance FROM {table} WHERE id = 1", b))
        {
            Assert.Equal(100, await read.ExecuteScalarAsync());
        }

        await ExecAsync(a, $"UPDATE {table} SET balance = 90 WHERE id = 1");

        // b's write of the row a holds waits for a (a row lock, as in PostgreSQL) instead of failing later at COMMIT.
        var blocked = ExecAsync(b, $"UPDATE {table} SET balance = 80 WHERE id = 1");
        await Task.Delay(200);
        Assert.False(blocked.IsCompleted);
        await ta.CommitAsync();

        // Once a commits, b's earlier read of the row is stale: its snapshot cannot move forward, so 40001 now.
        var ex = await Assert.ThrowsAsync<PostgresException>(() => blocked);
        Assert.Equal(PostgresErrorCodes.SerializationFailure, ex.SqlState);
        await tb.RollbackAsync();
        await using var check = new NpgsqlCommand($"SELECT balance FROM {table} WHERE id = 1", a);
        Assert.Equal(90, await check.ExecuteScalarAsync());
    }

    [Fact]
    public async Task Errors_CarrySqlStateDetailAndPosition()
    {
        await using var c = await Node.OpenAsync("Pooling=false");
        var table = Unique("errs");
        await ExecAsync(c, $"CREATE TABLE {table} (id int PRIMARY KEY)");
        await ExecAsync(c, $"INSERT INTO {table} VALUES (1)");

        var syntax = await Assert.ThrowsAsync<PostgresException>(() => ExecAsync(c, "SELECT 1 FROM WHERE"));
        Assert.Equal(PostgresErrorCodes.SyntaxError, syntax.SqlState);
        Assert.True(syntax.Position > 0);

        var duplicate = await Assert.ThrowsAsync<PostgresException>(() => ExecAsync(c, $"INSERT INTO {table} VALUES (1)"));
        Assert.Equal(PostgresErrorCodes.UniqueViolation, duplicate.SqlState);

        var missing = await Assert.ThrowsAsync<PostgresException>(() => ExecAsync(c, "SELECT * FROM no_such_table"));
        Assert.Equal(PostgresErrorCodes.UndefinedTable, missing.SqlState);

        // The connection still works after errors.
        await using var ok = new NpgsqlCommand("SELECT 42", c);
        Assert.Equal(42, await ok.ExecuteScalarAsync());
    }

    [Fact]
    public async Task ReadOnlyRole_Write_Fails42501()
    {
        var table = Unique("ro");
        await using (var c = await Node.OpenAsync("Pooling=false"))
        {
            await ExecAsync(c, $"CREATE TABLE {table} (id int PRIMARY KEY)");
        }

        await using var reader = new NpgsqlConnection(Node.ConnectionString(StandaloneNode.Reader, StandaloneNode.ReaderPassword, extra: "Pooling=false"));
        await reader.OpenAsync();
        await using var select = new NpgsqlCommand($"SELECT count(*) FROM {table}", reader);
        Assert.Equal(0L, await select.ExecuteScalarAsync());
        var ex = await Assert.ThrowsAsync<PostgresException>(() => ExecAsync(reader, $"INSERT INTO {table} VALUES (1)"));
        Assert.Equal(PostgresErrorCodes.InsufficientPrivilege, ex.SqlState);
    }

    [Fact]
    public async Task Login_WrongPasswordUnknownRoleUnknownDatabase_AllLookAlike()
    {
        var attempts = new[]
        {
            Node.ConnectionString(password: "wrong", extra: "Pooling=false"),
            Node.ConnectionString(user: "nobody", password: "x", extra: "Pooling=false"),
            Node.ConnectionString(database: "no_such_db", extra: "Pooling=false"),
        };
        foreach (var connectionString in attempts)
        {
            await using var c = new NpgsqlConnection(connectionString);
            var ex = await Assert.ThrowsAsync<PostgresException>(() => c.OpenAsync());
            Assert.Equal(PostgresErrorCodes.InvalidPassword, ex.SqlState);
            Assert.StartsWith("password authentication failed for user", ex.MessageText, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Cancel_LongQuery_Fails57014AndConnectionSurvives()
    {
        await using var c = await Node.OpenAsync("Pooling=false");
        await using var cmd = new NpgsqlCommand("SELECT count(*) FROM generate_series(1, 2000000000) a", c);
        var running = cmd.ExecuteScalarAsync();

        // A CancelRequest only cancels a statement already running, so repeat it until the query ends.
        while (!running.IsCompleted)
        {
            await Task.WhenAny(running, Task.Delay(200));
            if (!running.IsCompleted)
            {
                cmd.Cancel();
            }
        }

        var ex = await Assert.ThrowsAnyAsync<Exception>(() => running);

        var pg = ex as PostgresException ?? ex.InnerException as PostgresException;
        Assert.NotNull(pg);
        Assert.Equal(PostgresErrorCodes.QueryCanceled, pg.SqlState);
        await using var ok = new NpgsqlCommand("SELECT 1", c);
        Assert.Equal(1, await ok.ExecuteScalarAsync());
    }
}
