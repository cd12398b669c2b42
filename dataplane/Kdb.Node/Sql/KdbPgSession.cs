using Kdb.PgWire.Session;
using Kdb.PgWire.Types;
using Kdb.Sql;
using Kdb.Sql.Catalog;
using Kdb.Sql.Planning;
using Kdb.Sql.Sessions;
using Kdb.Sql.Syntax;
using Kdb.Sql.Types;

namespace Kdb.Node.Sql;

/// <summary>
/// One client connection's session: the protocol library's <see cref="IPgSession"/> over the SQL engine's
/// <see cref="SqlSession"/>. Engine errors become ErrorResponses with their SQLSTATE, detail, hint and position.
/// </summary>
internal sealed class KdbPgSession(SqlSession session) : IPgSession
{
    private static readonly HashSet<string> NotSettings = new(StringComparer.OrdinalIgnoreCase)
    {
        "user", "database", "options", "replication",
    };

    public SqlSession Inner => session;

    public IReadOnlyList<KeyValuePair<string, string>> InitialParameterStatus { get; } = [];

    /// <summary>Applies startup settings (client_encoding, DateStyle, application_name, <c>-c</c> options); a bad one refuses the connection as PostgreSQL does.</summary>
    public void ApplyStartup(PgStartup startup)
    {
        foreach (var (name, value) in startup.Parameters)
        {
            if (NotSettings.Contains(name) || name.StartsWith("_pq_", StringComparison.Ordinal) || name.StartsWith("kdb:", StringComparison.Ordinal))
            {
                continue;
            }

            try
            {
                session.ApplyStartupParameter(name, value);
            }
            catch (SqlException e)
            {
                throw new PgException(e.SqlState, e.Message, e.Detail, e.Hint, severity: "FATAL");
            }
        }
    }

    public IReadOnlyList<string> SplitStatements(string sql)
    {
        try
        {
            return session.SplitStatements(sql);
        }
        catch (SqlException e)
        {
            throw SqlErrors.ToPg(e);
        }
    }

    public ValueTask<IPgStatement> PrepareAsync(string sql, ReadOnlyMemory<PgTypeOid> parameterTypes, CancellationToken cancellationToken)
    {
        if (!Thread.CurrentThread.IsThreadPoolThread)
        {
            // Parsing and planning have no bound on their cost: never on a socket's completion thread (see PoolHop).
            return PrepareOnPoolAsync(sql, parameterTypes, cancellationToken);
        }

        try
        {
            if (CopyCommand.LooksLikeCopy(sql) && SqlParser.Parse(sql) is CopyStatement copy)
            {
                return ValueTask.FromResult<IPgStatement>(new CopyCommand(session, copy, sql));
            }

            SqlTypeId[]? types = null;
            if (!parameterTypes.IsEmpty)
            {
                var span = parameterTypes.Span;
                types = new SqlTypeId[span.Length];
                for (var i = 0; i < span.Length; i++)
                {
                    types[i] = (SqlTypeId)(uint)span[i];
                }
            }

            var preparing = session.PrepareAsync(sql, types, cancellationToken);
            return preparing.IsCompletedSuccessfully
                ? ValueTask.FromResult<IPgStatement>(new KdbPgStatement(preparing.Result))
                : PrepareSlowAsync(preparing);
        }
        catch (SqlException e)
        {
            throw SqlErrors.ToPg(e);
        }
    }

    private async ValueTask<IPgStatement> PrepareOnPoolAsync(string sql, ReadOnlyMemory<PgTypeOid> parameterTypes, CancellationToken cancellationToken)
    {
        await PoolHop.IfOffPool();
        return await PrepareAsync(sql, parameterTypes, cancellationToken);
    }

    // Outside a transaction the catalog needs a snapshot, which on a clustered node waits for a ReadIndex round trip.
    private static async ValueTask<IPgStatement> PrepareSlowAsync(ValueTask<SqlStatement> preparing)
    {
        try
        {
            return new KdbPgStatement(await preparing);
        }
        catch (SqlException e)
        {
            throw SqlErrors.ToPg(e);
        }
    }

