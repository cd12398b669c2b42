namespace Kdb.Sql.Syntax.Tests;

public class RoundTripTests
{
    public static IEnumerable<object[]> Entries => Corpus.Cases();

    [Theory]
    [MemberData(nameof(Entries))]
    public void ParseFormatParse_CorpusEntry_GivesEqualTree(int index)
    {
        var sql = Corpus.Entries[index];
        var statements = SqlParser.ParseMany(sql);
        Assert.NotEmpty(statements);
        foreach (var parsed in statements)
        {
            if (parsed.Statement is CommentStatement)
            {
                continue;
            }

            var formatted = SqlFormatter.Format(parsed.Statement);
            Statement reparsed;
            try
            {
                reparsed = SqlParser.Parse(formatted);
            }
            catch (SqlException e)
            {
                Assert.Fail($"formatted text does not parse ({e.Message} at {e.Position}):\n{formatted}\nfrom:\n{parsed.Text}");
                throw;
            }

            AstComparer.AssertEqual(parsed.Statement, reparsed, $"original:\n{parsed.Text}\nformatted:\n{formatted}");

            // Formatting is a fixed point after one round.
            Assert.Equal(formatted, SqlFormatter.Format(reparsed));
        }
    }

    [Theory]
    [MemberData(nameof(Entries))]
    public void ParseMany_CorpusEntry_TextsReparseToTheSameTrees(int index)
    {
        var sql = Corpus.Entries[index];
        foreach (var parsed in SqlParser.ParseMany(sql))
        {
            Assert.Equal(parsed.Text, sql.Substring(parsed.Offset, parsed.Text.Length));
            AstComparer.AssertEqual(parsed.Statement, SqlParser.Parse(parsed.Text), parsed.Text);
        }
    }

    [Fact]
    public void Corpus_CoversEveryStatementKind()
    {
        var seen = new HashSet<Type>();
        foreach (var entry in Corpus.Entries)
        {
            foreach (var parsed in SqlParser.ParseMany(entry))
            {
                seen.Add(parsed.Statement.GetType());
            }
        }

        var kinds = typeof(Statement).Assembly.GetTypes()
            .Where(t => t.IsSubclassOf(typeof(Statement)) && !t.IsAbstract && t != typeof(EmptyStatement))
            .ToList();
        var missing = kinds.Where(k => !seen.Contains(k)).Select(k => k.Name).ToList();
        Assert.True(missing.Count == 0, "corpus lacks: " + string.Join(", ", missing));
    }

    [Theory]
    [InlineData("a + b * c")]
    [InlineData("(a + b) * c")]
    [InlineData("a - (b - c)")]
    [InlineData("-(1)")]
    [InlineData("-(-x)")]
    [InlineData("(-1)::int")]
    [InlineData("NOT (a AND b)")]
    [InlineData("(NOT a) = b")]
    [InlineData("(a = b) = c")]
    [InlineData("(a IS NULL) IS NULL")]
    [InlineData("(a OR b) AND c")]
    [InlineData("(a || b) = c")]
    [InlineData("a COLLATE \"C\" || b")]
    [InlineData("(a AND b) BETWEEN c AND d")]
    [InlineData("a BETWEEN (b AND c) AND d")]
    [InlineData("(f(x))[1]")]
    [InlineData("\"select\"(1)")]
    [InlineData("\"double\"(1)")]
    [InlineData("\"char\"(1)")]
    [InlineData("'x'::\"double\"")]
    [InlineData("'x'::\"My Type\"")]
    [InlineData("'x'::\"char\" || 'x'::char(2)")]
    [InlineData("t.\"Weird \"\"name\"\"\" = $1")]
    [InlineData("\"user\" = user")]
    [InlineData("~ (1 + 2)")]
    [InlineData("(~ 1) + 2")]
    [InlineData("a = ANY (b) = c")]
    [InlineData("x AT TIME ZONE 'UTC' AT TIME ZONE 'CET'")]
    [InlineData("CASE WHEN a THEN b END IS NULL")]
    [InlineData("NOT EXISTS (SELECT 1) = TRUE")]
    public void FormatExpression_TrickyPrecedence_ReparsesToSameTree(string sql)
    {
        var e = SqlParser.ParseExpression(sql);
        var formatted = SqlFormatter.Format(e);
        AstComparer.AssertEqual(e, SqlParser.ParseExpression(formatted), formatted);
    }
}
