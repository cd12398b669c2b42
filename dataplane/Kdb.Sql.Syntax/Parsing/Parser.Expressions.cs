using Kdb.Sql.Syntax.Lexing;

namespace Kdb.Sql.Syntax.Parsing;

// Expressions by precedence climbing. Levels follow PostgreSQL 15's gram.y precedence table, loosest
// first; SqlFormatter uses the same numbers (Precedence) to decide where parentheses are needed.
internal sealed partial class Parser
{
    // True while parsing a b_expr (BETWEEN bounds, column DEFAULT): gram.y's restricted expression
    // without AND/OR/NOT, IS [NOT] NULL/TRUE, LIKE/IN/BETWEEN, COLLATE or AT TIME ZONE at its top level.
    private bool _bExpr;

    // True while parsing a select-list (or RETURNING) item: there "x AND," ends the item with the alias "and".
    private bool _labelContext;

    /// <summary>A full expression (a_expr); brackets of every kind come back here, leaving b_expr mode.</summary>
    public Expr ParseExpression()
    {
        var saved = _bExpr;
        var savedLabel = _labelContext;
        _bExpr = false;
        _labelContext = false;
        try
        {
            return ParseExpr(Precedence.Lowest);
        }
        finally
        {
            _bExpr = saved;
            _labelContext = savedLabel;
        }
    }

    /// <summary>A select-list item's expression, which a bare-label keyword may end.</summary>
    private Expr ParseSelectItemExpression()
    {
        var saved = _bExpr;
        var savedLabel = _labelContext;
        _bExpr = false;
        _labelContext = true;
        try
        {
            return ParseExpr(Precedence.Lowest);
        }
        finally
        {
            _bExpr = saved;
            _labelContext = savedLabel;
        }
    }

    private Expr ParseAExpr(int minPrec)
    {
        var saved = _bExpr;
        _bExpr = false;
        try
        {
            return ParseExpr(minPrec);
        }
        finally
        {
            _bExpr = saved;
        }
    }

    private Expr ParseBExpr()
    {
        var saved = _bExpr;
        _bExpr = true;
        try
        {
            return ParseExpr(Precedence.Is);
        }
        finally
        {
            _bExpr = saved;
        }
    }

    private Expr ParseExpr(int minPrec)
    {
        Enter();
        var links = 0;
        try
        {
            var left = ParsePrefix();
            while (true)
            {
                // OPERATOR(pg_catalog.=) is an ordinary left-associative operator whatever it names.
                var qualifiedOperator = Current.Is("operator");
                var next = ParseInfix(left, minPrec);
                if (next is null)
                {
                    return left;
                }

                if (!qualifiedOperator)
                {
                    CheckNonAssociative(next);
                }

                // Each link of a left-deep chain (a+b+c+...) deepens the tree: count it against the limit.
                left = next;
                links++;
                Enter();
            }
        }
        finally
        {
            _depth -= links + 1;
        }
    }

    /// <summary>
    /// gram.y declares comparisons, IN/BETWEEN/LIKE/ILIKE/SIMILAR and IS non-associative: after a form
    /// whose right operand is open ("a = b", "a LIKE b", "a BETWEEN x AND y", "a IS DISTINCT FROM b"),
    /// another operator of the same level is a syntax error at that operator, as in PostgreSQL. Forms
    /// that end in ')' or a keyword (IN (...), IS NULL) chain freely, as they do there.
    /// </summary>
    private void CheckNonAssociative(Expr built)
    {
        ref readonly var t = ref Current;
        var clash = built switch
        {
            BinaryExpr { Op: BinaryOp.Equal or BinaryOp.NotEqual or BinaryOp.Less or BinaryOp.LessOrEqual or BinaryOp.Greater or BinaryOp.GreaterOrEqual } =>
                t.Kind == TokenKind.Operator && t.Text is "=" or "<>" or "<" or "<=" or ">" or ">=",
            BinaryExpr { Op: BinaryOp.Like or BinaryOp.NotLike or BinaryOp.ILike or BinaryOp.NotILike } or BetweenExpr =>
                t.Kind == TokenKind.Identifier && (t.Text is "like" or "ilike" or "between" or "similar" or "in" ||
                    (t.Text == "not" && PeekToken(1).Kind == TokenKind.Identifier && PeekToken(1).Text is "like" or "ilike" or "between" or "similar" or "in")),
            IsDistinctFromExpr => t.Kind == TokenKind.Identifier && t.Text is "is" or "isnull" or "notnull",
            _ => false,
        };
        if (clash)
        {
            throw SyntaxError();
        }
    }

