using Kdb.Testing.Postgres;
using Npgsql;
using Xunit.Abstractions;

namespace Kdb.Testing.Tests;

[Collection(TestCollections.Postgres)]
public sealed class PostgresFixtureTests(PostgresFixture server, PostgresDatabaseFixture database, ITestOutputHelper output)
    : IClassFixture<PostgresDatabaseFixture>
{
    [Fact]
    public async Task ClassDatabase_CreateTableInsertAndSelect_ReadsRowsBack()
    {
        await using var connection = await database.OpenConnectionAsync();
        await Execute(connection, "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL)");
        await Execute(connection, "INSERT INTO items VALUES (1, 'one'), (2, 'two'), (3, 'three')");

        await using var command = new NpgsqlCommand("SELECT id, name FROM items ORDER BY id", connection);
        await using var reader = await command.ExecuteReaderAsync();
        var rows = new List<(int, string)>();
        while (await reader.ReadAsync())
        {
            rows.Add((reader.GetInt32(0), reader.GetString(1)));
        }

        Assert.Equal([(1, "one"), (2, "two"), (3, "three")], rows);
    }

    [Fact]
    public async Task ClassDatabase_Connection_IsTheClassDatabaseOnTheSharedServer()
    {
        await using var connection = await database.OpenConnectionAsync();

        Assert.Equal(database.Name, await Scalar<string>(connection, "SELECT current_database()"));
        Assert.Same(server, database.Server);
        Assert.StartsWith("class_", database.Name, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Server_Settings_LoopbackOnlyAndTunedForTests()
    {
        await using var connection = new NpgsqlConnection(server.ConnectionString);
        await connection.OpenAsync();

        Assert.Equal("127.0.0.1", await Scalar<string>(connection, "SHOW listen_addresses"));
        Assert.Equal(server.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), await Scalar<string>(connection, "SHOW port"));
        Assert.Equal("off", await Scalar<string>(connection, "SHOW fsync"));
        Assert.Equal(server.SocketDirectory, await Scalar<string>(connection, "SHOW unix_socket_directories"));
        Assert.StartsWith("PostgreSQL 15", await Scalar<string>(connection, "SELECT version()"), StringComparison.Ordinal);
        Assert.True(await Scalar<bool>(connection, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"));
        Assert.Contains("database system is ready to accept connections", server.ServerLog, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CreateDatabaseAsync_TwoDatabases_AreIsolatedAndDroppedOnDispose()
    {
        var first = await server.CreateDatabaseAsync("Iso Lation!");
        var second = await server.CreateDatabaseAsync("isolation");
        Assert.Matches("^iso_lation__[0-9a-f]{12}$", first.Name);
        Assert.NotEqual(first.Name, second.Name);

        await using (var connection = await first.OpenConnectionAsync())
        {
            await Execute(connection, "CREATE TABLE only_in_first (x int)");
        }

        await using (var connection = await second.OpenConnectionAsync())
        {
            Assert.Null(await Scalar<string?>(connection, "SELECT to_regclass('only_in_first')::text"));
        }

        // An open session must not stop the drop.
        var lingering = await first.OpenConnectionAsync();
        await first.DisposeAsync();
        await second.DisposeAsync();
        await lingering.DisposeAsync();

        await using var admin = new NpgsqlConnection(server.ConnectionString);
        await admin.OpenAsync();
        await using var check = new NpgsqlCommand("SELECT count(*) FROM pg_database WHERE datname = ANY(@names)", admin);
        check.Parameters.AddWithValue("names", new[] { first.Name, second.Name });
        Assert.Equal(0L, (long)(await check.ExecuteScalarAsync())!);
    }

    [Fact]
    public async Task BadSql_SyntaxErrorAndMissingTable_ThrowPostgresExceptionsAndTheServerStaysUsable()
    {
        await using var connection = await database.OpenConnectionAsync();

        var syntax = await Assert.ThrowsAsync<PostgresException>(() => Execute(connection, "SELEKT 1"));
        var missing = await Assert.ThrowsAsync<PostgresException>(() => Execute(connection, "SELECT * FROM no_such_table"));

        Assert.Equal(PostgresErrorCodes.SyntaxError, syntax.SqlState);
        Assert.Equal(PostgresErrorCodes.UndefinedTable, missing.SqlState);
        Assert.Equal(1, await Scalar<int>(connection, "SELECT 1"));
    }

    [Fact]
    public async Task ConnectionStringFor_MissingDatabase_FailsWithInvalidCatalogName()
    {
        await using var connection = new NpgsqlConnection(server.ConnectionStringFor("no_such_database"));

        var error = await Assert.ThrowsAsync<PostgresException>(() => connection.OpenAsync());

        output.WriteLine(error.Message);
        Assert.Equal(PostgresErrorCodes.InvalidCatalogName, error.SqlState);
    }

    private static async Task Execute(NpgsqlConnection connection, string sql)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    private static async Task<T> Scalar<T>(NpgsqlConnection connection, string sql)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        var value = await command.ExecuteScalarAsync();
        return value is DBNull ? default! : (T)value!;
    }
}
