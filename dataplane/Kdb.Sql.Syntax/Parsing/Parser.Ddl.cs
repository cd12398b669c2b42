using Kdb.Sql.Syntax.Lexing;

namespace Kdb.Sql.Syntax.Parsing;

// CREATE TABLE/INDEX/VIEW/SEQUENCE/SCHEMA, DROP, ALTER TABLE.
internal sealed partial class Parser
{
    private Statement ParseCreate()
    {
        var pos = Expect("create").Position;
        var orReplace = false;
        if (Accept("or"))
        {
            Expect("replace");
            orReplace = true;
        }

        var temporary = false;
        if (Accept("temp") || Accept("temporary"))
        {
            temporary = true;
        }
        else if ((IsKeyword("local") || IsKeyword("global")) && (IsKeywordAt(1, "temp") || IsKeywordAt(1, "temporary")))
        {
            _pos += 2;
            temporary = true;
        }
        else
        {
            Accept("unlogged");
        }

        if (IsKeyword("table") && !orReplace)
        {
            return ParseCreateTable(pos, temporary);
        }

        if (IsKeyword("view") || (IsKeyword("recursive") && IsKeywordAt(1, "view")))
        {
            return ParseCreateView(pos, orReplace);
        }

        if (IsKeyword("sequence") && !orReplace)
        {
            return ParseCreateSequence(pos);
        }

        if ((IsKeyword("index") || (IsKeyword("unique") && IsKeywordAt(1, "index"))) && !orReplace && !temporary)
        {
            return ParseCreateIndex(pos);
        }

        if (IsKeyword("schema") && !orReplace && !temporary)
        {
            _pos++;
            var ifNotExists = ParseIfNotExists();
            var name = ParseColId();
            if (IsKeyword("authorization"))
            {
                throw NotSupported("CREATE SCHEMA ... AUTHORIZATION");
            }

            return new CreateSchemaStatement(pos, name, ifNotExists);
        }

        throw SyntaxError();
    }

    private bool ParseIfNotExists()
    {
        if (IsKeyword("if") && IsKeywordAt(1, "not") && IsKeywordAt(2, "exists"))
        {
            _pos += 3;
            return true;
        }

        return false;
    }

    private bool ParseIfExists()
    {
        if (IsKeyword("if") && IsKeywordAt(1, "exists"))
        {
            _pos += 2;
            return true;
        }

        return false;
    }

    private CreateTableStatement ParseCreateTable(int pos, bool temporary)
    {
        Expect("table");
        var ifNotExists = ParseIfNotExists();
        var name = ParseQualifiedName();
        var columns = new List<ColumnDefinition>();
        var constraints = new List<Constraint>();
        var storage = new Dictionary<string, string>(StringComparer.Ordinal);
        if (Current.Kind == TokenKind.LeftParen && !IsAsAfterNames())
        {
            _pos++;
            if (Current.Kind != TokenKind.RightParen)
            {
                do
                {
                    if (IsKeyword("like"))
                    {
                        throw NotSupported("CREATE TABLE ... (LIKE ...)");
                    }

                    if (IsKeyword("constraint") || IsKeyword("check") || IsKeyword("unique") || IsKeyword("primary") || IsKeyword("foreign") || IsKeyword("exclude"))
                    {
                        constraints.Add(ParseTableConstraint());
                    }
                    else
                    {
                        columns.Add(ParseColumnDefinition());
                    }
                }
                while (Accept(TokenKind.Comma));
            }

            Expect(TokenKind.RightParen);
            if (IsKeyword("inherits") || IsKeyword("partition"))
            {
                throw NotSupported(Current.Text.ToUpperInvariant());
            }

            ParseStorageParameters(storage);
            ParseOnCommit();
            return new CreateTableStatement(pos, name, ifNotExists, columns, constraints, storage, Temporary: temporary);
        }

        List<string>? asColumns = Current.Kind == TokenKind.LeftParen ? ParseParenthesizedNameList() : null;
        ParseStorageParameters(storage);
        ParseOnCommit();
        Expect("as");
        var query = ParseSelectStatement();
        if (Accept("with"))
        {
            if (Accept("no"))
            {
                throw NotSupported("CREATE TABLE AS ... WITH NO DATA");
            }

            Expect("data");
        }

        return new CreateTableStatement(pos, name, ifNotExists, columns, constraints, storage, query, asColumns, temporary);
    }

