using Kdb.PgWire.Types;

namespace Kdb.PgWire.Session;

/// <summary>
/// Creates the SQL engine's session for a connection, once authentication succeeded. Implemented by
/// the SQL engine; called once per connection.
/// </summary>
public interface IPgSessionFactory
{
    /// <summary>
    /// Opens a session. Throw <see cref="PgException"/> (severity FATAL, e.g. 3D000 for a database that
    /// does not exist) to refuse it: the client gets the error and the connection closes.
    /// </summary>
    ValueTask<IPgSession> OpenAsync(PgStartup startup, CancellationToken cancellationToken);
}

/// <summary>
/// One client connection's SQL session. The protocol layer calls it from one task at a time (never
/// concurrently), except <see cref="IAsyncDisposable.DisposeAsync"/> which comes last.
/// </summary>
/// <remarks>
/// Lifecycle of a statement: <see cref="PrepareAsync"/> (Parse, or each statement of a simple query)
/// → <see cref="IPgStatement.Bind"/> (Bind) → <see cref="IPgPortal.ExecuteAsync"/> (Execute, possibly
/// several times when the client passes a row limit) → dispose. Errors: throw <see cref="PgException"/>.
/// </remarks>
public interface IPgSession : IAsyncDisposable
{
    /// <summary>
    /// ParameterStatus values sent after authentication, overriding or adding to the protocol layer's
    /// defaults (server_version, server_version_num, integer_datetimes, client_encoding, DateStyle,
    /// TimeZone, standard_conforming_strings, application_name, is_superuser, session_authorization).
    /// </summary>
    IReadOnlyList<KeyValuePair<string, string>> InitialParameterStatus { get; }

    /// <summary>
    /// Splits a simple-query string into its statements, in order (no statement is executed yet). An
    /// empty list makes the server answer EmptyQueryResponse. Throw <see cref="PgException"/> for a
    /// syntax error (nothing of the string runs then, as in PostgreSQL).
    /// </summary>
    IReadOnlyList<string> SplitStatements(string sql);

    /// <summary>
    /// Parses and analyzes one statement. <paramref name="parameterTypes"/> holds the types the client
    /// specified (<see cref="PgTypeOid.Unspecified"/> where it left the choice to the server); the result
    /// reports every parameter's resolved type.
    /// </summary>
    ValueTask<IPgStatement> PrepareAsync(string sql, ReadOnlyMemory<PgTypeOid> parameterTypes, CancellationToken cancellationToken);

    /// <summary>
    /// Called at Sync and at the end of a simple-query message: an implicit transaction commits
    /// (throw <see cref="PgException"/> if the commit fails). Returns the status for ReadyForQuery.
    /// </summary>
    ValueTask<PgTransactionStatus> SyncAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Called after any error was reported to the client, whether the engine or the protocol layer raised
    /// it: an explicit transaction block becomes failed (<see cref="PgTransactionStatus.Failed"/>), an
    /// implicit one is rolled back. Must not throw.
    /// </summary>
    ValueTask FailTransactionAsync();
}

/// <summary>A parsed and analyzed statement (a prepared statement on the protocol level).</summary>
public interface IPgStatement : IDisposable
{
    /// <summary>The resolved type of every parameter ($1 at index 0); never <see cref="PgTypeOid.Unspecified"/>.</summary>
    ReadOnlyMemory<PgTypeOid> ParameterTypes { get; }

    /// <summary>The result columns, or null when the statement returns no rows (the client gets NoData).</summary>
    IReadOnlyList<PgColumn>? Columns { get; }

    /// <summary>
    /// Binds parameter values, creating a portal. The parameters stay valid until the portal is disposed.
    /// Decode them with the typed getters of <see cref="PgParameters"/> (they handle text and binary).
    /// </summary>
    IPgPortal Bind(PgParameters parameters);
}

/// <summary>A bound statement that can run, possibly in several row-limited steps.</summary>
public interface IPgPortal : IDisposable
{
    /// <summary>
    /// Runs the portal, or resumes it after a suspension. Write result rows with
    /// <see cref="PgExecutionContext.Rows"/>; stop after <see cref="PgExecutionContext.MaxRows"/> rows
    /// (when non-zero) and return <see cref="PgExecuteResult.PortalSuspended"/> if rows remain. Observe
    /// <see cref="PgExecutionContext.CancellationToken"/> (CancelRequest, statement timeout): throwing
    /// <see cref="OperationCanceledException"/> reports 57014.
    /// </summary>
    ValueTask<PgExecuteResult> ExecuteAsync(PgExecutionContext context);
}

/// <summary>Authentication data the protocol layer needs; implemented by the node host.</summary>
public interface IPgAuthenticator
{
    /// <summary>
    /// The role's SCRAM-SHA-256 verifier in PostgreSQL's text form
    /// (<c>SCRAM-SHA-256$&lt;iterations&gt;:&lt;salt&gt;$&lt;StoredKey&gt;:&lt;ServerKey&gt;</c>), or null when the
    /// database or the role does not exist (the server then runs the exchange against a fake verifier).
    /// </summary>
    ValueTask<string?> GetScramVerifierAsync(string database, string user, CancellationToken cancellationToken);

    /// <summary>
    /// Validates a token sent as a cleartext password. For <see cref="PgAuthMethod.DataToken"/>: signature,
    /// expiry, <c>aud = kdb-data</c>, <c>db</c> = <paramref name="database"/>, <c>role</c> = <paramref name="user"/>.
    /// For <see cref="PgAuthMethod.Proxy"/>: a valid <c>kdb-internal</c> token with scope <c>kdb.proxy</c>.
    /// Returns false on any failure (the client gets the same 28P01 as for a wrong password).
    /// </summary>
    ValueTask<bool> ValidateTokenAsync(PgAuthMethod method, string token, string database, string user, CancellationToken cancellationToken);
}
