using System.Text;
using Kdb.Sql.Syntax.Lexing;
using Kdb.Sql.Syntax.Parsing;

namespace Kdb.Sql.Syntax.Formatting;

/// <summary>
/// Writes trees as SQL text. Parentheses come from the same precedence levels the parser uses
/// (<see cref="Precedence"/>), so the output re-parses to the same tree.
/// </summary>
internal sealed partial class SqlWriter
{
    // Canonical multi-word type names the parser produces; they are written unquoted.
    private static readonly HashSet<string> MultiWordTypes = new(StringComparer.Ordinal)
    {
        "double precision", "character varying", "bit varying", "timestamp with time zone",
        "timestamp without time zone", "time with time zone", "time without time zone",
    };

    private readonly StringBuilder _sb = new();

    public override string ToString() => _sb.ToString();

    public void Expr(Expr e) => Write(e, Precedence.Lowest);

    private void Write(Expr e, int minPrec)
    {
        if (PrecedenceOf(e) < minPrec)
        {
            _sb.Append('(');
            WriteCore(e);
            _sb.Append(')');
        }
        else
        {
            WriteCore(e);
        }
    }

    private static int PrecedenceOf(Expr e) => e switch
    {
        BinaryExpr b => OperatorPrecedence(b.Op),
        UnaryExpr u => u.Op switch
        {
            UnaryOp.Not => Precedence.Not,
            UnaryOp.BitNot => Precedence.Other,
            _ => Precedence.Unary,
        },
        IsNullExpr or IsBoolExpr or IsDistinctFromExpr => Precedence.Is,
        QuantifiedExpr q => OperatorPrecedence(q.Op),
        BetweenExpr or InListExpr or InSubqueryExpr => Precedence.Predicate,
        ExistsExpr { Negated: true } => Precedence.Not,
        CollateExpr => Precedence.Collate,
        CastExpr or SubscriptExpr => Precedence.Postfix,
        LiteralExpr { Kind: LiteralKind.Integer or LiteralKind.Decimal } l when l.Text.StartsWith('-') => Precedence.Unary,
        _ => Precedence.Primary,
    };

    private static int OperatorPrecedence(BinaryOp op) => op switch
    {
        BinaryOp.Or => Precedence.Or,
        BinaryOp.And => Precedence.And,
        BinaryOp.Equal or BinaryOp.NotEqual or BinaryOp.Less or BinaryOp.LessOrEqual or BinaryOp.Greater or BinaryOp.GreaterOrEqual => Precedence.Comparison,
        BinaryOp.Like or BinaryOp.NotLike or BinaryOp.ILike or BinaryOp.NotILike => Precedence.Predicate,
        BinaryOp.Add or BinaryOp.Subtract => Precedence.AdditiveLevel,
        BinaryOp.Multiply or BinaryOp.Divide or BinaryOp.Modulo => Precedence.Multiplicative,
        BinaryOp.Power => Precedence.Power,
        _ => Precedence.Other,
    };

    private static bool IsNonAssociative(int prec) => prec is Precedence.Is or Precedence.Comparison or Precedence.Predicate;

    private static string OperatorText(BinaryOp op) => op switch
    {
        BinaryOp.Add => "+",
        BinaryOp.Subtract => "-",
        BinaryOp.Multiply => "*",
        BinaryOp.Divide => "/",
        BinaryOp.Modulo => "%",
        BinaryOp.Power => "^",
        BinaryOp.Concat => "||",
        BinaryOp.Equal => "=",
        BinaryOp.NotEqual => "<>",
        BinaryOp.Less => "<",
        BinaryOp.LessOrEqual => "<=",
        BinaryOp.Greater => ">",
        BinaryOp.GreaterOrEqual => ">=",
        BinaryOp.And => "AND",
        BinaryOp.Or => "OR",
        BinaryOp.Like => "LIKE",
        BinaryOp.NotLike => "NOT LIKE",
        BinaryOp.ILike => "ILIKE",
        BinaryOp.NotILike => "NOT ILIKE",
        BinaryOp.JsonGet => "->",
        BinaryOp.JsonGetText => "->>",
        BinaryOp.RegexMatch => "~",
        BinaryOp.NotRegexMatch => "!~",
        BinaryOp.RegexMatchInsensitive => "~*",
        BinaryOp.NotRegexMatchInsensitive => "!~*",
        BinaryOp.BitAnd => "&",
        BinaryOp.BitOr => "|",
        BinaryOp.ShiftLeft => "<<",
        BinaryOp.ShiftRight => ">>",
        BinaryOp.JsonContains => "@>",
        BinaryOp.JsonHasKey => "?",
        _ => throw new ArgumentOutOfRangeException(nameof(op), op, "unknown operator"),
    };

