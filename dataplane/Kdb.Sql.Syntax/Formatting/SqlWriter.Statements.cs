namespace Kdb.Sql.Syntax.Formatting;

internal sealed partial class SqlWriter
{
    public void Statement(Statement s)
    {
        switch (s)
        {
            case SelectStatement q: Query(q); break;
            case InsertStatement i: Insert(i); break;
            case UpdateStatement u: Update(u); break;
            case DeleteStatement d: Delete(d); break;
            case TruncateStatement t:
                _sb.Append("TRUNCATE TABLE ");
                Names(t.Tables);
                if (t.RestartIdentity)
                {
                    _sb.Append(" RESTART IDENTITY");
                }

                if (t.Cascade)
                {
                    _sb.Append(" CASCADE");
                }

                break;
            case CopyStatement c: Copy(c); break;
            case CreateTableStatement ct: CreateTable(ct); break;
            case CreateIndexStatement ci: CreateIndex(ci); break;
            case CreateViewStatement cv:
                _sb.Append(cv.OrReplace ? "CREATE OR REPLACE VIEW " : "CREATE VIEW ");
                Name(cv.Name);
                if (cv.Columns is not null)
                {
                    _sb.Append(' ');
                    NameList(cv.Columns);
                }

                _sb.Append(" AS ");
                Query(cv.Query);
                break;
            case CreateSequenceStatement cs: CreateSequence(cs); break;
            case CreateSchemaStatement sc:
                _sb.Append(sc.IfNotExists ? "CREATE SCHEMA IF NOT EXISTS " : "CREATE SCHEMA ").Append(SqlFormatter.QuoteIdentifier(sc.Name));
                break;
            case DropStatement dr:
                _sb.Append("DROP ").Append(dr.Kind switch
                {
                    ObjectKind.Table => "TABLE ",
                    ObjectKind.Index => "INDEX ",
                    ObjectKind.View => "VIEW ",
                    ObjectKind.Sequence => "SEQUENCE ",
                    _ => "SCHEMA ",
                });
                if (dr.IfExists)
                {
                    _sb.Append("IF EXISTS ");
                }

                Names(dr.Names);
                if (dr.Cascade)
                {
                    _sb.Append(" CASCADE");
                }

                break;
            case AlterTableStatement at: AlterTable(at); break;
            case TransactionStatement tx: Transaction(tx); break;
            case SetStatement set: Set(set); break;
            case ShowStatement show:
                _sb.Append("SHOW ");
                Setting(show.Name);
                break;
            case ResetStatement reset:
                _sb.Append("RESET ");
                Setting(reset.Name);
                break;
            case ExplainStatement ex:
                _sb.Append("EXPLAIN ");
                if (ex.Analyze)
                {
                    _sb.Append("ANALYZE ");
                }

                if (ex.Verbose)
                {
                    _sb.Append("VERBOSE ");
                }

                Statement(ex.Target);
                break;
            case PrepareStatement p:
                _sb.Append("PREPARE ").Append(SqlFormatter.QuoteIdentifier(p.Name));
                if (p.ParameterTypes.Count > 0)
                {
                    _sb.Append(" (");
                    for (var i = 0; i < p.ParameterTypes.Count; i++)
                    {
                        if (i > 0)
                        {
                            _sb.Append(", ");
                        }

                        Type(p.ParameterTypes[i]);
                    }

                    _sb.Append(')');
                }

                _sb.Append(" AS ");
                Statement(p.Target);
                break;
            case ExecuteStatement e:
                _sb.Append("EXECUTE ").Append(SqlFormatter.QuoteIdentifier(e.Name));
                if (e.Arguments.Count > 0)
                {
                    _sb.Append('(');
                    ExprList(e.Arguments);
                    _sb.Append(')');
                }

                break;
            case DeallocateStatement da:
                _sb.Append("DEALLOCATE ").Append(da.Name is null ? "ALL" : SqlFormatter.QuoteIdentifier(da.Name));
                break;
            case MaintenanceStatement m:
                _sb.Append(m.Command == "vacuum" ? "VACUUM" : "ANALYZE");
                if (m.Tables.Count > 0)
                {
                    _sb.Append(' ');
                    Names(m.Tables);
                }

                break;
            case DiscardStatement di:
                _sb.Append("DISCARD ").Append(di.What.ToUpperInvariant());
                break;
            case LockStatement l:
                _sb.Append("LOCK TABLE ");
                Names(l.Tables);
                break;
            case DoStatement d:
                _sb.Append("DO ");
                if (d.Language is not null)
                {
                    _sb.Append("LANGUAGE ").Append(SqlFormatter.QuoteIdentifier(d.Language)).Append(' ');
                }

                WriteString(d.Body);
                break;
            case UtilityStatement u:
                _sb.Append(u.Command.ToUpperInvariant()).Append(' ');
                _sb.Append(u.Target is "all" or "*" ? (u.Target == "all" ? "ALL" : "*") : SqlFormatter.QuoteIdentifier(u.Target));
                break;
            case EmptyStatement:
                break;
            default:
                throw new NotSupportedException($"cannot format {s.GetType().Name}");
        }
    }

