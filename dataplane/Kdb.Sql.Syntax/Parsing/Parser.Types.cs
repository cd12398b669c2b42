using System.Globalization;
using Kdb.Sql.Syntax.Lexing;

namespace Kdb.Sql.Syntax.Parsing;

// Type names, canonicalized as TypeName's documentation says ("double precision", "character varying",
// "timestamp with time zone", pg_catalog's schema dropped).
internal sealed partial class Parser
{
    public TypeName ParseTypeName()
    {
        var type = TryParseTypeName(out var errorIndex);
        return type ?? throw SyntaxErrorAt(errorIndex);
    }

    /// <summary>Parses a type name, or returns null with the index of the offending token (tokens may have been consumed).</summary>
    private TypeName? TryParseTypeName(out int errorIndex)
    {
        errorIndex = _pos;
        var t = Current;
        var pos = t.Position;
        string name;
        var allowModifiers = true;
        List<int> modifiers = [];
        if (t.Kind == TokenKind.QuotedIdentifier || (t.Kind == TokenKind.Identifier && !Keywords.IsReserved(t.Text)))
        {
            _pos++;
            if (t.Kind == TokenKind.QuotedIdentifier)
            {
                name = t.Text;
            }
            else
            {
                switch (t.Text)
                {
                    case "double":
                        if (!Accept("precision"))
                        {
                            errorIndex = _pos;
                            return null;
                        }

                        name = "double precision";
                        break;
                    case "national":
                    case "nchar":
                    case "character":
                    case "char":
                        if (t.Text == "national" && !Accept("character") && !Accept("char"))
                        {
                            errorIndex = _pos;
                            return null;
                        }

                        // Unquoted char is SQL's character (bpchar); only a quoted "char" names PostgreSQL's one-byte type.
                        name = Accept("varying") ? "character varying" : "character";
                        break;
                    case "bit":
                        name = Accept("varying") ? "bit varying" : "bit";
                        break;
                    case "timestamp":
                    case "time":
                        if (!TryParseModifiers(modifiers, out errorIndex))
                        {
                            return null;
                        }

                        allowModifiers = false;
                        name = t.Text;
                        if ((IsKeyword("with") || IsKeyword("without")) && IsKeywordAt(1, "time") && IsKeywordAt(2, "zone"))
                        {
                            name = t.Text + (Advance().Text == "with" ? " with time zone" : " without time zone");
                            _pos += 2;
                        }

                        break;
                    default:
                        name = t.Text;
                        break;
                }
            }

            if (Current.Kind == TokenKind.Dot && !name.Contains(' ', StringComparison.Ordinal))
            {
                _pos++;
                if (!IsColLabel(Current))
                {
                    errorIndex = _pos;
                    return null;
                }

                var second = Advance().Text;
                name = name == "pg_catalog" ? second : name + "." + second;
            }
        }
        else
        {
            return null;
        }

        if (allowModifiers && !TryParseModifiers(modifiers, out errorIndex, name is "numeric" or "decimal"))
        {
            return null;
        }

        var dims = 0;
        while (true)
        {
            if (Current.Kind == TokenKind.LeftBracket)
            {
                _pos++;
                if (Current.Kind == TokenKind.Integer)
                {
                    _pos++;
                }

                if (!Accept(TokenKind.RightBracket))
                {
                    errorIndex = _pos;
                    return null;
                }

                dims++;
            }
            else if (IsKeyword("array"))
            {
                _pos++;
                dims++;
                if (Current.Kind == TokenKind.LeftBracket)
                {
                    _pos++;
                    if (!Accept(TokenKind.Integer) || !Accept(TokenKind.RightBracket))
                    {
                        errorIndex = _pos;
                        return null;
                    }
                }

                break;
            }
            else
            {
                break;
            }
        }

        return new TypeName(pos, name, modifiers, dims);
    }

    /// <summary>
    /// A type's (n, ...) list. PostgreSQL's grammar gives numeric an expression list where a negated constant folds
    /// to a negative one (numeric(3,-1), new in 15); the other types take unsigned integers only.
    /// </summary>
    private bool TryParseModifiers(List<int> modifiers, out int errorIndex, bool allowNegative = false)
    {
        errorIndex = _pos;
        if (Current.Kind != TokenKind.LeftParen)
        {
            return true;
        }

        _pos++;
        while (true)
        {
            var negative = allowNegative && Current.IsOperator("-");
            if (negative)
            {
                _pos++;
            }

            var t = Current;
            if (t.Kind != TokenKind.Integer || !int.TryParse(t.Text, NumberStyles.None, CultureInfo.InvariantCulture, out var value))
            {
                errorIndex = _pos;
                return false;
            }

            _pos++;
            modifiers.Add(negative ? -value : value);
            if (Accept(TokenKind.RightParen))
            {
                return true;
            }

            if (!Accept(TokenKind.Comma))
            {
                errorIndex = _pos;
                return false;
            }
        }
    }
}
