using Kdb.Sql.Syntax.Lexing;

namespace Kdb.Sql.Syntax.Parsing;

// Statement dispatch, ALTER TABLE, and the transaction, session and utility statements.
internal sealed partial class Parser
{
    /// <summary>Parses one statement starting at the current token; the caller checks what follows.</summary>
    public Statement ParseStatement()
    {
        ref readonly var t = ref Current;
        var pos = t.Position;
        if (t.Kind == TokenKind.LeftParen)
        {
            return ParseSelectStatement();
        }

        if (t.Kind != TokenKind.Identifier)
        {
            throw SyntaxError();
        }

        switch (t.Text)
        {
            case "select":
            case "values":
            case "table":
                return ParseSelectStatement();
            case "with":
                return ParseWithStatement();
            case "insert":
                return ParseInsert(pos, []);
            case "update":
                return ParseUpdate(pos, []);
            case "delete":
                return ParseDelete(pos, []);
            case "create":
                return ParseCreate();
            case "drop":
                return ParseDrop();
            case "alter":
                return ParseAlter();
            case "truncate":
                return ParseTruncate();
            case "copy":
                return ParseCopy();
            case "begin":
            case "start":
            case "commit":
            case "end":
            case "rollback":
            case "abort":
            case "savepoint":
            case "release":
                return ParseTransaction();
            case "set":
                return ParseSet();
            case "show":
                return ParseShow();
            case "reset":
                return ParseReset();
            case "explain":
                return ParseExplain();
            case "prepare":
                return ParsePrepare();
            case "execute":
                return ParseExecute();
            case "deallocate":
                {
                    _pos++;
                    if (IsKeyword("prepare") && !IsStatementEndAt(1))
                    {
                        _pos++;
                    }

                    return new DeallocateStatement(pos, Accept("all") ? null : ParseColId());
                }

            case "vacuum":
            case "analyze":
            case "analyse":
                return ParseMaintenance();
            case "discard":
                {
                    _pos++;
                    string what;
                    if (Accept("all") || Accept("plans") || Accept("sequences") || Accept("temp"))
                    {
                        what = _tokens[_pos - 1].Text;
                    }
                    else
                    {
                        Expect("temporary");
                        what = "temp";
                    }

                    return new DiscardStatement(pos, what);
                }

            case "lock":
                return ParseLock();
            case "comment":
                return ParseComment();
            case "do":
                return ParseDo();
            case "close":
                {
                    // CLOSE {name | ALL}: drivers' pool resets send CLOSE ALL.
                    _pos++;
                    var target = Accept("all") ? "all" : ParseColId();
                    return new UtilityStatement(pos, "close", target);
                }

            case "unlisten":
            case "listen":
            case "notify":
                {
                    var command = t.Text;
                    _pos++;
                    var target = AcceptOperator("*") ? "*" : ParseColId();
                    if (command == "notify" && Accept(TokenKind.Comma))
                    {
                        Expect(TokenKind.String);
                    }

                    return new UtilityStatement(pos, command, target);
                }

            default:
                throw SyntaxError();
        }
    }

    private AlterTableStatement ParseAlter()
    {
        var pos = Expect("alter").Position;
        if (!IsKeyword("table"))
        {
            throw IsKeyword("index") || IsKeyword("sequence") || IsKeyword("view") || IsKeyword("schema")
                ? NotSupported("ALTER " + Current.Text.ToUpperInvariant())
                : SyntaxError();
        }

        _pos++;
        var ifExists = ParseIfExists();
        Accept("only");
        var table = ParseQualifiedName();
        AcceptOperator("*");
        var actions = new List<AlterTableAction>();
        do
        {
            actions.Add(ParseAlterAction());
        }
        while (Accept(TokenKind.Comma));
        return new AlterTableStatement(pos, table, ifExists, actions);
    }

