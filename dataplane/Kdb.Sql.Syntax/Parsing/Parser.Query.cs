using Kdb.Sql.Syntax.Lexing;

namespace Kdb.Sql.Syntax.Parsing;

// Queries: WITH, SELECT cores, VALUES, set operations, FROM items and joins, ORDER BY, LIMIT/OFFSET/FETCH, FOR UPDATE.
internal sealed partial class Parser
{
    public SelectStatement ParseSelectStatement()
    {
        Enter();
        try
        {
            var pos = Current.Position;
            IReadOnlyList<CommonTableExpr> with = [];
            var recursive = false;
            if (IsKeyword("with"))
            {
                with = ParseWithClause(out recursive);
            }

            var body = ParseSetExpression(0);
            return ParseQueryTail(pos, with, recursive, body);
        }
        finally
        {
            Leave();
        }
    }

    private SelectStatement ParseQueryTail(int pos, IReadOnlyList<CommonTableExpr> with, bool recursive, QueryBody body)
    {
        IReadOnlyList<OrderItem> orderBy = [];
        if (IsKeyword("order") && IsKeywordAt(1, "by"))
        {
            _pos += 2;
            orderBy = ParseOrderItems();
        }

        Expr? limit = null;
        Expr? offset = null;
        LockingClause? locking = null;
        var seenLimit = false;
        var seenOffset = false;
        while (true)
        {
            if (!seenLimit && IsKeyword("limit"))
            {
                _pos++;
                seenLimit = true;
                limit = Accept("all") ? null : ParseExpression();
            }
            else if (!seenOffset && IsKeyword("offset"))
            {
                _pos++;
                seenOffset = true;
                offset = ParseExpression();
                if (!Accept("rows"))
                {
                    Accept("row");
                }
            }
            else if (!seenLimit && IsKeyword("fetch"))
            {
                _pos++;
                seenLimit = true;
                if (!Accept("first"))
                {
                    Expect("next");
                }

                limit = IsKeyword("row") || IsKeyword("rows") ? new LiteralExpr(Current.Position, LiteralKind.Integer, "1") : ParseExpr(Precedence.Unary);
                if (!Accept("rows"))
                {
                    Expect("row");
                }

                if (IsKeyword("with"))
                {
                    throw NotSupported("FETCH ... WITH TIES");
                }

                Expect("only");
            }
            else if (locking is null && IsKeyword("for"))
            {
                locking = ParseLockingClause();
            }
            else
            {
                break;
            }
        }

        // "(SELECT ... ORDER BY ...)" standing alone is the inner query itself.
        if (with.Count == 0 && orderBy.Count == 0 && limit is null && offset is null && locking is null && body is NestedQueryBody nested)
        {
            return nested.Query;
        }

        return new SelectStatement(pos, with, body, orderBy, limit, offset, locking, recursive);
    }

    private LockingClause ParseLockingClause()
    {
        LockingClause? first = null;
        while (IsKeyword("for"))
        {
            _pos++;
            string strength;
            if (Accept("update"))
            {
                strength = "update";
            }
            else if (Accept("share"))
            {
                strength = "share";
            }
            else if (Accept("no"))
            {
                Expect("key");
                Expect("update");
                strength = "no key update";
            }
            else
            {
                Expect("key");
                Expect("share");
                strength = "key share";
            }

            if (Accept("of"))
            {
                ParseQualifiedNameList();
            }

            var noWait = false;
            var skipLocked = false;
            if (Accept("nowait"))
            {
                noWait = true;
            }
            else if (IsKeyword("skip") && IsKeywordAt(1, "locked"))
            {
                _pos += 2;
                skipLocked = true;
            }

            first ??= new LockingClause(strength, noWait, skipLocked);
        }

        return first!;
    }

    private List<string> ParseNameList()
    {
        var list = new List<string> { ParseColId() };
        while (Accept(TokenKind.Comma))
        {
            list.Add(ParseColId());
        }

        return list;
    }

