namespace Kdb.Sql.Syntax.Tests;

public class StatementParserTests
{
    private static T P<T>(string sql)
        where T : Statement => Assert.IsType<T>(SqlParser.Parse(sql));

    private static SelectCore Core(string sql) => Assert.IsType<SelectCore>(P<SelectStatement>(sql).Body);

    [Fact]
    public void Parse_PointSelect_Shape()
    {
        var q = P<SelectStatement>("SELECT abalance FROM pgbench_accounts WHERE aid = $1;");
        var core = Assert.IsType<SelectCore>(q.Body);
        Assert.Equal("abalance", Assert.IsType<ColumnRefExpr>(core.Items[0].Expression).Column);
        Assert.Equal("pgbench_accounts", Assert.IsType<NamedTableRef>(core.From[0]).Name.Name);
        var where = Assert.IsType<BinaryExpr>(core.Where);
        Assert.Equal(1, Assert.IsType<ParameterExpr>(where.Right).Number);
    }

    [Fact]
    public void Parse_SetOperations_IntersectBindsTighter()
    {
        var body = Assert.IsType<SetOperationBody>(P<SelectStatement>("SELECT 1 UNION SELECT 2 INTERSECT SELECT 3").Body);
        Assert.Equal(SetOperator.Union, body.Operator);
        Assert.Equal(SetOperator.Intersect, Assert.IsType<SetOperationBody>(body.Right).Operator);
        var left = Assert.IsType<SetOperationBody>(P<SelectStatement>("SELECT 1 EXCEPT ALL SELECT 2 UNION SELECT 3").Body);
        Assert.Equal(SetOperator.Union, left.Operator);
        Assert.True(Assert.IsType<SetOperationBody>(left.Left).All);
    }

    [Fact]
    public void Parse_WithRecursiveBeforeDml_KeepsTheFlagThroughTheFormatter()
    {
        const string cte = "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t WHERE n < 3) ";
        Assert.True(P<InsertStatement>(cte + "INSERT INTO x SELECT n FROM t").Recursive);
        Assert.True(P<UpdateStatement>(cte + "UPDATE x SET a = 1 WHERE a IN (SELECT n FROM t)").Recursive);
        Assert.True(P<DeleteStatement>(cte + "DELETE FROM x WHERE a IN (SELECT n FROM t)").Recursive);
        Assert.False(P<DeleteStatement>("WITH t AS (SELECT 1) DELETE FROM x").Recursive);
        var formatted = SqlFormatter.Format(SqlParser.Parse(cte + "DELETE FROM x WHERE a IN (SELECT n FROM t)"));
        Assert.StartsWith("WITH RECURSIVE t", formatted);
        Assert.True(Assert.IsType<DeleteStatement>(SqlParser.Parse(formatted)).Recursive);
    }

    [Fact]
    public void Parse_ParenthesizedOperandWithLimit_IsNestedQuery()
    {
        var body = Assert.IsType<SetOperationBody>(P<SelectStatement>("(SELECT a FROM t LIMIT 1) UNION SELECT 2 ORDER BY 1").Body);
        Assert.NotNull(Assert.IsType<NestedQueryBody>(body.Left).Query.Limit);
    }

    [Fact]
    public void Parse_OrderByLimitOffset_Shape()
    {
        var q = P<SelectStatement>("SELECT a FROM t ORDER BY 1 DESC NULLS FIRST, a LIMIT 5 OFFSET 10 FOR UPDATE");
        Assert.Equal(2, q.OrderBy.Count);
        Assert.True(q.OrderBy[0].Descending);
        Assert.True(q.OrderBy[0].NullsFirst);
        Assert.Null(q.OrderBy[1].NullsFirst);
        Assert.Equal("5", Assert.IsType<LiteralExpr>(q.Limit).Text);
        Assert.Equal("10", Assert.IsType<LiteralExpr>(q.Offset).Text);
        Assert.Equal("update", q.Locking!.Strength);
    }