    private AlterTableAction ParseAlterAction()
    {
        var pos = Current.Position;
        if (Accept("add"))
        {
            if (IsKeyword("constraint") || IsKeyword("check") || IsKeyword("unique") || IsKeyword("primary") || IsKeyword("foreign") || IsKeyword("exclude"))
            {
                return new AddConstraintAction(pos, ParseTableConstraint());
            }

            Accept("column");
            var ifNotExists = ParseIfNotExists();
            return new AddColumnAction(pos, ParseColumnDefinition(), ifNotExists);
        }

        if (Accept("drop"))
        {
            if (Accept("constraint"))
            {
                var ifExists = ParseIfExists();
                var name = ParseColId();
                return new DropConstraintAction(pos, name, ifExists, ParseDropBehavior());
            }

            Accept("column");
            var colIfExists = ParseIfExists();
            var column = ParseColId();
            return new DropColumnAction(pos, column, colIfExists, ParseDropBehavior());
        }

        if (Accept("alter"))
        {
            Accept("column");
            var column = ParseColId();
            if (Accept("set"))
            {
                if (Accept("default"))
                {
                    return new AlterColumnAction(pos, column, SetDefault: ParseExpression());
                }

                if (Accept("not"))
                {
                    Expect("null");
                    return new AlterColumnAction(pos, column, SetNotNull: true);
                }

                if (Accept("data"))
                {
                    Expect("type");
                    return ParseAlterType(pos, column);
                }

                throw IsKeyword("statistics") || IsKeyword("storage") ? NotSupported("ALTER COLUMN SET " + Current.Text.ToUpperInvariant()) : SyntaxError();
            }

            if (Accept("drop"))
            {
                if (Accept("default"))
                {
                    return new AlterColumnAction(pos, column, DropDefault: true);
                }

                Expect("not");
                Expect("null");
                return new AlterColumnAction(pos, column, SetNotNull: false);
            }

            if (Accept("type"))
            {
                return ParseAlterType(pos, column);
            }

            throw IsKeyword("add") ? NotSupported("ALTER COLUMN ADD GENERATED") : SyntaxError();
        }

        if (Accept("rename"))
        {
            if (Accept("to"))
            {
                return new RenameTableAction(pos, ParseColId());
            }

            if (IsKeyword("constraint"))
            {
                throw NotSupported("RENAME CONSTRAINT");
            }

            Accept("column");
            var from = ParseColId();
            Expect("to");
            return new RenameColumnAction(pos, from, ParseColId());
        }

        throw IsKeyword("owner") || IsKeyword("set") || IsKeyword("enable") || IsKeyword("disable")
            ? NotSupported("ALTER TABLE " + Current.Text.ToUpperInvariant())
            : SyntaxError();
    }

    private AlterColumnAction ParseAlterType(int pos, string column)
    {
        var type = ParseTypeName();
        if (Accept("collate"))
        {
            ParseCollationName();
        }

        Expr? usingExpr = null;
        if (Accept("using"))
        {
            usingExpr = ParseExpression();
        }

        return new AlterColumnAction(pos, column, NewType: type, Using: usingExpr);
    }

    private bool ParseDropBehavior()
    {
        if (Accept("cascade"))
        {
            return true;
        }

        Accept("restrict");
        return false;
    }

    private TransactionStatement ParseTransaction()
    {
        var t = Advance();
        var pos = t.Position;
        switch (t.Text)
        {
            case "begin":
                if (!Accept("work"))
                {
                    Accept("transaction");
                }

                return ParseTransactionModes(pos, TransactionKind.Begin);
            case "start":
                Expect("transaction");
                return ParseTransactionModes(pos, TransactionKind.Begin);
            case "commit":
            case "end":
                if (IsKeyword("prepared"))
                {
                    throw NotSupported("COMMIT PREPARED");
                }

                SkipWorkAndChain();
                return new TransactionStatement(pos, TransactionKind.Commit);
            case "savepoint":
                return new TransactionStatement(pos, TransactionKind.Savepoint, ParseColId());
            case "release":
                if (IsKeyword("savepoint") && !IsStatementEndAt(1))
                {
                    _pos++;
                }

                return new TransactionStatement(pos, TransactionKind.Release, ParseColId());
            default:
                if (IsKeyword("prepared"))
                {
                    throw NotSupported("ROLLBACK PREPARED");
                }

                if (!Accept("work"))
                {
                    Accept("transaction");
                }

                if (t.Text == "rollback" && Accept("to"))
                {
                    if (IsKeyword("savepoint") && !IsStatementEndAt(1))
                    {
                        _pos++;
                    }

                    return new TransactionStatement(pos, TransactionKind.RollbackToSavepoint, ParseColId());
                }

                SkipWorkAndChain();
                return new TransactionStatement(pos, TransactionKind.Rollback);
        }
    }

    private void SkipWorkAndChain()
    {
        if (!Accept("work"))
        {
            Accept("transaction");
        }

        if (Accept("and"))
        {
            if (!Accept("no"))
            {
                throw NotSupported("AND CHAIN");
            }

            Expect("chain");
        }
    }