    public void Query(SelectStatement q)
    {
        With(q.With, q.Recursive);
        Body(q.Body);
        if (q.OrderBy.Count > 0)
        {
            _sb.Append(" ORDER BY ");
            OrderItems(q.OrderBy);
        }

        if (q.Limit is not null)
        {
            _sb.Append(" LIMIT ");
            Expr(q.Limit);
        }

        if (q.Offset is not null)
        {
            _sb.Append(" OFFSET ");
            Expr(q.Offset);
        }

        if (q.Locking is not null)
        {
            _sb.Append(" FOR ").Append(q.Locking.Strength.ToUpperInvariant());
            if (q.Locking.NoWait)
            {
                _sb.Append(" NOWAIT");
            }
            else if (q.Locking.SkipLocked)
            {
                _sb.Append(" SKIP LOCKED");
            }
        }
    }

    private void With(IReadOnlyList<CommonTableExpr> ctes, bool recursive)
    {
        if (ctes.Count == 0)
        {
            return;
        }

        _sb.Append(recursive ? "WITH RECURSIVE " : "WITH ");
        for (var i = 0; i < ctes.Count; i++)
        {
            if (i > 0)
            {
                _sb.Append(", ");
            }

            var c = ctes[i];
            _sb.Append(SqlFormatter.QuoteIdentifier(c.Name));
            if (c.ColumnNames is not null)
            {
                _sb.Append(' ');
                NameList(c.ColumnNames);
            }

            _sb.Append(" AS (");
            Query(c.Query);
            _sb.Append(')');
            if (c.Search is { } search)
            {
                _sb.Append(search.BreadthFirst ? " SEARCH BREADTH FIRST BY " : " SEARCH DEPTH FIRST BY ");
                BareNames(search.Columns);
                _sb.Append(" SET ").Append(SqlFormatter.QuoteIdentifier(search.SequenceColumn));
            }

            if (c.Cycle is { } cycle)
            {
                _sb.Append(" CYCLE ");
                BareNames(cycle.Columns);
                _sb.Append(" SET ").Append(SqlFormatter.QuoteIdentifier(cycle.MarkColumn));
                if (cycle.MarkValue is not null && cycle.MarkDefault is not null)
                {
                    _sb.Append(" TO ");
                    WriteBExpr(cycle.MarkValue, Parsing.Precedence.Lowest);
                    _sb.Append(" DEFAULT ");
                    WriteBExpr(cycle.MarkDefault, Parsing.Precedence.Lowest);
                }

                _sb.Append(" USING ").Append(SqlFormatter.QuoteIdentifier(cycle.PathColumn));
            }
        }

        _sb.Append(' ');
    }

    private void BareNames(IReadOnlyList<string> names)
    {
        for (var i = 0; i < names.Count; i++)
        {
            _sb.Append(i > 0 ? ", " : string.Empty).Append(SqlFormatter.QuoteIdentifier(names[i]));
        }
    }

    private static int SetPrecedence(QueryBody b) => b is SetOperationBody s ? (s.Operator == SetOperator.Intersect ? 2 : 1) : 3;