    public async ValueTask<PgTransactionStatus> SyncAsync(CancellationToken cancellationToken)
    {
        if (session.SyncCommits)
        {
            // Encoding a commit record costs as much as the transaction wrote: not on a socket's completion thread.
            await PoolHop.IfOffPool();
        }

        try
        {
            return (PgTransactionStatus)(byte)await session.SyncAsync(cancellationToken);
        }
        catch (SqlException e)
        {
            throw SqlErrors.ToPg(e);
        }
    }

    public ValueTask FailTransactionAsync()
    {
        session.Fail();
        return ValueTask.CompletedTask;
    }

    public ValueTask DisposeAsync()
    {
        session.Dispose();
        return ValueTask.CompletedTask;
    }
}

/// <summary>A prepared statement: parameter and result types as the engine resolved them.</summary>
internal sealed class KdbPgStatement : IPgStatement
{
    private readonly SqlStatement _statement;
    private readonly SqlType[] _parameterTypes;
    private RowCodecCache? _rowCodecs;

    // The last disposed portal, kept with its value array for the next Bind (no allocation per execution).
    private KdbPgPortal? _sparePortal;

    public KdbPgStatement(SqlStatement statement)
    {
        _statement = statement;
        _parameterTypes = [.. statement.ParameterTypes];
        var wire = new PgTypeOid[_parameterTypes.Length];
        for (var i = 0; i < wire.Length; i++)
        {
            wire[i] = PgValues.WireType(_parameterTypes[i]);
        }

        ParameterTypes = wire;
        if (statement.Columns is { } columns)
        {
            var described = new PgColumn[columns.Count];
            for (var i = 0; i < described.Length; i++)
            {
                described[i] = PgValues.Column(columns[i]);
            }

            Columns = described;
        }
    }

    public ReadOnlyMemory<PgTypeOid> ParameterTypes { get; }

    public IReadOnlyList<PgColumn>? Columns { get; }

    /// <summary>
    /// The engine types and wire types a portal encodes its rows with, computed once per result shape: every
    /// execution of a prepared statement reuses them (the engine hands out a new shape only after a catalog change).
    /// </summary>
    internal (SqlType[] Types, PgTypeOid[] Wire) RowCodecs(IReadOnlyList<ResultColumn>? resultColumns)
    {
        var cached = _rowCodecs;
        if (cached is not null && ReferenceEquals(cached.Source, resultColumns))
        {
            return (cached.Types, cached.Wire);
        }

        var count = Columns?.Count ?? 0;
        var types = new SqlType[count];
        var wire = new PgTypeOid[count];
        for (var i = 0; i < count; i++)
        {
            types[i] = resultColumns is not null && i < resultColumns.Count ? resultColumns[i].Type : SqlType.Text;
            wire[i] = Columns![i].Type;
        }

        _rowCodecs = new RowCodecCache(resultColumns, types, wire);
        return (types, wire);
    }

    public IPgPortal Bind(PgParameters parameters)
    {
        var portal = _sparePortal ?? new KdbPgPortal(this, _statement);
        _sparePortal = null;
        var values = portal.Values.Length == parameters.Count ? portal.Values : new Value[parameters.Count];
        try
        {
            // Decoded here so that a malformed value fails the Bind, as in PostgreSQL.
            for (var i = 0; i < values.Length; i++)
            {
                values[i] = PgValues.Read(parameters, i, i < _parameterTypes.Length ? _parameterTypes[i] : SqlType.Text);
            }
        }
        catch
        {
            Array.Clear(values);
            _sparePortal = portal;
            throw;
        }

        portal.Start(values);
        return portal;
    }

    /// <summary>Takes back a disposed portal of this statement for the next Bind.</summary>
    internal void ReturnPortal(KdbPgPortal portal) => _sparePortal ??= portal;

    public void Dispose()
    {
    }

    private sealed record RowCodecCache(IReadOnlyList<ResultColumn>? Source, SqlType[] Types, PgTypeOid[] Wire);
}

