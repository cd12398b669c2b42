namespace Kdb.Sql.Syntax;

/// <summary>Base of every statement node; <see cref="Position"/> is 1-based.</summary>
public abstract record Statement(int Position);

/// <summary>A possibly schema-qualified object name. <see cref="Schema"/> is null when unqualified.</summary>
public sealed record QualifiedName(int Position, string? Schema, string Name)
{
    /// <inheritdoc />
    public override string ToString() => Schema is null ? Name : Schema + "." + Name;
}

// ---------------------------------------------------------------- queries

/// <summary>One <c>name [(columns)] AS (query) [SEARCH ...] [CYCLE ...]</c> of a WITH clause.</summary>
public sealed record CommonTableExpr(string Name, IReadOnlyList<string>? ColumnNames, SelectStatement Query, CteSearch? Search = null, CteCycle? Cycle = null);

/// <summary><c>SEARCH {DEPTH | BREADTH} FIRST BY columns SET sequence_column</c> of a recursive CTE (PostgreSQL 14+).</summary>
public sealed record CteSearch(bool BreadthFirst, IReadOnlyList<string> Columns, string SequenceColumn);

/// <summary><c>CYCLE columns SET mark_column [TO value DEFAULT value] USING path_column</c> of a recursive CTE.</summary>
public sealed record CteCycle(IReadOnlyList<string> Columns, string MarkColumn, Expr? MarkValue, Expr? MarkDefault, string PathColumn);

/// <summary>Row-locking clause of a SELECT (accepted; kdb's serializable transactions make it redundant).</summary>
public sealed record LockingClause(string Strength, bool NoWait, bool SkipLocked);

/// <summary>
/// A complete query: WITH, a body (a SELECT core, a VALUES list or a set operation), ORDER BY, LIMIT and
/// OFFSET. Used as a statement, as a subquery and as an INSERT source.
/// </summary>
public sealed record SelectStatement(
    int Position,
    IReadOnlyList<CommonTableExpr> With,
    QueryBody Body,
    IReadOnlyList<OrderItem> OrderBy,
    Expr? Limit,
    Expr? Offset,
    LockingClause? Locking = null,
    bool Recursive = false) : Statement(Position);

/// <summary>The body of a query.</summary>
public abstract record QueryBody(int Position);

/// <summary>One select-list item; <see cref="Alias"/> is the AS name (or the bare alias) when given.</summary>
public sealed record SelectItem(Expr Expression, string? Alias);

/// <summary>A named window of a WINDOW clause.</summary>
public sealed record NamedWindow(string Name, WindowSpec Spec);

/// <summary>
/// <c>SELECT [DISTINCT [ON (...)]] items [FROM ...] [WHERE ...] [GROUP BY ...] [HAVING ...] [WINDOW ...]</c>.
/// <see cref="DistinctOn"/> is non-null only for DISTINCT ON. An empty <see cref="From"/> means no FROM.
/// </summary>
public sealed record SelectCore(
    int Position,
    bool Distinct,
    IReadOnlyList<Expr>? DistinctOn,
    IReadOnlyList<SelectItem> Items,
    IReadOnlyList<TableRef> From,
    Expr? Where,
    IReadOnlyList<Expr> GroupBy,
    Expr? Having,
    IReadOnlyList<NamedWindow> Windows) : QueryBody(Position);

/// <summary><c>VALUES (...), (...)</c>.</summary>
public sealed record ValuesBody(int Position, IReadOnlyList<IReadOnlyList<Expr>> Rows) : QueryBody(Position);

/// <summary>Set operators.</summary>
public enum SetOperator : byte
{
    Union = 0,
    Intersect = 1,
    Except = 2,
}

/// <summary><c>left UNION|INTERSECT|EXCEPT [ALL] right</c> (INTERSECT binds tighter than UNION/EXCEPT, as in PostgreSQL).</summary>
public sealed record SetOperationBody(int Position, SetOperator Operator, bool All, QueryBody Left, QueryBody Right) : QueryBody(Position);

/// <summary>A parenthesized query with its own ORDER BY/LIMIT used as an operand of a set operation.</summary>
public sealed record NestedQueryBody(int Position, SelectStatement Query) : QueryBody(Position);

// ---------------------------------------------------------------- FROM items

/// <summary>An item of a FROM clause.</summary>
public abstract record TableRef(int Position);

