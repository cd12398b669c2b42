using Kdb.Sql.Syntax.Lexing;

namespace Kdb.Sql.Syntax.Parsing;

// INSERT, UPDATE, DELETE, TRUNCATE, COPY.
internal sealed partial class Parser
{
    private Statement ParseWithStatement()
    {
        var start = _pos;
        var pos = Current.Position;
        var with = ParseWithClause(out var recursive);
        if (IsKeyword("insert"))
        {
            return ParseInsert(pos, with) with { Recursive = recursive };
        }

        if (IsKeyword("update"))
        {
            return ParseUpdate(pos, with) with { Recursive = recursive };
        }

        if (IsKeyword("delete"))
        {
            return ParseDelete(pos, with) with { Recursive = recursive };
        }

        // A query: parse again from WITH so the CTEs attach to the SELECT (RECURSIVE included).
        _pos = start;
        return ParseSelectStatement();
    }

    private InsertStatement ParseInsert(int pos, IReadOnlyList<CommonTableExpr> with)
    {
        Expect("insert");
        Expect("into");
        var table = ParseQualifiedName();
        string? alias = null;
        if (Accept("as"))
        {
            alias = ParseColId();
        }

        List<string>? columns = null;
        if (Current.Kind == TokenKind.LeftParen && !StartsQueryAt(_pos + 1))
        {
            columns = ParseParenthesizedNameList();
        }

        if (IsKeyword("overriding"))
        {
            throw NotSupported("OVERRIDING");
        }

        SelectStatement? source = null;
        if (IsKeyword("default") && IsKeywordAt(1, "values"))
        {
            _pos += 2;
        }
        else
        {
            source = ParseSelectStatement();
        }

        OnConflictClause? onConflict = null;
        if (IsKeyword("on") && IsKeywordAt(1, "conflict"))
        {
            _pos += 2;
            onConflict = ParseOnConflict();
        }

        var returning = ParseReturning();
        return new InsertStatement(pos, with, table, alias, columns, source, onConflict, returning);
    }

    private OnConflictClause ParseOnConflict()
    {
        List<string>? targetColumns = null;
        string? constraint = null;
        if (Current.Kind == TokenKind.LeftParen)
        {
            targetColumns = ParseParenthesizedNameList();
            if (IsKeyword("where"))
            {
                throw NotSupported("a WHERE clause on an ON CONFLICT target");
            }
        }
        else if (IsKeyword("on") && IsKeywordAt(1, "constraint"))
        {
            _pos += 2;
            constraint = ParseColId();
        }

        Expect("do");
        if (Accept("nothing"))
        {
            return new OnConflictClause(targetColumns, constraint, true, [], null);
        }

        Expect("update");
        Expect("set");
        var updates = ParseSetClauses();
        Expr? where = null;
        if (Accept("where"))
        {
            where = ParseExpression();
        }

        return new OnConflictClause(targetColumns, constraint, false, updates, where);
    }

    private List<SetClause> ParseSetClauses()
    {
        var list = new List<SetClause>();
        do
        {
            if (Current.Kind == TokenKind.LeftParen)
            {
                // (a, b) = (x, y) expands into one assignment per column.
                var cols = ParseParenthesizedNameList();
                ExpectOperator("=");
                var valuesPos = Current.Position;
                var value = ParseExpression();
                IReadOnlyList<Expr> values = value switch
                {
                    RowExpr row => row.Elements,
                    _ when cols.Count == 1 => [value],
                    _ => throw new SqlException(SqlState.FeatureNotSupported, "a multiple-column UPDATE from a subquery is not supported", valuesPos),
                };
                if (values.Count != cols.Count)
                {
                    throw new SqlException(
                        SqlState.SyntaxError,
                        values.Count < cols.Count ? "number of columns does not match number of values" : "number of columns does not match number of values",
                        valuesPos);
                }

                for (var i = 0; i < cols.Count; i++)
                {
                    list.Add(new SetClause(cols[i], values[i]));
                }

                continue;
            }

            var column = ParseColId();
            if (Current.Kind is TokenKind.Dot or TokenKind.LeftBracket)
            {
                throw NotSupported("assignment to a field or array element");
            }

            ExpectOperator("=");
            list.Add(new SetClause(column, ParseExpression()));
        }
        while (Accept(TokenKind.Comma));
        return list;
    }

    private List<SelectItem>? ParseReturning() => Accept("returning") ? ParseSelectItems() : null;

    private UpdateStatement ParseUpdate(int pos, IReadOnlyList<CommonTableExpr> with)
    {
        Expect("update");
        Accept("only");
        var table = ParseQualifiedName();
        AcceptOperator("*");
        var alias = ParseOptionalAlias(notBare: "set");
        Expect("set");
        var set = ParseSetClauses();
        IReadOnlyList<TableRef> from = [];
        if (Accept("from"))
        {
            from = ParseFromList();
        }

        Expr? where = null;
        if (Accept("where"))
        {
            if (IsKeyword("current") && IsKeywordAt(1, "of"))
            {
                throw NotSupported("WHERE CURRENT OF");
            }

            where = ParseExpression();
        }

        return new UpdateStatement(pos, with, table, alias, set, from, where, ParseReturning());
    }

