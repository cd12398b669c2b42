namespace Kdb.Sql.Syntax;

// The abstract syntax tree the parser produces and the binder consumes. Nodes are immutable records.
// Every node carries a 1-based character position so that binder errors can point at the offending
// text, as PostgreSQL's do: the first token for most nodes, but the operator for infix and postfix
// forms (BinaryExpr, IS/ISNULL, BETWEEN, IN, ANY/ALL, COLLATE, x::type, x[i]), as PostgreSQL's
// "operator does not exist" and "cannot cast" errors point at the operator. Identifiers are already case-folded (unquoted
// names lowercased; quoted names kept verbatim).

/// <summary>Base of every expression node.</summary>
public abstract record Expr(int Position);

/// <summary>Kinds of literal tokens.</summary>
public enum LiteralKind : byte
{
    /// <summary>NULL.</summary>
    Null = 0,

    /// <summary>TRUE or FALSE; <see cref="LiteralExpr.Text"/> is "true" or "false".</summary>
    Boolean = 1,

    /// <summary>An integer literal without a decimal point or exponent (any length: the binder picks int4, int8 or numeric).</summary>
    Integer = 2,

    /// <summary>A numeric literal with a decimal point or exponent (numeric, as in PostgreSQL).</summary>
    Decimal = 3,

    /// <summary>A quoted string ('...', E'...', $$...$$): type unknown until context decides.</summary>
    String = 4,
}

/// <summary>A literal. <see cref="Text"/> is the decoded value text (escapes resolved for strings).</summary>
public sealed record LiteralExpr(int Position, LiteralKind Kind, string Text) : Expr(Position);

/// <summary>A parameter placeholder <c>$n</c>; <see cref="Number"/> is n (1-based).</summary>
public sealed record ParameterExpr(int Position, int Number) : Expr(Position);

/// <summary>
/// A column reference: <c>col</c>, <c>t.col</c>, <c>schema.t.col</c>. <see cref="Parts"/> holds the
/// dotted names in order (1 to 3 of them).
/// </summary>
public sealed record ColumnRefExpr(int Position, IReadOnlyList<string> Parts) : Expr(Position)
{
    /// <summary>The column name (last part).</summary>
    public string Column => Parts[^1];
}

/// <summary><c>*</c> or <c>t.*</c> in a select list (or <c>count(*)</c>'s argument); <see cref="Qualifier"/> is t or null.</summary>
public sealed record StarExpr(int Position, string? Qualifier) : Expr(Position);

/// <summary>Prefix operators.</summary>
public enum UnaryOp : byte
{
    Not = 0,
    Negate = 1,
    Plus = 2,
    BitNot = 3,
}

/// <summary>A prefix operator applied to an operand.</summary>
public sealed record UnaryExpr(int Position, UnaryOp Op, Expr Operand) : Expr(Position);

/// <summary>Infix operators.</summary>
public enum BinaryOp : byte
{
    Add = 0,
    Subtract = 1,
    Multiply = 2,
    Divide = 3,
    Modulo = 4,
    Power = 5,
    Concat = 6,
    Equal = 7,
    NotEqual = 8,
    Less = 9,
    LessOrEqual = 10,
    Greater = 11,
    GreaterOrEqual = 12,
    And = 13,
    Or = 14,
    Like = 15,
    NotLike = 16,
    ILike = 17,
    NotILike = 18,

    /// <summary>jsonb <c>-&gt;</c>.</summary>
    JsonGet = 19,

    /// <summary>jsonb <c>-&gt;&gt;</c>.</summary>
    JsonGetText = 20,

    /// <summary>POSIX regex <c>~</c>.</summary>
    RegexMatch = 21,

    /// <summary><c>!~</c>.</summary>
    NotRegexMatch = 22,

    /// <summary><c>~*</c>.</summary>
    RegexMatchInsensitive = 23,

    /// <summary><c>!~*</c>.</summary>
    NotRegexMatchInsensitive = 24,

    BitAnd = 25,
    BitOr = 26,
    ShiftLeft = 27,
    ShiftRight = 28,

    /// <summary>jsonb <c>@&gt;</c> (contains).</summary>
    JsonContains = 29,

    /// <summary>jsonb <c>?</c> (key exists).</summary>
    JsonHasKey = 30,
}