    [Fact]
    public void Parse_Joins_LeftDeepAndNestedRight()
    {
        var j = Assert.IsType<JoinTableRef>(Core("SELECT * FROM a LEFT JOIN b ON a.x = b.x JOIN c USING (y)").From[0]);
        Assert.Equal(JoinKind.Inner, j.Kind);
        Assert.Equal(["y"], j.Using);
        Assert.Equal(JoinKind.Left, Assert.IsType<JoinTableRef>(j.Left).Kind);
        var nested = Assert.IsType<JoinTableRef>(Core("SELECT * FROM a JOIN b JOIN c ON b.x = c.x ON a.y = b.y").From[0]);
        Assert.IsType<JoinTableRef>(nested.Right);
        var cross = Assert.IsType<JoinTableRef>(Core("SELECT * FROM a CROSS JOIN b LEFT JOIN c ON c.x = a.x").From[0]);
        Assert.Equal(JoinKind.Left, cross.Kind);
        Assert.Equal(JoinKind.Cross, Assert.IsType<JoinTableRef>(cross.Left).Kind);
    }

    [Fact]
    public void Parse_CommaJoin_GivesSeparateFromItems()
    {
        Assert.Equal(3, Core("SELECT * FROM a, b x, c AS y (p, q)").From.Count);
        var c = Assert.IsType<NamedTableRef>(Core("SELECT * FROM a, b x, c AS y (p, q)").From[2]);
        Assert.Equal("y", c.Alias);
        Assert.Equal(["p", "q"], c.ColumnAliases);
    }

    [Fact]
    public void Parse_PgbenchPartitionProbe_LateralSubqueryWithColumnAliases()
    {
        var core = Core("select o.n, p.partstrat, pg_catalog.count(i.inhparent) from pg_catalog.pg_class as c join pg_catalog.pg_namespace as n on (n.oid = c.relnamespace) cross join lateral (select pg_catalog.array_position(pg_catalog.current_schemas(true), n.nspname)) as o(n) left join pg_catalog.pg_partitioned_table as p on (p.partrelid = c.oid) left join pg_catalog.pg_inherits as i on (c.oid = i.inhparent) where c.relname = 'pgbench_accounts' and o.n is not null group by 1, 2 order by 1 asc limit 1");
        var join = Assert.IsType<JoinTableRef>(core.From[0]);
        var cross = Assert.IsType<JoinTableRef>(Assert.IsType<JoinTableRef>(join.Left).Left);
        var lateral = Assert.IsType<SubqueryTableRef>(cross.Right);
        Assert.True(lateral.Lateral);
        Assert.Equal("o", lateral.Alias);
        Assert.Equal(["n"], lateral.ColumnAliases);
        Assert.Equal(2, core.GroupBy.Count);
    }

    [Fact]
    public void Parse_FunctionInFrom_WithAliasAndColumns()
    {
        var f = Assert.IsType<FunctionTableRef>(Core("SELECT * FROM generate_series(1, 100000) AS aid").From[0]);
        Assert.Equal("generate_series", f.Function.SimpleName);
        Assert.Equal("aid", f.Alias);
    }

    [Fact]
    public void Parse_SelectWithoutFrom_HasEmptyFrom()
    {
        Assert.Empty(Core("SELECT 1").From);
        Assert.Empty(Core("SELECT").Items);
    }

    [Fact]
    public void Parse_Insert_MultiRowValuesWithDefault()
    {
        var i = P<InsertStatement>("INSERT INTO s.t (a, b) VALUES (1, DEFAULT), (2, 3) RETURNING a");
        Assert.Equal("s", i.Table.Schema);
        Assert.Equal(["a", "b"], i.Columns);
        var values = Assert.IsType<ValuesBody>(i.Source!.Body);
        Assert.Equal(2, values.Rows.Count);
        Assert.IsType<DefaultExpr>(values.Rows[0][1]);
        Assert.Single(i.Returning!);
    }

    [Fact]
    public void Parse_InsertOnConflict_DoUpdate()
    {
        var i = P<InsertStatement>("INSERT INTO t AS x VALUES (1) ON CONFLICT (id) DO UPDATE SET v = excluded.v WHERE x.v > 0");
        Assert.Equal("x", i.Alias);
        Assert.Equal(["id"], i.OnConflict!.TargetColumns);
        Assert.False(i.OnConflict.DoNothing);
        Assert.Equal("v", Assert.Single(i.OnConflict.Updates).Column);
        Assert.NotNull(i.OnConflict.UpdateWhere);
        Assert.True(P<InsertStatement>("INSERT INTO t VALUES (1) ON CONFLICT DO NOTHING").OnConflict!.DoNothing);
        Assert.Null(P<InsertStatement>("INSERT INTO t DEFAULT VALUES").Source);
    }

