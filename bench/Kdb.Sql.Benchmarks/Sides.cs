using Kdb.Sql.Sessions;
using Kdb.Sql.Transactions;
using Kdb.Sql.Types;
using Kdb.Storage;
using Microsoft.Data.Sqlite;

namespace Kdb.Sql.Benchmarks;

/// <summary>Sizes and durations of one run.</summary>
internal sealed record BenchSettings(int PointRows, int JoinRows, int GroupRows, double Seconds, double WarmupSeconds, int QueryRepeats)
{
    public static readonly BenchSettings Quick = new(100_000, 100_000, 1_000_000, 3, 1, 3);

    public static readonly BenchSettings Full = new(1_000_000, 100_000, 1_000_000, 10, 3, 5);
}

/// <summary>kdb's SQL engine over its storage engine in a directory of its own.</summary>
internal sealed class KdbSide : IAsyncDisposable
{
    public const int SyncIntervalMs = 100;

    private readonly IKvEngine _engine;

    private KdbSide(IKvEngine engine, SqlSession session)
    {
        _engine = engine;
        Session = session;
    }

    public SqlSession Session { get; }

    public static ValueTask<KdbSide> OpenAsync(string directory)
    {
        var engine = KvEngine.Open(directory, new EngineOptions { Durability = DurabilityMode.Periodic, SyncIntervalMs = SyncIntervalMs });
        var database = new SqlDatabase(new LocalSqlStore(engine), 42, "bench");
        return ValueTask.FromResult(new KdbSide(engine, database.OpenSession("owner", SqlRoleKind.Owner)));
    }

    public async ValueTask<string> ScalarAsync(string sql)
    {
        var results = await Session.ExecuteAsync(sql);
        var last = results[^1];
        return ValueText.Format(last.Rows[0][0], last.Columns![0].Type);
    }

    public async ValueTask RunAsync(string sql) => await Session.ExecuteAsync(sql);

    public ValueTask DisposeAsync()
    {
        Session.Dispose();
        _engine.Dispose();
        return ValueTask.CompletedTask;
    }
}

/// <summary>SQLite in WAL mode with synchronous=NORMAL, the usual setting for an embedded database that must survive a process crash.</summary>
internal sealed class SqliteSide : IDisposable
{
    private SqliteSide(SqliteConnection connection) => Connection = connection;

    public SqliteConnection Connection { get; }

    public static SqliteSide Open(string path)
    {
        var connection = new SqliteConnection($"Data Source={path};Pooling=False");
        connection.Open();
        var side = new SqliteSide(connection);
        side.Run("PRAGMA journal_mode=WAL");
        side.Run("PRAGMA synchronous=NORMAL");
        return side;
    }

    public void Run(string sql)
    {
        using var command = Connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    public string Scalar(string sql)
    {
        using var command = Connection.CreateCommand();
        command.CommandText = sql;
        return Convert.ToString(command.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture) ?? "NULL";
    }

    /// <summary>Loads rows through one prepared INSERT in a single transaction.</summary>
    public void Load(string insertSql, int count, Action<SqliteParameterCollection, int> bind)
    {
        using var transaction = Connection.BeginTransaction();
        using var command = Connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = insertSql;
        bind(command.Parameters, 0);
        command.Prepare();
        for (var i = 1; i <= count; i++)
        {
            bind(command.Parameters, i);
            command.ExecuteNonQuery();
        }

        transaction.Commit();
    }

    public void Dispose() => Connection.Dispose();
}