/// <summary>A table, view or CTE by name, with an optional alias and column aliases.</summary>
public sealed record NamedTableRef(int Position, QualifiedName Name, string? Alias, IReadOnlyList<string>? ColumnAliases) : TableRef(Position);

/// <summary>A subquery in FROM (alias required by PostgreSQL 15).</summary>
public sealed record SubqueryTableRef(int Position, SelectStatement Query, string? Alias, IReadOnlyList<string>? ColumnAliases, bool Lateral) : TableRef(Position);

/// <summary>A table function in FROM, e.g. <c>generate_series(1, 10) AS g(n)</c>.</summary>
public sealed record FunctionTableRef(int Position, FunctionCallExpr Function, string? Alias, IReadOnlyList<string>? ColumnAliases, bool Lateral, bool WithOrdinality) : TableRef(Position);

/// <summary>Join kinds.</summary>
public enum JoinKind : byte
{
    Inner = 0,
    Left = 1,
    Right = 2,
    Full = 3,
    Cross = 4,
}

/// <summary>
/// <c>left [NATURAL] {INNER|LEFT|RIGHT|FULL|CROSS} JOIN right [ON cond | USING (cols)]</c>. A comma in FROM is
/// not a join node: it yields separate <see cref="SelectCore.From"/> items.
/// </summary>
public sealed record JoinTableRef(int Position, JoinKind Kind, TableRef Left, TableRef Right, Expr? On, IReadOnlyList<string>? Using, bool Natural) : TableRef(Position);

// ---------------------------------------------------------------- DML

/// <summary>What ON CONFLICT does.</summary>
public sealed record OnConflictClause(
    IReadOnlyList<string>? TargetColumns,
    string? TargetConstraint,
    bool DoNothing,
    IReadOnlyList<SetClause> Updates,
    Expr? UpdateWhere);

/// <summary>
/// One assignment of UPDATE SET or ON CONFLICT DO UPDATE SET: <c>col = expr</c>. The multi-column form
/// <c>(a, b) = (x, y)</c> is expanded by the parser into one clause per column.
/// </summary>
public sealed record SetClause(string Column, Expr Value);

/// <summary>
/// <c>[WITH ...] INSERT INTO t [AS alias] [(cols)] {VALUES ... | SELECT ... | DEFAULT VALUES} [ON CONFLICT ...] [RETURNING ...]</c>.
/// <see cref="Source"/> is null for DEFAULT VALUES; a VALUES list arrives as a <see cref="SelectStatement"/>
/// whose body is a <see cref="ValuesBody"/> (its items may contain <see cref="DefaultExpr"/>).
/// </summary>
public sealed record InsertStatement(
    int Position,
    IReadOnlyList<CommonTableExpr> With,
    QualifiedName Table,
    string? Alias,
    IReadOnlyList<string>? Columns,
    SelectStatement? Source,
    OnConflictClause? OnConflict,
    IReadOnlyList<SelectItem>? Returning,
    bool Recursive = false) : Statement(Position);

/// <summary><c>[WITH ...] UPDATE t [AS alias] SET ... [FROM ...] [WHERE ...] [RETURNING ...]</c>.</summary>
public sealed record UpdateStatement(
    int Position,
    IReadOnlyList<CommonTableExpr> With,
    QualifiedName Table,
    string? Alias,
    IReadOnlyList<SetClause> Set,
    IReadOnlyList<TableRef> From,
    Expr? Where,
    IReadOnlyList<SelectItem>? Returning,
    bool Recursive = false) : Statement(Position);

/// <summary><c>[WITH ...] DELETE FROM t [AS alias] [USING ...] [WHERE ...] [RETURNING ...]</c>.</summary>
public sealed record DeleteStatement(
    int Position,
    IReadOnlyList<CommonTableExpr> With,
    QualifiedName Table,
    string? Alias,
    IReadOnlyList<TableRef> Using,
    Expr? Where,
    IReadOnlyList<SelectItem>? Returning,
    bool Recursive = false) : Statement(Position);

/// <summary><c>TRUNCATE [TABLE] t1, t2 [RESTART IDENTITY | CONTINUE IDENTITY] [CASCADE | RESTRICT]</c>.</summary>
public sealed record TruncateStatement(int Position, IReadOnlyList<QualifiedName> Tables, bool RestartIdentity, bool Cascade) : Statement(Position);