    private Expr ParsePrefix()
    {
        ref readonly var t = ref Current;
        if (t.Is("not"))
        {
            if (_bExpr)
            {
                throw SyntaxError();
            }

            var pos = Advance().Position;
            var operand = ParseExpr(Precedence.Not + 1);

            // NOT EXISTS (...) is one node, as the binder plans it as an anti-join.
            return operand is ExistsExpr { Negated: false } exists
                ? exists with { Position = pos, Negated = true }
                : new UnaryExpr(pos, UnaryOp.Not, operand);
        }

        if (t.Kind == TokenKind.Operator && t.Text is not ("~" or "-" or "+" or "*"))
        {
            // A prefix operator kdb does not have (@, |/, !!...): refused after its operand parses.
            var op = Advance();
            ParseExpr(Precedence.AdditiveLevel);
            throw new SqlException(SqlState.UndefinedFunction, $"operator does not exist: {op.Text}", op.Position);
        }

        if (t.Kind == TokenKind.Operator && t.Text is "~")
        {
            var pos = Advance().Position;
            return new UnaryExpr(pos, UnaryOp.BitNot, ParseExpr(Precedence.AdditiveLevel));
        }

        return ParseUnary();
    }

    /// <summary>Unary minus and plus bind tighter than every binary operator but looser than <c>::</c> and <c>[]</c>.</summary>
    private Expr ParseUnary()
    {
        ref readonly var t = ref Current;
        if (t.Kind == TokenKind.Operator && t.Text is "-" or "+")
        {
            var minus = t.Text == "-";
            var pos = Advance().Position;
            Enter();
            try
            {
                var literalNext = Current.Kind is TokenKind.Integer or TokenKind.Decimal;

                // The operand is an a_expr: "- NOT x" and "+ ~ x" are valid PostgreSQL.
                var operand = Current.Is("not") || Current.IsOperator("~") ? ParsePrefix() : ParseUnary();

                // PostgreSQL folds "- <number>" into a negative constant at parse time (doNegate).
                if (minus && literalNext && operand is LiteralExpr { Kind: LiteralKind.Integer or LiteralKind.Decimal } lit && !lit.Text.StartsWith('-'))
                {
                    return new LiteralExpr(pos, lit.Kind, "-" + lit.Text);
                }

                return new UnaryExpr(pos, minus ? UnaryOp.Negate : UnaryOp.Plus, operand);
            }
            finally
            {
                Leave();
            }
        }

        return ParsePostfix(ParsePrimary());
    }

    private Expr ParsePostfix(Expr expr)
    {
        var links = 0;
        try
        {
            while (true)
            {
                if (Current.Kind == TokenKind.DoubleColon)
                {
                    var pos = Advance().Position;
                    expr = new CastExpr(pos, expr, ParseTypeName());
                }
                else if (Current.Kind == TokenKind.LeftBracket)
                {
                    var pos = Advance().Position;
                    var index = ParseExpression();
                    if (Current.Kind == TokenKind.Colon)
                    {
                        throw NotSupported("array slicing");
                    }

                    Expect(TokenKind.RightBracket);
                    expr = new SubscriptExpr(pos, expr, index);
                }
                else
                {
                    return expr;
                }

                links++;
                Enter();
            }
        }
        finally
        {
            _depth -= links;
        }
    }

    /// <summary>Parses one infix or postfix operator applied to <paramref name="left"/>, or returns null when the next token binds looser than <paramref name="minPrec"/>.</summary>
    private Expr? ParseInfix(Expr left, int minPrec)
    {
        ref readonly var t = ref Current;
        switch (t.Kind)
        {
            case TokenKind.Operator:
                {
                    var op = OperatorOf(t.Text, out var prec);
                    if (prec < minPrec)
                    {
                        return null;
                    }

                    var opToken = Advance();
                    if (op is null)
                    {
                        // Syntax first, as PostgreSQL does: the operator is refused only once its operand parses.
                        ParseExpr(prec + 1);
                        throw new SqlException(SqlState.UndefinedFunction, $"operator does not exist: {opToken.Text}", opToken.Position);
                    }

                    return ParseBinaryRight(left, op.Value, prec, opToken.Position);
                }

            case TokenKind.Identifier:
                return ParseKeywordInfix(left, minPrec);
            case TokenKind.DoubleColon:
                {
                    // gram.y's "a_expr TYPECAST Typename": after a form that ends in a keyword or ')'
                    // (IN (...), IS TRUE, = ANY (...)), the cast applies to the whole of it.
                    var pos = Advance().Position;
                    return new CastExpr(pos, left, ParseTypeName());
                }

            default:
                return null;
        }
    }