    // "CREATE TABLE t (a, b) AS ..." vs "CREATE TABLE t (a int, ...)": a name list is followed by AS or WITH.
    private bool IsAsAfterNames()
    {
        var i = _pos + 1;
        while (true)
        {
            if (i >= _count - 1 || !IsColId(_tokens[i]))
            {
                return false;
            }

            i++;
            if (_tokens[i].Kind == TokenKind.RightParen)
            {
                return _tokens[i + 1].Is("as") || _tokens[i + 1].Is("with");
            }

            if (_tokens[i].Kind != TokenKind.Comma)
            {
                return false;
            }

            i++;
        }
    }

    private void ParseOnCommit()
    {
        if (IsKeyword("on") && IsKeywordAt(1, "commit"))
        {
            throw NotSupported("ON COMMIT");
        }
    }

    /// <summary><c>WITH (name [= value], ...)</c>; a bare name gets "true".</summary>
    private void ParseStorageParameters(Dictionary<string, string> storage)
    {
        if (!(IsKeyword("with") && PeekToken(1).Kind == TokenKind.LeftParen))
        {
            if (IsKeyword("without") && IsKeywordAt(1, "oids"))
            {
                _pos += 2;
            }

            return;
        }

        _pos += 2;
        do
        {
            var name = ParseColLabel();
            if (Accept(TokenKind.Dot))
            {
                name = name + "." + ParseColLabel();
            }

            storage[name] = AcceptOperator("=") ? ParseSetValue() : "true";
        }
        while (Accept(TokenKind.Comma));
        Expect(TokenKind.RightParen);
    }

    private ColumnDefinition ParseColumnDefinition()
    {
        var pos = Current.Position;
        var name = ParseColId();
        var type = ParseTypeName();
        var constraints = new List<Constraint>();
        while (true)
        {
            if (Accept("collate"))
            {
                ParseCollationName();
                continue;
            }

            var c = TryParseColumnConstraint();
            if (c is null)
            {
                break;
            }

            constraints.Add(c);
        }

        return new ColumnDefinition(pos, name, type, constraints);
    }

    private Constraint? TryParseColumnConstraint()
    {
        var pos = Current.Position;
        string? name = null;
        if (Accept("constraint"))
        {
            name = ParseColId();
        }

        Constraint c;
        if (IsKeyword("not") && IsKeywordAt(1, "null"))
        {
            _pos += 2;
            c = new Constraint(pos, name, ConstraintKind.NotNull, []);
        }
        else if (Accept("null"))
        {
            c = new Constraint(pos, name, ConstraintKind.Null, []);
        }
        else if (Accept("default"))
        {
            c = new Constraint(pos, name, ConstraintKind.Default, [], ParseBExpr());
        }
        else if (Accept("check"))
        {
            Expect(TokenKind.LeftParen);
            var e = ParseExpression();
            Expect(TokenKind.RightParen);
            if (IsKeyword("no") && IsKeywordAt(1, "inherit"))
            {
                _pos += 2;
            }

            c = new Constraint(pos, name, ConstraintKind.Check, [], e);
        }
        else if (Accept("unique"))
        {
            ParseIndexParameters();
            c = new Constraint(pos, name, ConstraintKind.Unique, []);
        }
        else if (IsKeyword("primary"))
        {
            _pos++;
            Expect("key");
            ParseIndexParameters();
            c = new Constraint(pos, name, ConstraintKind.PrimaryKey, []);
        }
        else if (IsKeyword("references"))
        {
            c = ParseReferences(pos, name, []);
        }
        else if (IsKeyword("generated"))
        {
            _pos++;
            bool always;
            if (Accept("always"))
            {
                always = true;
            }
            else
            {
                Expect("by");
                Expect("default");
                always = false;
            }

            Expect("as");
            if (Current.Kind == TokenKind.LeftParen)
            {
                throw NotSupported("generated columns");
            }

            Expect("identity");
            long? identityStart = null, identityIncrement = null;
            if (Accept(TokenKind.LeftParen))
            {
                var o = ParseSequenceOptions(allowEmpty: false);
                Expect(TokenKind.RightParen);
                identityStart = o.Start;
                identityIncrement = o.Increment;
            }

            c = new Constraint(pos, name, ConstraintKind.Identity, [], IdentityAlways: always, IdentityStart: identityStart, IdentityIncrement: identityIncrement);
        }
        else if (name is not null)
        {
            throw SyntaxError();
        }
        else
        {
            return null;
        }

        return ParseDeferrable(c);
    }

