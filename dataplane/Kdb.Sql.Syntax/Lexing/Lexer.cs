using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Text;

namespace Kdb.Sql.Syntax.Lexing;

/// <summary>
/// PostgreSQL 15's lexical rules (src/backend/parser/scan.l) over a whole input string. Produces a
/// token array rented from the shared pool; the caller returns it with <see cref="Release"/>.
/// </summary>
internal static class Lexer
{
    private const string OperatorChars = "~!@#^&|`?+-*/%<>=";

    // An operator ending in + or - keeps that sign only if it contains one of these (scan.l's rule
    // that lets "a=-1" mean "a = -1").
    private const string SignKeepers = "~!@#^&|`?%";

    public static Token[] Tokenize(string sql, out int count)
    {
        var tokens = ArrayPool<Token>.Shared.Rent(Math.Max(16, (sql.Length / 3) + 4));
        count = 0;
        try
        {
            var i = 0;
            while (true)
            {
                i = SkipWhitespaceAndComments(sql, i);
                if (count == tokens.Length)
                {
                    var bigger = ArrayPool<Token>.Shared.Rent(tokens.Length * 2);
                    Array.Copy(tokens, bigger, count);
                    ArrayPool<Token>.Shared.Return(tokens, clearArray: true);
                    tokens = bigger;
                }

                if (i >= sql.Length)
                {
                    tokens[count++] = new Token { Kind = TokenKind.End, Start = sql.Length, End = sql.Length, Text = string.Empty };
                    return tokens;
                }

                i = Next(sql, i, ref tokens[count]);
                count++;
            }
        }
        catch
        {
            ArrayPool<Token>.Shared.Return(tokens, clearArray: true);
            throw;
        }
    }

    public static void Release(Token[] tokens) => ArrayPool<Token>.Shared.Return(tokens, clearArray: true);

    public static bool IsIdentStart(char c) => c is (>= 'a' and <= 'z') or (>= 'A' and <= 'Z') or '_' || c >= '\u0080';

    public static bool IsIdentPart(char c) => IsIdentStart(c) || c is (>= '0' and <= '9') or '$';

    /// <summary>Skips blanks, <c>--</c> comments and nested <c>/* */</c> comments.</summary>
    public static int SkipWhitespaceAndComments(string sql, int i)
    {
        while (i < sql.Length)
        {
            var c = sql[i];
            if (c is ' ' or '\t' or '\n' or '\r' or '\f' or '\v')
            {
                i++;
            }
            else if (c == '-' && i + 1 < sql.Length && sql[i + 1] == '-')
            {
                while (i < sql.Length && sql[i] != '\n' && sql[i] != '\r')
                {
                    i++;
                }
            }
            else if (c == '/' && i + 1 < sql.Length && sql[i + 1] == '*')
            {
                var start = i;
                i = SkipBlockComment(sql, i);
                if (i < 0)
                {
                    throw Error("unterminated /* comment", sql, start);
                }
            }
            else
            {
                break;
            }
        }

        return i;
    }

    /// <summary>Returns the index after the comment starting at <paramref name="i"/>, or -1 when unterminated.</summary>
    public static int SkipBlockComment(string sql, int i)
    {
        var depth = 0;
        while (i < sql.Length)
        {
            if (sql[i] == '/' && i + 1 < sql.Length && sql[i + 1] == '*')
            {
                depth++;
                i += 2;
            }
            else if (sql[i] == '*' && i + 1 < sql.Length && sql[i + 1] == '/')
            {
                depth--;
                i += 2;
                if (depth == 0)
                {
                    return i;
                }
            }
            else
            {
                i++;
            }
        }

        return -1;
    }

    /// <summary>If a dollar-quote delimiter (<c>$$</c> or <c>$tag$</c>) starts at <paramref name="i"/>, its length; else 0.</summary>
    public static int DollarTagLength(string sql, int i)
    {
        var j = i + 1;
        if (j < sql.Length && sql[j] == '$')
        {
            return 2;
        }

        if (j >= sql.Length || !IsIdentStart(sql[j]))
        {
            return 0;
        }

        while (j < sql.Length && IsIdentPart(sql[j]) && sql[j] != '$')
        {
            j++;
        }

        return j < sql.Length && sql[j] == '$' ? j - i + 1 : 0;
    }