    private TransactionStatement ParseTransactionModes(int pos, TransactionKind kind)
    {
        string? isolation = null;
        bool? readOnly = null;
        var first = true;
        while (true)
        {
            var afterComma = !first && Accept(TokenKind.Comma);
            first = false;
            if (Accept("isolation"))
            {
                Expect("level");
                if (Accept("serializable"))
                {
                    isolation = "serializable";
                }
                else if (Accept("repeatable"))
                {
                    Expect("read");
                    isolation = "repeatable read";
                }
                else
                {
                    Expect("read");
                    if (Accept("committed"))
                    {
                        isolation = "read committed";
                    }
                    else
                    {
                        Expect("uncommitted");
                        isolation = "read uncommitted";
                    }
                }
            }
            else if (Accept("read"))
            {
                if (Accept("only"))
                {
                    readOnly = true;
                }
                else
                {
                    Expect("write");
                    readOnly = false;
                }
            }
            else if (Accept("deferrable"))
            {
            }
            else if (IsKeyword("not") && IsKeywordAt(1, "deferrable"))
            {
                _pos += 2;
            }
            else
            {
                if (afterComma)
                {
                    throw SyntaxError();
                }

                return new TransactionStatement(pos, kind, null, isolation, readOnly);
            }
        }
    }

    private Statement ParseSet()
    {
        var pos = Expect("set").Position;
        // "SET local = 1" sets a variable named local; SET LOCAL x = 1 sets x for the transaction.
        var isLocal = false;
        var nameFollows = IsKeywordAt(1, "to") || PeekToken(1).IsOperator("=");
        if (!nameFollows && Accept("local"))
        {
            isLocal = true;
        }
        else if (!nameFollows)
        {
            Accept("session");
        }

        if (Accept("transaction"))
        {
            if (IsKeyword("snapshot"))
            {
                throw NotSupported("SET TRANSACTION SNAPSHOT");
            }

            return ParseTransactionModes(pos, TransactionKind.SetTransaction);
        }

        if (IsKeyword("authorization") || (IsKeyword("session") && IsKeywordAt(1, "authorization")))
        {
            // SET SESSION AUTHORIZATION {DEFAULT | user}: drivers' pool resets send the DEFAULT form.
            Accept("session");
            Expect("authorization");
            return new SetStatement(pos, "session_authorization", Accept("default") ? [] : [ParseSetValue()], isLocal);
        }

        if (IsKeyword("characteristics"))
        {
            throw NotSupported("SET " + Current.Text.ToUpperInvariant());
        }

        if (IsKeyword("time") && IsKeywordAt(1, "zone"))
        {
            _pos += 2;
            if (Accept("local") || Accept("default"))
            {
                return new SetStatement(pos, "timezone", [], isLocal);
            }

            if (IsKeyword("interval"))
            {
                throw NotSupported("SET TIME ZONE INTERVAL");
            }

            // A zone is a string, a number or a plain identifier (no keyword).
            if (Current.Kind == TokenKind.Identifier && Keywords.NeedsQuoting(Current.Text))
            {
                throw SyntaxError();
            }

            return new SetStatement(pos, "timezone", [ParseSetValue()], isLocal);
        }

        var plainAssignment = IsKeywordAt(1, "to") || PeekToken(1).IsOperator("=");
        if (!plainAssignment && Accept("names"))
        {
            return new SetStatement(pos, "client_encoding", AtStatementEnd || Accept("default") ? [] : [Expect(TokenKind.String).Text], isLocal);
        }

        if (!plainAssignment && Accept("schema"))
        {
            return new SetStatement(pos, "search_path", [Expect(TokenKind.String).Text], isLocal);
        }

        if (!plainAssignment && Accept("role"))
        {
            return new SetStatement(pos, "role", Accept("none") ? ["none"] : [ParseSetValue()], isLocal);
        }

        var name = ParseSettingName();
        if (!Accept("to") && !AcceptOperator("="))
        {
            throw SyntaxError();
        }

        if (Accept("default"))
        {
            return new SetStatement(pos, name, [], isLocal);
        }

        var values = new List<string> { ParseSetValue() };
        while (Accept(TokenKind.Comma))
        {
            values.Add(ParseSetValue());
        }

        return new SetStatement(pos, name, values, isLocal);
    }

    private string ParseSettingName()
    {
        var name = ParseColId();
        while (Accept(TokenKind.Dot))
        {
            name = name + "." + ParseColLabel();
        }

        return name;
    }

