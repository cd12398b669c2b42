using Kdb.Sql.Syntax.Lexing;
using Kdb.Sql.Syntax.Parsing;

namespace Kdb.Sql.Syntax;

/// <summary>One statement of a multi-statement string: its tree, its source text and where that text starts (0-based).</summary>
public sealed record ParsedStatement(Statement Statement, string Text, int Offset);

/// <summary>
/// Entry points of kdb's SQL parser (PostgreSQL 15's dialect). Every syntax error is a
/// <see cref="SqlException"/> with SQLSTATE 42601 (syntax_error) and the 1-based character position in
/// the input; nesting deeper than 1,000 levels gives 54001 (stack depth limit exceeded). Syntax kdb
/// recognizes but does not support gives 0A000, an operator kdb does not have 42883, an out-of-range
/// sequence option 22003. No other exception escapes.
/// </summary>
public static class SqlParser
{
    /// <summary>Parses exactly one statement (a trailing ';' allowed). Whitespace and comments alone give an <see cref="EmptyStatement"/>.</summary>
    public static Statement Parse(string sql)
    {
        ArgumentNullException.ThrowIfNull(sql);
        var tokens = Lexer.Tokenize(sql, out var count);
        try
        {
            var parser = new Parser(sql, tokens, count);
            if (parser.AtInputEnd)
            {
                return new EmptyStatement(1);
            }

            parser.SkipSemicolons();
            if (parser.AtInputEnd)
            {
                return new EmptyStatement(1);
            }

            var statement = parser.ParseStatement();
            if (!parser.AtStatementEnd)
            {
                throw parser.SyntaxError();
            }

            parser.SkipSemicolons();
            if (!parser.AtInputEnd)
            {
                throw new SqlException(SqlState.SyntaxError, "cannot insert multiple commands into a prepared statement", parser.TokenAt(parser.TokenIndex).Position);
            }

            return statement;
        }
        finally
        {
            Lexer.Release(tokens);
        }
    }

    /// <summary>
    /// Parses a string of ';'-separated statements; empty statements are dropped. Positions in the trees
    /// are relative to the whole input, as PostgreSQL reports them for a simple query.
    /// </summary>
    public static IReadOnlyList<ParsedStatement> ParseMany(string sql)
    {
        ArgumentNullException.ThrowIfNull(sql);
        var tokens = Lexer.Tokenize(sql, out var count);
        try
        {
            var parser = new Parser(sql, tokens, count);
            var result = new List<ParsedStatement>();
            while (true)
            {
                parser.SkipSemicolons();
                if (parser.AtInputEnd)
                {
                    return result;
                }

                var first = parser.TokenIndex;
                var statement = parser.ParseStatement();
                if (!parser.AtStatementEnd)
                {
                    throw parser.SyntaxError();
                }

                result.Add(new ParsedStatement(statement, parser.SourceText(first, parser.TokenIndex), parser.TokenAt(first).Start));
            }
        }
        finally
        {
            Lexer.Release(tokens);
        }
    }

    /// <summary>
    /// Splits on ';' outside quotes ('...', E'...', "...", $tag$...$tag$), comments and parentheses, without
    /// parsing. Each piece is trimmed of surrounding whitespace; pieces with only whitespace and comments are
    /// dropped. Unterminated quotes or comments run to the end of the input (no error here).
    /// </summary>
    public static IReadOnlyList<string> SplitStatements(string sql)
    {
        ArgumentNullException.ThrowIfNull(sql);
        return StatementSplitter.Split(sql);
    }

    /// <summary>Parses a lone expression (stored DEFAULT and CHECK expressions).</summary>
    public static Expr ParseExpression(string sql)
    {
        ArgumentNullException.ThrowIfNull(sql);
        var tokens = Lexer.Tokenize(sql, out var count);
        try
        {
            var parser = new Parser(sql, tokens, count);
            var e = parser.ParseExpression();
            if (!parser.AtInputEnd)
            {
                throw parser.SyntaxError();
            }

            return e;
        }
        finally
        {
            Lexer.Release(tokens);
        }
    }

    /// <summary>Parses a type name: "varchar(20)", "numeric(10,2)", "int[]", "timestamp with time zone".</summary>
    public static TypeName ParseTypeName(string sql)
    {
        ArgumentNullException.ThrowIfNull(sql);
        var tokens = Lexer.Tokenize(sql, out var count);
        try
        {
            var parser = new Parser(sql, tokens, count);
            var t = parser.ParseTypeName();
            if (!parser.AtInputEnd)
            {
                throw parser.SyntaxError();
            }

            return t;
        }
        finally
        {
            Lexer.Release(tokens);
        }
    }
}