    [Fact]
    public void Parse_UpdateMultiColumnSet_IsExpanded()
    {
        var u = P<UpdateStatement>("UPDATE t SET (a, b) = (1, 2), c = 3 WHERE id = 1");
        Assert.Equal(["a", "b", "c"], u.Set.Select(s => s.Column));
        Assert.Null(u.Alias);
    }

    [Fact]
    public void Parse_DeleteUsing_Shape()
    {
        var d = P<DeleteStatement>("DELETE FROM t x USING u WHERE u.id = x.id RETURNING *");
        Assert.Equal("x", d.Alias);
        Assert.Single(d.Using);
        Assert.IsType<StarExpr>(Assert.Single(d.Returning!).Expression);
    }

    [Fact]
    public void Parse_CreateTable_ColumnsConstraintsStorage()
    {
        var c = P<CreateTableStatement>("create table pgbench_tellers(tid int not null,bid int,tbalance int,filler char(84)) with (fillfactor=100)");
        Assert.Equal(4, c.Columns.Count);
        Assert.Equal(ConstraintKind.NotNull, Assert.Single(c.Columns[0].Constraints).Kind);
        Assert.Equal("character", c.Columns[3].Type.Name);
        Assert.Equal([84], c.Columns[3].Type.Modifiers);
        Assert.Equal("100", c.StorageParameters["fillfactor"]);
    }

    [Fact]
    public void Parse_CreateTable_EfCoreHistoryTable()
    {
        var c = P<CreateTableStatement>("CREATE TABLE IF NOT EXISTS \"__EFMigrationsHistory\" (\"MigrationId\" character varying(150) NOT NULL, \"ProductVersion\" character varying(32) NOT NULL, CONSTRAINT \"PK___EFMigrationsHistory\" PRIMARY KEY (\"MigrationId\"))");
        Assert.True(c.IfNotExists);
        Assert.Equal("__EFMigrationsHistory", c.Name.Name);
        Assert.Equal("character varying", c.Columns[0].Type.Name);
        var pk = Assert.Single(c.Constraints);
        Assert.Equal(ConstraintKind.PrimaryKey, pk.Kind);
        Assert.Equal("PK___EFMigrationsHistory", pk.Name);
        Assert.Equal(["MigrationId"], pk.Columns);
    }

    [Fact]
    public void Parse_ColumnConstraints_AllKinds()
    {
        var c = P<CreateTableStatement>("CREATE TABLE t (a int GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, b int DEFAULT 1 + 2 CHECK (b > 0) UNIQUE, c int CONSTRAINT fk REFERENCES u (id) ON DELETE SET NULL ON UPDATE CASCADE)");
        var a = c.Columns[0].Constraints;
        Assert.Equal(ConstraintKind.Identity, a[0].Kind);
        Assert.False(a[0].IdentityAlways);
        Assert.Equal(ConstraintKind.PrimaryKey, a[1].Kind);
        var b = c.Columns[1].Constraints;
        Assert.Equal(BinaryOp.Add, Assert.IsType<BinaryExpr>(b[0].Expression).Op);
        Assert.Equal(ConstraintKind.Check, b[1].Kind);
        Assert.Equal(ConstraintKind.Unique, b[2].Kind);
        var fk = Assert.Single(c.Columns[2].Constraints);
        Assert.Equal("fk", fk.Name);
        Assert.Equal(ReferentialAction.SetNull, fk.OnDelete);
        Assert.Equal(ReferentialAction.Cascade, fk.OnUpdate);
        Assert.Equal(["id"], fk.ReferencedColumns);
    }

    [Fact]
    public void Parse_CreateTableAs_Shape()
    {
        var c = P<CreateTableStatement>("CREATE TABLE x (a, b) AS SELECT 1, 2");
        Assert.Equal(["a", "b"], c.AsColumnNames);
        Assert.NotNull(c.AsQuery);
        Assert.Empty(c.Columns);
    }