    private Expr? ParseKeywordInfix(Expr left, int minPrec)
    {
        ref readonly var t = ref Current;
        var pos = t.Position;
        // Keywords PostgreSQL also takes as bare column labels: "SELECT x AND, y" names a column "and".
        if (_labelContext && t.Text is "and" or "or" or "is" or "not" or "in" or "like" or "ilike" or "between" or "similar" or "at" or "collate" or "operator" &&
            FollowsColumnLabel(PeekToken(1)))
        {
            return null;
        }

        if (_bExpr && (t.Text is "and" or "or" or "isnull" or "notnull" or "not" or "between" or "in" or "like" or "ilike" or "similar" or "at" or "collate" ||
                       (t.Text == "is" && !IsKeywordAt(1, "distinct") && !(IsKeywordAt(1, "not") && IsKeywordAt(2, "distinct")))))
        {
            return null;
        }

        switch (t.Text)
        {
            case "or" when minPrec <= Precedence.Or:
                _pos++;
                return new BinaryExpr(pos, BinaryOp.Or, left, ParseExpr(Precedence.Or + 1));
            case "and" when minPrec <= Precedence.And:
                _pos++;
                return new BinaryExpr(pos, BinaryOp.And, left, ParseExpr(Precedence.And + 1));
            case "is" when minPrec <= Precedence.Is:
                _pos++;
                return ParseIs(left, pos);
            case "isnull" when minPrec <= Precedence.Is:
                _pos++;
                return new IsNullExpr(pos, left, Negated: false);
            case "notnull" when minPrec <= Precedence.Is:
                _pos++;
                return new IsNullExpr(pos, left, Negated: true);
            case "not" when minPrec <= Precedence.Predicate && PeekToken(1).Kind == TokenKind.Identifier &&
                             PeekToken(1).Text is "between" or "in" or "like" or "ilike" or "similar":
                _pos++;
                return ParsePredicate(left, pos, negated: true);
            case "between" or "in" or "like" or "ilike" or "similar" when minPrec <= Precedence.Predicate:
                return ParsePredicate(left, pos, negated: false);
            case "operator" when minPrec <= Precedence.Other && PeekToken(1).Kind == TokenKind.LeftParen:
                {
                    _pos++;
                    var op = ParseQualifiedOperator(out var opPos);
                    return ParseBinaryRight(left, op, Precedence.Other, opPos);
                }

            case "at" when minPrec <= Precedence.AtTimeZone && IsKeywordAt(1, "time") && IsKeywordAt(2, "zone"):
                {
                    _pos += 3;
                    var zone = ParseExpr(Precedence.AtTimeZone + 1);

                    // PostgreSQL turns "x AT TIME ZONE z" into timezone(z, x).
                    return new FunctionCallExpr(pos, ["timezone"], [zone, left]);
                }

            case "collate" when minPrec <= Precedence.Collate:
                {
                    _pos++;
                    return new CollateExpr(pos, left, ParseCollationName());
                }

            default:
                return null;
        }
    }

    /// <summary>Tokens that can follow a select-list item but never continue an expression.</summary>
    private static bool FollowsColumnLabel(in Token t) =>
        t.Kind is TokenKind.Comma or TokenKind.RightParen or TokenKind.Semicolon or TokenKind.End ||
        (t.Kind == TokenKind.Identifier && t.Text is "from" or "into" or "where" or "group" or "having" or "window" or "order"
            or "limit" or "offset" or "fetch" or "for" or "union" or "intersect" or "except" or "returning" or "on");

    private string ParseCollationName()
    {
        var first = ParseColId();
        if (Current.Kind != TokenKind.Dot)
        {
            return first;
        }

        _pos++;
        var second = ParseColLabel();
        return first == "pg_catalog" ? second : first + "." + second;
    }

