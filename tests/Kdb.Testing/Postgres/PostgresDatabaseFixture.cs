using Npgsql;

namespace Kdb.Testing.Postgres;

/// <summary>
/// A fresh database per test class on the collection's shared server: use it as an <c>IClassFixture</c> in a class
/// of the <see cref="TestCollections.Postgres"/> collection (xunit passes the collection's
/// <see cref="PostgresFixture"/> to its constructor). The database is dropped when the class is done.
/// </summary>
public sealed class PostgresDatabaseFixture(PostgresFixture server) : IAsyncLifetime
{
    private TestDatabase? _database;

    /// <summary>The shared server.</summary>
    public PostgresFixture Server { get; } = server;

    /// <summary>This class's database name.</summary>
    public string Name => Database.Name;

    /// <summary>Superuser connection string to this class's database.</summary>
    public string ConnectionString => Database.ConnectionString;

    private TestDatabase Database => _database ?? throw new InvalidOperationException("The database fixture has not been initialized.");

    /// <summary>Opens a new connection to this class's database.</summary>
    public Task<NpgsqlConnection> OpenConnectionAsync(CancellationToken cancellationToken = default) =>
        Database.OpenConnectionAsync(cancellationToken);

    /// <summary>Creates the database.</summary>
    public async Task InitializeAsync() => _database = await Server.CreateDatabaseAsync("class");

    /// <summary>Drops the database.</summary>
    public async Task DisposeAsync()
    {
        if (_database is not null)
        {
            await _database.DisposeAsync();
        }
    }
}