/// <summary>
/// <c>COPY t [(cols)] FROM STDIN | TO STDOUT [WITH] (FORMAT csv|text, HEADER [bool], DELIMITER 'c', NULL 's', QUOTE 'c', ESCAPE 'c')</c>,
/// also the old syntax (<c>WITH CSV HEADER DELIMITER ','</c>), and <c>COPY (query) TO STDOUT</c>.
/// Options are normalized to lowercase names; a bare option gets the value "true".
/// </summary>
public sealed record CopyStatement(
    int Position,
    QualifiedName? Table,
    IReadOnlyList<string>? Columns,
    SelectStatement? Query,
    bool From,
    IReadOnlyDictionary<string, string> Options) : Statement(Position);

// ---------------------------------------------------------------- DDL

/// <summary>Referential actions of a foreign key.</summary>
public enum ReferentialAction : byte
{
    NoAction = 0,
    Restrict = 1,
    Cascade = 2,
    SetNull = 3,
    SetDefault = 4,
}

/// <summary>Kinds of column and table constraints.</summary>
public enum ConstraintKind : byte
{
    NotNull = 0,
    Null = 1,
    Default = 2,
    Check = 3,
    Unique = 4,
    PrimaryKey = 5,
    ForeignKey = 6,

    /// <summary><c>GENERATED {ALWAYS|BY DEFAULT} AS IDENTITY</c>; <see cref="Constraint.IdentityAlways"/> tells which.</summary>
    Identity = 7,
}

/// <summary>
/// A column or table constraint. For column constraints <see cref="Columns"/> is empty (the column itself);
/// for table constraints it lists the columns. <see cref="Expression"/> holds a CHECK condition or a DEFAULT
/// value. Foreign keys use <see cref="ReferencedTable"/>, <see cref="ReferencedColumns"/> (null: the
/// referenced table's primary key), <see cref="OnDelete"/>, <see cref="OnUpdate"/>. An identity may carry
/// <c>(START WITH n INCREMENT BY m)</c> in <see cref="IdentityStart"/> and <see cref="IdentityIncrement"/>
/// (its other sequence options are accepted and not kept).
/// </summary>
public sealed record Constraint(
    int Position,
    string? Name,
    ConstraintKind Kind,
    IReadOnlyList<string> Columns,
    Expr? Expression = null,
    QualifiedName? ReferencedTable = null,
    IReadOnlyList<string>? ReferencedColumns = null,
    ReferentialAction OnDelete = ReferentialAction.NoAction,
    ReferentialAction OnUpdate = ReferentialAction.NoAction,
    bool IdentityAlways = false,
    bool Deferrable = false,
    long? IdentityStart = null,
    long? IdentityIncrement = null);

/// <summary>A column of CREATE TABLE or ALTER TABLE ADD COLUMN.</summary>
public sealed record ColumnDefinition(int Position, string Name, TypeName Type, IReadOnlyList<Constraint> Constraints);

/// <summary>
/// <c>CREATE [TEMP] TABLE [IF NOT EXISTS] name (columns and constraints) [WITH (storage params)]</c>, or
/// <c>CREATE TABLE name [(cols)] AS query</c> (<see cref="AsQuery"/> set, <see cref="Columns"/> then only names
/// with null types is not modelled: column aliases go in <see cref="AsColumnNames"/>).
/// </summary>
public sealed record CreateTableStatement(
    int Position,
    QualifiedName Name,
    bool IfNotExists,
    IReadOnlyList<ColumnDefinition> Columns,
    IReadOnlyList<Constraint> Constraints,
    IReadOnlyDictionary<string, string> StorageParameters,
    SelectStatement? AsQuery = null,
    IReadOnlyList<string>? AsColumnNames = null,
    bool Temporary = false) : Statement(Position);

/// <summary>One key column of an index: a column name or an expression, with direction.</summary>
public sealed record IndexColumn(Expr Expression, bool Descending, bool? NullsFirst);

/// <summary><c>CREATE [UNIQUE] INDEX [CONCURRENTLY] [IF NOT EXISTS] [name] ON t [USING method] (cols) [INCLUDE (...)] [WITH (...)] [WHERE ...]</c>.</summary>
public sealed record CreateIndexStatement(
    int Position,
    string? Name,
    QualifiedName Table,
    bool Unique,
    bool IfNotExists,
    IReadOnlyList<IndexColumn> Columns,
    IReadOnlyList<string> Include,
    string? Method,
    Expr? Where) : Statement(Position);