    /// <summary><c>OPERATOR(schema.op)</c> as psql writes it; the schema must be pg_catalog or absent.</summary>
    private BinaryOp ParseQualifiedOperator(out int position)
    {
        Expect(TokenKind.LeftParen);
        if (IsColLabel(Current) && PeekToken(1).Kind == TokenKind.Dot)
        {
            _pos += 2;
        }

        if (Current.Kind != TokenKind.Operator)
        {
            throw SyntaxError();
        }

        var t = Advance();
        position = t.Position;
        var op = OperatorOf(t.Text, out _) ?? throw new SqlException(SqlState.UndefinedFunction, $"operator does not exist: {t.Text}", t.Position);
        Expect(TokenKind.RightParen);
        return op;
    }

    private Expr ParseBinaryRight(Expr left, BinaryOp op, int prec, int pos)
    {
        // "x = ANY (...)", "x <> ALL (SELECT ...)": the quantifier follows any binary operator (not in a b_expr).
        if (!_bExpr && (IsKeyword("any") || IsKeyword("some") || IsKeyword("all")) && PeekToken(1).Kind == TokenKind.LeftParen)
        {
            var all = Advance().Text == "all";
            return ParseQuantified(left, op, all, pos);
        }

        return new BinaryExpr(pos, op, left, ParseExpr(prec + 1));
    }

    private QuantifiedExpr ParseQuantified(Expr left, BinaryOp op, bool all, int pos)
    {
        Expect(TokenKind.LeftParen);
        if (StartsQuery())
        {
            var query = ParseSelectStatement();
            Expect(TokenKind.RightParen);
            return new QuantifiedExpr(pos, left, op, all, query, null);
        }

        var array = ParseExpression();
        Expect(TokenKind.RightParen);
        return new QuantifiedExpr(pos, left, op, all, null, array);
    }

    private Expr ParseIs(Expr left, int pos)
    {
        var negated = Accept("not");
        ref readonly var t = ref Current;
        if (t.Is("null"))
        {
            _pos++;
            return new IsNullExpr(pos, left, negated);
        }

        if (t.Is("true") || t.Is("false") || t.Is("unknown"))
        {
            var word = Advance().Text;
            bool? value = word == "unknown" ? null : word == "true";
            return new IsBoolExpr(pos, left, value, negated);
        }

        if (t.Is("distinct"))
        {
            _pos++;
            Expect("from");
            return new IsDistinctFromExpr(pos, left, ParseExpr(Precedence.Is + 1), negated);
        }

        throw SyntaxError();
    }

    private Expr ParsePredicate(Expr left, int pos, bool negated)
    {
        var word = Advance();
        switch (word.Text)
        {
            case "between":
                {
                    var symmetric = false;
                    if (Accept("symmetric"))
                    {
                        symmetric = true;
                    }
                    else
                    {
                        Accept("asymmetric");
                    }

                    // gram.y: a_expr BETWEEN b_expr AND a_expr %prec BETWEEN.
                    var low = ParseBExpr();
                    Expect("and");
                    var high = ParseAExpr(Precedence.Predicate + 1);
                    return new BetweenExpr(pos, left, low, high, negated, symmetric);
                }

            case "in":
                {
                    Expect(TokenKind.LeftParen);
                    if (StartsQuery())
                    {
                        var query = ParseSelectStatement();
                        Expect(TokenKind.RightParen);
                        return new InSubqueryExpr(pos, left, query, negated);
                    }

                    var items = ParseExpressionList();
                    Expect(TokenKind.RightParen);
                    return new InListExpr(pos, left, items, negated);
                }

            case "like":
            case "ilike":
                {
                    var op = word.Text == "like"
                        ? (negated ? BinaryOp.NotLike : BinaryOp.Like)
                        : (negated ? BinaryOp.NotILike : BinaryOp.ILike);
                    if ((IsKeyword("any") || IsKeyword("all") || IsKeyword("some")) && PeekToken(1).Kind == TokenKind.LeftParen)
                    {
                        var all = Advance().Text == "all";
                        return ParseQuantified(left, op, all, pos);
                    }

                    var pattern = ParseExpr(Precedence.Predicate + 1);
                    Expr? escape = null;
                    if (Accept("escape"))
                    {
                        escape = ParseExpr(Precedence.Predicate + 1);
                    }

                    return new BinaryExpr(pos, op, left, pattern, escape);
                }

            default:
                throw new SqlException(SqlState.FeatureNotSupported, "SIMILAR TO is not supported", word.Position);
        }
    }