    private void Body(QueryBody body)
    {
        switch (body)
        {
            case SelectCore core:
                Core(core);
                break;
            case ValuesBody v:
                _sb.Append("VALUES ");
                for (var i = 0; i < v.Rows.Count; i++)
                {
                    if (i > 0)
                    {
                        _sb.Append(", ");
                    }

                    _sb.Append('(');
                    ExprList(v.Rows[i]);
                    _sb.Append(')');
                }

                break;
            case SetOperationBody s:
                {
                    var prec = SetPrecedence(s);
                    BodyOperand(s.Left, SetPrecedence(s.Left) < prec);
                    _sb.Append(s.Operator switch
                    {
                        SetOperator.Union => " UNION ",
                        SetOperator.Intersect => " INTERSECT ",
                        _ => " EXCEPT ",
                    });
                    if (s.All)
                    {
                        _sb.Append("ALL ");
                    }

                    BodyOperand(s.Right, SetPrecedence(s.Right) <= prec);
                    break;
                }

            case NestedQueryBody n:
                _sb.Append('(');
                Query(n.Query);
                _sb.Append(')');
                break;
            default:
                throw new NotSupportedException($"cannot format {body.GetType().Name}");
        }
    }

    private void BodyOperand(QueryBody body, bool parenthesize)
    {
        if (parenthesize && body is not NestedQueryBody)
        {
            _sb.Append('(');
            Body(body);
            _sb.Append(')');
        }
        else
        {
            Body(body);
        }
    }

    private void Core(SelectCore c)
    {
        _sb.Append("SELECT");
        if (c.Distinct)
        {
            _sb.Append(" DISTINCT");
            if (c.DistinctOn is not null)
            {
                _sb.Append(" ON (");
                ExprList(c.DistinctOn);
                _sb.Append(')');
            }
        }

        if (c.Items.Count > 0)
        {
            _sb.Append(' ');
            SelectItems(c.Items);
        }

        if (c.From.Count > 0)
        {
            _sb.Append(" FROM ");
            FromList(c.From);
        }

        if (c.Where is not null)
        {
            _sb.Append(" WHERE ");
            Expr(c.Where);
        }

        if (c.GroupBy.Count > 0)
        {
            _sb.Append(" GROUP BY ");
            ExprList(c.GroupBy);
        }

        if (c.Having is not null)
        {
            _sb.Append(" HAVING ");
            Expr(c.Having);
        }

        if (c.Windows.Count > 0)
        {
            _sb.Append(" WINDOW ");
            for (var i = 0; i < c.Windows.Count; i++)
            {
                if (i > 0)
                {
                    _sb.Append(", ");
                }

                _sb.Append(SqlFormatter.QuoteIdentifier(c.Windows[i].Name)).Append(" AS ");
                var spec = c.Windows[i].Spec;
                if (spec.Name is not null && spec.PartitionBy.Count == 0 && spec.OrderBy.Count == 0 && spec.Frame is null)
                {
                    _sb.Append('(').Append(SqlFormatter.QuoteIdentifier(spec.Name)).Append(')');
                }
                else
                {
                    WindowSpec(spec);
                }
            }
        }
    }

    private void SelectItems(IReadOnlyList<SelectItem> items)
    {
        for (var i = 0; i < items.Count; i++)
        {
            if (i > 0)
            {
                _sb.Append(", ");
            }

            Expr(items[i].Expression);
            if (items[i].Alias is not null)
            {
                _sb.Append(" AS ").Append(SqlFormatter.QuoteIdentifier(items[i].Alias!));
            }
        }
    }

    private void FromList(IReadOnlyList<TableRef> from)
    {
        for (var i = 0; i < from.Count; i++)
        {
            if (i > 0)
            {
                _sb.Append(", ");
            }

            TableRef(from[i]);
        }
    }