    private Constraint ParseDeferrable(Constraint c)
    {
        var deferrable = c.Deferrable;
        while (true)
        {
            if (Accept("deferrable"))
            {
                deferrable = true;
            }
            else if (IsKeyword("not") && IsKeywordAt(1, "deferrable"))
            {
                _pos += 2;
                deferrable = false;
            }
            else if (Accept("initially"))
            {
                if (!Accept("deferred"))
                {
                    Expect("immediate");
                }
            }
            else
            {
                break;
            }
        }

        return deferrable == c.Deferrable ? c : c with { Deferrable = deferrable };
    }

    // UNIQUE/PRIMARY KEY extras kdb has no use for: INCLUDE (...), WITH (...), USING INDEX TABLESPACE x.
    private void ParseIndexParameters()
    {
        if (IsKeyword("nulls"))
        {
            throw NotSupported("NULLS [NOT] DISTINCT");
        }

        if (IsKeyword("include") && PeekToken(1).Kind == TokenKind.LeftParen)
        {
            throw NotSupported("INCLUDE in a constraint");
        }

        if (IsKeyword("with") && PeekToken(1).Kind == TokenKind.LeftParen)
        {
            ParseStorageParameters(new Dictionary<string, string>(StringComparer.Ordinal));
        }

        if (IsKeyword("using") && IsKeywordAt(1, "index") && IsKeywordAt(2, "tablespace"))
        {
            _pos += 3;
            ParseColId();
        }
    }

    private Constraint ParseReferences(int pos, string? name, List<string> columns)
    {
        Expect("references");
        var table = ParseQualifiedName();
        List<string>? refColumns = Current.Kind == TokenKind.LeftParen ? ParseParenthesizedNameList() : null;
        if (Accept("match"))
        {
            if (!Accept("simple") && !Accept("full"))
            {
                throw NotSupported("MATCH PARTIAL");
            }
        }

        var onDelete = ReferentialAction.NoAction;
        var onUpdate = ReferentialAction.NoAction;
        while (IsKeyword("on") && (IsKeywordAt(1, "delete") || IsKeywordAt(1, "update")))
        {
            _pos++;
            var isDelete = Advance().Text == "delete";
            var action = ParseReferentialAction();
            if (isDelete)
            {
                onDelete = action;
            }
            else
            {
                onUpdate = action;
            }
        }

        return new Constraint(pos, name, ConstraintKind.ForeignKey, columns, null, table, refColumns, onDelete, onUpdate);
    }

    private ReferentialAction ParseReferentialAction()
    {
        if (Accept("cascade"))
        {
            return ReferentialAction.Cascade;
        }

        if (Accept("restrict"))
        {
            return ReferentialAction.Restrict;
        }

        if (Accept("no"))
        {
            Expect("action");
            return ReferentialAction.NoAction;
        }

        Expect("set");
        if (Accept("null"))
        {
            return ReferentialAction.SetNull;
        }

        Expect("default");
        return ReferentialAction.SetDefault;
    }