/// <summary>An infix operator. For LIKE/ILIKE with ESCAPE, <see cref="Escape"/> holds the escape expression.</summary>
public sealed record BinaryExpr(int Position, BinaryOp Op, Expr Left, Expr Right, Expr? Escape = null) : Expr(Position);

/// <summary><c>expr IS [NOT] NULL</c> (also <c>ISNULL</c>, <c>NOTNULL</c>).</summary>
public sealed record IsNullExpr(int Position, Expr Operand, bool Negated) : Expr(Position);

/// <summary><c>expr IS [NOT] TRUE|FALSE|UNKNOWN</c>; <see cref="Value"/> is true, false or null (UNKNOWN).</summary>
public sealed record IsBoolExpr(int Position, Expr Operand, bool? Value, bool Negated) : Expr(Position);

/// <summary><c>a IS [NOT] DISTINCT FROM b</c>.</summary>
public sealed record IsDistinctFromExpr(int Position, Expr Left, Expr Right, bool Negated) : Expr(Position);

/// <summary><c>expr [NOT] BETWEEN [SYMMETRIC] low AND high</c>.</summary>
public sealed record BetweenExpr(int Position, Expr Operand, Expr Low, Expr High, bool Negated, bool Symmetric) : Expr(Position);

/// <summary><c>expr [NOT] IN (a, b, ...)</c>.</summary>
public sealed record InListExpr(int Position, Expr Operand, IReadOnlyList<Expr> Items, bool Negated) : Expr(Position);

/// <summary><c>expr [NOT] IN (SELECT ...)</c>.</summary>
public sealed record InSubqueryExpr(int Position, Expr Operand, SelectStatement Query, bool Negated) : Expr(Position);

/// <summary><c>expr op ANY|SOME|ALL (SELECT ...)</c> or <c>expr op ANY(array-expr)</c>; exactly one of <see cref="Query"/> and <see cref="Array"/> is set.</summary>
public sealed record QuantifiedExpr(int Position, Expr Operand, BinaryOp Op, bool All, SelectStatement? Query, Expr? Array) : Expr(Position);

/// <summary><c>[NOT] EXISTS (SELECT ...)</c>.</summary>
public sealed record ExistsExpr(int Position, SelectStatement Query, bool Negated) : Expr(Position);

/// <summary>A parenthesized subquery used as a value.</summary>
public sealed record ScalarSubqueryExpr(int Position, SelectStatement Query) : Expr(Position);

/// <summary>One <c>WHEN cond THEN result</c> arm.</summary>
public sealed record CaseWhen(Expr Condition, Expr Result);

/// <summary><c>CASE [operand] WHEN ... THEN ... [ELSE ...] END</c>.</summary>
public sealed record CaseExpr(int Position, Expr? Operand, IReadOnlyList<CaseWhen> Whens, Expr? Else) : Expr(Position);

/// <summary>
/// A type name as written: <see cref="Name"/> is canonical lowercase with multi-word names joined by one
/// space ("double precision", "character varying", "timestamp with time zone", "timestamp without time
/// zone", "time with time zone"...; unquoted <c>char</c> becomes "character", so "char" means only the quoted
/// one-byte type), possibly schema-qualified ("pg_catalog.int4" → "int4", the schema dropped
/// when it is pg_catalog). <see cref="Modifiers"/> holds the numbers in parentheses (varchar(20) → [20],
/// numeric(10,2) → [10, 2]); <see cref="ArrayDimensions"/> counts trailing <c>[]</c>.
/// </summary>
public sealed record TypeName(int Position, string Name, IReadOnlyList<int> Modifiers, int ArrayDimensions = 0);

/// <summary><c>CAST(expr AS type)</c>, <c>expr::type</c>, or a typed literal (<c>DATE '2024-01-01'</c>, <c>INTERVAL '1 day'</c>).</summary>
public sealed record CastExpr(int Position, Expr Operand, TypeName Type) : Expr(Position);

/// <summary><c>expr COLLATE name</c> (accepted, ignored by the binder except for "C"/"POSIX"/"default").</summary>
public sealed record CollateExpr(int Position, Expr Operand, string Collation) : Expr(Position);

