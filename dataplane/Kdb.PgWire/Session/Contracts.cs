using Kdb.PgWire.Types;

namespace Kdb.PgWire.Session;

/// <summary>The transaction status reported in ReadyForQuery. Wire values: never change.</summary>
public enum PgTransactionStatus : byte
{
    /// <summary>Not in a transaction block.</summary>
    Idle = (byte)'I',

    /// <summary>In a transaction block.</summary>
    InTransaction = (byte)'T',

    /// <summary>In a failed transaction block: statements are refused until the block ends.</summary>
    Failed = (byte)'E',
}

/// <summary>How the connection authenticated.</summary>
public enum PgAuthMethod
{
    /// <summary>SCRAM-SHA-256 against the role's stored verifier.</summary>
    Scram = 1,

    /// <summary>A kdb data token (JWT) as a cleartext password (<c>options=--kdb:jwt=true</c>).</summary>
    DataToken = 2,

    /// <summary>A kdb proxy's backend connection (<c>options=--kdb:proxy=true</c>): user and database were authenticated by the proxy.</summary>
    Proxy = 3,
}

/// <summary>One result column, as RowDescription reports it.</summary>
/// <param name="Name">Column name (the alias).</param>
/// <param name="Type">Type OID; the row writer encodes values of this type.</param>
/// <param name="TypeModifier">atttypmod (-1 when none; varchar(n) is n + 4, numeric(p,s) is ((p &lt;&lt; 16) | s) + 4).</param>
/// <param name="TableOid">OID of the source table, or 0.</param>
/// <param name="ColumnAttributeNumber">attnum in the source table, or 0.</param>
public sealed record PgColumn(string Name, PgTypeOid Type, int TypeModifier = -1, uint TableOid = 0, short ColumnAttributeNumber = 0);

/// <summary>What the client asked for at startup, after authentication succeeded.</summary>
/// <param name="User">The role (startup <c>user</c>).</param>
/// <param name="Database">The database (startup <c>database</c>, defaulting to the user).</param>
/// <param name="Parameters">All startup parameters (application_name, client_encoding, DateStyle, ... and <c>-c name=value</c> / <c>--name=value</c> from options).</param>
/// <param name="AuthMethod">How the connection authenticated.</param>
/// <param name="IsTls">True when the connection runs over TLS.</param>
public sealed record PgStartup(string User, string Database, IReadOnlyDictionary<string, string> Parameters, PgAuthMethod AuthMethod, bool IsTls);

/// <summary>The outcome of executing a portal.</summary>
/// <param name="CommandTag">The CommandComplete tag (e.g. <c>SELECT 3</c>, <c>INSERT 0 1</c>); null when <paramref name="Suspended"/>.</param>
/// <param name="Suspended">True when the row limit was reached and rows remain: the portal stays open and a later Execute resumes it.</param>
public readonly record struct PgExecuteResult(string? CommandTag, bool Suspended)
{
    /// <summary>The portal ran to completion with this command tag.</summary>
    public static PgExecuteResult Completed(string commandTag) => new(commandTag, false);

    /// <summary>The row limit was reached; rows remain.</summary>
    public static PgExecuteResult PortalSuspended => new(null, true);
}

/// <summary>
/// An error the server reports with an ErrorResponse. The SQL engine throws it from any session
/// call; the protocol layer turns it into an ErrorResponse, calls <see cref="IPgSession.FailTransactionAsync"/>,
/// and (in the extended protocol) skips to the next Sync, as PostgreSQL does.
/// </summary>
public sealed class PgException : Exception
{
    /// <summary>Creates an error.</summary>
    /// <param name="sqlState">Five-character SQLSTATE, e.g. 42P01.</param>
    /// <param name="message">Primary message.</param>
    /// <param name="detail">Optional DETAIL.</param>
    /// <param name="hint">Optional HINT.</param>
    /// <param name="position">1-based character position in the statement text, 0 for none.</param>
    /// <param name="severity">ERROR, or FATAL to also close the connection.</param>
    public PgException(string sqlState, string message, string? detail = null, string? hint = null, int position = 0, string severity = "ERROR")
        : base(message)
    {
        SqlState = sqlState;
        Detail = detail;
        Hint = hint;
        Position = position;
        Severity = severity;
    }

    /// <summary>The SQLSTATE code.</summary>
    public string SqlState { get; }

    /// <summary>The DETAIL field, or null.</summary>
    public string? Detail { get; }

    /// <summary>The HINT field, or null.</summary>
    public string? Hint { get; }

    /// <summary>1-based position in the query text, 0 when none.</summary>
    public int Position { get; }

    /// <summary>ERROR or FATAL (FATAL closes the connection after reporting).</summary>
    public string Severity { get; }
}

/// <summary>A NoticeResponse (severity NOTICE, WARNING, INFO, ...).</summary>
public sealed record PgNotice(string Severity, string SqlState, string Message, string? Detail = null, string? Hint = null);

/// <summary>Common SQLSTATE codes used by the protocol layer.</summary>
public static class PgSqlState
{
    /// <summary>protocol_violation.</summary>
    public const string ProtocolViolation = "08P01";

    /// <summary>invalid_password: every failed login.</summary>
    public const string InvalidPassword = "28P01";

    /// <summary>invalid_authorization_specification.</summary>
    public const string InvalidAuthorization = "28000";

    /// <summary>query_canceled: CancelRequest and statement timeout.</summary>
    public const string QueryCanceled = "57014";

    /// <summary>idle_session_timeout.</summary>
    public const string IdleSessionTimeout = "57P05";

    /// <summary>too_many_connections.</summary>
    public const string TooManyConnections = "53300";

    /// <summary>invalid_text_representation.</summary>
    public const string InvalidTextRepresentation = "22P02";

    /// <summary>invalid_binary_representation.</summary>
    public const string InvalidBinaryRepresentation = "22P03";

    /// <summary>numeric_value_out_of_range.</summary>
    public const string NumericValueOutOfRange = "22003";

    /// <summary>undefined_pstatement (unknown prepared statement).</summary>
    public const string UndefinedPreparedStatement = "26000";

    /// <summary>invalid_cursor_name (unknown portal).</summary>
    public const string InvalidCursorName = "34000";

    /// <summary>duplicate_pstatement.</summary>
    public const string DuplicatePreparedStatement = "42P05";

    /// <summary>duplicate_cursor.</summary>
    public const string DuplicateCursor = "42P03";

    /// <summary>feature_not_supported.</summary>
    public const string FeatureNotSupported = "0A000";

    /// <summary>internal_error.</summary>
    public const string InternalError = "XX000";

    /// <summary>program_limit_exceeded (message too large).</summary>
    public const string ProgramLimitExceeded = "54000";
}