    private void WriteCore(Expr e)
    {
        switch (e)
        {
            case LiteralExpr l:
                WriteLiteral(l);
                break;
            case ParameterExpr p:
                _sb.Append('$').Append(p.Number);
                break;
            case ColumnRefExpr c:
                WriteNameParts(c.Parts);
                break;
            case StarExpr s:
                if (s.Qualifier is not null)
                {
                    _sb.Append(SqlFormatter.QuoteIdentifier(s.Qualifier)).Append('.');
                }

                _sb.Append('*');
                break;
            case UnaryExpr u:
                WriteUnary(u);
                break;
            case BinaryExpr b:
                WriteBinary(b);
                break;
            case IsNullExpr n:
                Write(n.Operand, Precedence.Is + 1);
                _sb.Append(n.Negated ? " IS NOT NULL" : " IS NULL");
                break;
            case IsBoolExpr ib:
                Write(ib.Operand, Precedence.Is + 1);
                _sb.Append(ib.Negated ? " IS NOT " : " IS ").Append(ib.Value switch { true => "TRUE", false => "FALSE", null => "UNKNOWN" });
                break;
            case IsDistinctFromExpr d:
                Write(d.Left, Precedence.Is + 1);
                _sb.Append(d.Negated ? " IS NOT DISTINCT FROM " : " IS DISTINCT FROM ");
                Write(d.Right, Precedence.Is + 1);
                break;
            case BetweenExpr bt:
                Write(bt.Operand, Precedence.Predicate + 1);
                _sb.Append(bt.Negated ? " NOT BETWEEN " : " BETWEEN ");
                if (bt.Symmetric)
                {
                    _sb.Append("SYMMETRIC ");
                }

                WriteBExpr(bt.Low, Precedence.Predicate + 1);
                _sb.Append(" AND ");
                WriteBExpr(bt.High, Precedence.Predicate + 1);
                break;
            case InListExpr il:
                Write(il.Operand, Precedence.Predicate + 1);
                _sb.Append(il.Negated ? " NOT IN (" : " IN (");
                ExprList(il.Items);
                _sb.Append(')');
                break;
            case InSubqueryExpr iq:
                Write(iq.Operand, Precedence.Predicate + 1);
                _sb.Append(iq.Negated ? " NOT IN (" : " IN (");
                Query(iq.Query);
                _sb.Append(')');
                break;
            case QuantifiedExpr q:
                WriteQuantified(q);
                break;
            case ExistsExpr ex:
                _sb.Append(ex.Negated ? "NOT EXISTS (" : "EXISTS (");
                Query(ex.Query);
                _sb.Append(')');
                break;
            case ScalarSubqueryExpr sq:
                _sb.Append('(');
                Query(sq.Query);
                _sb.Append(')');
                break;
            case ArraySubqueryExpr aq:
                _sb.Append("ARRAY(");
                Query(aq.Query);
                _sb.Append(')');
                break;
            case CaseExpr ce:
                WriteCase(ce);
                break;
            case CastExpr cast:
                Write(cast.Operand, Precedence.Postfix);
                _sb.Append("::");
                Type(cast.Type);
                break;
            case CollateExpr co:
                Write(co.Operand, Precedence.Collate);
                _sb.Append(" COLLATE ");
                WriteDotted(co.Collation);
                break;
            case FunctionCallExpr f:
                WriteFunction(f);
                break;
            case ArrayExpr a:
                _sb.Append("ARRAY[");
                ExprList(a.Elements);
                _sb.Append(']');
                break;
            case RowExpr r:
                _sb.Append("ROW(");
                ExprList(r.Elements);
                _sb.Append(')');
                break;
            case SubscriptExpr s:
                // PostgreSQL subscripts only names, parameters and parenthesized expressions.
                if (s.Operand is ColumnRefExpr or ParameterExpr or SubscriptExpr)
                {
                    WriteCore(s.Operand);
                }
                else
                {
                    _sb.Append('(');
                    WriteCore(s.Operand);
                    _sb.Append(')');
                }

                _sb.Append('[');
                Expr(s.Index);
                _sb.Append(']');
                break;
            case DefaultExpr:
                _sb.Append("DEFAULT");
                break;
            default:
                throw new NotSupportedException($"cannot format {e.GetType().Name}");
        }
    }

