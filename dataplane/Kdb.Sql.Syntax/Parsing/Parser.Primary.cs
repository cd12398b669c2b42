using Kdb.Sql.Syntax.Lexing;

namespace Kdb.Sql.Syntax.Parsing;

// Primary expressions: constants, names, function calls (with PostgreSQL's special call syntaxes
// normalized as Ast.Expressions.cs documents), CASE, CAST, ARRAY, ROW, subqueries.
internal sealed partial class Parser
{
    private Expr ParsePrimary()
    {
        ref readonly var t = ref Current;
        var pos = t.Position;
        switch (t.Kind)
        {
            case TokenKind.Integer:
                _pos++;
                return new LiteralExpr(pos, LiteralKind.Integer, t.Text);
            case TokenKind.Decimal:
                _pos++;
                return new LiteralExpr(pos, LiteralKind.Decimal, t.Text);
            case TokenKind.String:
                _pos++;
                return new LiteralExpr(pos, LiteralKind.String, t.Text);
            case TokenKind.Parameter:
                _pos++;
                return new ParameterExpr(pos, t.Number);
            case TokenKind.LeftParen:
                return ParseParenthesized();
            case TokenKind.QuotedIdentifier:
                return ParseNameExpression();
            case TokenKind.Identifier:
                return ParseKeywordOrName();
            default:
                throw SyntaxError();
        }
    }

    private Expr ParseParenthesized()
    {
        var pos = Advance().Position;
        if (StartsQueryAt(_pos))
        {
            var query = ParseSelectStatement();
            Expect(TokenKind.RightParen);
            return new ScalarSubqueryExpr(pos, query);
        }

        var first = ParseExpression();
        if (Current.Kind == TokenKind.Comma)
        {
            var items = new List<Expr> { first };
            while (Accept(TokenKind.Comma))
            {
                items.Add(ParseExpression());
            }

            Expect(TokenKind.RightParen);
            return new RowExpr(pos, items);
        }

        Expect(TokenKind.RightParen);
        return first;
    }

    private Expr ParseKeywordOrName()
    {
        ref readonly var t = ref Current;
        var pos = t.Position;
        var nextIsParen = PeekToken(1).Kind == TokenKind.LeftParen;
        switch (t.Text)
        {
            case "null":
                _pos++;
                return new LiteralExpr(pos, LiteralKind.Null, "null");
            case "true":
            case "false":
                _pos++;
                return new LiteralExpr(pos, LiteralKind.Boolean, t.Text);
            case "default":
                _pos++;
                return new DefaultExpr(pos);
            case "case":
                return ParseCase();
            case "cast":
                {
                    _pos++;
                    Expect(TokenKind.LeftParen);
                    var operand = ParseExpression();
                    Expect("as");
                    var type = ParseTypeName();
                    Expect(TokenKind.RightParen);
                    return new CastExpr(pos, operand, type);
                }

            case "array":
                return ParseArray();
            case "row" when nextIsParen:
                {
                    _pos += 2;
                    var items = Current.Kind == TokenKind.RightParen ? [] : ParseExpressionList();
                    Expect(TokenKind.RightParen);
                    return new RowExpr(pos, items);
                }

            case "exists" when nextIsParen:
                {
                    _pos += 2;
                    var query = ParseSelectStatement();
                    Expect(TokenKind.RightParen);
                    return new ExistsExpr(pos, query, Negated: false);
                }

            case "current_date" or "current_time" or "current_timestamp" or "localtime" or "localtimestamp"
                or "current_user" or "session_user" or "user" or "current_role" or "current_catalog":
                _pos++;
                if (nextIsParen && t.Text is "current_time" or "current_timestamp" or "localtime" or "localtimestamp")
                {
                    throw NotSupported("a precision for " + t.Text);
                }

                return new FunctionCallExpr(pos, [t.Text], [], NoParentheses: true);
            case "current_schema" when !nextIsParen:
                _pos++;
                return new FunctionCallExpr(pos, ["current_schema"], [], NoParentheses: true);
            case "extract" when nextIsParen:
                return ParseExtract() ?? ParseNameExpression();
            case "substring" when nextIsParen:
                return ParseSubstring() ?? ParseNameExpression();
            case "position" when nextIsParen:
                return ParsePosition() ?? ParseNameExpression();
            case "trim" when nextIsParen:
                return ParseTrim();
            case "overlay" when nextIsParen:
                throw NotSupported("OVERLAY");
        }

        if (!Keywords.IsReserved(t.Text))
        {
            var literal = TryParseTypedLiteral();
            if (literal is not null)
            {
                return literal;
            }
        }

        return ParseNameExpression();
    }