    [Fact]
    public void Parse_CreateIndex_Shape()
    {
        var i = P<CreateIndexStatement>("CREATE UNIQUE INDEX IF NOT EXISTS ix ON t USING btree (a DESC, lower(b), (c + 1)) INCLUDE (d) WHERE a > 0");
        Assert.True(i.Unique);
        Assert.True(i.IfNotExists);
        Assert.Equal("btree", i.Method);
        Assert.Equal(3, i.Columns.Count);
        Assert.True(i.Columns[0].Descending);
        Assert.IsType<FunctionCallExpr>(i.Columns[1].Expression);
        Assert.IsType<BinaryExpr>(i.Columns[2].Expression);
        Assert.Equal(["d"], i.Include);
        Assert.NotNull(i.Where);
        Assert.Null(P<CreateIndexStatement>("CREATE INDEX ON t (a)").Name);
    }

    [Fact]
    public void Parse_CreateView_KeepsQueryText()
    {
        var v = P<CreateViewStatement>("CREATE OR REPLACE VIEW v (x) AS SELECT a FROM t  ");
        Assert.True(v.OrReplace);
        Assert.Equal("SELECT a FROM t", v.Text);
    }

    [Fact]
    public void Parse_CreateSequence_Options()
    {
        var s = P<CreateSequenceStatement>("CREATE SEQUENCE s AS int INCREMENT BY -1 MINVALUE -100 NO MAXVALUE START WITH -1 CACHE 5 CYCLE");
        Assert.Equal("int", s.DataType);
        Assert.Equal(-1, s.Increment);
        Assert.Equal(-100, s.MinValue);
        Assert.Null(s.MaxValue);
        Assert.Equal(-1, s.Start);
        Assert.Equal(5, s.Cache);
        Assert.True(s.Cycle);
    }

    [Fact]
    public void Parse_DropSeveralTables_Shape()
    {
        var d = P<DropStatement>("drop table if exists pgbench_accounts, pgbench_branches, pgbench_history, pgbench_tellers");
        Assert.Equal(ObjectKind.Table, d.Kind);
        Assert.True(d.IfExists);
        Assert.Equal(4, d.Names.Count);
    }

    [Fact]
    public void Parse_AlterTable_Actions()
    {
        var a = P<AlterTableStatement>("alter table pgbench_branches add primary key (bid)");
        var pk = Assert.IsType<AddConstraintAction>(Assert.Single(a.Actions)).Constraint;
        Assert.Equal(ConstraintKind.PrimaryKey, pk.Kind);
        Assert.Equal(["bid"], pk.Columns);
        var b = P<AlterTableStatement>("ALTER TABLE t ADD COLUMN IF NOT EXISTS c int, ALTER COLUMN d TYPE text USING d::text, ALTER e SET NOT NULL, RENAME COLUMN f TO g");
        Assert.True(Assert.IsType<AddColumnAction>(b.Actions[0]).IfNotExists);
        Assert.Equal("text", Assert.IsType<AlterColumnAction>(b.Actions[1]).NewType!.Name);
        Assert.True(Assert.IsType<AlterColumnAction>(b.Actions[2]).SetNotNull);
        Assert.Equal("g", Assert.IsType<RenameColumnAction>(b.Actions[3]).NewName);
    }

    [Fact]
    public void Parse_Truncate_Shape()
    {
        var t = P<TruncateStatement>("truncate table pgbench_accounts, pgbench_branches RESTART IDENTITY CASCADE");
        Assert.Equal(2, t.Tables.Count);
        Assert.True(t.RestartIdentity);
        Assert.True(t.Cascade);
    }

    [Fact]
    public void Parse_Copy_NewAndOldOptionSyntax()
    {
        var c = P<CopyStatement>("copy pgbench_accounts from stdin with (freeze on)");
        Assert.True(c.From);
        Assert.Equal("on", c.Options["freeze"]);
        var csv = P<CopyStatement>("COPY t (a) TO STDOUT WITH CSV HEADER DELIMITER ';'");
        Assert.False(csv.From);
        Assert.Equal("csv", csv.Options["format"]);
        Assert.Equal("true", csv.Options["header"]);
        Assert.Equal(";", csv.Options["delimiter"]);
        Assert.Equal("csv", P<CopyStatement>("COPY t FROM STDIN (FORMAT CSV, HEADER)").Options["format"]);
        Assert.Equal("true", P<CopyStatement>("COPY t FROM STDIN (FORMAT CSV, HEADER)").Options["header"]);
        Assert.NotNull(P<CopyStatement>("COPY (SELECT 1) TO STDOUT").Query);
    }