    /// <summary>A b_expr position (BETWEEN bounds, DEFAULT): COLLATE is not allowed there unparenthesized.</summary>
    public void WriteBExpr(Expr e, int minPrec)
    {
        if (e is CollateExpr)
        {
            _sb.Append('(');
            WriteCore(e);
            _sb.Append(')');
        }
        else
        {
            Write(e, minPrec);
        }
    }

    private void WriteLiteral(LiteralExpr l)
    {
        switch (l.Kind)
        {
            case LiteralKind.Null:
                _sb.Append("NULL");
                break;
            case LiteralKind.Boolean:
                _sb.Append(l.Text == "true" ? "TRUE" : "FALSE");
                break;
            case LiteralKind.String:
                WriteString(l.Text);
                break;
            default:
                _sb.Append(l.Text);
                break;
        }
    }

    public void WriteString(string s)
    {
        _sb.Append('\'');
        foreach (var c in s)
        {
            if (c == '\'')
            {
                _sb.Append('\'');
            }

            _sb.Append(c);
        }

        _sb.Append('\'');
    }

    private void WriteUnary(UnaryExpr u)
    {
        switch (u.Op)
        {
            case UnaryOp.Not:
                _sb.Append("NOT ");
                Write(u.Operand, Precedence.Not + 1);
                return;
            case UnaryOp.BitNot:
                _sb.Append("~ ");
                Write(u.Operand, Precedence.AdditiveLevel);
                return;
        }

        _sb.Append(u.Op == UnaryOp.Negate ? '-' : '+');

        // "-(5)" stays a negation node (PostgreSQL folds only a bare "-5"); "-(-x)" never becomes a comment.
        if (u.Operand is UnaryExpr or LiteralExpr { Kind: LiteralKind.Integer or LiteralKind.Decimal })
        {
            _sb.Append('(');
            WriteCore(u.Operand);
            _sb.Append(')');
        }
        else
        {
            Write(u.Operand, Precedence.Postfix);
        }
    }

    private void WriteBinary(BinaryExpr b)
    {
        var prec = OperatorPrecedence(b.Op);
        Write(b.Left, IsNonAssociative(prec) ? prec + 1 : prec);
        _sb.Append(' ').Append(OperatorText(b.Op)).Append(' ');
        Write(b.Right, prec + 1);
        if (b.Escape is not null)
        {
            _sb.Append(" ESCAPE ");
            Write(b.Escape, Precedence.Predicate + 1);
        }
    }

    private void WriteQuantified(QuantifiedExpr q)
    {
        var prec = OperatorPrecedence(q.Op);
        Write(q.Operand, IsNonAssociative(prec) ? prec + 1 : prec);
        _sb.Append(' ').Append(OperatorText(q.Op)).Append(q.All ? " ALL (" : " ANY (");
        if (q.Query is not null)
        {
            Query(q.Query);
        }
        else if (q.Array is not null)
        {
            Expr(q.Array);
        }

        _sb.Append(')');
    }

