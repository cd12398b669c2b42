using Npgsql;

namespace Kdb.Testing.Postgres;

/// <summary>A database created on a <see cref="PostgresFixture"/> for one test class; disposing it drops it (WITH FORCE).</summary>
public sealed class TestDatabase : IAsyncDisposable
{
    private readonly PostgresFixture _server;
    private int _disposed;

    internal TestDatabase(PostgresFixture server, string name, string connectionString)
    {
        _server = server;
        Name = name;
        ConnectionString = connectionString;
    }

    /// <summary>The database name (lowercase, unique per run).</summary>
    public string Name { get; }

    /// <summary>Superuser connection string to this database.</summary>
    public string ConnectionString { get; }

    /// <summary>Opens a new connection to this database.</summary>
    public async Task<NpgsqlConnection> OpenConnectionAsync(CancellationToken cancellationToken = default)
    {
        var connection = new NpgsqlConnection(ConnectionString);
        try
        {
            await connection.OpenAsync(cancellationToken);
            return connection;
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    /// <summary>Drops the database, closing any session still connected to it.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            await _server.DropDatabaseAsync(Name, ConnectionString);
        }
    }
}
