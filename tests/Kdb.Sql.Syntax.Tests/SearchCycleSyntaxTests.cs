namespace Kdb.Sql.Syntax.Tests;

/// <summary>SEARCH and CYCLE of WITH RECURSIVE: parsed into the tree, printed back to text that parses to the same tree, and malformed clauses are 42601.</summary>
public class SearchCycleSyntaxTests
{
    private const string Cte = "WITH RECURSIVE t(n, m) AS (SELECT 1, 2 UNION ALL SELECT n + 1, m FROM t WHERE n < 3) ";

    [Fact]
    public void Search_ParsesItsParts()
    {
        var depth = ((SelectStatement)SqlParser.Parse(Cte + "SEARCH DEPTH FIRST BY n, m SET ord SELECT * FROM t ORDER BY ord")).With[0].Search;
        Assert.False(depth!.BreadthFirst);
        Assert.Equal(["n", "m"], depth.Columns);
        Assert.Equal("ord", depth.SequenceColumn);
        var breadth = ((SelectStatement)SqlParser.Parse(Cte + "SEARCH BREADTH FIRST BY m SET o SELECT * FROM t")).With[0].Search;
        Assert.True(breadth!.BreadthFirst);
        Assert.Equal(["m"], breadth.Columns);
    }

    [Fact]
    public void Cycle_ParsesItsParts()
    {
        var plain = ((SelectStatement)SqlParser.Parse(Cte + "CYCLE n SET is_cycle USING path SELECT * FROM t")).With[0].Cycle;
        Assert.Equal(["n"], plain!.Columns);
        Assert.Equal(("is_cycle", "path"), (plain.MarkColumn, plain.PathColumn));
        Assert.Null(plain.MarkValue);
        var marked = ((SelectStatement)SqlParser.Parse(Cte + "SEARCH DEPTH FIRST BY n SET o CYCLE n, m SET c TO 'Y' DEFAULT 'N' USING p SELECT * FROM t")).With[0];
        Assert.NotNull(marked.Search);
        Assert.Equal("'Y'", SqlFormatter.Format(marked.Cycle!.MarkValue!));
        Assert.Equal("'N'", SqlFormatter.Format(marked.Cycle.MarkDefault!));
    }

    [Theory]
    [InlineData("SEARCH DEPTH FIRST BY n SET ord SELECT * FROM t")]
    [InlineData("SEARCH BREADTH FIRST BY n, m SET \"Ord\" SELECT * FROM t")]
    [InlineData("CYCLE n SET c USING p SELECT * FROM t")]
    [InlineData("SEARCH DEPTH FIRST BY m SET s CYCLE n, m SET c TO 1 DEFAULT 0 USING p SELECT * FROM t")]
    public void Formatted_ReparsesToTheSameTree(string tail)
    {
        var parsed = SqlParser.Parse(Cte + tail);
        var formatted = SqlFormatter.Format(parsed);
        AstComparer.AssertEqual(parsed, SqlParser.Parse(formatted), formatted);
        Assert.Equal(formatted, SqlFormatter.Format(SqlParser.Parse(formatted)));
    }

    [Theory]
    [InlineData("SEARCH DEPTH FIRST n SET o SELECT * FROM t")]
    [InlineData("SEARCH DEPTH BY n SET o SELECT * FROM t")]
    [InlineData("SEARCH BREADTH FIRST BY SET o SELECT * FROM t")]
    [InlineData("SEARCH DEPTH FIRST BY n SELECT * FROM t")]
    [InlineData("CYCLE n SET c SELECT * FROM t")]
    [InlineData("CYCLE n SET c TO true USING p SELECT * FROM t")]
    [InlineData("CYCLE SET c USING p SELECT * FROM t")]
    [InlineData("CYCLE n SET c USING")]
    public void Malformed_IsASyntaxError(string tail)
    {
        var e = Assert.Throws<SqlException>(() => SqlParser.Parse(Cte + tail));
        Assert.Equal("42601", e.SqlState);
    }
}
