namespace Kdb.Sql.Syntax.Lexing;

/// <summary>Kinds of lexical tokens.</summary>
internal enum TokenKind : byte
{
    End = 0,

    /// <summary>Unquoted identifier or keyword; <see cref="Token.Text"/> is folded to lowercase.</summary>
    Identifier = 1,

    /// <summary>"Quoted" identifier; <see cref="Token.Text"/> is verbatim (doubled quotes undone).</summary>
    QuotedIdentifier = 2,

    /// <summary>String constant of any quoting style; <see cref="Token.Text"/> is the decoded value.</summary>
    String = 3,

    Integer = 4,
    Decimal = 5,

    /// <summary><c>$n</c>; <see cref="Token.Number"/> is n.</summary>
    Parameter = 6,

    /// <summary>Operator; <see cref="Token.Text"/> is its spelling (<c>!=</c> already turned into <c>&lt;&gt;</c>).</summary>
    Operator = 7,

    LeftParen = 8,
    RightParen = 9,
    LeftBracket = 10,
    RightBracket = 11,
    Comma = 12,
    Semicolon = 13,
    Dot = 14,
    Colon = 15,
    DoubleColon = 16,
}

/// <summary>
/// One token. <see cref="Start"/> and <see cref="End"/> are 0-based offsets into the whole input
/// (End exclusive); positions reported to users are <see cref="Start"/> + 1.
/// </summary>
internal struct Token
{
    public TokenKind Kind;
    public int Start;
    public int End;
    public int Number;
    public string Text;

    public readonly int Position => Start + 1;

    /// <summary>True for an unquoted identifier spelled <paramref name="keyword"/> (lowercase).</summary>
    public readonly bool Is(string keyword) => Kind == TokenKind.Identifier && string.Equals(Text, keyword, StringComparison.Ordinal);

    public readonly bool IsOperator(string op) => Kind == TokenKind.Operator && string.Equals(Text, op, StringComparison.Ordinal);
}