    /// <summary>A SET value as written: identifier or keyword, string, or signed number.</summary>
    private string ParseSetValue()
    {
        ref readonly var t = ref Current;
        switch (t.Kind)
        {
            case TokenKind.String:
            case TokenKind.Integer:
            case TokenKind.Decimal:
            case TokenKind.QuotedIdentifier:
                return Advance().Text;

            // gram.y's opt_boolean_or_string: a non-reserved word, TRUE, FALSE or ON.
            case TokenKind.Identifier when !Keywords.IsReserved(t.Text) || t.Text is "true" or "false" or "on":
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

            default:
                throw SyntaxError();
        }
    }

    private ShowStatement ParseShow()
    {
        var pos = Expect("show").Position;
        if (Accept("all"))
        {
            return new ShowStatement(pos, "all");
        }

        if (IsKeyword("time") && IsKeywordAt(1, "zone"))
        {
            _pos += 2;
            return new ShowStatement(pos, "timezone");
        }

        if (IsKeyword("transaction") && IsKeywordAt(1, "isolation") && IsKeywordAt(2, "level"))
        {
            _pos += 3;
            return new ShowStatement(pos, "transaction_isolation");
        }

        if (IsKeyword("session") && IsKeywordAt(1, "authorization"))
        {
            _pos += 2;
            return new ShowStatement(pos, "session_authorization");
        }

        return new ShowStatement(pos, ParseSettingName());
    }

    private ResetStatement ParseReset()
    {
        var pos = Expect("reset").Position;
        if (Accept("all"))
        {
            return new ResetStatement(pos, "all");
        }

        if (IsKeyword("time") && IsKeywordAt(1, "zone"))
        {
            _pos += 2;
            return new ResetStatement(pos, "timezone");
        }

        if (IsKeyword("session") && IsKeywordAt(1, "authorization"))
        {
            _pos += 2;
            return new ResetStatement(pos, "session_authorization");
        }

        return new ResetStatement(pos, ParseSettingName());
    }

    private ExplainStatement ParseExplain()
    {
        var pos = Expect("explain").Position;
        var analyze = false;
        var verbose = false;
        if (Current.Kind == TokenKind.LeftParen)
        {
            foreach (var (option, value) in ParseUtilityOptions())
            {
                var on = value is not ("false" or "off" or "0");
                if (option is "analyze" or "analyse")
                {
                    analyze = on;
                }
                else if (option == "verbose")
                {
                    verbose = on;
                }
            }
        }
        else
        {
            analyze = Accept("analyze") || Accept("analyse");
            verbose = Accept("verbose");
        }

        var target = ParseStatement();
        if (target is not (SelectStatement or InsertStatement or UpdateStatement or DeleteStatement or CreateTableStatement or ExecuteStatement))
        {
            throw new SqlException(SqlState.SyntaxError, "syntax error: EXPLAIN needs a query", target.Position);
        }

        return new ExplainStatement(pos, target, analyze, verbose);
    }

    private bool IsStatementEndAt(int ahead) => PeekToken(ahead).Kind is TokenKind.End or TokenKind.Semicolon;

    /// <summary>EXPLAIN's and VACUUM's <c>(name [value], ...)</c>: names are non-reserved words (or ANALYZE), values booleans, words, strings or numbers.</summary>
    private List<(string Name, string Value)> ParseUtilityOptions()
    {
        Expect(TokenKind.LeftParen);
        var list = new List<(string, string)>();
        do
        {
            ref readonly var t = ref Current;
            if (!(t.Kind == TokenKind.Identifier && (!Keywords.IsReserved(t.Text) || t.Text is "analyze" or "analyse")))
            {
                throw SyntaxError();
            }

            var name = Advance().Text;
            var value = "true";
            ref readonly var v = ref Current;
            if (v.Kind is TokenKind.String or TokenKind.Integer or TokenKind.Decimal ||
                (v.Kind == TokenKind.Identifier && (!Keywords.IsReserved(v.Text) || v.Text is "true" or "false" or "on")) ||
                (v.Kind == TokenKind.Operator && v.Text is "-" or "+"))
            {
                value = ParseSetValue();
            }

            list.Add((name, value));
        }
        while (Accept(TokenKind.Comma));
        Expect(TokenKind.RightParen);
        return list;
    }