    private List<CommonTableExpr> ParseWithClause(out bool recursive)
    {
        Expect("with");
        recursive = Accept("recursive");
        var list = new List<CommonTableExpr>();
        do
        {
            var name = ParseColId();
            List<string>? columns = Current.Kind == TokenKind.LeftParen ? ParseParenthesizedNameList() : null;
            Expect("as");
            if (Accept("not"))
            {
                Expect("materialized");
            }
            else
            {
                Accept("materialized");
            }

            Expect(TokenKind.LeftParen);
            if (IsKeyword("insert") || IsKeyword("update") || IsKeyword("delete"))
            {
                throw NotSupported("a data-modifying statement in WITH");
            }

            var query = ParseSelectStatement();
            Expect(TokenKind.RightParen);
            CteSearch? search = null;
            CteCycle? cycle = null;
            if (IsKeyword("search") && (IsKeywordAt(1, "depth") || IsKeywordAt(1, "breadth")))
            {
                _pos++;
                var breadth = Accept("breadth");
                if (!breadth)
                {
                    Expect("depth");
                }

                Expect("first");
                Expect("by");
                var by = ParseNameList();
                Expect("set");
                search = new CteSearch(breadth, by, ParseColId());
            }

            if (IsKeyword("cycle"))
            {
                _pos++;
                var on = ParseNameList();
                Expect("set");
                var mark = ParseColId();
                Expr? value = null;
                Expr? fallback = null;
                if (Accept("to"))
                {
                    value = ParseBExpr();
                    Expect("default");
                    fallback = ParseBExpr();
                }

                Expect("using");
                cycle = new CteCycle(on, mark, value, fallback, ParseColId());
            }

            list.Add(new CommonTableExpr(name, columns, query, search, cycle));
        }
        while (Accept(TokenKind.Comma));
        return list;
    }

    /// <summary>Set operations: INTERSECT binds tighter than UNION and EXCEPT, all left-associative.</summary>
    private QueryBody ParseSetExpression(int minPrec)
    {
        var left = ParseSetPrimary();
        var links = 0;
        try
        {
            while (true)
            {
                ref readonly var t = ref Current;
                SetOperator op;
                int prec;
                if (t.Is("union"))
                {
                    op = SetOperator.Union;
                    prec = 1;
                }
                else if (t.Is("except"))
                {
                    op = SetOperator.Except;
                    prec = 1;
                }
                else if (t.Is("intersect"))
                {
                    op = SetOperator.Intersect;
                    prec = 2;
                }
                else
                {
                    return left;
                }

                if (prec < minPrec)
                {
                    return left;
                }

                var pos = Advance().Position;
                var all = Accept("all");
                if (!all)
                {
                    Accept("distinct");
                }

                Enter();
                links++;
                var right = ParseSetExpression(prec + 1);
                left = new SetOperationBody(pos, op, all, left, right);
            }
        }
        finally
        {
            _depth -= links;
        }
    }

    private QueryBody ParseSetPrimary()
    {
        ref readonly var t = ref Current;
        if (t.Kind == TokenKind.LeftParen)
        {
            var pos = Advance().Position;
            var inner = ParseSelectStatement();
            Expect(TokenKind.RightParen);
            if (inner.With.Count == 0 && inner.OrderBy.Count == 0 && inner.Limit is null && inner.Offset is null && inner.Locking is null)
            {
                return inner.Body;
            }

            return new NestedQueryBody(pos, inner);
        }

        if (t.Is("select"))
        {
            return ParseSelectCore();
        }

        if (t.Is("values"))
        {
            return ParseValues();
        }

        if (t.Is("table"))
        {
            var pos = Advance().Position;
            var name = ParseQualifiedName();
            return new SelectCore(pos, false, null, [new SelectItem(new StarExpr(pos, null), null)], [new NamedTableRef(name.Position, name, null, null)], null, [], null, []);
        }

        throw SyntaxError();
    }

    private ValuesBody ParseValues()
    {
        var pos = Advance().Position;
        var rows = new List<IReadOnlyList<Expr>>();
        do
        {
            Expect(TokenKind.LeftParen);
            rows.Add(ParseExpressionList());
            Expect(TokenKind.RightParen);
        }
        while (Accept(TokenKind.Comma));
        return new ValuesBody(pos, rows);
    }