    private Constraint ParseTableConstraint()
    {
        var pos = Current.Position;
        string? name = null;
        if (Accept("constraint"))
        {
            name = ParseColId();
        }

        Constraint c;
        if (Accept("check"))
        {
            Expect(TokenKind.LeftParen);
            var e = ParseExpression();
            Expect(TokenKind.RightParen);
            if (IsKeyword("no") && IsKeywordAt(1, "inherit"))
            {
                _pos += 2;
            }

            c = new Constraint(pos, name, ConstraintKind.Check, [], e);
        }
        else if (Accept("unique"))
        {
            if (IsKeyword("nulls"))
            {
                throw NotSupported("NULLS [NOT] DISTINCT");
            }

            var cols = ParseParenthesizedNameList();
            ParseIndexParameters();
            c = new Constraint(pos, name, ConstraintKind.Unique, cols);
        }
        else if (Accept("primary"))
        {
            Expect("key");
            var cols = ParseParenthesizedNameList();
            ParseIndexParameters();
            c = new Constraint(pos, name, ConstraintKind.PrimaryKey, cols);
        }
        else if (Accept("foreign"))
        {
            Expect("key");
            var cols = ParseParenthesizedNameList();
            c = ParseReferences(pos, name, cols);
        }
        else if (IsKeyword("exclude"))
        {
            throw NotSupported("EXCLUDE constraints");
        }
        else
        {
            throw SyntaxError();
        }

        c = ParseDeferrable(c);
        if (IsKeyword("not") && IsKeywordAt(1, "valid"))
        {
            _pos += 2;
        }

        return c;
    }

    private CreateIndexStatement ParseCreateIndex(int pos)
    {
        var unique = Accept("unique");
        Expect("index");
        Accept("concurrently");
        var ifNotExists = ParseIfNotExists();
        string? name = null;
        if (!IsKeyword("on"))
        {
            name = ParseColId();
        }

        Expect("on");
        Accept("only");
        var table = ParseQualifiedName();
        string? method = null;
        if (Accept("using"))
        {
            method = ParseColId();
        }

        Expect(TokenKind.LeftParen);
        var columns = new List<IndexColumn>();
        do
        {
            columns.Add(ParseIndexColumn());
        }
        while (Accept(TokenKind.Comma));
        Expect(TokenKind.RightParen);
        List<string> include = [];
        if (IsKeyword("include"))
        {
            _pos++;
            include = ParseParenthesizedNameList();
        }

        if (IsKeyword("nulls"))
        {
            throw NotSupported("NULLS [NOT] DISTINCT");
        }

        ParseStorageParameters(new Dictionary<string, string>(StringComparer.Ordinal));
        if (Accept("tablespace"))
        {
            ParseColId();
        }

        Expr? where = null;
        if (Accept("where"))
        {
            where = ParseExpression();
        }

        return new CreateIndexStatement(pos, name, table, unique, ifNotExists, columns, include, method, where);
    }

