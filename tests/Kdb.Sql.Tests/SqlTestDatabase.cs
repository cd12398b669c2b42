using Kdb.Sql.Sessions;
using Kdb.Sql.Transactions;
using Kdb.Sql.Types;
using Kdb.Storage;

namespace Kdb.Sql.Tests;

/// <summary>A tenant database over a real storage engine in a temporary directory.</summary>
public sealed class SqlTestDatabase : IDisposable
{
    private readonly string _directory;

    public SqlTestDatabase(ulong tenant = 42, string name = "testdb")
    {
        _directory = Path.Combine(Path.GetTempPath(), "kdb-sql-" + Guid.NewGuid().ToString("N"));
        Engine = KvEngine.Open(_directory, new EngineOptions { Durability = DurabilityMode.None });
        Store = new LocalSqlStore(Engine);
        Database = new SqlDatabase(Store, tenant, name);
    }

    public IKvEngine Engine { get; }

    public LocalSqlStore Store { get; }

    public SqlDatabase Database { get; }

    public SqlSession Session(SqlRoleKind role = SqlRoleKind.Owner, string user = "owner") => Database.OpenSession(user, role);

    public void Dispose()
    {
        Engine.Dispose();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>Helpers to run SQL and read results as text, the way psql prints values.</summary>
public static class SqlTestExtensions
{
    public static async Task<List<string[]>> QueryAsync(this SqlSession session, string sql, params object?[] args)
    {
        var results = await session.ExecuteAsync(sql, args.Length == 0 ? null : args.Select(ToValue).ToArray());
        var last = results[^1];
        return last.Rows.Select(r => r.Select((v, i) => v.IsNull ? "NULL" : ValueText.Format(v, last.Columns![i].Type)).ToArray()).ToList();
    }

    public static async Task<string> ScalarAsync(this SqlSession session, string sql, params object?[] args) => (await session.QueryAsync(sql, args))[0][0];

    public static async Task<string> RunAsync(this SqlSession session, string sql, params object?[] args)
    {
        var results = await session.ExecuteAsync(sql, args.Length == 0 ? null : args.Select(ToValue).ToArray());
        return results[^1].CommandTag;
    }

    public static async Task<SqlException> FailsAsync(this SqlSession session, string sql, string sqlState)
    {
        var e = await Assert.ThrowsAsync<SqlException>(() => session.ExecuteAsync(sql).AsTask());
        Assert.True(e.SqlState == sqlState, $"expected {sqlState}, got {e.SqlState}: {e.Message}");
        return e;
    }

    private static Value ToValue(object? o) => o switch
    {
        null => Value.Null,
        int i => Value.FromInt(i),
        long l => Value.FromInt(l),
        string s => Value.FromText(s),
        bool b => Value.FromBool(b),
        double d => Value.FromFloat(d),
        decimal m => Value.FromNumeric(m),
        _ => throw new ArgumentException("unsupported test argument " + o.GetType()),
    };
}
