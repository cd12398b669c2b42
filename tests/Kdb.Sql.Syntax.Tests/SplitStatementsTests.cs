namespace Kdb.Sql.Syntax.Tests;

public class SplitStatementsTests
{
    [Fact]
    public void SplitStatements_SemicolonsInQuotesAndComments_NotSplit()
    {
        var parts = SqlParser.SplitStatements("SELECT ';'; SELECT \";\"; SELECT E'\\';'; SELECT $$;$$; SELECT $t$ $$; $t$; -- a;b\nSELECT /* ; /* ; */ ; */ 1");
        Assert.Equal(
            ["SELECT ';'", "SELECT \";\"", "SELECT E'\\';'", "SELECT $$;$$", "SELECT $t$ $$; $t$", "-- a;b\nSELECT /* ; /* ; */ ; */ 1"],
            parts);
    }

    [Fact]
    public void SplitStatements_EmptyStatements_Dropped()
    {
        Assert.Equal(["SELECT 1", "SELECT 2"], SqlParser.SplitStatements(" ; SELECT 1 ;;  ; SELECT 2; -- only a comment\n; /* c */ "));
        Assert.Empty(SqlParser.SplitStatements(""));
        Assert.Empty(SqlParser.SplitStatements(";;;"));
    }

    [Fact]
    public void SplitStatements_StandardStringBackslash_IsLiteral()
    {
        // With standard_conforming_strings, 'a\' ends at the second quote.
        Assert.Equal(["SELECT 'a\\'", "SELECT 2"], SqlParser.SplitStatements("SELECT 'a\\'; SELECT 2"));
    }

    [Fact]
    public void SplitStatements_ParameterAndIdentifierDollars_NotDollarQuotes()
    {
        Assert.Equal(["SELECT $1", "SELECT a$b$ FROM t"], SqlParser.SplitStatements("SELECT $1; SELECT a$b$ FROM t"));
    }

    [Fact]
    public void SplitStatements_SemicolonInsideParentheses_NotSplit()
    {
        Assert.Equal(["CREATE RULE r AS ON INSERT TO t DO (SELECT 1; SELECT 2)"], SqlParser.SplitStatements("CREATE RULE r AS ON INSERT TO t DO (SELECT 1; SELECT 2);"));
    }

    [Fact]
    public void SplitStatements_Unterminated_RunsToEnd()
    {
        Assert.Equal(["SELECT 'abc; SELECT 2"], SqlParser.SplitStatements("SELECT 'abc; SELECT 2"));
        Assert.Equal(["SELECT $$abc; SELECT 2"], SqlParser.SplitStatements("SELECT $$abc; SELECT 2"));
        Assert.Equal(["SELECT 1 /* x; y"], SqlParser.SplitStatements("SELECT 1 /* x; y"));
    }

    [Fact]
    public void SplitStatements_EfCoreDoBlock_OneStatement()
    {
        var sql = "DO $EF$\nBEGIN\n    IF NOT EXISTS(SELECT 1) THEN\n        CREATE SCHEMA app;\n    END IF;\nEND $EF$;\nSELECT 1;";
        var parts = SqlParser.SplitStatements(sql);
        Assert.Equal(2, parts.Count);
        Assert.StartsWith("DO $EF$", parts[0], StringComparison.Ordinal);
        Assert.EndsWith("END $EF$", parts[0], StringComparison.Ordinal);
    }
}