/// <summary>
/// A bound statement. Its cursor streams rows straight into the connection's output; a row limit suspends it
/// after that many rows (without looking ahead, as PostgreSQL does) and a later Execute resumes it. Once disposed it
/// goes back to its statement, which hands it out again on a later Bind: the protocol layer drops every reference to
/// a portal it disposed.
/// </summary>
internal sealed class KdbPgPortal(KdbPgStatement owner, SqlStatement statement) : IPgPortal
{
    private SqlCursor? _cursor;
    private SqlType[] _types = [];
    private PgTypeOid[] _wire = [];
    private Value[] _parameters = [];
    private bool _bound;

    /// <summary>The parameter values of the current binding (kept after disposal for reuse).</summary>
    internal Value[] Values => _parameters;

    internal void Start(Value[] parameters)
    {
        _parameters = parameters;
        _bound = true;
    }

    public async ValueTask<PgExecuteResult> ExecuteAsync(PgExecutionContext context)
    {
        // Only bounded work (a point read, a point write, BEGIN) runs on a socket's completion thread; anything else
        // continues on the thread pool (see PoolHop). A transaction of point statements then costs one hand-off, its commit's.
        if (!statement.IsBounded)
        {
            await PoolHop.IfOffPool();
        }

        try
        {
            if (_cursor is null)
            {
                var executing = statement.ExecuteAsync(_parameters, context.CancellationToken);
                var waited = !executing.IsCompleted;
                _cursor = await executing;
                if (!statement.IsPointRead && (waited || !statement.IsBounded))
                {
                    // Resumed wherever a wait ended (a row lock, a snapshot), or rebound after a catalog change into
                    // something else (its rows are read below).
                    await PoolHop.IfOffPool();
                }

                PrepareColumns(_cursor);
            }

            var cursor = _cursor;
            var rows = context.Rows;
            var written = 0;
            var max = context.MaxRows;
            var token = context.CancellationToken;
            while (cursor.MoveNext())
            {
                token.ThrowIfCancellationRequested();
                var row = cursor.Current;
                rows.BeginRow();
                for (var i = 0; i < _wire.Length; i++)
                {
                    if (RegValues.PrintsAsName(_types[i].Id) && !row[i].IsNull && (_wire[i] == PgTypeOid.Text || rows.FormatOf(i) == PgFormat.Text))
                    {
                        // regclass and friends print as names: only the engine's catalog knows them.
                        PgValues.WriteName(rows, cursor.FormatText(row[i], _types[i]), _wire[i]);
                    }
                    else
                    {
                        PgValues.Write(rows, row[i], _types[i], _wire[i]);
                    }
                }

                var pending = rows.EndRowAsync();
                if (!pending.IsCompletedSuccessfully)
                {
                    await pending;
                    await PoolHop.IfOffPool();
                }

                if (max > 0 && ++written >= max)
                {
                    return PgExecuteResult.PortalSuspended;
                }
            }

            foreach (var notice in cursor.Notices)
            {
                context.SendNotice(SqlErrors.ToPg(notice));
            }

            foreach (var (name, value) in cursor.ParameterChanges)
            {
                context.ReportParameterStatus(name, value);
            }

            var tag = cursor.CommandTag ?? string.Empty;
            if (tag == "DISCARD ALL")
            {
                context.DiscardAll();
            }

            return PgExecuteResult.Completed(tag);
        }
        catch (SqlException e)
        {
            throw SqlErrors.ToPg(e);
        }
    }

    private void PrepareColumns(SqlCursor cursor)
    {
        // The protocol described the statement's columns; a row is encoded by those (the engine rebinds on catalog changes).
        (_types, _wire) = owner.RowCodecs(cursor.Columns ?? statement.Columns);
    }

    public void Dispose()
    {
        if (!_bound)
        {
            return;
        }

        _bound = false;
        _cursor?.Dispose();
        _cursor = null;

        // Text and bytea values would otherwise stay reachable until the next Bind.
        Array.Clear(_parameters);
        owner.ReturnPortal(this);
    }
}