    private static int Next(string sql, int i, ref Token t)
    {
        var c = sql[i];
        t.Start = i;
        t.Number = 0;
        if ((c is 'e' or 'E') && i + 1 < sql.Length && sql[i + 1] == '\'')
        {
            return LexString(sql, i + 1, i, escapes: true, ref t);
        }

        if ((c is 'n' or 'N') && i + 1 < sql.Length && sql[i + 1] == '\'')
        {
            return LexString(sql, i + 1, i, escapes: false, ref t);
        }

        // B'101' and X'1F' are bit-string constants, U&'..' / U&".." Unicode escapes: not supported, and
        // never to be misread as a typed literal of a type named b or x.
        if ((c is 'b' or 'B' or 'x' or 'X') && i + 1 < sql.Length && sql[i + 1] == '\'')
        {
            throw new SqlException(SqlState.FeatureNotSupported, "bit-string constants are not supported", i + 1);
        }

        if ((c is 'u' or 'U') && i + 2 < sql.Length && sql[i + 1] == '&' && sql[i + 2] is '\'' or '"')
        {
            throw new SqlException(SqlState.FeatureNotSupported, "Unicode escape strings (U&) are not supported", i + 1);
        }

        if (IsIdentStart(c))
        {
            return LexIdentifier(sql, i, ref t);
        }

        if (c is >= '0' and <= '9' || (c == '.' && i + 1 < sql.Length && sql[i + 1] is >= '0' and <= '9'))
        {
            return LexNumber(sql, i, ref t);
        }

        switch (c)
        {
            case '\'':
                return LexString(sql, i, i, escapes: false, ref t);
            case '"':
                return LexQuotedIdentifier(sql, i, ref t);
            case '$':
                return LexDollar(sql, i, ref t);
            case '(':
                return Single(TokenKind.LeftParen, i, ref t);
            case ')':
                return Single(TokenKind.RightParen, i, ref t);
            case '[':
                return Single(TokenKind.LeftBracket, i, ref t);
            case ']':
                return Single(TokenKind.RightBracket, i, ref t);
            case ',':
                return Single(TokenKind.Comma, i, ref t);
            case ';':
                return Single(TokenKind.Semicolon, i, ref t);
            case '.':
                return Single(TokenKind.Dot, i, ref t);
            case ':':
                if (i + 1 < sql.Length && sql[i + 1] == ':')
                {
                    t.Kind = TokenKind.DoubleColon;
                    t.End = i + 2;
                    t.Text = "::";
                    return i + 2;
                }

                return Single(TokenKind.Colon, i, ref t);
        }

        if (OperatorChars.Contains(c, StringComparison.Ordinal))
        {
            return LexOperator(sql, i, ref t);
        }

        throw Error("syntax error", sql, i, i + 1);
    }

    private static int Single(TokenKind kind, int i, ref Token t)
    {
        t.Kind = kind;
        t.End = i + 1;
        t.Text = kind switch
        {
            TokenKind.LeftParen => "(",
            TokenKind.RightParen => ")",
            TokenKind.LeftBracket => "[",
            TokenKind.RightBracket => "]",
            TokenKind.Comma => ",",
            TokenKind.Semicolon => ";",
            TokenKind.Dot => ".",
            _ => ":",
        };
        return i + 1;
    }

    private static int LexIdentifier(string sql, int i, ref Token t)
    {
        var start = i;
        var upper = false;
        while (i < sql.Length && IsIdentPart(sql[i]))
        {
            upper |= sql[i] is >= 'A' and <= 'Z';
            i++;
        }

        t.Kind = TokenKind.Identifier;
        t.End = i;
        var span = sql.AsSpan(start, i - start);
        if (!upper)
        {
            t.Text = Keywords.InternLookup.TryGetValue(span, out var known) ? known : span.ToString();
            return i;
        }

        // PostgreSQL folds only ASCII letters (downcase_identifier for multibyte encodings).
        Span<char> lowered = span.Length <= 64 ? stackalloc char[span.Length] : new char[span.Length];
        for (var k = 0; k < span.Length; k++)
        {
            var ch = span[k];
            lowered[k] = ch is >= 'A' and <= 'Z' ? (char)(ch + 32) : ch;
        }

        t.Text = Keywords.InternLookup.TryGetValue(lowered, out var kw) ? kw : lowered.ToString();
        return i;
    }

    private static int LexQuotedIdentifier(string sql, int i, ref Token t)
    {
        var start = i;
        i++;
        StringBuilder? sb = null;
        var segment = i;
        while (true)
        {
            if (i >= sql.Length)
            {
                throw Error("unterminated quoted identifier", sql, start);
            }

            if (sql[i] == '"')
            {
                if (i + 1 < sql.Length && sql[i + 1] == '"')
                {
                    sb ??= new StringBuilder();
                    sb.Append(sql, segment, i - segment + 1);
                    i += 2;
                    segment = i;
                    continue;
                }

                break;
            }

            i++;
        }

        string text;
        if (sb is null)
        {
            text = sql.Substring(segment, i - segment);
        }
        else
        {
            sb.Append(sql, segment, i - segment);
            text = sb.ToString();
        }

        if (text.Length == 0)
        {
            throw Error("zero-length delimited identifier", sql, start, i + 1);
        }

        t.Kind = TokenKind.QuotedIdentifier;
        t.End = i + 1;
        t.Text = text;
        return i + 1;
    }

