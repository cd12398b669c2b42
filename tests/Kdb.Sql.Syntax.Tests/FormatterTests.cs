namespace Kdb.Sql.Syntax.Tests;

public class FormatterTests
{
    [Theory]
    [InlineData("abc", "abc")]
    [InlineData("a_1", "a_1")]
    [InlineData("_x", "_x")]
    [InlineData("Abc", "\"Abc\"")]
    [InlineData("1a", "\"1a\"")]
    [InlineData("a b", "\"a b\"")]
    [InlineData("a\"b", "\"a\"\"b\"")]
    [InlineData("a$b", "\"a$b\"")]
    [InlineData("select", "\"select\"")]
    [InlineData("left", "\"left\"")]
    [InlineData("integer", "\"integer\"")]
    [InlineData("name", "name")]
    [InlineData("year", "year")]
    [InlineData("é", "\"é\"")]
    [InlineData("", "\"\"")]
    public void QuoteIdentifier_FollowsQuoteIdentRules(string name, string expected)
    {
        Assert.Equal(expected, SqlFormatter.QuoteIdentifier(name));
    }

    [Theory]
    [InlineData("a+b*c", "a + b * c")]
    [InlineData("(a+b)*c", "(a + b) * c")]
    [InlineData("'it''s'", "'it''s'")]
    [InlineData("E'a\\'b'", "'a''b'")]
    [InlineData("x::varchar(20)", "x::varchar(20)")]
    [InlineData("'t'::timestamp(3) with time zone", "'t'::timestamp(3) with time zone")]
    [InlineData("date '2024-01-01'", "'2024-01-01'::date")]
    [InlineData("\"Col\" IS NOT NULL", "\"Col\" IS NOT NULL")]
    [InlineData("count(*)", "count(*)")]
    [InlineData("coalesce(a, 0)", "coalesce(a, 0)")]
    [InlineData("extract(year from d)", "extract('year', d)")]
    [InlineData("-(-1)", "-(-1)")]
    [InlineData("a - -1", "a - -1")]
    [InlineData("not exists (select 1)", "NOT EXISTS (SELECT 1)")]
    [InlineData("current_timestamp", "current_timestamp")]
    [InlineData("x in (1,2)", "x IN (1, 2)")]
    [InlineData("c collate \"C\"", "c COLLATE \"C\"")]
    [InlineData("a->'k'->>'j'", "a -> 'k' ->> 'j'")]
    public void Format_Expression_CanonicalText(string sql, string expected)
    {
        Assert.Equal(expected, SqlFormatter.Format(SqlParser.ParseExpression(sql)));
    }

    [Theory]
    [InlineData("select a from t where b = 1 order by a desc limit 5", "SELECT a FROM t WHERE b = 1 ORDER BY a DESC LIMIT 5")]
    [InlineData("select * from a left outer join b on a.x=b.x", "SELECT * FROM a LEFT JOIN b ON a.x = b.x")]
    [InlineData("SELECT 1 AS \"Select\"", "SELECT 1 AS \"Select\"")]
    [InlineData("insert into t(a) values (1) on conflict do nothing", "INSERT INTO t (a) VALUES (1) ON CONFLICT DO NOTHING")]
    [InlineData("set time zone 'UTC'", "SET timezone TO 'UTC'")]
    [InlineData("begin isolation level serializable", "BEGIN ISOLATION LEVEL SERIALIZABLE")]
    [InlineData("create table t (a int primary key, b text default 'x' not null)", "CREATE TABLE t (a int PRIMARY KEY, b text DEFAULT 'x' NOT NULL)")]
    [InlineData("DO $$ x $$", "DO ' x '")]
    [InlineData("", "")]
    public void Format_Statement_CanonicalText(string sql, string expected)
    {
        Assert.Equal(expected, SqlFormatter.Format(SqlParser.Parse(sql)));
    }

    [Fact]
    public void Format_DefaultWithBooleanExpression_Parenthesized()
    {
        var sql = SqlFormatter.Format(SqlParser.Parse("CREATE TABLE t (a boolean DEFAULT (1 = 1 AND true))"));
        Assert.Equal("CREATE TABLE t (a boolean DEFAULT (1 = 1 AND TRUE))", sql);
    }

    [Fact]
    public void Format_ConstructedTree_ReparsesEqual()
    {
        var tree = new BinaryExpr(0, BinaryOp.Multiply,
            new BinaryExpr(0, BinaryOp.Add, new ColumnRefExpr(0, ["Order"]), new LiteralExpr(0, LiteralKind.Integer, "-1")),
            new UnaryExpr(0, UnaryOp.Negate, new LiteralExpr(0, LiteralKind.Decimal, "2.5")));
        var text = SqlFormatter.Format(tree);
        Assert.Equal("(\"Order\" + -1) * -(2.5)", text);
        AstComparer.AssertEqual(tree, SqlParser.ParseExpression(text));
    }

    [Fact]
    public void Format_CommentStatement_NotSupported()
    {
        Assert.Throws<NotSupportedException>(() => SqlFormatter.Format(SqlParser.Parse("COMMENT ON TABLE t IS 'x'")));
    }
}
