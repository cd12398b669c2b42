using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Kdb.PgWire.Session;
using Kdb.PgWire.Types;

namespace Kdb.PgWire.Tests.Support;

internal sealed class TestSessionFactory(TestDatabase database) : IPgSessionFactory
{
    public ValueTask<IPgSession> OpenAsync(PgStartup startup, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref database.OpenSessions);
        database.LastStartup = startup;
        return ValueTask.FromResult<IPgSession>(new TestSession(database, startup));
    }
}

/// <summary>
/// A protocol test double: understands a fixed set of statement shapes over <see cref="TestDatabase"/>
/// (parameter echo with casts, generate_series, pg_sleep, an items table, transactions, COPY, SET,
/// DISCARD ALL, an error and a notice), enough to drive every protocol path with real clients.
/// </summary>
internal sealed partial class TestSession(TestDatabase database, PgStartup startup) : IPgSession
{
    private readonly List<TestDatabase.Item> _insertedInTransaction = [];
    private PgTransactionStatus _status = PgTransactionStatus.Idle;

    public TestDatabase Database => database;

    public PgStartup Startup => startup;

    public IReadOnlyList<KeyValuePair<string, string>> InitialParameterStatus { get; } = [new("is_superuser", "off")];

    public IReadOnlyList<string> SplitStatements(string sql)
    {
        var result = new List<string>();
        var current = new StringBuilder();
        bool quoted = false;
        foreach (char c in sql)
        {
            if (c == '\'')
            {
                quoted = !quoted;
            }

            if (c == ';' && !quoted)
            {
                Add();
                continue;
            }

            current.Append(c);
        }

        Add();
        return result;

        void Add()
        {
            string s = current.ToString().Trim();
            current.Clear();
            if (s.Length > 0)
            {
                result.Add(s);
            }
        }
    }

    public ValueTask<IPgStatement> PrepareAsync(string sql, ReadOnlyMemory<PgTypeOid> parameterTypes, CancellationToken cancellationToken)
    {
        database.Log.Enqueue(sql);
        string norm = Spaces().Replace(sql.Trim().TrimEnd(';'), " ");
        return ValueTask.FromResult<IPgStatement>(TestStatement.Create(this, norm, parameterTypes.Span));
    }

    public ValueTask<PgTransactionStatus> SyncAsync(CancellationToken cancellationToken) => ValueTask.FromResult(_status);

    public ValueTask FailTransactionAsync()
    {
        if (_status == PgTransactionStatus.InTransaction)
        {
            _status = PgTransactionStatus.Failed;
        }

        return ValueTask.CompletedTask;
    }

    public ValueTask DisposeAsync()
    {
        Interlocked.Decrement(ref database.OpenSessions);
        return ValueTask.CompletedTask;
    }

    internal void CheckNotFailed(TestStatement.StatementKind kind)
    {
        if (_status == PgTransactionStatus.Failed && kind is not (TestStatement.StatementKind.Commit or TestStatement.StatementKind.Rollback))
        {
            throw new PgException("25P02", "current transaction is aborted, commands ignored until end of transaction block");
        }
    }

    internal string Begin(PgExecutionContext context)
    {
        if (_status != PgTransactionStatus.Idle)
        {
            context.SendNotice(new PgNotice("WARNING", "25001", "there is already a transaction in progress"));
        }
        else
        {
            _status = PgTransactionStatus.InTransaction;
            _insertedInTransaction.Clear();
        }

        return "BEGIN";
    }

    internal string End(bool commit)
    {
        bool failed = _status == PgTransactionStatus.Failed;
        if (!commit || failed)
        {
            foreach (TestDatabase.Item item in _insertedInTransaction)
            {
                database.Remove(item);
            }
        }

        _insertedInTransaction.Clear();
        _status = PgTransactionStatus.Idle;
        return commit && !failed ? "COMMIT" : "ROLLBACK";
    }

    internal void Inserted(TestDatabase.Item item)
    {
        if (_status == PgTransactionStatus.InTransaction)
        {
            _insertedInTransaction.Add(item);
        }
    }

    internal static PgTypeOid TypeFromName(string name) => name.ToLowerInvariant() switch
    {
        "bool" or "boolean" => PgTypeOid.Bool,
        "int2" or "smallint" => PgTypeOid.Int2,
        "int4" or "int" or "integer" => PgTypeOid.Int4,
        "int8" or "bigint" => PgTypeOid.Int8,
        "float4" or "real" => PgTypeOid.Float4,
        "float8" => PgTypeOid.Float8,
        "numeric" => PgTypeOid.Numeric,
        "text" => PgTypeOid.Text,
        "varchar" => PgTypeOid.Varchar,
        "bpchar" => PgTypeOid.Bpchar,
        "bytea" => PgTypeOid.Bytea,
        "date" => PgTypeOid.Date,
        "timestamp" => PgTypeOid.Timestamp,
        "timestamptz" => PgTypeOid.TimestampTz,
        "interval" => PgTypeOid.Interval,
        "uuid" => PgTypeOid.Uuid,
        "jsonb" => PgTypeOid.Jsonb,
        _ => throw new PgException("42704", $"type \"{name}\" does not exist"),
    };

    internal static string Invariant(long v) => v.ToString(CultureInfo.InvariantCulture);

    [GeneratedRegex(@"\s+")]
    private static partial Regex Spaces();
}