    private SelectCore ParseSelectCore()
    {
        var pos = Expect("select").Position;
        var distinct = false;
        List<Expr>? distinctOn = null;
        if (Accept("distinct"))
        {
            distinct = true;
            if (Accept("on"))
            {
                Expect(TokenKind.LeftParen);
                distinctOn = ParseExpressionList();
                Expect(TokenKind.RightParen);
            }
        }
        else
        {
            Accept("all");
        }

        var items = EndsSelectList() ? [] : ParseSelectItems();
        if (IsKeyword("into"))
        {
            throw NotSupported("SELECT INTO");
        }

        IReadOnlyList<TableRef> from = [];
        if (Accept("from"))
        {
            from = ParseFromList();
        }

        Expr? where = null;
        if (Accept("where"))
        {
            where = ParseExpression();
        }

        IReadOnlyList<Expr> groupBy = [];
        if (IsKeyword("group") && IsKeywordAt(1, "by"))
        {
            _pos += 2;
            if (!Accept("all"))
            {
                Accept("distinct");
            }

            if (IsKeyword("rollup") || IsKeyword("cube") || IsKeyword("grouping") || (Current.Kind == TokenKind.LeftParen && PeekToken(1).Kind == TokenKind.RightParen))
            {
                throw NotSupported("grouping sets");
            }

            groupBy = ParseExpressionList();
        }

        Expr? having = null;
        if (Accept("having"))
        {
            having = ParseExpression();
        }

        List<NamedWindow>? windows = null;
        if (Accept("window"))
        {
            windows = [];
            do
            {
                var name = ParseColId();
                Expect("as");
                windows.Add(new NamedWindow(name, ParseWindowSpec()));
            }
            while (Accept(TokenKind.Comma));
        }

        return new SelectCore(pos, distinct, distinctOn, items, from, where, groupBy, having, windows ?? (IReadOnlyList<NamedWindow>)[]);
    }

    private bool EndsSelectList()
    {
        ref readonly var t = ref Current;
        return t.Kind is TokenKind.End or TokenKind.Semicolon or TokenKind.RightParen ||
               (t.Kind == TokenKind.Identifier && t.Text is "from" or "where" or "group" or "having" or "window" or "order"
                   or "limit" or "offset" or "fetch" or "for" or "union" or "intersect" or "except" or "into");
    }

    /// <summary>Select-list or RETURNING items: <c>*</c>, <c>t.*</c>, <c>expr [[AS] alias]</c>.</summary>
    private List<SelectItem> ParseSelectItems()
    {
        var items = new List<SelectItem>();
        do
        {
            if (Current.IsOperator("*"))
            {
                var pos = Advance().Position;
                items.Add(new SelectItem(new StarExpr(pos, null), null));
                continue;
            }

            var e = ParseSelectItemExpression();
            string? alias = null;
            if (Accept("as"))
            {
                alias = ParseColLabel();
            }
            else if (IsBareLabel(Current))
            {
                alias = Advance().Text;
            }

            items.Add(new SelectItem(e, alias));
        }
        while (Accept(TokenKind.Comma));
        return items;
    }

    // A bare column label (PostgreSQL 15's BareColLabel): any identifier or keyword not marked AS_LABEL.
    private static bool IsBareLabel(in Token t) =>
        t.Kind == TokenKind.QuotedIdentifier || (t.Kind == TokenKind.Identifier && Keywords.IsBareLabel(t.Text));

    private List<TableRef> ParseFromList()
    {
        var list = new List<TableRef> { ParseJoinedTable() };
        while (Accept(TokenKind.Comma))
        {
            list.Add(ParseJoinedTable());
        }

        return list;
    }

    private TableRef ParseJoinedTable()
    {
        var left = ParseTableRefPrimary();
        var links = 0;
        try
        {
            while (TryParseJoin(ref left))
            {
                links++;
                Enter();
            }

            return left;
        }
        finally
        {
            _depth -= links;
        }
    }