    private IndexColumn ParseIndexColumn()
    {
        Expr e;
        if (Current.Kind == TokenKind.LeftParen)
        {
            _pos++;
            e = ParseExpression();
            Expect(TokenKind.RightParen);
        }
        else if (PeekToken(1).Kind == TokenKind.LeftParen || (PeekToken(1).Kind == TokenKind.Dot && PeekToken(3).Kind == TokenKind.LeftParen))
        {
            e = ParsePrimary();
        }
        else
        {
            var pos = Current.Position;
            e = new ColumnRefExpr(pos, [ParseColId()]);
        }

        if (Accept("collate"))
        {
            ParseCollationName();
        }

        // An operator class (text_pattern_ops...) changes nothing for kdb's ordered keys.
        if (IsColId(Current) && !IsKeyword("nulls"))
        {
            ParseQualifiedName();
        }

        var desc = false;
        if (Accept("desc"))
        {
            desc = true;
        }
        else
        {
            Accept("asc");
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

        return new IndexColumn(e, desc, nullsFirst);
    }

    private CreateViewStatement ParseCreateView(int pos, bool orReplace)
    {
        if (IsKeyword("recursive"))
        {
            throw NotSupported("CREATE RECURSIVE VIEW");
        }

        Expect("view");
        var name = ParseQualifiedName();
        List<string>? columns = Current.Kind == TokenKind.LeftParen ? ParseParenthesizedNameList() : null;
        if (IsKeyword("with") && PeekToken(1).Kind == TokenKind.LeftParen)
        {
            ParseStorageParameters(new Dictionary<string, string>(StringComparer.Ordinal));
        }

        Expect("as");
        var start = _pos;
        var query = ParseSelectStatement();
        var text = SourceText(start, _pos);
        if (IsKeyword("with") && (IsKeywordAt(1, "check") || IsKeywordAt(1, "local") || IsKeywordAt(1, "cascaded")))
        {
            throw NotSupported("WITH CHECK OPTION");
        }

        return new CreateViewStatement(pos, name, orReplace, columns, query, text);
    }

    private CreateSequenceStatement ParseCreateSequence(int pos)
    {
        Expect("sequence");
        var ifNotExists = ParseIfNotExists();
        var name = ParseQualifiedName();
        var o = ParseSequenceOptions(allowEmpty: true);
        return new CreateSequenceStatement(pos, name, ifNotExists, o.DataType, o.Increment, o.MinValue, o.MaxValue, o.Start, o.Cache, o.Cycle);
    }

    private readonly record struct SequenceOptions(string? DataType, long? Increment, long? MinValue, long? MaxValue, long? Start, long? Cache, bool? Cycle);

    /// <summary>CREATE SEQUENCE's options, also the parenthesized ones of GENERATED ... AS IDENTITY (...).</summary>
    private SequenceOptions ParseSequenceOptions(bool allowEmpty)
    {
        string? dataType = null;
        long? increment = null, min = null, max = null, start = null, cache = null;
        bool? cycle = null;
        var any = false;
        while (true)
        {
            if (Accept("as"))
            {
                dataType = ParseTypeName().Name;
            }
            else if (Accept("increment"))
            {
                Accept("by");
                increment = ParseSignedLong();
            }
            else if (Accept("minvalue"))
            {
                min = ParseSignedLong();
            }
            else if (Accept("maxvalue"))
            {
                max = ParseSignedLong();
            }
            else if (Accept("start"))
            {
                Accept("with");
                start = ParseSignedLong();
            }
            else if (Accept("cache"))
            {
                cache = ParseSignedLong();
            }
            else if (Accept("cycle"))
            {
                cycle = true;
            }
            else if (Accept("no"))
            {
                if (Accept("cycle"))
                {
                    cycle = false;
                }
                else if (!Accept("minvalue"))
                {
                    Expect("maxvalue");
                }
            }
            else if (Accept("owned"))
            {
                // OWNED BY only ties the sequence's lifetime to a column; accepted, not recorded.
                Expect("by");
                if (!Accept("none"))
                {
                    ParseColId();
                    while (Accept(TokenKind.Dot))
                    {
                        ParseColLabel();
                    }
                }
            }
            else
            {
                if (!any && !allowEmpty)
                {
                    throw SyntaxError();
                }

                return new SequenceOptions(dataType, increment, min, max, start, cache, cycle);
            }

            any = true;
        }
    }

    private DropStatement ParseDrop()
    {
        var pos = Expect("drop").Position;
        ObjectKind kind;
        if (Accept("table"))
        {
            kind = ObjectKind.Table;
        }
        else if (Accept("index"))
        {
            kind = ObjectKind.Index;
            Accept("concurrently");
        }
        else if (Accept("view"))
        {
            kind = ObjectKind.View;
        }
        else if (Accept("sequence"))
        {
            kind = ObjectKind.Sequence;
        }
        else if (Accept("schema"))
        {
            kind = ObjectKind.Schema;
        }
        else
        {
            throw SyntaxError();
        }

        var ifExists = ParseIfExists();
        var names = ParseQualifiedNameList();
        var cascade = Accept("cascade");
        if (!cascade)
        {
            Accept("restrict");
        }

        return new DropStatement(pos, kind, names, ifExists, cascade);
    }
}