/// <summary>
/// A function call. <see cref="Name"/> holds the (lowercased) dotted name parts, e.g. ["count"] or
/// ["pg_catalog", "count"]. Special syntaxes are normalized by the parser:
/// <c>EXTRACT(field FROM x)</c> → extract('field', x); <c>SUBSTRING(x FROM a FOR b)</c> → substring(x, a, b);
/// <c>TRIM([BOTH|LEADING|TRAILING] [chars] FROM x)</c> → btrim/ltrim/rtrim(x[, chars]);
/// <c>POSITION(a IN b)</c> → position(a, b); <c>OVERLAY</c> is not supported;
/// <c>CURRENT_TIMESTAMP</c>, <c>CURRENT_DATE</c>, <c>CURRENT_TIME</c>, <c>LOCALTIMESTAMP</c>, <c>CURRENT_USER</c>,
/// <c>SESSION_USER</c>, <c>USER</c>, <c>CURRENT_SCHEMA</c>, <c>CURRENT_CATALOG</c> (no parentheses) → a call with
/// that lowercase name and no arguments, <see cref="NoParentheses"/> true;
/// <c>x AT TIME ZONE z</c> → timezone(z, x). <c>count(*)</c> has <see cref="Star"/> true and no arguments.
/// <see cref="OrderWithin"/> holds an aggregate's ORDER BY: inside the parentheses (<c>string_agg(x, ',' ORDER BY y)</c>)
/// when <see cref="WithinGroup"/> is false, or <c>WITHIN GROUP (ORDER BY ...)</c> of an ordered-set aggregate when true.
/// </summary>
public sealed record FunctionCallExpr(
    int Position,
    IReadOnlyList<string> Name,
    IReadOnlyList<Expr> Arguments,
    bool Distinct = false,
    bool Star = false,
    IReadOnlyList<OrderItem>? OrderWithin = null,
    Expr? Filter = null,
    WindowSpec? Over = null,
    bool NoParentheses = false,
    bool WithinGroup = false) : Expr(Position)
{
    /// <summary>The unqualified function name.</summary>
    public string SimpleName => Name[^1];
}

/// <summary>Window frame bound kinds.</summary>
public enum FrameBoundKind : byte
{
    UnboundedPreceding = 0,
    Preceding = 1,
    CurrentRow = 2,
    Following = 3,
    UnboundedFollowing = 4,
}

/// <summary>One bound of a window frame; <see cref="Offset"/> is set for PRECEDING/FOLLOWING with a value.</summary>
public sealed record FrameBound(FrameBoundKind Kind, Expr? Offset);

/// <summary>A frame clause: ROWS or RANGE (or GROUPS) BETWEEN start AND end.</summary>
public sealed record WindowFrame(string Units, FrameBound Start, FrameBound End);

/// <summary>
/// <c>OVER (...)</c> or <c>OVER name</c>: <see cref="Name"/> references a WINDOW clause entry (or the base
/// window of an inline spec).
/// </summary>
public sealed record WindowSpec(string? Name, IReadOnlyList<Expr> PartitionBy, IReadOnlyList<OrderItem> OrderBy, WindowFrame? Frame);

/// <summary><c>ARRAY[a, b]</c> or <c>'{...}'</c>-less array constructor.</summary>
public sealed record ArrayExpr(int Position, IReadOnlyList<Expr> Elements) : Expr(Position);

/// <summary><c>ARRAY(SELECT ...)</c>: an array of the subquery's single column.</summary>
public sealed record ArraySubqueryExpr(int Position, SelectStatement Query) : Expr(Position);

/// <summary><c>(a, b, ...)</c> with two or more elements, or <c>ROW(...)</c>.</summary>
public sealed record RowExpr(int Position, IReadOnlyList<Expr> Elements) : Expr(Position);

/// <summary><c>array[index]</c> subscript.</summary>
public sealed record SubscriptExpr(int Position, Expr Operand, Expr Index) : Expr(Position);

/// <summary>The keyword DEFAULT in an INSERT VALUES list or an UPDATE SET.</summary>
public sealed record DefaultExpr(int Position) : Expr(Position);

/// <summary>One ORDER BY item; <see cref="NullsFirst"/> null means the default (NULLS LAST for ASC, FIRST for DESC).</summary>
public sealed record OrderItem(Expr Expression, bool Descending, bool? NullsFirst);