    [Theory]
    [InlineData("BEGIN", TransactionKind.Begin)]
    [InlineData("START TRANSACTION", TransactionKind.Begin)]
    [InlineData("COMMIT", TransactionKind.Commit)]
    [InlineData("END", TransactionKind.Commit)]
    [InlineData("ROLLBACK", TransactionKind.Rollback)]
    [InlineData("ABORT", TransactionKind.Rollback)]
    [InlineData("SAVEPOINT s", TransactionKind.Savepoint)]
    [InlineData("RELEASE s", TransactionKind.Release)]
    [InlineData("ROLLBACK TO s", TransactionKind.RollbackToSavepoint)]
    [InlineData("SET TRANSACTION READ ONLY", TransactionKind.SetTransaction)]
    public void Parse_TransactionStatements_Kind(string sql, TransactionKind kind)
    {
        Assert.Equal(kind, P<TransactionStatement>(sql).Kind);
    }

    [Fact]
    public void Parse_BeginWithModes_Normalized()
    {
        var t = P<TransactionStatement>("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY");
        Assert.Equal("repeatable read", t.IsolationLevel);
        Assert.True(t.ReadOnly);
        Assert.Equal("sp", P<TransactionStatement>("ROLLBACK TO SAVEPOINT SP").Savepoint);
    }

    [Theory]
    [InlineData("SET TIME ZONE 'UTC'", "timezone", "UTC")]
    [InlineData("SET timezone = 'UTC'", "timezone", "UTC")]
    [InlineData("SET NAMES 'utf8'", "client_encoding", "utf8")]
    [InlineData("SET search_path TO Public", "search_path", "public")]
    [InlineData("SET extra_float_digits = 3", "extra_float_digits", "3")]
    [InlineData("SET statement_timeout = -1", "statement_timeout", "-1")]
    [InlineData("SET SCHEMA 'app'", "search_path", "app")]
    public void Parse_Set_NormalizedNameAndValue(string sql, string name, string value)
    {
        var s = P<SetStatement>(sql);
        Assert.Equal(name, s.Name);
        Assert.Equal(value, Assert.Single(s.Values));
    }

    [Fact]
    public void Parse_SetVariants_LocalDefaultAndLists()
    {
        Assert.True(P<SetStatement>("SET LOCAL a = 1").IsLocal);
        Assert.Empty(P<SetStatement>("SET a TO DEFAULT").Values);
        Assert.Equal(["a", "$user"], P<SetStatement>("SET search_path = a, \"$user\"").Values);
        Assert.Equal("transaction_isolation", P<ShowStatement>("SHOW TRANSACTION ISOLATION LEVEL").Name);
        Assert.Equal("all", P<ShowStatement>("SHOW ALL").Name);
        Assert.Equal("timezone", P<ShowStatement>("show time zone").Name);
        Assert.Equal("all", P<ResetStatement>("RESET ALL").Name);
    }

    [Fact]
    public void Parse_ExplainPrepareExecute_Shapes()
    {
        var e = P<ExplainStatement>("EXPLAIN (ANALYZE true, VERBOSE) SELECT 1");
        Assert.True(e.Analyze);
        Assert.True(e.Verbose);
        Assert.False(P<ExplainStatement>("EXPLAIN (ANALYZE off) SELECT 1").Analyze);
        var p = P<PrepareStatement>("PREPARE q (int, text[]) AS SELECT $1, $2");
        Assert.Equal(2, p.ParameterTypes.Count);
        Assert.Equal("SELECT $1, $2", p.TargetText);
        var x = P<ExecuteStatement>("EXECUTE q (1, 'a')");
        Assert.Equal(2, x.Arguments.Count);
        Assert.Null(P<DeallocateStatement>("DEALLOCATE ALL").Name);
    }

