using System.Security.Cryptography;
using System.Text;
using Npgsql;

namespace Kdb.Testing.Postgres;

/// <summary>
/// A private PostgreSQL server for one xunit collection: <c>initdb</c> into a temporary directory, started on a
/// free loopback port (as the <c>postgres</c> user when the tests run as root), with fsync off and trust
/// authentication on loopback; stopped (<c>pg_ctl stop -m immediate</c>) and deleted on dispose.
/// Use it as an <c>ICollectionFixture</c> (see <see cref="TestCollections.Postgres"/>), and give each test class
/// a database of its own with <see cref="PostgresDatabaseFixture"/> or <see cref="CreateDatabaseAsync"/>.
/// </summary>
public sealed class PostgresFixture : IAsyncLifetime
{
    private readonly List<string> _connectionStrings = [];
    private readonly Lock _gate = new();
    private PostgresServer? _server;

    /// <summary>Always 127.0.0.1.</summary>
    public string Host => "127.0.0.1";

    /// <summary>The server's TCP port.</summary>
    public int Port => Server.Port;

    /// <summary>Superuser name ("postgres").</summary>
    public string Username => PostgresServer.Superuser;

    /// <summary>Superuser password (loopback connections are trusted, but clients that insist on a password get this one).</summary>
    public string Password => PostgresServer.SuperuserPassword;

    /// <summary>Directory of the server's Unix socket (for psql -h).</summary>
    public string SocketDirectory => Server.SocketDirectory;

    /// <summary>The data directory (deleted on dispose).</summary>
    public string DataDirectory => Server.DataDirectory;

    /// <summary>Connection string for the superuser to the <c>postgres</c> maintenance database.</summary>
    public string ConnectionString => ConnectionStringFor("postgres");

    /// <summary>What the server has written to stderr so far (its log), for failing tests to print.</summary>
    public string ServerLog => Server.Log;

    private PostgresServer Server => _server ?? throw new InvalidOperationException("The PostgreSQL fixture has not been initialized.");

    /// <summary>Superuser connection string for <paramref name="database"/> on this server.</summary>
    public string ConnectionStringFor(string database)
    {
        ArgumentException.ThrowIfNullOrEmpty(database);
        var connectionString = Server.ConnectionString(database);
        lock (_gate)
        {
            if (!_connectionStrings.Contains(connectionString))
            {
                _connectionStrings.Add(connectionString);
            }
        }

        return connectionString;
    }

    /// <summary>
    /// Creates an empty database with a unique name (<paramref name="prefix"/> + random suffix, lowercase) that
    /// disposing the result drops again.
    /// </summary>
    public async Task<TestDatabase> CreateDatabaseAsync(string prefix = "test", CancellationToken cancellationToken = default)
    {
        var name = UniqueName(prefix);
        await using (var connection = new NpgsqlConnection(ConnectionString))
        {
            await connection.OpenAsync(cancellationToken);
            await using var command = new NpgsqlCommand($"CREATE DATABASE \"{name}\"", connection);
            await command.ExecuteNonQueryAsync(cancellationToken);
        }

        return new TestDatabase(this, name, ConnectionStringFor(name));
    }

    /// <summary>Starts the server.</summary>
    public async Task InitializeAsync() => _server = await PostgresServer.StartAsync(CancellationToken.None);

    /// <summary>Stops the server and deletes its directory.</summary>
    public async Task DisposeAsync()
    {
        string[] connectionStrings;
        lock (_gate)
        {
            connectionStrings = [.. _connectionStrings];
        }

        // Idle pooled connections would otherwise linger, pointing at a dead port.
        foreach (var connectionString in connectionStrings)
        {
            using var connection = new NpgsqlConnection(connectionString);
            NpgsqlConnection.ClearPool(connection);
        }

        if (_server is not null)
        {
            await _server.DisposeAsync();
            _server = null;
        }
    }

    internal async Task DropDatabaseAsync(string name, string connectionString)
    {
        using (var pooled = new NpgsqlConnection(connectionString))
        {
            NpgsqlConnection.ClearPool(pooled);
        }

        if (_server is null)
        {
            return;
        }

        await using var connection = new NpgsqlConnection(ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)", connection);
        await command.ExecuteNonQueryAsync();
    }

    private static string UniqueName(string prefix)
    {
        // Identifier characters only, so the name never needs escaping beyond the double quotes used above.
        var clean = new StringBuilder();
        foreach (var c in prefix.ToLowerInvariant())
        {
            if (clean.Length == 40)
            {
                break;
            }

            clean.Append(char.IsAsciiLetterOrDigit(c) ? c : '_');
        }

        if (clean.Length == 0 || !char.IsAsciiLetter(clean[0]))
        {
            clean.Insert(0, 'd');
        }

        return $"{clean}_{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6))}";
    }
}
