namespace Kdb.Sql;

/// <summary>
/// An error the SQL engine reports to the client, with PostgreSQL's SQLSTATE. Every failure of a
/// statement surfaces as this type; anything else escaping the engine is a bug (reported as XX000).
/// </summary>
public sealed class SqlException : Exception
{
    /// <summary>Creates an error.</summary>
    /// <param name="sqlState">Five-character SQLSTATE, e.g. 42P01.</param>
    /// <param name="message">Primary message, worded as PostgreSQL words it where kdb mirrors it.</param>
    /// <param name="position">1-based character position in the statement text, 0 for none.</param>
    /// <param name="detail">Optional DETAIL.</param>
    /// <param name="hint">Optional HINT.</param>
    public SqlException(string sqlState, string message, int position = 0, string? detail = null, string? hint = null)
        : base(message)
    {
        SqlState = sqlState;
        Position = position;
        Detail = detail;
        Hint = hint;
    }

    /// <summary>The SQLSTATE code.</summary>
    public string SqlState { get; }

    /// <summary>1-based character position in the statement text, 0 when none.</summary>
    public int Position { get; }

    /// <summary>DETAIL, or null.</summary>
    public string? Detail { get; }

    /// <summary>HINT, or null.</summary>
    public string? Hint { get; }
}

/// <summary>The SQLSTATE codes the engine raises (PostgreSQL's appendix A).</summary>
public static class SqlState
{
    public const string SyntaxError = "42601";
    public const string UndefinedTable = "42P01";
    public const string UndefinedColumn = "42703";
    public const string UndefinedFunction = "42883";
    public const string UndefinedObject = "42704";
    public const string DuplicateTable = "42P07";
    public const string DuplicateSchema = "42P06";
    public const string DuplicateColumn = "42701";
    public const string DuplicateObject = "42710";
    public const string DuplicateAlias = "42712";
    public const string AmbiguousColumn = "42702";
    public const string DatatypeMismatch = "42804";
    public const string CannotCoerce = "42846";
    public const string GroupingError = "42803";
    public const string WindowingError = "42P20";
    public const string InvalidColumnReference = "42P10";
    public const string WrongObjectType = "42809";
    public const string InvalidTableDefinition = "42P16";
    public const string InsufficientPrivilege = "42501";
    public const string FeatureNotSupported = "0A000";
    public const string NotNullViolation = "23502";
    public const string ForeignKeyViolation = "23503";
    public const string InvalidForeignKey = "42830";
    public const string UniqueViolation = "23505";
    public const string CheckViolation = "23514";
    public const string DivisionByZero = "22012";
    public const string NumericValueOutOfRange = "22003";
    public const string InvalidTextRepresentation = "22P02";
    public const string InvalidDatetimeFormat = "22007";
    public const string DatetimeFieldOverflow = "22008";
    public const string StringDataRightTruncation = "22001";
    public const string CardinalityViolation = "21000";
    public const string InvalidParameterValue = "22023";
    public const string InvalidEscapeSequence = "22025";
    public const string InvalidJsonText = "22P02";
    public const string DataException = "22000";
    public const string NullValueNotAllowed = "22004";
    public const string SerializationFailure = "40001";
    public const string InFailedTransaction = "25P02";
    public const string ActiveSqlTransaction = "25001";
    public const string NoActiveSqlTransaction = "25P01";
    public const string ReadOnlyTransaction = "25006";
    public const string InvalidTransactionState = "25000";
    public const string InvalidSavepoint = "3B001";
    public const string InvalidCursorName = "34000";
    public const string UndefinedPreparedStatement = "26000";
    public const string DuplicatePreparedStatement = "42P05";
    public const string DependentObjectsStillExist = "2BP01";
    public const string ObjectNotInPrerequisiteState = "55000";
    public const string OutOfMemory = "53200";
    public const string QueryCanceled = "57014";
    public const string ProgramLimitExceeded = "54000";
    public const string TooManyColumns = "54011";
    public const string InternalError = "XX000";
    public const string InvalidCatalogName = "3D000";
    public const string InvalidSchemaName = "3F000";
    public const string ProtocolViolation = "08P01";
    public const string IndeterminateDatatype = "42P18";
    public const string UndefinedParameter = "42P02";
    public const string QuotaSuspended = "53400";
}
