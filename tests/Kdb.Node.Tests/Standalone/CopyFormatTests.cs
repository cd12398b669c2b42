using System.Text;
using Kdb.Node.Sql;
using Kdb.PgWire.Session;

namespace Kdb.Node.Tests.Standalone;

/// <summary>COPY text and CSV parsing and formatting, as PostgreSQL 15 reads and writes them.</summary>
public sealed class CopyFormatTests
{
    private static readonly Dictionary<string, string> Text = [];
    private static readonly Dictionary<string, string> Csv = new() { ["format"] = "csv" };

    private static string Row(string?[] row) => string.Join("|", row.Select(v => v ?? "<null>"));

    private static List<string?[]> Parse(Dictionary<string, string> options, params string[] chunks)
    {
        var rows = new List<string?[]>();
        var parser = new CopyParser(CopyFormat.From(options, true), 3);
        foreach (var chunk in chunks)
        {
            parser.Feed(Encoding.UTF8.GetBytes(chunk), r => rows.Add([.. r]));
        }

        parser.Finish(r => rows.Add([.. r]));
        return rows;
    }

    [Fact]
    public void Text_EscapesNullsAndChunkBoundaries_Decoded()
    {
        var rows = Parse(Text, "1\ta\\tb\t\\N\n2\t", "x\\\\y\\n\t\\101\\x41\r\n3\t\t");

        Assert.Equal(3, rows.Count);
        Assert.Equal("1|a\tb|<null>", Row(rows[0]));
        Assert.Equal("2|x\\y\n|AA", Row(rows[1]));
        Assert.Equal("3||", Row(rows[2]));
    }

    [Fact]
    public void Text_EndMarker_StopsReading()
    {
        var rows = Parse(Text, "1\ta\tb\n\\.\n2\tignored\tx\n");

        Assert.Single(rows);
    }

    [Fact]
    public void Text_MultiByteCharacterSplitAcrossChunks_Decoded()
    {
        var bytes = Encoding.UTF8.GetBytes("1\té✓\tz\n");
        var rows = new List<string?[]>();
        var parser = new CopyParser(CopyFormat.From(Text, true), 3);
        foreach (var b in bytes)
        {
            parser.Feed([b], r => rows.Add([.. r]));
        }

        Assert.Equal("1|é✓|z", Row(Assert.Single(rows)));
    }

    [Fact]
    public void Csv_QuotesNewlinesAndNulls_Decoded()
    {
        var rows = Parse(Csv, "1,\"a,b\",\"say \"\"hi\"\"\"\n2,,\"\"\n3,\"multi\nline\",x");

        Assert.Equal("1|a,b|say \"hi\"", Row(rows[0]));
        Assert.Equal("2|<null>|", Row(rows[1]));
        Assert.Equal("3|multi\nline|x", Row(rows[2]));
    }

    [Fact]
    public void Csv_HeaderDelimiterAndNullOptions_Applied()
    {
        var options = new Dictionary<string, string> { ["format"] = "csv", ["header"] = "true", ["delimiter"] = "|", ["null"] = "NA" };
        var rows = Parse(options, "a|b|c\n1|NA|\"NA\"\n");

        Assert.Equal("1|<null>|NA", Row(Assert.Single(rows)));
    }

    [Fact]
    public void Csv_UnterminatedQuote_ClearError()
    {
        var ex = Assert.Throws<PgException>(() => Parse(Csv, "1,\"open,x\n"));

        Assert.Equal("22P04", ex.SqlState);
    }

    [Fact]
    public void Text_InvalidUtf8_ClearError()
    {
        var parser = new CopyParser(CopyFormat.From(Text, true), 1);

        var ex = Assert.Throws<PgException>(() => parser.Feed([0xC3, 0x28, (byte)'\n'], _ => { }));

        Assert.Equal("22021", ex.SqlState);
    }

    [Theory]
    [InlineData("xml")]
    [InlineData("json")]
    public void From_UnsupportedFormat_Refused(string format)
    {
        Assert.Throws<PgException>(() => CopyFormat.From(new Dictionary<string, string> { ["format"] = format }, true));
    }

    [Fact]
    public void From_MultiCharacterDelimiter_Refused()
    {
        var ex = Assert.Throws<PgException>(() => CopyFormat.From(new Dictionary<string, string> { ["delimiter"] = "ab" }, true));

        Assert.Equal("22023", ex.SqlState);
    }

    [Theory]
    [InlineData(false, "a\tb\\c\nd", "a\\tb\\\\c\\nd")]
    [InlineData(true, "plain", "plain")]
    [InlineData(true, "a,b", "\"a,b\"")]
    [InlineData(true, "q\"x", "\"q\"\"x\"")]
    [InlineData(true, "", "\"\"")]
    [InlineData(true, "line\nbreak", "\"line\nbreak\"")]
    public void AppendField_EscapesOrQuotes_AsPostgres(bool csv, string value, string expected)
    {
        var format = CopyFormat.From(csv ? Csv : Text, false);
        var sb = new StringBuilder();

        format.AppendField(sb, value);

        Assert.Equal(expected, sb.ToString());
    }

    [Fact]
    public void InnerQueryText_NestedParensAndQuotes_ExtractsQuery()
    {
        const string Sql = "COPY (SELECT '(' || x, f(y) FROM t WHERE \")\" = 1) TO STDOUT";

        Assert.Equal("SELECT '(' || x, f(y) FROM t WHERE \")\" = 1", CopyCommand.InnerQueryText(Sql, 7));
    }
}