    [Fact]
    public void Parse_UtilityStatements_Shapes()
    {
        var v = P<MaintenanceStatement>("vacuum analyze pgbench_branches");
        Assert.Equal("vacuum", v.Command);
        Assert.Equal("pgbench_branches", Assert.Single(v.Tables).Name);
        Assert.Equal("analyze", P<MaintenanceStatement>("ANALYZE").Command);
        Assert.Equal("temp", P<DiscardStatement>("DISCARD TEMPORARY").What);
        Assert.Equal("__EFMigrationsHistory", Assert.Single(P<LockStatement>("LOCK TABLE \"__EFMigrationsHistory\" IN ACCESS EXCLUSIVE MODE").Tables).Name);
        P<CommentStatement>("COMMENT ON COLUMN t.a IS 'x'");
        var d = P<DoStatement>("DO $EF$ BEGIN NULL; END $EF$");
        Assert.Equal(" BEGIN NULL; END ", d.Body);
        Assert.IsType<EmptyStatement>(SqlParser.Parse(" -- nothing\n ; "));
    }

    [Fact]
    public void Parse_WithBeforeDml_AttachesCtes()
    {
        Assert.Single(P<InsertStatement>("WITH s AS (SELECT 1) INSERT INTO t SELECT * FROM s").With);
        Assert.Single(P<UpdateStatement>("WITH s AS (SELECT 1) UPDATE t SET a = 1").With);
        Assert.Single(P<DeleteStatement>("WITH s AS (SELECT 1) DELETE FROM t").With);
        Assert.True(P<SelectStatement>("WITH RECURSIVE r AS (SELECT 1) SELECT * FROM r").Recursive);
    }

    [Fact]
    public void ParseMany_Batch_StatementsWithTextAndOffset()
    {
        var sql = "BEGIN; SELECT 1;;\n-- c\nSELECT 'a;b'; END";
        var list = SqlParser.ParseMany(sql);
        Assert.Equal(4, list.Count);
        Assert.Equal("SELECT 1", list[1].Text);
        Assert.Equal(7, list[1].Offset);
        Assert.Equal("SELECT 'a;b'", list[2].Text);
        Assert.Equal(sql.IndexOf("SELECT 'a", StringComparison.Ordinal) + 1, list[2].Statement.Position);
        Assert.Empty(SqlParser.ParseMany("  ;; -- x\n"));
    }

    [Theory]
    [InlineData("SELECT 1 and", "and")]
    [InlineData("SELECT 1 is, 2", "is")]
    [InlineData("SELECT x left FROM t", "left")]
    [InlineData("SELECT count(*) check FROM t", "check")]
    [InlineData("SELECT now() current_time", "current_time")]
    [InlineData("SELECT 1 \"Mixed\"", "Mixed")]
    public void Parse_BareColumnLabel_KeywordsAsPostgres15Allows(string sql, string alias)
    {
        Assert.Equal(alias, Core(sql).Items[0].Alias);
    }

    [Theory]
    [InlineData("SELECT 1 from")]
    [InlineData("SELECT 1 year")]
    [InlineData("SELECT 1 over")]
    public void Parse_AsLabelKeywordWithoutAs_SyntaxError(string sql)
    {
        Assert.Equal(SqlState.SyntaxError, Assert.Throws<SqlException>(() => SqlParser.Parse(sql)).SqlState);
    }

    [Fact]
    public void Parse_TruncatedWhere_ErrorAtEndOfInput()
    {
        var e = Assert.Throws<SqlException>(() => SqlParser.Parse("SELECT 1 FROM t WHERE 1 AND"));
        Assert.Equal("syntax error at end of input", e.Message);
    }

    [Fact]
    public void Parse_IdentityWithOptions_KeepsStartAndIncrement()
    {
        var c = Assert.Single(P<CreateTableStatement>("CREATE TABLE t (id bigint GENERATED ALWAYS AS IDENTITY (START WITH 10 INCREMENT BY 5 CACHE 2))").Columns[0].Constraints);
        Assert.True(c.IdentityAlways);
        Assert.Equal(10, c.IdentityStart);
        Assert.Equal(5, c.IdentityIncrement);
    }
}