    private void WriteCase(CaseExpr ce)
    {
        _sb.Append("CASE");
        if (ce.Operand is not null)
        {
            _sb.Append(' ');
            Expr(ce.Operand);
        }

        foreach (var w in ce.Whens)
        {
            _sb.Append(" WHEN ");
            Expr(w.Condition);
            _sb.Append(" THEN ");
            Expr(w.Result);
        }

        if (ce.Else is not null)
        {
            _sb.Append(" ELSE ");
            Expr(ce.Else);
        }

        _sb.Append(" END");
    }

    private void WriteFunction(FunctionCallExpr f)
    {
        if (f.NoParentheses && f.Name.Count == 1 && f.Arguments.Count == 0)
        {
            _sb.Append(f.Name[0]);
            return;
        }

        for (var i = 0; i < f.Name.Count - 1; i++)
        {
            _sb.Append(SqlFormatter.QuoteIdentifier(f.Name[i])).Append('.');
        }

        var last = f.Name[^1];
        if (f.Name.Count > 1)
        {
            _sb.Append(SqlFormatter.QuoteIdentifier(last));
        }
        else if (NeedsQuotingAsFunction(last))
        {
            QuoteAlways(last);
        }
        else
        {
            _sb.Append(last);
        }

        _sb.Append('(');
        if (f.Star)
        {
            _sb.Append('*');
        }
        else
        {
            if (f.Distinct)
            {
                _sb.Append("DISTINCT ");
            }

            ExprList(f.Arguments);
            if (f.OrderWithin is { Count: > 0 } && !f.WithinGroup)
            {
                _sb.Append(" ORDER BY ");
                OrderItems(f.OrderWithin);
            }
        }

        _sb.Append(')');
        if (f.OrderWithin is { Count: > 0 } && f.WithinGroup)
        {
            _sb.Append(" WITHIN GROUP (ORDER BY ");
            OrderItems(f.OrderWithin);
            _sb.Append(')');
        }

        if (f.Filter is not null)
        {
            _sb.Append(" FILTER (WHERE ");
            Expr(f.Filter);
            _sb.Append(')');
        }

        if (f.Over is not null)
        {
            _sb.Append(" OVER ");
            WindowSpec(f.Over);
        }
    }

    // Unqualified function names the parser would read as something else unless quoted.
    private static bool NeedsQuotingAsFunction(string name) =>
        !SqlFormatter.IsSafeIdentifier(name) || Keywords.IsReserved(name) ||
        (Keywords.IsColumnNameKeyword(name) && name is not ("coalesce" or "greatest" or "least" or "nullif" or "extract" or "substring" or "position")) ||
        name is "double";

    private void QuoteAlways(string name)
    {
        _sb.Append('"');
        foreach (var c in name)
        {
            if (c == '"')
            {
                _sb.Append('"');
            }

            _sb.Append(c);
        }

        _sb.Append('"');
    }

    public void WindowSpec(WindowSpec w)
    {
        if (w.Name is not null && w.PartitionBy.Count == 0 && w.OrderBy.Count == 0 && w.Frame is null)
        {
            _sb.Append(SqlFormatter.QuoteIdentifier(w.Name));
            return;
        }

        _sb.Append('(');
        var sep = string.Empty;
        if (w.Name is not null)
        {
            _sb.Append(SqlFormatter.QuoteIdentifier(w.Name));
            sep = " ";
        }

        if (w.PartitionBy.Count > 0)
        {
            _sb.Append(sep).Append("PARTITION BY ");
            ExprList(w.PartitionBy);
            sep = " ";
        }

        if (w.OrderBy.Count > 0)
        {
            _sb.Append(sep).Append("ORDER BY ");
            OrderItems(w.OrderBy);
            sep = " ";
        }

        if (w.Frame is not null)
        {
            _sb.Append(sep).Append(w.Frame.Units.ToUpperInvariant()).Append(" BETWEEN ");
            FrameBound(w.Frame.Start);
            _sb.Append(" AND ");
            FrameBound(w.Frame.End);
        }

        _sb.Append(')');
    }