    private static int LexNumber(string sql, int i, ref Token t)
    {
        var start = i;
        var isDecimal = false;
        while (i < sql.Length && sql[i] is >= '0' and <= '9')
        {
            i++;
        }

        // "1..5" keeps the integer (scan.l's integer-followed-by-".." rule).
        if (i < sql.Length && sql[i] == '.' && !(i + 1 < sql.Length && sql[i + 1] == '.'))
        {
            isDecimal = true;
            i++;
            while (i < sql.Length && sql[i] is >= '0' and <= '9')
            {
                i++;
            }
        }

        if (i < sql.Length && sql[i] is 'e' or 'E')
        {
            var j = i + 1;
            if (j < sql.Length && sql[j] is '+' or '-')
            {
                j++;
            }

            if (j < sql.Length && sql[j] is >= '0' and <= '9')
            {
                while (j < sql.Length && sql[j] is >= '0' and <= '9')
                {
                    j++;
                }

                isDecimal = true;
                i = j;
            }
        }

        if (i < sql.Length && IsIdentStart(sql[i]))
        {
            var j = i;
            while (j < sql.Length && IsIdentPart(sql[j]))
            {
                j++;
            }

            throw Error("trailing junk after numeric literal", sql, start, j);
        }

        t.Kind = isDecimal ? TokenKind.Decimal : TokenKind.Integer;
        t.End = i;
        t.Text = sql.Substring(start, i - start);
        return i;
    }

    private static int LexDollar(string sql, int i, ref Token t)
    {
        if (i + 1 < sql.Length && sql[i + 1] is >= '0' and <= '9')
        {
            var j = i + 1;
            long n = 0;
            while (j < sql.Length && sql[j] is >= '0' and <= '9')
            {
                n = Math.Min((n * 10) + (sql[j] - '0'), int.MaxValue + 1L);
                j++;
            }

            if (j < sql.Length && IsIdentPart(sql[j]))
            {
                var k = j;
                while (k < sql.Length && IsIdentPart(sql[k]))
                {
                    k++;
                }

                throw Error("trailing junk after parameter", sql, i, k);
            }

            if (n is 0 or > int.MaxValue)
            {
                throw new SqlException(SqlState.SyntaxError, $"there is no parameter {sql.AsSpan(i, j - i)}", i + 1);
            }

            t.Kind = TokenKind.Parameter;
            t.End = j;
            t.Number = (int)n;
            t.Text = sql.Substring(i, j - i);
            return j;
        }

        var tag = DollarTagLength(sql, i);
        if (tag == 0)
        {
            throw Error("syntax error", sql, i, i + 1);
        }

        var body = i + tag;
        var close = sql.AsSpan(body).IndexOf(sql.AsSpan(i, tag), StringComparison.Ordinal);
        if (close < 0)
        {
            throw Error("unterminated dollar-quoted string", sql, i);
        }

        t.Kind = TokenKind.String;
        t.Text = sql.Substring(body, close);
        t.End = body + close + tag;
        return t.End;
    }

    private static int LexOperator(string sql, int i, ref Token t)
    {
        var start = i;
        while (i < sql.Length && OperatorChars.Contains(sql[i], StringComparison.Ordinal))
        {
            // A comment start ends the operator (scan.l truncates at "--" and "/*").
            if (i > start && ((sql[i] == '-' && i + 1 < sql.Length && sql[i + 1] == '-') || (sql[i] == '/' && i + 1 < sql.Length && sql[i + 1] == '*')))
            {
                break;
            }

            i++;
        }

        var len = i - start;
        if (len > 1 && sql[start + len - 1] is '+' or '-')
        {
            var keep = false;
            for (var k = start; k < start + len; k++)
            {
                keep |= SignKeepers.Contains(sql[k], StringComparison.Ordinal);
            }

            if (!keep)
            {
                while (len > 1 && sql[start + len - 1] is '+' or '-')
                {
                    len--;
                }
            }
        }

        t.Kind = TokenKind.Operator;
        t.End = start + len;
        t.Text = OperatorText(sql.AsSpan(start, len));
        return t.End;
    }