    private void TableRef(TableRef t)
    {
        switch (t)
        {
            case NamedTableRef n:
                Name(n.Name);
                Alias(n.Alias, n.ColumnAliases);
                break;
            case SubqueryTableRef s:
                _sb.Append(s.Lateral ? "LATERAL (" : "(");
                Query(s.Query);
                _sb.Append(')');
                Alias(s.Alias, s.ColumnAliases);
                break;
            case FunctionTableRef f:
                if (f.Lateral)
                {
                    _sb.Append("LATERAL ");
                }

                WriteFunction(f.Function);
                if (f.WithOrdinality)
                {
                    _sb.Append(" WITH ORDINALITY");
                }

                Alias(f.Alias, f.ColumnAliases);
                break;
            case JoinTableRef j:
                TableRef(j.Left);
                _sb.Append(j.Natural ? " NATURAL " : " ").Append(j.Kind switch
                {
                    JoinKind.Inner => "JOIN ",
                    JoinKind.Left => "LEFT JOIN ",
                    JoinKind.Right => "RIGHT JOIN ",
                    JoinKind.Full => "FULL JOIN ",
                    _ => "CROSS JOIN ",
                });
                if (j.Right is JoinTableRef)
                {
                    _sb.Append('(');
                    TableRef(j.Right);
                    _sb.Append(')');
                }
                else
                {
                    TableRef(j.Right);
                }

                if (j.On is not null)
                {
                    _sb.Append(" ON ");
                    Expr(j.On);
                }
                else if (j.Using is not null)
                {
                    _sb.Append(" USING ");
                    NameList(j.Using);
                }
                else if (j.Kind != JoinKind.Cross && !j.Natural)
                {
                    _sb.Append(" ON TRUE");
                }

                break;
            default:
                throw new NotSupportedException($"cannot format {t.GetType().Name}");
        }
    }

    private void Alias(string? alias, IReadOnlyList<string>? columns)
    {
        if (alias is null)
        {
            return;
        }

        _sb.Append(" AS ").Append(SqlFormatter.QuoteIdentifier(alias));
        if (columns is not null)
        {
            NameList(columns);
        }
    }

    private void Name(QualifiedName n)
    {
        if (n.Schema is not null)
        {
            _sb.Append(SqlFormatter.QuoteIdentifier(n.Schema)).Append('.');
        }

        _sb.Append(SqlFormatter.QuoteIdentifier(n.Name));
    }

    private void Names(IReadOnlyList<QualifiedName> names)
    {
        for (var i = 0; i < names.Count; i++)
        {
            if (i > 0)
            {
                _sb.Append(", ");
            }

            Name(names[i]);
        }
    }

    private void NameList(IReadOnlyList<string> names)
    {
        _sb.Append('(');
        for (var i = 0; i < names.Count; i++)
        {
            if (i > 0)
            {
                _sb.Append(", ");
            }

            _sb.Append(SqlFormatter.QuoteIdentifier(names[i]));
        }

        _sb.Append(')');
    }

    private void Setting(string name)
    {
        if (name == "all")
        {
            _sb.Append("ALL");
            return;
        }

        var parts = name.Split('.');
        for (var i = 0; i < parts.Length; i++)
        {
            if (i > 0)
            {
                _sb.Append('.');
            }

            _sb.Append(SqlFormatter.QuoteIdentifier(parts[i]));
        }
    }

    private void Set(SetStatement s)
    {
        _sb.Append(s.IsLocal ? "SET LOCAL " : "SET ");
        Setting(s.Name);
        _sb.Append(" TO ");
        if (s.Values.Count == 0)
        {
            _sb.Append("DEFAULT");
            return;
        }

        for (var i = 0; i < s.Values.Count; i++)
        {
            if (i > 0)
            {
                _sb.Append(", ");
            }

            WriteString(s.Values[i]);
        }
    }

    private void Transaction(TransactionStatement t)
    {
        switch (t.Kind)
        {
            case TransactionKind.Begin:
            case TransactionKind.SetTransaction:
                _sb.Append(t.Kind == TransactionKind.Begin ? "BEGIN" : "SET TRANSACTION");
                if (t.IsolationLevel is not null)
                {
                    _sb.Append(" ISOLATION LEVEL ").Append(t.IsolationLevel.ToUpperInvariant());
                }

                if (t.ReadOnly is bool ro)
                {
                    _sb.Append(ro ? " READ ONLY" : " READ WRITE");
                }

                break;
            case TransactionKind.Commit:
                _sb.Append("COMMIT");
                break;
            case TransactionKind.Rollback:
                _sb.Append("ROLLBACK");
                break;
            case TransactionKind.Savepoint:
                _sb.Append("SAVEPOINT ").Append(SqlFormatter.QuoteIdentifier(t.Savepoint ?? string.Empty));
                break;
            case TransactionKind.Release:
                _sb.Append("RELEASE SAVEPOINT ").Append(SqlFormatter.QuoteIdentifier(t.Savepoint ?? string.Empty));
                break;
            case TransactionKind.RollbackToSavepoint:
                _sb.Append("ROLLBACK TO SAVEPOINT ").Append(SqlFormatter.QuoteIdentifier(t.Savepoint ?? string.Empty));
                break;
        }
    }

