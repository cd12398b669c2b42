namespace Kdb.Sql.Syntax.Tests;

public class ErrorTests
{
    private static SqlException Fails(string sql) => Assert.Throws<SqlException>(() => SqlParser.Parse(sql));

    [Theory]
    [InlineData("SELECT * FROM FROM t", "syntax error at or near \"FROM\"", 15)]
    [InlineData("SELECT 1 +", "syntax error at end of input", 11)]
    [InlineData("SELECT 'abc", "unterminated quoted string at or near \"'abc\"", 8)]
    [InlineData("SELECT \"abc", "unterminated quoted identifier at or near \"\"abc\"", 8)]
    [InlineData("SELECT $$abc", "unterminated dollar-quoted string at or near \"$$abc\"", 8)]
    [InlineData("SELECT 1 /* x", "unterminated /* comment at or near \"/* x\"", 10)]
    [InlineData("SELECT 123abc", "trailing junk after numeric literal at or near \"123abc\"", 8)]
    [InlineData("SELECT \"\"", "zero-length delimited identifier at or near \"\"\"\"", 8)]
    [InlineData("SELEC 1", "syntax error at or near \"SELEC\"", 1)]
    [InlineData("SELECT a FROM t WHERE", "syntax error at end of input", 22)]
    [InlineData("INSERT INTO t VALUES (1", "syntax error at end of input", 24)]
    [InlineData("SELECT {", "syntax error at or near \"{\"", 8)]
    [InlineData("SELECT 1 2", "syntax error at or near \"2\"", 10)]
    [InlineData("SELECT select", "syntax error at or near \"select\"", 8)]
    [InlineData("SELECT left FROM t", "syntax error at or near \"left\"", 8)]
    [InlineData("SELECT a FROM t; SELECT", "cannot insert multiple commands into a prepared statement", 18)]
    [InlineData("select 1 = 1 = true", "syntax error at or near \"=\"", 14)]
    [InlineData("select 1 < 2 < 3", "syntax error at or near \"<\"", 14)]
    [InlineData("select not 1 = 1 = true", "syntax error at or near \"=\"", 18)]
    [InlineData("select 'a' like 'a' like 'b'", "syntax error at or near \"like\"", 21)]
    [InlineData("select 1 between 0 and 2 between false and true", "syntax error at or near \"between\"", 26)]
    [InlineData("select 1 is distinct from 2 is distinct from 3", "syntax error at or near \"is\"", 29)]
    [InlineData("select 1::varchar(-1)", "syntax error at or near \"-\"", 19)]
    public void Parse_BadSql_SyntaxErrorWithMessageAndPosition(string sql, string message, int position)
    {
        var e = Fails(sql);
        Assert.Equal(SqlState.SyntaxError, e.SqlState);
        Assert.Equal(message, e.Message);
        Assert.Equal(position, e.Position);
    }

    [Theory]
    [InlineData("SELECT a <@ b", "42883")]
    [InlineData("SELECT a SIMILAR TO 'x'", "0A000")]
    [InlineData("SELECT a FROM t TABLESAMPLE bernoulli (1)", "0A000")]
    [InlineData("CREATE SEQUENCE s START 99999999999999999999", "22003")]
    [InlineData("SELECT B'101'", "0A000")]
    [InlineData("SELECT x'1F'", "0A000")]
    [InlineData("SELECT U&'d\\0061t'", "0A000")]
    public void Parse_UnsupportedSyntax_SpecificSqlState(string sql, string state)
    {
        Assert.Equal(state, Fails(sql).SqlState);
    }

    [Theory]
    [InlineData(100_000)]
    [InlineData(1_001)]
    public void Parse_DeepParentheses_StackDepthError(int depth)
    {
        var sql = "SELECT " + new string('(', depth) + "1" + new string(')', depth);
        var e = Fails(sql);
        Assert.Equal("54001", e.SqlState);
        Assert.Equal("stack depth limit exceeded", e.Message);
    }

    [Fact]
    public void Parse_ModerateNesting_Succeeds()
    {
        var sql = "SELECT " + new string('(', 300) + "1" + new string(')', 300);
        Assert.IsType<SelectStatement>(SqlParser.Parse(sql));
    }

    [Theory]
    [InlineData("SELECT 1", " + 1", 100_000)]
    [InlineData("SELECT - ", "- ", 100_000)]
    [InlineData("SELECT NOT ", "NOT ", 100_000)]
    [InlineData("SELECT a", "::int", 100_000)]
    [InlineData("SELECT x FROM t", " JOIN t ON true", 20_000)]
    [InlineData("SELECT 1", " UNION SELECT 1", 20_000)]
    [InlineData("SELECT ARRAY", "[", 100_000)]
    [InlineData("SELECT ", "(SELECT ", 50_000)]
    [InlineData("SELECT ", "f(", 100_000)]
    [InlineData("SELECT ", "CASE WHEN ", 50_000)]
    public void Parse_DeeplyNestedOrLongChains_StackDepthErrorNotCrash(string prefix, string repeated, int count)
    {
        var sb = new System.Text.StringBuilder(prefix);
        for (var i = 0; i < count; i++)
        {
            sb.Append(repeated);
        }

        var sql = prefix.EndsWith("- ", StringComparison.Ordinal) || prefix.EndsWith("NOT ", StringComparison.Ordinal) ? sb + "1" : sb.ToString();
        var e = Fails(sql);
        Assert.Contains(e.SqlState, new[] { "54001", SqlState.SyntaxError });
    }

    [Fact]
    public void Parse_LongButShallowStatement_Succeeds()
    {
        var items = string.Join(", ", Enumerable.Range(0, 20_000).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        var q = Assert.IsType<SelectStatement>(SqlParser.Parse("SELECT * FROM t WHERE a IN (" + items + ")"));
        var core = Assert.IsType<SelectCore>(q.Body);
        Assert.Equal(20_000, Assert.IsType<InListExpr>(core.Where).Items.Count);
    }

    [Fact]
    public void ParseExpression_TrailingGarbage_SyntaxError()
    {
        var e = Assert.Throws<SqlException>(() => SqlParser.ParseExpression("a + b c"));
        Assert.Equal("syntax error at or near \"c\"", e.Message);
        Assert.Throws<SqlException>(() => SqlParser.ParseTypeName("int int"));
    }
}