/// <summary><c>CREATE [OR REPLACE] VIEW name [(cols)] AS query</c>.</summary>
public sealed record CreateViewStatement(int Position, QualifiedName Name, bool OrReplace, IReadOnlyList<string>? Columns, SelectStatement Query, string Text) : Statement(Position);

/// <summary>
/// <c>CREATE SEQUENCE [IF NOT EXISTS] name [AS type] [INCREMENT [BY] n] [MINVALUE n | NO MINVALUE] [MAXVALUE n | NO MAXVALUE]
/// [START [WITH] n] [CACHE n] [[NO] CYCLE] [OWNED BY t.c | NONE]</c>. Absent options are null.
/// </summary>
public sealed record CreateSequenceStatement(
    int Position,
    QualifiedName Name,
    bool IfNotExists,
    string? DataType,
    long? Increment,
    long? MinValue,
    long? MaxValue,
    long? Start,
    long? Cache,
    bool? Cycle) : Statement(Position);

/// <summary><c>CREATE SCHEMA [IF NOT EXISTS] name</c>.</summary>
public sealed record CreateSchemaStatement(int Position, string Name, bool IfNotExists) : Statement(Position);

/// <summary>Kinds of objects DROP can name.</summary>
public enum ObjectKind : byte
{
    Table = 0,
    Index = 1,
    View = 2,
    Sequence = 3,
    Schema = 4,
}

/// <summary><c>DROP {TABLE|INDEX|VIEW|SEQUENCE|SCHEMA} [IF EXISTS] a, b [CASCADE|RESTRICT]</c>.</summary>
public sealed record DropStatement(int Position, ObjectKind Kind, IReadOnlyList<QualifiedName> Names, bool IfExists, bool Cascade) : Statement(Position);

/// <summary>One action of ALTER TABLE.</summary>
public abstract record AlterTableAction(int Position);

/// <summary><c>ADD [COLUMN] [IF NOT EXISTS] coldef</c>.</summary>
public sealed record AddColumnAction(int Position, ColumnDefinition Column, bool IfNotExists) : AlterTableAction(Position);

/// <summary><c>DROP [COLUMN] [IF EXISTS] name [CASCADE|RESTRICT]</c>.</summary>
public sealed record DropColumnAction(int Position, string Column, bool IfExists, bool Cascade) : AlterTableAction(Position);

/// <summary><c>ADD [CONSTRAINT name] {PRIMARY KEY|UNIQUE|CHECK|FOREIGN KEY} ...</c>.</summary>
public sealed record AddConstraintAction(int Position, Constraint Constraint) : AlterTableAction(Position);

/// <summary><c>DROP CONSTRAINT [IF EXISTS] name [CASCADE|RESTRICT]</c>.</summary>
public sealed record DropConstraintAction(int Position, string Name, bool IfExists, bool Cascade) : AlterTableAction(Position);

/// <summary>
/// <c>ALTER [COLUMN] name {SET DEFAULT expr | DROP DEFAULT | SET NOT NULL | DROP NOT NULL | [SET DATA] TYPE t [USING expr]}</c>:
/// exactly one of the optional members describes the change (<see cref="SetDefault"/> with <see cref="DropDefault"/> false, etc.).
/// </summary>
public sealed record AlterColumnAction(
    int Position,
    string Column,
    Expr? SetDefault = null,
    bool DropDefault = false,
    bool? SetNotNull = null,
    TypeName? NewType = null,
    Expr? Using = null) : AlterTableAction(Position);

/// <summary><c>RENAME TO name</c>.</summary>
public sealed record RenameTableAction(int Position, string NewName) : AlterTableAction(Position);

/// <summary><c>RENAME [COLUMN] a TO b</c>.</summary>
public sealed record RenameColumnAction(int Position, string Column, string NewName) : AlterTableAction(Position);

/// <summary><c>ALTER TABLE [IF EXISTS] [ONLY] name action, action ...</c>.</summary>
public sealed record AlterTableStatement(int Position, QualifiedName Table, bool IfExists, IReadOnlyList<AlterTableAction> Actions) : Statement(Position);

// ---------------------------------------------------------------- transactions, session, misc

/// <summary>Transaction control statement kinds.</summary>
public enum TransactionKind : byte
{
    /// <summary>BEGIN / START TRANSACTION.</summary>
    Begin = 0,

    /// <summary>COMMIT / END.</summary>
    Commit = 1,

    /// <summary>ROLLBACK / ABORT.</summary>
    Rollback = 2,