    /// <summary>A column reference, <c>t.*</c>, or a (possibly qualified) function call.</summary>
    private Expr ParseNameExpression()
    {
        var first = Current;
        var firstIndex = _pos;
        var pos = first.Position;
        if (first.Kind == TokenKind.Identifier && Keywords.IsReserved(first.Text))
        {
            throw SyntaxError();
        }

        _pos++;
        var parts = new List<string>(2) { first.Text };
        while (Current.Kind == TokenKind.Dot)
        {
            if (PeekToken(1).IsOperator("*"))
            {
                _pos += 2;
                if (first.Kind == TokenKind.Identifier && Keywords.IsTypeFunctionName(first.Text))
                {
                    throw SyntaxErrorAt(firstIndex);
                }

                return new StarExpr(pos, parts[^1]);
            }

            _pos++;
            parts.Add(ParseColLabel());
        }

        if (Current.Kind == TokenKind.LeftParen)
        {
            // Column-name keywords are functions only through their own syntax (int(1) is an error).
            if (parts.Count == 1 && first.Kind == TokenKind.Identifier && Keywords.IsColumnNameKeyword(first.Text) &&
                first.Text is not ("coalesce" or "greatest" or "least" or "nullif" or "exists" or "row" or "grouping" or "extract" or "substring" or "position" or "trim"))
            {
                throw SyntaxErrorAt(firstIndex);
            }

            return ParseFunctionCall(pos, parts);
        }

        if (first.Kind == TokenKind.Identifier && Keywords.IsTypeFunctionName(first.Text))
        {
            throw SyntaxErrorAt(firstIndex);
        }

        if (parts.Count > 3)
        {
            throw new SqlException(SqlState.SyntaxError, $"improper qualified name (too many dotted names): {string.Join('.', parts)}", pos);
        }

        return new ColumnRefExpr(pos, parts);
    }

    private FunctionCallExpr ParseFunctionCall(int pos, List<string> name)
    {
        Expect(TokenKind.LeftParen);
        var distinct = false;
        var star = false;
        List<Expr> args = [];
        List<OrderItem>? orderWithin = null;
        if (Current.IsOperator("*") && PeekToken(1).Kind == TokenKind.RightParen)
        {
            _pos++;
            star = true;
        }
        else if (Current.Kind != TokenKind.RightParen)
        {
            if (Accept("distinct"))
            {
                distinct = true;
            }
            else
            {
                Accept("all");
            }

            if (IsKeyword("variadic"))
            {
                throw NotSupported("VARIADIC");
            }

            args.Add(ParseFunctionArgument());
            while (Accept(TokenKind.Comma))
            {
                args.Add(ParseFunctionArgument());
            }

            if (IsKeyword("order") && IsKeywordAt(1, "by"))
            {
                _pos += 2;
                orderWithin = ParseOrderItems();
            }
        }

        Expect(TokenKind.RightParen);
        var withinGroup = false;
        if (IsKeyword("within") && IsKeywordAt(1, "group"))
        {
            if (orderWithin is not null)
            {
                throw SyntaxError();
            }

            _pos += 2;
            Expect(TokenKind.LeftParen);
            Expect("order");
            Expect("by");
            orderWithin = ParseOrderItems();
            Expect(TokenKind.RightParen);
            withinGroup = true;
        }

        Expr? filter = null;
        if (IsKeyword("filter") && PeekToken(1).Kind == TokenKind.LeftParen)
        {
            _pos += 2;
            Expect("where");
            filter = ParseExpression();
            Expect(TokenKind.RightParen);
        }

        WindowSpec? over = null;
        if (Accept("over"))
        {
            over = Current.Kind == TokenKind.LeftParen ? ParseWindowSpec() : new WindowSpec(ParseColId(), [], [], null);
        }

        return new FunctionCallExpr(pos, name, args, distinct, star, orderWithin, filter, over, WithinGroup: withinGroup);
    }

    private Expr ParseFunctionArgument()
    {
        if (IsColLabel(Current) && PeekToken(1).Kind == TokenKind.Operator && PeekToken(1).Text == "=>")
        {
            throw NotSupported("named function arguments");
        }

        return ParseExpression();
    }

    /// <summary>EXTRACT(field FROM x) → extract('field', x); null (nothing consumed) when the call is in the plain form.</summary>
    private FunctionCallExpr? ParseExtract()
    {
        var start = _pos;
        var pos = Current.Position;
        _pos += 2;
        ref readonly var field = ref Current;
        if ((field.Kind == TokenKind.String || (field.Kind == TokenKind.Identifier && !Keywords.NeedsQuoting(field.Text))) && IsKeywordAt(1, "from"))
        {
            var fieldPos = field.Position;
            var name = field.Kind == TokenKind.Identifier ? field.Text : field.Text.ToLowerInvariant();
            _pos += 2;
            var source = ParseExpression();
            Expect(TokenKind.RightParen);
            return new FunctionCallExpr(pos, ["extract"], [new LiteralExpr(fieldPos, LiteralKind.String, name), source]);
        }

        _pos = start;
        return null;
    }