    private List<Expr> ParseExpressionList()
    {
        var list = new List<Expr> { ParseExpression() };
        while (Accept(TokenKind.Comma))
        {
            list.Add(ParseExpression());
        }

        return list;
    }

    /// <summary>Maps an operator spelling to its node operator and precedence level; null operator when kdb has no such operator.</summary>
    internal static BinaryOp? OperatorOf(string text, out int prec)
    {
        prec = Precedence.Other;
        switch (text)
        {
            case "+": prec = Precedence.AdditiveLevel; return BinaryOp.Add;
            case "-": prec = Precedence.AdditiveLevel; return BinaryOp.Subtract;
            case "*": prec = Precedence.Multiplicative; return BinaryOp.Multiply;
            case "/": prec = Precedence.Multiplicative; return BinaryOp.Divide;
            case "%": prec = Precedence.Multiplicative; return BinaryOp.Modulo;
            case "^": prec = Precedence.Power; return BinaryOp.Power;
            case "=": prec = Precedence.Comparison; return BinaryOp.Equal;
            case "<>": prec = Precedence.Comparison; return BinaryOp.NotEqual;
            case "<": prec = Precedence.Comparison; return BinaryOp.Less;
            case "<=": prec = Precedence.Comparison; return BinaryOp.LessOrEqual;
            case ">": prec = Precedence.Comparison; return BinaryOp.Greater;
            case ">=": prec = Precedence.Comparison; return BinaryOp.GreaterOrEqual;
            case "||": return BinaryOp.Concat;
            case "->": return BinaryOp.JsonGet;
            case "->>": return BinaryOp.JsonGetText;
            case "~": return BinaryOp.RegexMatch;
            case "!~": return BinaryOp.NotRegexMatch;
            case "~*": return BinaryOp.RegexMatchInsensitive;
            case "!~*": return BinaryOp.NotRegexMatchInsensitive;
            case "&": return BinaryOp.BitAnd;
            case "|": return BinaryOp.BitOr;
            case "<<": return BinaryOp.ShiftLeft;
            case ">>": return BinaryOp.ShiftRight;
            case "@>": return BinaryOp.JsonContains;
            case "?": return BinaryOp.JsonHasKey;
            default: return null;
        }
    }

    /// <summary>True when the current token starts a query (SELECT, WITH, VALUES, TABLE, or parentheses around one).</summary>
    private bool StartsQuery() => StartsQueryAt(_pos);

    /// <summary>
    /// Whether a query starts at token <paramref name="i"/>. A '(' there may open a parenthesized query
    /// ("((SELECT 1) UNION (SELECT 2))") or an expression that merely begins with a subquery
    /// ("((SELECT 1), 2)"): it is a query when the innermost token is a query keyword and what follows
    /// the matching ')' can continue a query.
    /// </summary>
    private bool StartsQueryAt(int i)
    {
        ref readonly var first = ref _tokens[i];
        if (first.Is("select") || first.Is("with") || first.Is("values") || first.Is("table"))
        {
            return true;
        }

        if (first.Kind != TokenKind.LeftParen)
        {
            return false;
        }

        var j = i;
        while (j < _count - 1 && _tokens[j].Kind == TokenKind.LeftParen)
        {
            j++;
        }

        ref readonly var inner = ref _tokens[j];
        if (!(inner.Is("select") || inner.Is("with") || inner.Is("values") || inner.Is("table")))
        {
            return false;
        }

        var depth = 0;
        for (var k = i; k < _count; k++)
        {
            var kind = _tokens[k].Kind;
            if (kind == TokenKind.LeftParen)
            {
                depth++;
            }
            else if (kind == TokenKind.RightParen && --depth == 0)
            {
                ref readonly var after = ref _tokens[Math.Min(k + 1, _count - 1)];
                return after.Kind is TokenKind.RightParen ||
                       (after.Kind == TokenKind.Identifier && after.Text is "union" or "intersect" or "except" or "order" or "limit" or "offset" or "fetch" or "for");
            }
            else if (kind == TokenKind.End)
            {
                return false;
            }
        }

        return false;
    }
}