    private void Returning(IReadOnlyList<SelectItem>? items)
    {
        if (items is not null)
        {
            _sb.Append(" RETURNING ");
            SelectItems(items);
        }
    }

    private void SetClauses(IReadOnlyList<SetClause> set)
    {
        for (var i = 0; i < set.Count; i++)
        {
            if (i > 0)
            {
                _sb.Append(", ");
            }

            _sb.Append(SqlFormatter.QuoteIdentifier(set[i].Column)).Append(" = ");
            Expr(set[i].Value);
        }
    }

    private void Insert(InsertStatement i)
    {
        With(i.With, i.Recursive);
        _sb.Append("INSERT INTO ");
        Name(i.Table);
        if (i.Alias is not null)
        {
            _sb.Append(" AS ").Append(SqlFormatter.QuoteIdentifier(i.Alias));
        }

        if (i.Columns is not null)
        {
            _sb.Append(' ');
            NameList(i.Columns);
        }

        if (i.Source is null)
        {
            _sb.Append(" DEFAULT VALUES");
        }
        else
        {
            _sb.Append(' ');
            Query(i.Source);
        }

        if (i.OnConflict is { } oc)
        {
            _sb.Append(" ON CONFLICT");
            if (oc.TargetColumns is not null)
            {
                _sb.Append(' ');
                NameList(oc.TargetColumns);
            }
            else if (oc.TargetConstraint is not null)
            {
                _sb.Append(" ON CONSTRAINT ").Append(SqlFormatter.QuoteIdentifier(oc.TargetConstraint));
            }

            if (oc.DoNothing)
            {
                _sb.Append(" DO NOTHING");
            }
            else
            {
                _sb.Append(" DO UPDATE SET ");
                SetClauses(oc.Updates);
                if (oc.UpdateWhere is not null)
                {
                    _sb.Append(" WHERE ");
                    Expr(oc.UpdateWhere);
                }
            }
        }

        Returning(i.Returning);
    }

    private void Update(UpdateStatement u)
    {
        With(u.With, u.Recursive);
        _sb.Append("UPDATE ");
        Name(u.Table);
        if (u.Alias is not null)
        {
            _sb.Append(" AS ").Append(SqlFormatter.QuoteIdentifier(u.Alias));
        }

        _sb.Append(" SET ");
        SetClauses(u.Set);
        if (u.From.Count > 0)
        {
            _sb.Append(" FROM ");
            FromList(u.From);
        }

        if (u.Where is not null)
        {
            _sb.Append(" WHERE ");
            Expr(u.Where);
        }

        Returning(u.Returning);
    }

    private void Delete(DeleteStatement d)
    {
        With(d.With, d.Recursive);
        _sb.Append("DELETE FROM ");
        Name(d.Table);
        if (d.Alias is not null)
        {
            _sb.Append(" AS ").Append(SqlFormatter.QuoteIdentifier(d.Alias));
        }

        if (d.Using.Count > 0)
        {
            _sb.Append(" USING ");
            FromList(d.Using);
        }

        if (d.Where is not null)
        {
            _sb.Append(" WHERE ");
            Expr(d.Where);
        }

        Returning(d.Returning);
    }

    private void Copy(CopyStatement c)
    {
        _sb.Append("COPY ");
        if (c.Query is not null)
        {
            _sb.Append('(');
            Query(c.Query);
            _sb.Append(')');
        }
        else if (c.Table is not null)
        {
            Name(c.Table);
            if (c.Columns is not null)
            {
                _sb.Append(' ');
                NameList(c.Columns);
            }
        }

        _sb.Append(c.From ? " FROM STDIN" : " TO STDOUT");
        if (c.Options.Count > 0)
        {
            _sb.Append(" WITH (");
            Options(c.Options, " ");
            _sb.Append(')');
        }
    }

    private void Options(IReadOnlyDictionary<string, string> options, string separator)
    {
        var first = true;
        foreach (var kv in options)
        {
            if (!first)
            {
                _sb.Append(", ");
            }

            first = false;
            Setting(kv.Key);
            _sb.Append(separator);
            WriteString(kv.Value);
        }
    }
}
