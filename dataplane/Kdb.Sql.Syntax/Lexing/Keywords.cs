using System.Collections.Frozen;

namespace Kdb.Sql.Syntax.Lexing;

/// <summary>
/// PostgreSQL 15's keyword classes (src/include/parser/kwlist.h), as far as this parser needs them.
/// Reserved words can never be a column, table or function name unquoted; type/function-name words
/// can name functions and types but not columns or tables; column-name words can name columns but
/// get special syntax as functions or types.
/// </summary>
internal static class Keywords
{
    private static readonly string[] ReservedWords =
    [
        "all", "analyse", "analyze", "and", "any", "array", "as", "asc", "asymmetric", "both", "case", "cast",
        "check", "collate", "column", "constraint", "create", "current_catalog", "current_date", "current_role",
        "current_time", "current_timestamp", "current_user", "default", "deferrable", "desc", "distinct", "do",
        "else", "end", "except", "false", "fetch", "for", "foreign", "from", "grant", "group", "having", "in",
        "initially", "intersect", "into", "lateral", "leading", "limit", "localtime", "localtimestamp", "not",
        "null", "offset", "on", "only", "or", "order", "placing", "primary", "references", "returning", "select",
        "session_user", "some", "symmetric", "table", "then", "to", "trailing", "true", "union", "unique", "user",
        "using", "variadic", "when", "where", "window", "with",
    ];

    private static readonly string[] TypeFunctionWords =
    [
        "authorization", "binary", "collation", "concurrently", "cross", "current_schema", "freeze", "full",
        "ilike", "inner", "is", "isnull", "join", "left", "like", "natural", "notnull", "outer", "overlaps",
        "right", "similar", "tablesample", "verbose",
    ];

    private static readonly string[] ColumnNameWords =
    [
        "between", "bigint", "bit", "boolean", "char", "character", "coalesce", "dec", "decimal", "exists",
        "extract", "float", "greatest", "grouping", "inout", "int", "integer", "interval", "least", "national",
        "nchar", "none", "normalize", "nullif", "numeric", "out", "overlay", "position", "precision", "real",
        "row", "setof", "smallint", "substring", "time", "timestamp", "treat", "trim", "values", "varchar",
        "xmlattributes", "xmlconcat", "xmlelement", "xmlexists", "xmlforest", "xmlnamespaces", "xmlparse", "xmlpi",
        "xmlroot", "xmlserialize", "xmltable",
    ];

    // PostgreSQL 15's AS_LABEL keywords (pg_get_keywords() where not barelabel): every other word,
    // reserved ones included, may follow a select-list expression as an alias without AS.
    private static readonly string[] NotBareLabelWords =
    [
        "array", "as", "char", "character", "create", "day", "except", "fetch", "filter", "for", "from", "grant",
        "group", "having", "hour", "intersect", "into", "isnull", "limit", "minute", "month", "notnull", "offset",
        "on", "order", "over", "overlaps", "precision", "returning", "second", "to", "union", "varying", "where",
        "window", "with", "within", "without", "year",
    ];

    // Unreserved words this parser gives meaning to; interned so the lexer does not allocate them.
    private static readonly string[] OtherWords =
    [
        "abort", "access", "action", "add", "after", "alter", "always", "at", "begin", "by", "cache", "called",
        "cascade", "chain", "characteristics", "comment", "commit", "committed", "conflict", "constraints",
        "continue", "copy", "csv", "cycle", "data", "day", "deallocate", "delimiter", "delete", "discard",
        "double", "drop", "each", "encoding", "escape", "exclusive", "execute", "exists", "explain", "filter",
        "first", "following", "force", "format", "generated", "global", "groups", "header", "hour", "identity",
        "if", "immediate", "include", "increment", "index", "insert", "isolation", "key", "last", "level",
        "local", "lock", "match", "maxvalue", "minute", "minvalue", "mode", "month", "names", "next", "no",
        "nothing", "nowait", "nulls", "of", "ordinality", "over", "owned", "partition", "plans", "preceding",
        "precision", "prepare", "quote", "range", "read", "recursive", "release", "rename", "repeatable",
        "replace", "reset", "restart", "restrict", "rollback", "rows", "savepoint", "schema", "second",
        "sequence", "sequences", "serializable", "session", "set", "share", "show", "skip", "start", "stdin",
        "stdout", "storage", "temp", "temporary", "ties", "transaction", "truncate", "type", "unbounded",
        "uncommitted", "unknown", "unlogged", "update", "vacuum", "valid", "varying", "view", "within",
        "without", "work", "write", "year", "zone", "stored", "verbose", "timezone", "ordinality",
    ];

    private static readonly FrozenSet<string> Reserved = FrozenSet.Create(StringComparer.Ordinal, ReservedWords);
    private static readonly FrozenSet<string> TypeFunction = FrozenSet.Create(StringComparer.Ordinal, TypeFunctionWords);
    private static readonly FrozenSet<string> ColumnName = FrozenSet.Create(StringComparer.Ordinal, ColumnNameWords);

    private static readonly FrozenSet<string> NotBareLabel = FrozenSet.Create(StringComparer.Ordinal, NotBareLabelWords);

    private static readonly Dictionary<string, string> Interned = BuildInterned();

    /// <summary>Looks a lowercase span up among the known words without allocating.</summary>
    public static readonly Dictionary<string, string>.AlternateLookup<ReadOnlySpan<char>> InternLookup =
        Interned.GetAlternateLookup<ReadOnlySpan<char>>();

    /// <summary>Reserved: never an unquoted column, table, alias or function name.</summary>
    public static bool IsReserved(string word) => Reserved.Contains(word);

    /// <summary>Can name a function or type but not a column or table.</summary>
    public static bool IsTypeFunctionName(string word) => TypeFunction.Contains(word);

    /// <summary>Column-name keyword (special syntax as a function or type).</summary>
    public static bool IsColumnNameKeyword(string word) => ColumnName.Contains(word);

    /// <summary>False for the keywords that need AS before them as a column alias.</summary>
    public static bool IsBareLabel(string word) => !NotBareLabel.Contains(word);

    /// <summary>Words <c>quote_ident</c> must quote: every keyword that is not unreserved.</summary>
    public static bool NeedsQuoting(string word) => Reserved.Contains(word) || TypeFunction.Contains(word) || ColumnName.Contains(word);

    private static Dictionary<string, string> BuildInterned()
    {
        var d = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var list in new[] { ReservedWords, TypeFunctionWords, ColumnNameWords, OtherWords, NotBareLabelWords })
        {
            foreach (var w in list)
            {
                d.TryAdd(w, w);
            }
        }

        return d;
    }
}