    private DeleteStatement ParseDelete(int pos, IReadOnlyList<CommonTableExpr> with)
    {
        Expect("delete");
        Expect("from");
        Accept("only");
        var table = ParseQualifiedName();
        AcceptOperator("*");
        var alias = ParseOptionalAlias();
        IReadOnlyList<TableRef> usingList = [];
        if (Accept("using"))
        {
            usingList = ParseFromList();
        }

        Expr? where = null;
        if (Accept("where"))
        {
            if (IsKeyword("current") && IsKeywordAt(1, "of"))
            {
                throw NotSupported("WHERE CURRENT OF");
            }

            where = ParseExpression();
        }

        return new DeleteStatement(pos, with, table, alias, usingList, where, ParseReturning());
    }

    private TruncateStatement ParseTruncate()
    {
        var pos = Expect("truncate").Position;
        Accept("table");
        var tables = new List<QualifiedName>();
        do
        {
            Accept("only");
            tables.Add(ParseQualifiedName());
            AcceptOperator("*");
        }
        while (Accept(TokenKind.Comma));
        var restart = false;
        if (Accept("restart"))
        {
            Expect("identity");
            restart = true;
        }
        else if (Accept("continue"))
        {
            Expect("identity");
        }

        var cascade = Accept("cascade");
        if (!cascade)
        {
            Accept("restrict");
        }

        return new TruncateStatement(pos, tables, restart, cascade);
    }

    private CopyStatement ParseCopy()
    {
        var pos = Expect("copy").Position;
        if (IsKeyword("binary"))
        {
            throw NotSupported("COPY BINARY");
        }

        QualifiedName? table = null;
        List<string>? columns = null;
        SelectStatement? query = null;
        if (Current.Kind == TokenKind.LeftParen)
        {
            _pos++;
            query = ParseSelectStatement();
            Expect(TokenKind.RightParen);
        }
        else
        {
            table = ParseQualifiedName();
            if (Current.Kind == TokenKind.LeftParen)
            {
                columns = ParseParenthesizedNameList();
            }
        }

        bool from;
        if (Accept("from"))
        {
            from = true;
            if (!Accept("stdin"))
            {
                throw NotSupported("COPY from a file or program (use STDIN)");
            }
        }
        else
        {
            Expect("to");
            from = false;
            if (!Accept("stdout"))
            {
                throw NotSupported("COPY to a file or program (use STDOUT)");
            }
        }

        if (query is not null && from)
        {
            throw SyntaxError();
        }

        var options = new Dictionary<string, string>(StringComparer.Ordinal);
        Accept("with");
        if (Current.Kind == TokenKind.LeftParen)
        {
            _pos++;
            do
            {
                var name = ParseColLabel().ToLowerInvariant();
                options[name] = ParseCopyOptionValue();
            }
            while (Accept(TokenKind.Comma));
            Expect(TokenKind.RightParen);
        }
        else
        {
            ParseOldCopyOptions(options);
        }

        if (Accept("where"))
        {
            throw NotSupported("COPY ... WHERE");
        }

        return new CopyStatement(pos, table, columns, query, from, options);
    }

    private string ParseCopyOptionValue()
    {
        ref readonly var t = ref Current;
        switch (t.Kind)
        {
            case TokenKind.String:
            case TokenKind.Integer:
            case TokenKind.Decimal:
            case TokenKind.QuotedIdentifier:
                return Advance().Text;
            case TokenKind.Identifier:
                return Advance().Text;
            case TokenKind.Operator when t.Text is "-" or "+":
                {
                    var sign = Advance().Text;
                    var n = Current;
                    if (n.Kind is not (TokenKind.Integer or TokenKind.Decimal))
                    {
                        throw SyntaxError();
                    }

                    _pos++;
                    return sign == "-" ? "-" + n.Text : n.Text;
                }

            case TokenKind.Operator when t.Text == "*":
                _pos++;
                return "*";
            case TokenKind.LeftParen:
                throw NotSupported("a column list in a COPY option");
            default:
                return "true";
        }
    }

    // COPY's pre-9.0 option syntax: WITH CSV HEADER DELIMITER ',' NULL '' QUOTE '"' ESCAPE '\'.
    private void ParseOldCopyOptions(Dictionary<string, string> options)
    {
        while (true)
        {
            if (Accept("csv"))
            {
                options["format"] = "csv";
            }
            else if (Accept("binary"))
            {
                options["format"] = "binary";
            }
            else if (Accept("header"))
            {
                options["header"] = "true";
            }
            else if (Accept("freeze"))
            {
                options["freeze"] = "true";
            }
            else if (IsKeyword("delimiter") || IsKeyword("null") || IsKeyword("quote") || IsKeyword("escape") || IsKeyword("encoding"))
            {
                var name = Advance().Text;
                Accept("as");
                options[name] = Expect(TokenKind.String).Text;
            }
            else if (IsKeyword("force"))
            {
                throw NotSupported("COPY FORCE options");
            }
            else
            {
                return;
            }
        }
    }
}