    /// <summary>SUBSTRING(x FROM a FOR b) → substring(x, a, b); null when the call is in the plain comma form.</summary>
    private FunctionCallExpr? ParseSubstring()
    {
        var start = _pos;
        var pos = Current.Position;
        _pos += 2;
        if (Current.Kind == TokenKind.RightParen)
        {
            _pos = start;
            return null;
        }

        var source = ParseExpression();
        if (Accept("from"))
        {
            var from = ParseExpression();
            List<Expr> args = [source, from];
            if (Accept("for"))
            {
                args.Add(ParseExpression());
            }

            Expect(TokenKind.RightParen);
            return new FunctionCallExpr(pos, ["substring"], args);
        }

        if (Accept("for"))
        {
            var count = ParseExpression();
            List<Expr> args = [source];
            if (Accept("from"))
            {
                args.Add(ParseExpression());
            }
            else
            {
                args.Add(new LiteralExpr(count.Position, LiteralKind.Integer, "1"));
            }

            args.Add(count);
            Expect(TokenKind.RightParen);
            return new FunctionCallExpr(pos, ["substring"], args);
        }

        _pos = start;
        return null;
    }

    /// <summary>POSITION(a IN b) → position(a, b); null when the call is in the plain comma form.</summary>
    private FunctionCallExpr? ParsePosition()
    {
        var start = _pos;
        var pos = Current.Position;
        _pos += 2;
        if (Current.Kind == TokenKind.RightParen)
        {
            _pos = start;
            return null;
        }

        var needle = ParseExpr(Precedence.Predicate + 1);
        if (Accept("in"))
        {
            var haystack = ParseExpr(Precedence.Predicate + 1);
            Expect(TokenKind.RightParen);
            return new FunctionCallExpr(pos, ["position"], [needle, haystack]);
        }

        _pos = start;
        return null;
    }

    /// <summary>TRIM([BOTH|LEADING|TRAILING] [chars] FROM x) and TRIM(x [, chars]) → btrim/ltrim/rtrim(x[, chars]).</summary>
    private FunctionCallExpr ParseTrim()
    {
        var pos = Current.Position;
        _pos += 2;
        var name = "btrim";
        if (Accept("leading"))
        {
            name = "ltrim";
        }
        else if (Accept("trailing"))
        {
            name = "rtrim";
        }
        else
        {
            Accept("both");
        }

        List<Expr> args;
        if (Accept("from"))
        {
            args = ParseExpressionList();
        }
        else
        {
            var first = ParseExpression();
            if (Accept("from"))
            {
                args = ParseExpressionList();
                args.Add(first);
            }
            else
            {
                args = [first];
                while (Accept(TokenKind.Comma))
                {
                    args.Add(ParseExpression());
                }
            }
        }

        Expect(TokenKind.RightParen);
        return new FunctionCallExpr(pos, [name], args);
    }

    private CaseExpr ParseCase()
    {
        var pos = Advance().Position;
        Expr? operand = null;
        if (!IsKeyword("when"))
        {
            operand = ParseExpression();
        }

        var whens = new List<CaseWhen>();
        while (Accept("when"))
        {
            var condition = ParseExpression();
            Expect("then");
            whens.Add(new CaseWhen(condition, ParseExpression()));
        }

        if (whens.Count == 0)
        {
            throw SyntaxError();
        }

        Expr? otherwise = null;
        if (Accept("else"))
        {
            otherwise = ParseExpression();
        }

        Expect("end");
        return new CaseExpr(pos, operand, whens, otherwise);
    }

    private Expr ParseArray()
    {
        var pos = Advance().Position;
        if (Current.Kind == TokenKind.LeftParen)
        {
            _pos++;
            var query = ParseSelectStatement();
            Expect(TokenKind.RightParen);
            return new ArraySubqueryExpr(pos, query);
        }

        if (Current.Kind != TokenKind.LeftBracket)
        {
            throw SyntaxError();
        }

        return ParseArrayElements(pos);
    }

    /// <summary><c>[a, b]</c> where an element may itself be a bracketed sub-array (ARRAY[[1,2],[3,4]]).</summary>
    private ArrayExpr ParseArrayElements(int pos)
    {
        Enter();
        try
        {
            Expect(TokenKind.LeftBracket);
            var items = new List<Expr>();
            if (Current.Kind != TokenKind.RightBracket)
            {
                do
                {
                    items.Add(Current.Kind == TokenKind.LeftBracket ? ParseArrayElements(Current.Position) : ParseExpression());
                }
                while (Accept(TokenKind.Comma));
            }

            Expect(TokenKind.RightBracket);
            return new ArrayExpr(pos, items);
        }
        finally
        {
            Leave();
        }
    }