    /// <summary>Extends <paramref name="left"/> by one join when the next tokens start one.</summary>
    private bool TryParseJoin(ref TableRef left)
    {
        var pos = Current.Position;
        var natural = Accept("natural");
        JoinKind kind;
        if (Accept("cross"))
        {
            if (natural)
            {
                throw SyntaxError();
            }

            kind = JoinKind.Cross;
        }
        else if (Accept("inner"))
        {
            kind = JoinKind.Inner;
        }
        else if (Accept("left"))
        {
            Accept("outer");
            kind = JoinKind.Left;
        }
        else if (Accept("right"))
        {
            Accept("outer");
            kind = JoinKind.Right;
        }
        else if (Accept("full"))
        {
            Accept("outer");
            kind = JoinKind.Full;
        }
        else if (IsKeyword("join"))
        {
            kind = JoinKind.Inner;
        }
        else
        {
            if (natural)
            {
                throw SyntaxError();
            }

            return false;
        }

        Expect("join");
        var right = ParseTableRefPrimary();
        if (kind == JoinKind.Cross || natural)
        {
            left = new JoinTableRef(pos, kind, left, right, null, null, natural);
            return true;
        }

        // "a JOIN b JOIN c ON x ON y" nests to the right, as PostgreSQL's grammar does.
        Enter();
        try
        {
            while (!IsKeyword("on") && !IsKeyword("using") && TryParseJoin(ref right))
            {
            }
        }
        finally
        {
            Leave();
        }

        if (Accept("on"))
        {
            left = new JoinTableRef(pos, kind, left, right, ParseExpression(), null, false);
            return true;
        }

        Expect("using");
        var cols = ParseParenthesizedNameList();
        if (IsKeyword("as"))
        {
            throw NotSupported("an alias for JOIN USING");
        }

        left = new JoinTableRef(pos, kind, left, right, null, cols, false);
        return true;
    }

    private TableRef ParseTableRefPrimary()
    {
        Enter();
        try
        {
            var pos = Current.Position;
            var lateral = Accept("lateral");
            if (Current.Kind == TokenKind.LeftParen)
            {
                if (StartsQueryAt(_pos + 1))
                {
                    _pos++;
                    var query = ParseSelectStatement();
                    Expect(TokenKind.RightParen);
                    var alias = ParseOptionalAlias();
                    var cols = alias is not null && Current.Kind == TokenKind.LeftParen ? ParseParenthesizedNameList() : null;
                    return new SubqueryTableRef(pos, query, alias, cols, lateral);
                }

                if (lateral)
                {
                    throw SyntaxError();
                }

                _pos++;
                var joined = ParseJoinedTable();
                Expect(TokenKind.RightParen);
                if (IsKeyword("as") || IsColId(Current))
                {
                    throw NotSupported("an alias for a parenthesized join");
                }

                return joined;
            }

            if (Accept("only"))
            {
                var onlyName = ParseQualifiedName();
                return FinishNamedTable(pos, onlyName);
            }

            // A function in FROM: name(...) or schema.name(...).
            var isFunction = PeekToken(1).Kind == TokenKind.LeftParen ||
                             (PeekToken(1).Kind == TokenKind.Dot && PeekToken(3).Kind == TokenKind.LeftParen);
            if (isFunction && (IsColId(Current) || (Current.Kind == TokenKind.Identifier && Keywords.IsTypeFunctionName(Current.Text))))
            {
                var fn = ParsePrimary() as FunctionCallExpr ?? throw SyntaxError();
                var ordinality = false;
                if (IsKeyword("with") && IsKeywordAt(1, "ordinality"))
                {
                    _pos += 2;
                    ordinality = true;
                }

                var alias = ParseOptionalAlias();
                var cols = alias is not null && Current.Kind == TokenKind.LeftParen ? ParseParenthesizedNameList() : null;
                return new FunctionTableRef(pos, fn, alias, cols, lateral, ordinality);
            }

            if (lateral)
            {
                throw SyntaxError();
            }

            var name = ParseQualifiedName();
            AcceptOperator("*");
            return FinishNamedTable(pos, name);
        }
        finally
        {
            Leave();
        }
    }

    private NamedTableRef FinishNamedTable(int pos, QualifiedName name)
    {
        if (IsKeyword("tablesample"))
        {
            throw NotSupported("TABLESAMPLE");
        }

        var alias = ParseOptionalAlias();
        var cols = alias is not null && Current.Kind == TokenKind.LeftParen ? ParseParenthesizedNameList() : null;
        return new NamedTableRef(pos, name, alias, cols);
    }
}
