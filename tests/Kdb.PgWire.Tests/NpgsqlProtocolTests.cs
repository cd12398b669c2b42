using Kdb.PgWire.Server;
using Kdb.PgWire.Session;
using Kdb.PgWire.Tests.Support;
using Npgsql;
using NpgsqlTypes;

namespace Kdb.PgWire.Tests;

/// <summary>Sessions, statements, authentication and limits through Npgsql 10 (NoTypeLoading, see NpgsqlTypeTests).</summary>
public sealed class NpgsqlProtocolTests : IAsyncLifetime
{
    private TestServer _server = null!;

    public Task InitializeAsync()
    {
        _server = new TestServer();
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private async Task<NpgsqlConnection> OpenAsync(string extra = "Pooling=false")
    {
        var c = new NpgsqlConnection(_server.ConnectionString(extra: extra));
        await c.OpenAsync();
        return c;
    }

    [Fact]
    public async Task Open_DefaultSettings_ReportsParameterStatusAndBackendKey()
    {
        await using NpgsqlConnection c = await OpenAsync("Pooling=false;Application Name=kdb-tests");
        Assert.Equal("15.0", c.PostgreSqlVersion.ToString(2));
        Assert.Equal("UTC", c.Timezone);
        Assert.Equal("kdb-tests", c.PostgresParameters["application_name"]);
        Assert.Equal("on", c.PostgresParameters["integer_datetimes"]);
        Assert.Equal("on", c.PostgresParameters["standard_conforming_strings"]);
        Assert.Equal("ISO, MDY", c.PostgresParameters["DateStyle"]);
        Assert.Equal("UTF8", c.PostgresParameters["client_encoding"]);
        Assert.Equal("off", c.PostgresParameters["is_superuser"]);
        Assert.Equal("150000", c.PostgresParameters["server_version_num"]);
        Assert.NotEqual(0, c.ProcessID);
    }

    [Fact]
    public async Task Prepare_ExecutedManyTimes_ParsedOnceOnServer()
    {
        await using NpgsqlConnection c = await OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT $1::int8, $2::text", c);
        cmd.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Bigint });
        cmd.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Text });
        await cmd.PrepareAsync();
        for (int i = 0; i < 5; i++)
        {
            cmd.Parameters[0].Value = (long)i * 1000;
            cmd.Parameters[1].Value = "row " + i;
            await using NpgsqlDataReader r = await cmd.ExecuteReaderAsync();
            Assert.True(await r.ReadAsync());
            Assert.Equal((long)i * 1000, r.GetInt64(0));
            Assert.Equal("row " + i, r.GetString(1));
        }

        Assert.Equal(1, _server.Database.Log.Count(s => s == "SELECT $1::int8, $2::text"));
    }

    [Fact]
    public async Task Pool_ReopenedConnection_ResetWithDiscardAllAndStatementsStillWork()
    {
        string cs = _server.ConnectionString(extra: "Pooling=true;Maximum Pool Size=1");
        int pid;
        await using (var c = new NpgsqlConnection(cs))
        {
            await c.OpenAsync();
            pid = c.ProcessID;
            await using var cmd = new NpgsqlCommand("SET application_name = 'changed'", c);
            await cmd.ExecuteNonQueryAsync();
        }

        await using (var c = new NpgsqlConnection(cs))
        {
            await c.OpenAsync();
            Assert.Equal(pid, c.ProcessID);
            await using var cmd = new NpgsqlCommand("SELECT $1::int4", c);
            cmd.Parameters.Add(new NpgsqlParameter { Value = 5, NpgsqlDbType = NpgsqlDbType.Integer });
            await cmd.PrepareAsync();
            Assert.Equal(5, await cmd.ExecuteScalarAsync());
        }

        Assert.Contains("DISCARD ALL", _server.Database.Log);

        // The prepared statement survives in the pool; a reset must not break it.
        await using (var c = new NpgsqlConnection(cs))
        {
            await c.OpenAsync();
            await using var cmd = new NpgsqlCommand("SELECT $1::int4", c);
            cmd.Parameters.Add(new NpgsqlParameter { Value = 6, NpgsqlDbType = NpgsqlDbType.Integer });
            await cmd.PrepareAsync();
            Assert.Equal(6, await cmd.ExecuteScalarAsync());
        }

        NpgsqlConnection.ClearAllPools();
    }

    [Fact]
    public async Task Transaction_RolledBack_InsertNotVisibleAndStatusIdle()
    {
        _server.Database.Clear();
        await using NpgsqlConnection c = await OpenAsync();
        await using (NpgsqlTransaction tx = await c.BeginTransactionAsync())
        {
            await using var insert = new NpgsqlCommand("INSERT INTO items VALUES ($1, $2)", c, tx);
            insert.Parameters.Add(new NpgsqlParameter { Value = 1, NpgsqlDbType = NpgsqlDbType.Integer });
            insert.Parameters.Add(new NpgsqlParameter { Value = "one", NpgsqlDbType = NpgsqlDbType.Text });
            Assert.Equal(1, await insert.ExecuteNonQueryAsync());
            await tx.RollbackAsync();
        }

        await using (NpgsqlTransaction tx = await c.BeginTransactionAsync())
        {
            await using var insert = new NpgsqlCommand("INSERT INTO items VALUES (2, 'two')", c, tx);
            await insert.ExecuteNonQueryAsync();
            await tx.CommitAsync();
        }

        await using var select = new NpgsqlCommand("SELECT id, name FROM items", c);
        await using NpgsqlDataReader r = await select.ExecuteReaderAsync();
        Assert.True(await r.ReadAsync());
        Assert.Equal(2, r.GetInt32(0));
        Assert.Equal("two", r.GetString(1));
        Assert.False(await r.ReadAsync());
    }

    [Fact]
    public async Task Transaction_ErrorInside_FailedUntilRollback()
    {
        await using NpgsqlConnection c = await OpenAsync();
        await using NpgsqlTransaction tx = await c.BeginTransactionAsync();
        await using var bad = new NpgsqlCommand("SELECT raise_error()", c, tx);
        await Assert.ThrowsAsync<PostgresException>(() => bad.ExecuteScalarAsync());
        await using var next = new NpgsqlCommand("SELECT 1", c, tx);
        PostgresException e = await Assert.ThrowsAsync<PostgresException>(() => next.ExecuteScalarAsync());
        Assert.Equal("25P02", e.SqlState);
        await tx.RollbackAsync();
        await using var after = new NpgsqlCommand("SELECT 1", c);
        Assert.Equal(1, await after.ExecuteScalarAsync());
    }

    [Fact]
    public async Task Batch_SeveralCommands_AllResultsInOrder()
    {
        await using NpgsqlConnection c = await OpenAsync();
        await using var batch = new NpgsqlBatch(c);
        for (int i = 0; i < 20; i++)
        {
            var command = new NpgsqlBatchCommand("SELECT $1::int4, $2::text");
            command.Parameters.Add(new NpgsqlParameter { Value = i, NpgsqlDbType = NpgsqlDbType.Integer });
            command.Parameters.Add(new NpgsqlParameter { Value = "v" + i, NpgsqlDbType = NpgsqlDbType.Text });
            batch.BatchCommands.Add(command);
        }

        await using NpgsqlDataReader r = await batch.ExecuteReaderAsync();
        for (int i = 0; i < 20; i++)
        {
            Assert.True(await r.ReadAsync());
            Assert.Equal(i, r.GetInt32(0));
            Assert.Equal("v" + i, r.GetString(1));
            Assert.Equal(i < 19, await r.NextResultAsync());
        }
    }

    [Fact]
    public async Task Batch_ErrorInMiddle_LaterCommandsSkippedConnectionUsable()
    {
        await using NpgsqlConnection c = await OpenAsync();
        await using var batch = new NpgsqlBatch(c)
        {
            BatchCommands = { new("SELECT 1"), new("SELECT raise_error()"), new("SELECT 3") },
        };
        PostgresException e = await Assert.ThrowsAsync<PostgresException>(async () =>
        {
            await using NpgsqlDataReader r = await batch.ExecuteReaderAsync();
            while (await r.NextResultAsync())
            {
            }
        });
        Assert.Equal("22012", e.SqlState);
        await using var ok = new NpgsqlCommand("SELECT 4", c);
        Assert.Equal(4, await ok.ExecuteScalarAsync());
    }

    [Fact]
    public async Task Error_AllFields_ReachTheClient()
    {
        await using NpgsqlConnection c = await OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT raise_error()", c);
        PostgresException e = await Assert.ThrowsAsync<PostgresException>(() => cmd.ExecuteScalarAsync());
        Assert.Equal("ERROR", e.Severity);
        Assert.Equal("ERROR", e.InvariantSeverity);
        Assert.Equal("22012", e.SqlState);
        Assert.Equal("division by zero", e.MessageText);
        Assert.Equal("the detail", e.Detail);
        Assert.Equal("the hint", e.Hint);
        Assert.Equal(8, e.Position);
    }

    [Fact]
    public async Task Notice_DuringStatement_RaisedOnConnection()
    {
        await using NpgsqlConnection c = await OpenAsync();
        var notices = new List<PostgresNotice>();
        c.Notice += (_, args) => notices.Add(args.Notice);
        await using var cmd = new NpgsqlCommand("SELECT notice()", c);
        Assert.Equal("done", await cmd.ExecuteScalarAsync());
        PostgresNotice n = Assert.Single(notices);
        Assert.Equal("hello from notice", n.MessageText);
        Assert.Equal("NOTICE", n.Severity);
        Assert.Equal("notice detail", n.Detail);
    }

    [Fact]
    public async Task Cancel_LongStatement_Reports57014AndConnectionUsable()
    {
        await using NpgsqlConnection c = await OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT pg_sleep(60)", c);
        Task<object?> running = cmd.ExecuteScalarAsync();
        Assert.True(await _server.Database.SleepStarted.WaitAsync(TimeSpan.FromSeconds(20)));
        cmd.Cancel();
        OperationCanceledException canceled = await Assert.ThrowsAsync<OperationCanceledException>(() => running);
        PostgresException e = Assert.IsType<PostgresException>(canceled.InnerException);
        Assert.Equal("57014", e.SqlState);
        Assert.Equal("canceling statement due to user request", e.MessageText);
        await using var ok = new NpgsqlCommand("SELECT 1", c);
        Assert.Equal(1, await ok.ExecuteScalarAsync());
    }

    [Fact]
    public async Task Copy_TextInAndOut_RoundTripsRows()
    {
        _server.Database.Clear();
        await using NpgsqlConnection c = await OpenAsync();
        await using (TextWriter writer = await c.BeginTextImportAsync("COPY items FROM STDIN"))
        {
            for (int i = 0; i < 1000; i++)
            {
                await writer.WriteAsync($"{i}\tname {i}\n");
            }
        }

        Assert.Equal(1000, _server.Database.Snapshot().Length);
        using TextReader reader = await c.BeginTextExportAsync("COPY items TO STDOUT");
        string all = await reader.ReadToEndAsync();
        string[] lines = all.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(1000, lines.Length);
        Assert.Equal("999\tname 999", lines[^1]);
    }

    [Fact]
    public async Task Copy_CsvIn_Counts()
    {
        _server.Database.Clear();
        await using NpgsqlConnection c = await OpenAsync();
        await using (TextWriter writer = await c.BeginTextImportAsync("COPY items FROM STDIN WITH (FORMAT csv)"))
        {
            await writer.WriteAsync("1,a\n2,b\n");
        }

        Assert.Equal([1, 2], _server.Database.Snapshot().Select(i => i.Id));
    }

    [Fact]
    public async Task WrongPassword_Fails28P01()
    {
        var c = new NpgsqlConnection(_server.ConnectionString(password: "wrong", extra: "Pooling=false"));
        PostgresException e = await Assert.ThrowsAsync<PostgresException>(() => c.OpenAsync());
        Assert.Equal("28P01", e.SqlState);
        Assert.Equal("password authentication failed for user \"alice\"", e.MessageText);
        Assert.Equal("FATAL", e.Severity);
    }

    [Theory]
    [InlineData("mallory", TestServer.DatabaseName)]
    [InlineData(TestServer.User, "no_such_db")]
    public async Task UnknownUserOrDatabase_FailsExactlyLikeWrongPassword(string user, string database)
    {
        var c = new NpgsqlConnection(_server.ConnectionString(user: user, database: database, extra: "Pooling=false"));
        PostgresException e = await Assert.ThrowsAsync<PostgresException>(() => c.OpenAsync());
        Assert.Equal("28P01", e.SqlState);
        Assert.Equal($"password authentication failed for user \"{user}\"", e.MessageText);
        Assert.Equal("FATAL", e.Severity);
        Assert.Null(e.Detail);
        Assert.Null(e.Hint);
    }

    [Fact]
    public async Task MaxConnections_Exceeded_Fails53300AndOthersKeepWorking()
    {
        await using var server = new TestServer(new PgServerOptions { MaxConnections = 2 });
        string cs = server.ConnectionString(extra: "Pooling=false");
        await using var a = new NpgsqlConnection(cs);
        await using var b = new NpgsqlConnection(cs);
        await a.OpenAsync();
        await b.OpenAsync();
        await using var third = new NpgsqlConnection(cs);
        PostgresException e = await Assert.ThrowsAsync<PostgresException>(() => third.OpenAsync());
        Assert.Equal("53300", e.SqlState);
        await using var cmd = new NpgsqlCommand("SELECT 1", a);
        Assert.Equal(1, await cmd.ExecuteScalarAsync());
        await b.CloseAsync();
        await using var fourth = new NpgsqlConnection(cs);
        await WaitForAsync(() => server.Handler.ActiveSessions < 2);
        await fourth.OpenAsync();
    }

    [Fact]
    public async Task StatementTimeout_LongStatement_Reports57014()
    {
        await using var server = new TestServer(new PgServerOptions { StatementTimeout = TimeSpan.FromMilliseconds(300) });
        await using var c = new NpgsqlConnection(server.ConnectionString(extra: "Pooling=false"));
        await c.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT pg_sleep(60)", c);
        PostgresException e = await Assert.ThrowsAsync<PostgresException>(() => cmd.ExecuteScalarAsync());
        Assert.Equal("57014", e.SqlState);
        Assert.Equal("canceling statement due to statement timeout", e.MessageText);
    }

    [Fact]
    public async Task Tls_ScramOverSsl_Works()
    {
        await using var server = new TestServer(tls: true);
        await using var c = new NpgsqlConnection(server.ConnectionString(extra: "Pooling=false;SSL Mode=Require;Trust Server Certificate=true"));
        await c.OpenAsync();
        Assert.True(server.Database.LastStartup!.IsTls);
        Assert.Equal(PgAuthMethod.Scram, server.Database.LastStartup.AuthMethod);
        await using var cmd = new NpgsqlCommand("SELECT $1::text", c);
        cmd.Parameters.Add(new NpgsqlParameter { Value = "over tls", NpgsqlDbType = NpgsqlDbType.Text });
        Assert.Equal("over tls", await cmd.ExecuteScalarAsync());
    }

    [Fact]
    public async Task Jwt_OverTls_ValidTokenAccepted()
    {
        await using var server = new TestServer(tls: true);
        server.Authenticator.AddToken("data-token-1", PgAuthMethod.DataToken, TestServer.DatabaseName, "reader");
        await using var c = new NpgsqlConnection(server.ConnectionString(user: "reader", password: "data-token-1", extra: "Pooling=false;SSL Mode=Require;Options=--kdb:jwt=true"));
        await c.OpenAsync();
        Assert.Equal(PgAuthMethod.DataToken, server.Database.LastStartup!.AuthMethod);
        await using var cmd = new NpgsqlCommand("SELECT 1", c);
        Assert.Equal(1, await cmd.ExecuteScalarAsync());
    }

    [Theory]
    [InlineData("reader", TestServer.DatabaseName, "forged")]
    [InlineData("reader", "other_db", "data-token-1")]
    [InlineData("writer", TestServer.DatabaseName, "data-token-1")]
    public async Task Jwt_OverTls_WrongTokenDatabaseOrRole_Fails28P01(string user, string database, string token)
    {
        await using var server = new TestServer(tls: true);
        server.Authenticator.AddToken("data-token-1", PgAuthMethod.DataToken, TestServer.DatabaseName, "reader");
        await using var c = new NpgsqlConnection(server.ConnectionString(user: user, password: token, database: database, extra: "Pooling=false;SSL Mode=Require;Options=--kdb:jwt=true"));
        PostgresException e = await Assert.ThrowsAsync<PostgresException>(() => c.OpenAsync());
        Assert.Equal("28P01", e.SqlState);
        Assert.Equal($"password authentication failed for user \"{user}\"", e.MessageText);
    }

    [Fact]
    public async Task Jwt_WithoutTls_RefusedBeforePasswordIsSent()
    {
        _server.Authenticator.AddToken("data-token-1", PgAuthMethod.DataToken, TestServer.DatabaseName, "reader");
        await using var c = new NpgsqlConnection(_server.ConnectionString(user: "reader", password: "data-token-1", extra: "Pooling=false;SSL Mode=Disable;Options=--kdb:jwt=true"));
        PostgresException e = await Assert.ThrowsAsync<PostgresException>(() => c.OpenAsync());
        Assert.Equal("28P01", e.SqlState);
        Assert.Equal(0, _server.Authenticator.TokenChecks);
    }

    [Fact]
    public async Task Jwt_WithoutTlsOnLoopbackWithDevelopmentFlag_Accepted()
    {
        await using var server = new TestServer(new PgServerOptions { AllowTokenPasswordsWithoutTlsOnLoopback = true });
        server.Authenticator.AddToken("proxy-token", PgAuthMethod.Proxy, TestServer.DatabaseName, "app_owner");
        await using var c = new NpgsqlConnection(server.ConnectionString(user: "app_owner", password: "proxy-token", extra: "Pooling=false;SSL Mode=Disable;Options=--kdb:proxy=true"));
        await c.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT 'proxied'", c);
        Assert.Equal("proxied", await cmd.ExecuteScalarAsync());
    }

    internal static async Task WaitForAsync(Func<bool> condition)
    {
        for (int i = 0; i < 600 && !condition(); i++)
        {
            await Task.Delay(50);
        }

        Assert.True(condition());
    }
}