    /// <summary>A typed literal such as <c>DATE '2024-01-01'</c> or <c>timestamp with time zone '...'</c>; null (nothing consumed) otherwise.</summary>
    private CastExpr? TryParseTypedLiteral()
    {
        var next = PeekToken(1).Kind;
        var t = Current;
        if (next != TokenKind.String && !(next is TokenKind.Identifier or TokenKind.LeftParen && IsTypeStartWord(t.Text)))
        {
            return null;
        }

        var start = _pos;
        var type = TryParseTypeName(out _);
        if (type is null || Current.Kind != TokenKind.String || type.ArrayDimensions != 0)
        {
            _pos = start;
            return null;
        }

        var literal = Advance();
        if (type.Name == "interval" && Current.Kind == TokenKind.Identifier &&
            Current.Text is "year" or "month" or "day" or "hour" or "minute" or "second")
        {
            throw NotSupported("an interval field qualifier");
        }

        return new CastExpr(t.Position, new LiteralExpr(literal.Position, LiteralKind.String, literal.Text), type);
    }

    private static bool IsTypeStartWord(string word) => word is "double" or "timestamp" or "time" or "character" or "char" or "varchar"
        or "bit" or "interval" or "numeric" or "decimal" or "dec" or "float" or "national" or "nchar";

    /// <summary><c>OVER (...)</c>: [base window] [PARTITION BY ...] [ORDER BY ...] [frame].</summary>
    private WindowSpec ParseWindowSpec()
    {
        Expect(TokenKind.LeftParen);
        string? name = null;
        if (IsColId(Current) && !IsKeyword("partition") && !IsKeyword("rows") && !IsKeyword("range") && !IsKeyword("groups"))
        {
            name = Advance().Text;
        }

        IReadOnlyList<Expr> partition = [];
        if (IsKeyword("partition"))
        {
            _pos++;
            Expect("by");
            partition = ParseExpressionList();
        }

        IReadOnlyList<OrderItem> order = [];
        if (IsKeyword("order"))
        {
            _pos++;
            Expect("by");
            order = ParseOrderItems();
        }

        WindowFrame? frame = null;
        if (IsKeyword("rows") || IsKeyword("range") || IsKeyword("groups"))
        {
            var units = Advance().Text;
            FrameBound start;
            FrameBound end;
            if (Accept("between"))
            {
                start = ParseFrameBound();
                Expect("and");
                end = ParseFrameBound();
            }
            else
            {
                start = ParseFrameBound();
                end = new FrameBound(FrameBoundKind.CurrentRow, null);
            }

            if (IsKeyword("exclude"))
            {
                throw NotSupported("EXCLUDE in a window frame");
            }

            frame = new WindowFrame(units, start, end);
        }

        Expect(TokenKind.RightParen);
        return new WindowSpec(name, partition, order, frame);
    }

    private FrameBound ParseFrameBound()
    {
        if (IsKeyword("unbounded"))
        {
            _pos++;
            if (Accept("preceding"))
            {
                return new FrameBound(FrameBoundKind.UnboundedPreceding, null);
            }

            Expect("following");
            return new FrameBound(FrameBoundKind.UnboundedFollowing, null);
        }

        if (IsKeyword("current") && IsKeywordAt(1, "row"))
        {
            _pos += 2;
            return new FrameBound(FrameBoundKind.CurrentRow, null);
        }

        var offset = ParseExpr(Precedence.Predicate + 1);
        if (Accept("preceding"))
        {
            return new FrameBound(FrameBoundKind.Preceding, offset);
        }

        Expect("following");
        return new FrameBound(FrameBoundKind.Following, offset);
    }

    private List<OrderItem> ParseOrderItems()
    {
        var list = new List<OrderItem>();
        do
        {
            var e = ParseExpression();
            var desc = false;
            if (Accept("desc"))
            {
                desc = true;
            }
            else if (!Accept("asc") && IsKeyword("using"))
            {
                throw NotSupported("ORDER BY ... USING");
            }

            bool? nullsFirst = null;
            if (Accept("nulls"))
            {
                if (Accept("first"))
                {
                    nullsFirst = true;
                }
                else
                {
                    Expect("last");
                    nullsFirst = false;
                }
            }

            list.Add(new OrderItem(e, desc, nullsFirst));
        }
        while (Accept(TokenKind.Comma));
        return list;
    }
}
