using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using Kdb.Sql.Syntax.Lexing;

namespace Kdb.Sql.Syntax.Parsing;

/// <summary>
/// Hand-written recursive-descent parser over the lexer's token array, with precedence climbing for
/// expressions (PostgreSQL 15's operator precedence table). One instance parses one input string.
/// </summary>
internal sealed partial class Parser
{
    // Nesting beyond this is refused with 54001 like PostgreSQL's max_stack_depth; it also bounds the
    // depth of every tree the parser returns, so recursive consumers (formatter, binder) are safe.
    internal const int MaxDepth = 1000;

    private readonly string _sql;
    private readonly Token[] _tokens;
    private readonly int _count;
    private int _pos;
    private int _depth;

    public Parser(string sql, Token[] tokens, int count)
    {
        _sql = sql;
        _tokens = tokens;
        _count = count;
    }

    private ref readonly Token Current => ref _tokens[_pos];

    private ref readonly Token PeekToken(int ahead) => ref _tokens[Math.Min(_pos + ahead, _count - 1)];

    private bool AtEnd => _tokens[_pos].Kind == TokenKind.End;

    /// <summary>True when the statement ends here (end of input or ';').</summary>
    public bool AtStatementEnd => Current.Kind is TokenKind.End or TokenKind.Semicolon;

    public bool AtInputEnd => AtEnd;

    public int TokenIndex => _pos;

    public ref readonly Token TokenAt(int index) => ref _tokens[index];

    public void SkipSemicolons()
    {
        while (Current.Kind == TokenKind.Semicolon)
        {
            _pos++;
        }
    }

    private Token Advance()
    {
        var t = _tokens[_pos];
        if (t.Kind != TokenKind.End)
        {
            _pos++;
        }

        return t;
    }

    private bool IsKeyword(string keyword) => Current.Is(keyword);

    private bool IsKeywordAt(int ahead, string keyword) => PeekToken(ahead).Is(keyword);

    private bool Accept(string keyword)
    {
        if (Current.Is(keyword))
        {
            _pos++;
            return true;
        }

        return false;
    }

    private bool Accept(TokenKind kind)
    {
        if (Current.Kind == kind)
        {
            _pos++;
            return true;
        }

        return false;
    }

    private bool AcceptOperator(string op)
    {
        if (Current.IsOperator(op))
        {
            _pos++;
            return true;
        }

        return false;
    }

    private Token Expect(string keyword)
    {
        if (!Current.Is(keyword))
        {
            throw SyntaxError();
        }

        return Advance();
    }

    private Token Expect(TokenKind kind)
    {
        if (Current.Kind != kind)
        {
            throw SyntaxError();
        }

        return Advance();
    }

    private void ExpectOperator(string op)
    {
        if (!Current.IsOperator(op))
        {
            throw SyntaxError();
        }

        _pos++;
    }

    /// <summary>PostgreSQL's message for an unexpected token: the token's text as written, or "end of input".</summary>
    public SqlException SyntaxError() => SyntaxErrorAt(_pos);

    private SqlException SyntaxErrorAt(int index)
    {
        ref readonly var t = ref _tokens[index];
        if (t.Kind == TokenKind.End)
        {
            return new SqlException(SqlState.SyntaxError, "syntax error at end of input", t.Position);
        }

        return new SqlException(SqlState.SyntaxError, $"syntax error at or near \"{_sql.AsSpan(t.Start, t.End - t.Start)}\"", t.Position);
    }

    private SqlException NotSupported(string what) =>
        new(SqlState.FeatureNotSupported, $"{what} is not supported", Current.Position);

    private void Enter()
    {
        if (++_depth > MaxDepth || !RuntimeHelpers.TryEnsureSufficientExecutionStack())
        {
            ThrowDepth();
        }
    }

    private void Leave() => _depth--;