    private void FrameBound(FrameBound b)
    {
        switch (b.Kind)
        {
            case FrameBoundKind.UnboundedPreceding:
                _sb.Append("UNBOUNDED PRECEDING");
                break;
            case FrameBoundKind.UnboundedFollowing:
                _sb.Append("UNBOUNDED FOLLOWING");
                break;
            case FrameBoundKind.CurrentRow:
                _sb.Append("CURRENT ROW");
                break;
            default:
                Write(b.Offset ?? new LiteralExpr(0, LiteralKind.Integer, "0"), Precedence.Predicate + 1);
                _sb.Append(b.Kind == FrameBoundKind.Preceding ? " PRECEDING" : " FOLLOWING");
                break;
        }
    }

    public void OrderItems(IReadOnlyList<OrderItem> items)
    {
        for (var i = 0; i < items.Count; i++)
        {
            if (i > 0)
            {
                _sb.Append(", ");
            }

            var item = items[i];
            Expr(item.Expression);
            if (item.Descending)
            {
                _sb.Append(" DESC");
            }

            if (item.NullsFirst is bool first)
            {
                _sb.Append(first ? " NULLS FIRST" : " NULLS LAST");
            }
        }
    }

    public void ExprList(IReadOnlyList<Expr> list)
    {
        for (var i = 0; i < list.Count; i++)
        {
            if (i > 0)
            {
                _sb.Append(", ");
            }

            Expr(list[i]);
        }
    }

    private void WriteNameParts(IReadOnlyList<string> parts)
    {
        for (var i = 0; i < parts.Count; i++)
        {
            if (i > 0)
            {
                _sb.Append('.');
            }

            _sb.Append(SqlFormatter.QuoteIdentifier(parts[i]));
        }
    }

    private void WriteDotted(string name)
    {
        var dot = name.IndexOf('.', StringComparison.Ordinal);
        if (dot <= 0 || dot == name.Length - 1)
        {
            _sb.Append(SqlFormatter.QuoteIdentifier(name));
            return;
        }

        _sb.Append(SqlFormatter.QuoteIdentifier(name[..dot])).Append('.').Append(SqlFormatter.QuoteIdentifier(name[(dot + 1)..]));
    }

    public void Type(TypeName t)
    {
        var name = t.Name;
        var space = name.IndexOf(' ', StringComparison.Ordinal);
        if (MultiWordTypes.Contains(name) && name.StartsWith("time", StringComparison.Ordinal) && space > 0)
        {
            // timestamp(3) with time zone: the precision sits after the first word.
            _sb.Append(name, 0, space);
            Modifiers(t.Modifiers);
            _sb.Append(name, space, name.Length - space);
        }
        else
        {
            if (MultiWordTypes.Contains(name))
            {
                _sb.Append(name);
            }
            else if (SqlFormatter.IsSafeIdentifier(name) && !Keywords.IsReserved(name) && name is not ("double" or "national" or "nchar" or "char"))
            {
                _sb.Append(name);
            }
            else if (name.Contains('.', StringComparison.Ordinal))
            {
                WriteDotted(name);
            }
            else
            {
                QuoteAlways(name);
            }

            Modifiers(t.Modifiers);
        }

        for (var i = 0; i < t.ArrayDimensions; i++)
        {
            _sb.Append("[]");
        }
    }

    private void Modifiers(IReadOnlyList<int> modifiers)
    {
        if (modifiers.Count == 0)
        {
            return;
        }

        _sb.Append('(');
        for (var i = 0; i < modifiers.Count; i++)
        {
            if (i > 0)
            {
                _sb.Append(", ");
            }

            _sb.Append(modifiers[i]);
        }

        _sb.Append(')');
    }
}