    private PrepareStatement ParsePrepare()
    {
        var pos = Expect("prepare").Position;
        if (IsKeyword("transaction"))
        {
            throw NotSupported("PREPARE TRANSACTION");
        }

        var name = ParseColId();
        List<TypeName> types = [];
        if (Accept(TokenKind.LeftParen))
        {
            do
            {
                types.Add(ParseTypeName());
            }
            while (Accept(TokenKind.Comma));
            Expect(TokenKind.RightParen);
        }

        Expect("as");
        var start = _pos;
        var target = ParseStatement();
        if (target is not (SelectStatement or InsertStatement or UpdateStatement or DeleteStatement))
        {
            throw new SqlException(SqlState.SyntaxError, "syntax error: PREPARE needs SELECT, INSERT, UPDATE, DELETE or VALUES", target.Position);
        }

        return new PrepareStatement(pos, name, types, target, SourceText(start, _pos));
    }

    private ExecuteStatement ParseExecute()
    {
        var pos = Expect("execute").Position;
        var name = ParseColId();
        List<Expr> args = [];
        if (Accept(TokenKind.LeftParen))
        {
            args = ParseExpressionList();
            Expect(TokenKind.RightParen);
        }

        return new ExecuteStatement(pos, name, args);
    }

    private MaintenanceStatement ParseMaintenance()
    {
        var t = Advance();
        var command = t.Text == "vacuum" ? "vacuum" : "analyze";
        if (Current.Kind == TokenKind.LeftParen)
        {
            ParseUtilityOptions();
        }
        else
        {
            while (IsKeyword("full") || IsKeyword("freeze") || IsKeyword("verbose") || IsKeyword("analyze") || IsKeyword("analyse"))
            {
                _pos++;
            }
        }

        var tables = new List<QualifiedName>();
        if (!AtStatementEnd)
        {
            do
            {
                tables.Add(ParseQualifiedName());
                if (Current.Kind == TokenKind.LeftParen)
                {
                    ParseParenthesizedNameList();
                }
            }
            while (Accept(TokenKind.Comma));
        }

        return new MaintenanceStatement(t.Position, command, tables);
    }

    private LockStatement ParseLock()
    {
        var pos = Expect("lock").Position;
        Accept("table");
        var tables = new List<QualifiedName>();
        do
        {
            Accept("only");
            tables.Add(ParseQualifiedName());
            AcceptOperator("*");
        }
        while (Accept(TokenKind.Comma));
        if (Accept("in"))
        {
            // ACCESS SHARE ... ACCESS EXCLUSIVE: every mode is redundant under serializable validation.
            var words = 0;
            while (Current.Kind == TokenKind.Identifier && !IsKeyword("mode") && words < 3)
            {
                if (!(IsKeyword("access") || IsKeyword("row") || IsKeyword("share") || IsKeyword("exclusive") || IsKeyword("update")))
                {
                    throw SyntaxError();
                }

                _pos++;
                words++;
            }

            if (words == 0)
            {
                throw SyntaxError();
            }

            Expect("mode");
        }

        Accept("nowait");
        return new LockStatement(pos, tables);
    }

    private CommentStatement ParseComment()
    {
        var pos = Expect("comment").Position;
        Expect("on");
        if (!(Current.Kind == TokenKind.Identifier && Current.Text is "table" or "column" or "index" or "view" or "sequence"
                or "schema" or "database" or "constraint" or "function" or "type" or "extension" or "role" or "trigger"
                or "materialized" or "domain" or "procedure" or "policy" or "rule" or "aggregate" or "collation"))
        {
            throw SyntaxError();
        }

        // COMMENT ON <object kind> <name...> IS 'text' | NULL: kept nowhere, but the shape is checked.
        _pos++;
        if (IsKeyword("is"))
        {
            throw SyntaxError();
        }

        var guard = 0;
        while (!IsKeyword("is"))
        {
            if (AtStatementEnd || ++guard > 64)
            {
                throw SyntaxError();
            }

            _pos++;
        }

        _pos++;
        if (!Accept("null"))
        {
            Expect(TokenKind.String);
        }

        return new CommentStatement(pos);
    }

    private DoStatement ParseDo()
    {
        var pos = Expect("do").Position;
        string? language = null;
        if (Accept("language"))
        {
            language = ParseColLabel();
        }

        var body = Expect(TokenKind.String).Text;
        if (language is null && Accept("language"))
        {
            language = ParseColLabel();
        }

        return new DoStatement(pos, body, language);
    }
}