    [DoesNotReturn]
    private void ThrowDepth() =>
        throw new SqlException(
            "54001",
            "stack depth limit exceeded",
            Current.Position,
            hint: "The statement nests expressions or subqueries too deeply; simplify it.");

    /// <summary>The source text between token indexes (inclusive start, exclusive end).</summary>
    public string SourceText(int firstToken, int endToken)
    {
        if (endToken <= firstToken)
        {
            return string.Empty;
        }

        var start = _tokens[firstToken].Start;
        var end = _tokens[endToken - 1].End;
        return _sql.Substring(start, end - start);
    }

    // ------------------------------------------------------------------ names

    /// <summary>ColId: an identifier that is not a reserved or type/function-name keyword, or any quoted identifier.</summary>
    private static bool IsColId(in Token t) =>
        t.Kind == TokenKind.QuotedIdentifier ||
        (t.Kind == TokenKind.Identifier && !Keywords.IsReserved(t.Text) && !Keywords.IsTypeFunctionName(t.Text));

    /// <summary>ColLabel: any identifier or keyword (after AS, after a dot).</summary>
    private static bool IsColLabel(in Token t) => t.Kind is TokenKind.Identifier or TokenKind.QuotedIdentifier;

    private string ParseColId()
    {
        if (!IsColId(Current))
        {
            throw SyntaxError();
        }

        return Advance().Text;
    }

    private string ParseColLabel()
    {
        if (!IsColLabel(Current))
        {
            throw SyntaxError();
        }

        return Advance().Text;
    }

    /// <summary><c>name</c> or <c>schema.name</c> (a third part, a database name, is accepted and must be absent or ignored by the binder).</summary>
    private QualifiedName ParseQualifiedName()
    {
        var pos = Current.Position;
        var first = ParseColId();
        if (Current.Kind != TokenKind.Dot)
        {
            return new QualifiedName(pos, null, first);
        }

        _pos++;
        var second = ParseColLabel();
        if (Current.Kind == TokenKind.Dot)
        {
            // catalog.schema.name: PostgreSQL accepts it only for the current database.
            _pos++;
            var third = ParseColLabel();
            return new QualifiedName(pos, second, third);
        }

        return new QualifiedName(pos, first, second);
    }

    private List<QualifiedName> ParseQualifiedNameList()
    {
        var list = new List<QualifiedName> { ParseQualifiedName() };
        while (Accept(TokenKind.Comma))
        {
            list.Add(ParseQualifiedName());
        }

        return list;
    }

    /// <summary><c>( name, name, ... )</c>.</summary>
    private List<string> ParseParenthesizedNameList()
    {
        Expect(TokenKind.LeftParen);
        var list = new List<string> { ParseColId() };
        while (Accept(TokenKind.Comma))
        {
            list.Add(ParseColId());
        }

        Expect(TokenKind.RightParen);
        return list;
    }

    /// <summary>An optional table alias: <c>[AS] ColId</c> (a bare one is never <paramref name="notBare"/>).</summary>
    private string? ParseOptionalAlias(string? notBare = null)
    {
        if (Accept("as"))
        {
            return ParseColId();
        }

        if (IsColId(Current) && !(notBare is not null && Current.Is(notBare)))
        {
            return Advance().Text;
        }

        return null;
    }

    /// <summary>A signed integer constant (sequence options).</summary>
    private long ParseSignedLong()
    {
        var negative = false;
        if (AcceptOperator("-"))
        {
            negative = true;
        }
        else
        {
            AcceptOperator("+");
        }

        var t = Current;
        if (t.Kind != TokenKind.Integer)
        {
            throw SyntaxError();
        }

        _pos++;
        var text = negative ? "-" + t.Text : t.Text;
        if (!long.TryParse(text, System.Globalization.NumberStyles.AllowLeadingSign, System.Globalization.CultureInfo.InvariantCulture, out var v))
        {
            throw new SqlException(SqlState.NumericValueOutOfRange, $"value \"{text}\" is out of range for type bigint", t.Position);
        }

        return v;
    }
}