    Savepoint = 3,
    Release = 4,
    RollbackToSavepoint = 5,

    /// <summary>SET TRANSACTION ... (characteristics of the current transaction).</summary>
    SetTransaction = 6,
}

/// <summary>
/// BEGIN [ISOLATION LEVEL ...] [READ ONLY|READ WRITE] [[NOT] DEFERRABLE], COMMIT, ROLLBACK, SAVEPOINT s,
/// RELEASE [SAVEPOINT] s, ROLLBACK TO [SAVEPOINT] s, SET TRANSACTION ....
/// <see cref="IsolationLevel"/> is lowercase ("serializable", "repeatable read", "read committed", "read uncommitted").
/// </summary>
public sealed record TransactionStatement(int Position, TransactionKind Kind, string? Savepoint = null, string? IsolationLevel = null, bool? ReadOnly = null) : Statement(Position);

/// <summary>
/// <c>SET [SESSION|LOCAL] name {TO|=} value[, value] | DEFAULT</c>, also <c>SET TIME ZONE value</c> (name "timezone")
/// and <c>SET NAMES 'x'</c> (name "client_encoding"). <see cref="Values"/> holds each value's text (identifier,
/// string or number as written); empty for DEFAULT.
/// </summary>
public sealed record SetStatement(int Position, string Name, IReadOnlyList<string> Values, bool IsLocal) : Statement(Position);

/// <summary><c>SHOW name | SHOW ALL</c> (name "all"); <c>SHOW TRANSACTION ISOLATION LEVEL</c> → "transaction_isolation".</summary>
public sealed record ShowStatement(int Position, string Name) : Statement(Position);

/// <summary><c>RESET name | RESET ALL</c> (name "all").</summary>
public sealed record ResetStatement(int Position, string Name) : Statement(Position);

/// <summary><c>EXPLAIN [ANALYZE] [VERBOSE] stmt</c> and <c>EXPLAIN (options) stmt</c>.</summary>
public sealed record ExplainStatement(int Position, Statement Target, bool Analyze, bool Verbose) : Statement(Position);

/// <summary><c>PREPARE name [(types)] AS stmt</c>.</summary>
public sealed record PrepareStatement(int Position, string Name, IReadOnlyList<TypeName> ParameterTypes, Statement Target, string TargetText) : Statement(Position);

/// <summary><c>EXECUTE name [(args)]</c>.</summary>
public sealed record ExecuteStatement(int Position, string Name, IReadOnlyList<Expr> Arguments) : Statement(Position);

/// <summary><c>DEALLOCATE [PREPARE] {name | ALL}</c>; <see cref="Name"/> null means ALL.</summary>
public sealed record DeallocateStatement(int Position, string? Name) : Statement(Position);

/// <summary><c>VACUUM [...] [tables]</c> or <c>ANALYZE [tables]</c>: accepted as a no-op with a notice.</summary>
public sealed record MaintenanceStatement(int Position, string Command, IReadOnlyList<QualifiedName> Tables) : Statement(Position);

/// <summary><c>DISCARD {ALL|PLANS|SEQUENCES|TEMP}</c>.</summary>
public sealed record DiscardStatement(int Position, string What) : Statement(Position);

/// <summary><c>LOCK [TABLE] t [IN mode MODE] [NOWAIT]</c>: accepted (serializable validation makes it redundant).</summary>
public sealed record LockStatement(int Position, IReadOnlyList<QualifiedName> Tables) : Statement(Position);

/// <summary><c>COMMENT ON {TABLE|COLUMN|...} name IS 'text'</c>: accepted, stored nowhere (noted in docs).</summary>
public sealed record CommentStatement(int Position) : Statement(Position);

/// <summary><c>DO [LANGUAGE l] 'body'</c> (an anonymous code block); <see cref="Body"/> is the decoded body text.</summary>
public sealed record DoStatement(int Position, string Body, string? Language = null) : Statement(Position);

/// <summary>A statement that is only whitespace and comments (an empty query).</summary>
public sealed record EmptyStatement(int Position) : Statement(Position);

/// <summary><c>CLOSE name|ALL</c>, <c>LISTEN ch</c>, <c>UNLISTEN ch|*</c>, <c>NOTIFY ch [, 'payload']</c>: <see cref="Command"/> is the lowercase verb.</summary>
public sealed record UtilityStatement(int Position, string Command, string Target) : Statement(Position);