    private static string OperatorText(ReadOnlySpan<char> op) => op switch
    {
        "+" => "+",
        "-" => "-",
        "*" => "*",
        "/" => "/",
        "%" => "%",
        "^" => "^",
        "=" => "=",
        "<" => "<",
        ">" => ">",
        "<=" => "<=",
        ">=" => ">=",
        "<>" or "!=" => "<>",
        "||" => "||",
        "->" => "->",
        "->>" => "->>",
        "~" => "~",
        "!~" => "!~",
        "~*" => "~*",
        "!~*" => "!~*",
        "&" => "&",
        "|" => "|",
        "<<" => "<<",
        ">>" => ">>",
        "@>" => "@>",
        "?" => "?",
        _ => op.ToString(),
    };

    private static int LexString(string sql, int quote, int start, bool escapes, ref Token t)
    {
        var sb = new StringBuilder();
        var i = quote + 1;
        while (true)
        {
            if (i >= sql.Length)
            {
                throw Error("unterminated quoted string", sql, start);
            }

            var c = sql[i];
            if (c == '\'')
            {
                if (i + 1 < sql.Length && sql[i + 1] == '\'')
                {
                    sb.Append('\'');
                    i += 2;
                    continue;
                }

                // 'a'<newline>'b' is one constant (SQL standard string continuation).
                var j = i + 1;
                var newline = false;
                while (j < sql.Length && sql[j] is ' ' or '\t' or '\n' or '\r' or '\f')
                {
                    newline |= sql[j] is '\n' or '\r';
                    j++;
                }

                if (newline && j < sql.Length && sql[j] == '\'')
                {
                    i = j + 1;
                    continue;
                }

                break;
            }

            if (escapes && c == '\\')
            {
                i = Unescape(sql, i, sb, start);
                continue;
            }

            sb.Append(c);
            i++;
        }

        t.Kind = TokenKind.String;
        t.End = i + 1;
        t.Text = sb.ToString();
        return i + 1;
    }

    private static int Unescape(string sql, int i, StringBuilder sb, int start)
    {
        if (i + 1 >= sql.Length)
        {
            throw Error("unterminated quoted string", sql, start);
        }

        var c = sql[i + 1];
        switch (c)
        {
            case 'b': sb.Append('\b'); return i + 2;
            case 'f': sb.Append('\f'); return i + 2;
            case 'n': sb.Append('\n'); return i + 2;
            case 'r': sb.Append('\r'); return i + 2;
            case 't': sb.Append('\t'); return i + 2;
            case 'x':
                {
                    var j = i + 2;
                    var v = 0;
                    while (j < sql.Length && j < i + 4 && char.IsAsciiHexDigit(sql[j]))
                    {
                        v = (v * 16) + HexValue(sql[j]);
                        j++;
                    }

                    if (j == i + 2)
                    {
                        sb.Append('x');
                        return i + 2;
                    }

                    AppendCode(v, i, sb);
                    return j;
                }

            case 'u':
            case 'U':
                {
                    var digits = c == 'u' ? 4 : 8;
                    var j = i + 2;
                    if (j + digits > sql.Length || !int.TryParse(sql.AsSpan(j, digits), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var v) || v < 0)
                    {
                        throw new SqlException(SqlState.SyntaxError, "invalid Unicode escape", i + 1, hint: "Unicode escapes must be \\uXXXX or \\UXXXXXXXX.");
                    }

                    AppendCode(v, i, sb);
                    return j + digits;
                }
        }

        if (c is >= '0' and <= '7')
        {
            var j = i + 1;
            var v = 0;
            while (j < sql.Length && j < i + 4 && sql[j] is >= '0' and <= '7')
            {
                v = (v * 8) + (sql[j] - '0');
                j++;
            }

            AppendCode(v, i, sb);
            return j;
        }

        sb.Append(c);
        return i + 2;
    }

    private static void AppendCode(int v, int i, StringBuilder sb)
    {
        if (v == 0 || v > 0x10FFFF || v is >= 0xD800 and <= 0xDFFF)
        {
            throw new SqlException(SqlState.SyntaxError, v == 0 ? "invalid byte sequence for encoding \"UTF8\": 0x00" : "invalid Unicode escape value", i + 1);
        }

        sb.Append(char.ConvertFromUtf32(v));
    }

    private static int HexValue(char c) => c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;

    /// <summary>A lexical error: the text shown is the rest of the input from <paramref name="start"/> (as scan.l does), or up to <paramref name="end"/>.</summary>
    [SuppressMessage("Style", "IDE0057", Justification = "clarity")]
    public static SqlException Error(string message, string sql, int start, int end = -1)
    {
        var near = end < 0 ? sql.Substring(start) : sql.Substring(start, end - start);
        return new SqlException(SqlState.SyntaxError, $"{message} at or near \"{near}\"", start + 1);
    }
}
