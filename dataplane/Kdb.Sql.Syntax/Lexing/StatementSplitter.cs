namespace Kdb.Sql.Syntax.Lexing;

/// <summary>
/// Splits SQL text on top-level semicolons the way psql does (quotes, dollar quotes, comments and
/// parentheses respected), tolerating unterminated constructs.
/// </summary>
internal static class StatementSplitter
{
    public static List<string> Split(string sql)
    {
        var result = new List<string>();
        var start = 0;
        var depth = 0;
        var i = 0;
        while (i < sql.Length)
        {
            var c = sql[i];
            var prevIsIdent = i > 0 && Lexer.IsIdentPart(sql[i - 1]);
            switch (c)
            {
                case '\'':
                    {
                        var escapes = i > 0 && sql[i - 1] is 'e' or 'E' && !(i > 1 && Lexer.IsIdentPart(sql[i - 2]));
                        i = SkipQuoted(sql, i, '\'', escapes);
                        continue;
                    }

                case '"':
                    i = SkipQuoted(sql, i, '"', escapes: false);
                    continue;
                case '$' when !prevIsIdent:
                    {
                        var tag = Lexer.DollarTagLength(sql, i);
                        if (tag > 0)
                        {
                            var close = sql.AsSpan(i + tag).IndexOf(sql.AsSpan(i, tag), StringComparison.Ordinal);
                            i = close < 0 ? sql.Length : i + tag + close + tag;
                            continue;
                        }

                        break;
                    }

                case '-' when i + 1 < sql.Length && sql[i + 1] == '-':
                    while (i < sql.Length && sql[i] != '\n')
                    {
                        i++;
                    }

                    continue;
                case '/' when i + 1 < sql.Length && sql[i + 1] == '*':
                    {
                        var end = Lexer.SkipBlockComment(sql, i);
                        i = end < 0 ? sql.Length : end;
                        continue;
                    }

                case '(':
                    depth++;
                    break;
                case ')':
                    depth = Math.Max(0, depth - 1);
                    break;
                case ';' when depth == 0:
                    Add(result, sql, start, i);
                    start = i + 1;
                    break;
            }

            i++;
        }

        Add(result, sql, start, sql.Length);
        return result;
    }

    private static int SkipQuoted(string sql, int i, char quote, bool escapes)
    {
        i++;
        while (i < sql.Length)
        {
            var c = sql[i];
            if (escapes && c == '\\')
            {
                i += 2;
                continue;
            }

            if (c == quote)
            {
                if (i + 1 < sql.Length && sql[i + 1] == quote)
                {
                    i += 2;
                    continue;
                }

                return i + 1;
            }

            i++;
        }

        return sql.Length;
    }

    private static void Add(List<string> result, string sql, int start, int end)
    {
        var text = sql.AsSpan(start, Math.Min(end, sql.Length) - start).Trim();
        if (text.IsEmpty || !HasContent(text.ToString()))
        {
            return;
        }

        result.Add(text.ToString());
    }

    private static bool HasContent(string text)
    {
        // Only whitespace and comments: an empty statement, dropped.
        var i = 0;
        while (i < text.Length)
        {
            var c = text[i];
            if (char.IsWhiteSpace(c))
            {
                i++;
            }
            else if (c == '-' && i + 1 < text.Length && text[i + 1] == '-')
            {
                while (i < text.Length && text[i] != '\n')
                {
                    i++;
                }
            }
            else if (c == '/' && i + 1 < text.Length && text[i + 1] == '*')
            {
                var end = Lexer.SkipBlockComment(text, i);
                if (end < 0)
                {
                    return false;
                }

                i = end;
            }
            else
            {
                return true;
            }
        }

        return false;
    }
}
