using System.Collections;
using Kdb.Sql.Execution;
using Kdb.Sql.Syntax;
using Kdb.Sql.Types;

namespace Kdb.Sql.Planning;

internal sealed partial class Binder
{
    /// <summary>
    /// Binds the CTEs of a WITH clause. Under WITH RECURSIVE a CTE that reads itself must be
    /// <c>non-recursive-term UNION [ALL] recursive-term</c>; its columns take the non-recursive term's types.
    /// </summary>
    private void BindWith(IReadOnlyList<CommonTableExpr> ctes, bool recursive, int position, Scope? outer)
    {
        foreach (var cte in ctes)
        {
            // A CTE that reads the enclosing query's row (inside a correlated subquery) is recomputed per row.
            if (recursive && RecursionCheck.RefersTo(cte.Query, cte.Name))
            {
                var binding = TrackOuterReferences(outer, () => BindRecursiveCte(cte, position, outer), out var correlated);
                ((ISharedRows)binding.Plan).PerOuterRow = correlated;
                _ctx.AddCte(binding, position);
                continue;
            }

            if (cte.Search is not null || cte.Cycle is not null)
            {
                throw SearchCycle.NotRecursive(position);
            }

            var bound = TrackOuterReferences(outer, () => BindQuery(cte.Query, outer), out var dependent);
            var columns = RenameColumns(bound.Columns, cte.ColumnNames, cte.Name, position);
            _ctx.AddCte(new CteBinding(cte.Name, new MaterializeOp(bound.Plan) { PerOuterRow = dependent }, columns), position);
        }
    }

    private CteBinding BindRecursiveCte(CommonTableExpr cte, int position, Scope? outer)
    {
        var union = RecursionCheck.Validate(cte, position);
        var query = cte.Query;
        _ctx.PushCtes();
        try
        {
            // A WITH inside the recursive CTE is bound first; RecursionCheck rejected self-references in it.
            BindWith(query.With, query.Recursive, position, outer);
            var left = BindBody(union.Left, outer);
            var types = new SqlType[left.Columns.Count];
            var leftExprs = new BoundExpr[types.Length];
            var leftCast = false;
            for (var i = 0; i < types.Length; i++)
            {
                var type = left.Columns[i].Type;
                types[i] = type.Id == SqlTypeId.Unknown ? SqlType.Text : type;
                leftExprs[i] = TypeResolver.Coerce(new ColumnExpr(i, type, left.Columns[i].Name), types[i], false, position);
                leftCast |= type.Id != types[i].Id;
            }

            var columns = RenameColumns(left.Columns.Select((c, i) => c with { Type = types[i] }).ToList(), cte.ColumnNames, cte.Name, position);
            SearchCycle? searchCycle = null;
            var rightBody = union.Right;
            if (cte.Search is not null || cte.Cycle is not null)
            {
                if (union.Left is SetOperationBody)
                {
                    throw new SqlException(SqlState.FeatureNotSupported, "with a SEARCH or CYCLE clause, the left side of the UNION must be a SELECT", union.Left.Position);
                }

                searchCycle = SearchCycle.Create(cte, columns, e => BindExpr(e, new ExprScope(new Scope([], null), "CYCLE")), position, out var nameClash);
                if (nameClash is not null)
                {
                    // As in PostgreSQL, the recursive term sees the added columns; a reference to a doubled name fails there first (42702).
                    _ctx.AddCte(new CteBinding(cte.Name, new MaterializeOp(left.Plan), [.. columns, .. searchCycle.Extra]) { WorkTable = new WorkTable() }, position);
                    BindOperand(union.Right, outer);
                    throw nameClash;
                }

                rightBody = searchCycle.CarryParentColumns(rightBody, cte.Name);
                columns = [.. columns, .. searchCycle.Extra];
            }

            var work = new WorkTable();
            _ctx.AddCte(new CteBinding(cte.Name, new MaterializeOp(left.Plan), columns) { WorkTable = work }, position);
            var right = BindOperand(rightBody, outer);
            if (right.Columns.Count != types.Length + (searchCycle?.Extra.Count ?? 0))
            {
                throw new SqlException(SqlState.SyntaxError, "each UNION query must have the same number of columns", union.Position);
            }

            var rightExprs = new BoundExpr[types.Length];
            var rightCast = false;
            for (var i = 0; i < types.Length; i++)
            {
                var rt = right.Columns[i].Type;
                var common = TypeResolver.CommonType(types[i], rt)
                    ?? throw new SqlException(SqlState.DatatypeMismatch, $"UNION types {types[i].DisplayName} and {rt.DisplayName} cannot be matched", union.Position);
                if (common.Id != types[i].Id && !(common.Id == SqlTypeId.Unknown && types[i].Id == SqlTypeId.Text))
                {
                    throw new SqlException(
                        SqlState.DatatypeMismatch,
                        $"recursive query \"{cte.Name}\" column {i + 1} has type {types[i].DisplayName} in non-recursive term but type {common.DisplayName} overall",
                        union.Left.Position,
                        hint: "Cast the output of the non-recursive term to the correct type.");
                }

                rightExprs[i] = TypeResolver.Coerce(new ColumnExpr(i, rt, right.Columns[i].Name), types[i], false, union.Position);
                rightCast |= rt.Id != types[i].Id;
            }

            var nonRecursive = leftCast ? new ProjectOp(left.Plan, leftExprs) : left.Plan;
            var recursive = rightCast ? new ProjectOp(right.Plan, rightExprs) : right.Plan;
            if (searchCycle is not null)
            {
                nonRecursive = new ProjectOp(left.Plan, searchCycle.Start(leftExprs));
                var (filter, extended) = searchCycle.Extend(rightExprs);
                recursive = new ProjectOp(filter is null ? right.Plan : new FilterOp(right.Plan, filter), extended);
            }

            var plan = new LazyCteOp(new RecursiveUnionOp(nonRecursive, recursive, work, !union.All));
            _ctx.PopCtes();
            return new CteBinding(cte.Name, plan, columns);
        }
        catch
        {
            _ctx.PopCtes();
            throw;
        }
    }
}

/// <summary>
/// PostgreSQL's well-formedness rules for a recursive CTE (checkWellFormedRecursion): one self-reference, in the
/// recursive term, not inside a subquery expression, an outer join's nullable side, INTERSECT ALL or EXCEPT;
/// no aggregate beside it; no ORDER BY, LIMIT, OFFSET or locking on the union. Violations are 42P19 / 0A000.
/// </summary>
internal static class RecursionCheck
{
    private const string InvalidRecursion = "42P19";

    private enum Place
    {
        Ok,
        NonRecursiveTerm,
        Subquery,
        OuterJoin,
        Intersect,
        Except,
    }

    /// <summary>True when <paramref name="node"/> names <paramref name="name"/> as a table anywhere.</summary>
    public static bool RefersTo(object? node, string name)
    {
        switch (node)
        {
            case null or string:
                return false;
            case NamedTableRef named:
                return named.Name.Schema is null && named.Name.Name == name;
            case IEnumerable items:
                foreach (var item in items)
                {
                    if (RefersTo(item, name))
                    {
                        return true;
                    }
                }

                return false;
        }

        var type = node.GetType();
        if (type.Namespace != typeof(Statement).Namespace || type.IsEnum || type.IsPrimitive)
        {
            return false;
        }

        foreach (var property in type.GetProperties())
        {
            if (!property.PropertyType.IsPrimitive && !property.PropertyType.IsEnum && property.PropertyType != typeof(string)
                && property.GetIndexParameters().Length == 0 && RefersTo(property.GetValue(node), name))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Checks the CTE's form; returns its top-level UNION.</summary>
    public static SetOperationBody Validate(CommonTableExpr cte, int position)
    {
        var query = cte.Query;
        if (query.Body is not SetOperationBody { Operator: SetOperator.Union } union)
        {
            throw new SqlException(InvalidRecursion, $"recursive query \"{cte.Name}\" does not have the form non-recursive-term UNION [ALL] recursive-term", position);
        }

        var walker = new Walker(cte.Name);
        walker.Visit(union.Left, Place.NonRecursiveTerm);
        walker.Visit(union.Right, Place.Ok);
        foreach (var inner in query.With)
        {
            walker.Visit(inner.Query, Place.Subquery);
        }

        var unsupported = query.OrderBy.Count > 0 ? "ORDER BY"
            : query.Offset is not null ? "OFFSET"
            : query.Limit is not null ? "LIMIT"
            : query.Locking is not null ? "FOR UPDATE/SHARE"
            : null;
        if (unsupported is not null)
        {
            throw new SqlException(SqlState.FeatureNotSupported, $"{unsupported} in a recursive query is not implemented", position);
        }

        return union;
    }

    private sealed class Walker(string name)
    {
        private int _references;

        public void Visit(object? node, Place place)
        {
            switch (node)
            {
                case null or string:
                    return;
                case NamedTableRef named:
                    if (named.Name.Schema is null && named.Name.Name == name)
                    {
                        Reference(named.Position, place);
                    }

                    return;
                case SetOperationBody setOp:
                    VisitSetOperation(setOp, place);
                    return;
                case SelectCore core:
                    VisitCore(core, place);
                    return;
                case JoinTableRef join:
                    Visit(join.Left, join.Kind is JoinKind.Right or JoinKind.Full ? OuterJoin(place) : place);
                    Visit(join.Right, join.Kind is JoinKind.Left or JoinKind.Full ? OuterJoin(place) : place);
                    Visit(join.On, place);
                    return;
                case Syntax.InSubqueryExpr inSubquery:
                    Visit(inSubquery.Operand, place);
                    Visit(inSubquery.Query, Place.Subquery);
                    return;
                case QuantifiedExpr quantified:
                    Visit(quantified.Operand, place);
                    Visit(quantified.Array, place);
                    Visit(quantified.Query, Place.Subquery);
                    return;
                case Syntax.ExistsExpr exists:
                    Visit(exists.Query, Place.Subquery);
                    return;
                case Syntax.ScalarSubqueryExpr scalar:
                    Visit(scalar.Query, Place.Subquery);
                    return;
                case Syntax.ArraySubqueryExpr array:
                    Visit(array.Query, Place.Subquery);
                    return;
                case IEnumerable items:
                    foreach (var item in items)
                    {
                        Visit(item, place);
                    }

                    return;
            }

            var type = node.GetType();
            if (type.Namespace != typeof(Statement).Namespace || type.IsEnum || type.IsPrimitive)
            {
                return;
            }

            foreach (var property in type.GetProperties())
            {
                if (!property.PropertyType.IsPrimitive && !property.PropertyType.IsEnum && property.PropertyType != typeof(string) && property.GetIndexParameters().Length == 0)
                {
                    Visit(property.GetValue(node), place);
                }
            }
        }

        // As in PostgreSQL, a subquery, INTERSECT ALL or EXCEPT replaces the restriction met further up; an outer join only marks an unrestricted place.
        private static Place OuterJoin(Place current) => current == Place.Ok ? Place.OuterJoin : current;

        private void VisitSetOperation(SetOperationBody setOp, Place place)
        {
            switch (setOp.Operator)
            {
                case SetOperator.Intersect:
                    var intersect = setOp.All ? Place.Intersect : place;
                    Visit(setOp.Left, intersect);
                    Visit(setOp.Right, intersect);
                    break;
                case SetOperator.Except:
                    Visit(setOp.Left, setOp.All ? Place.Except : place);
                    Visit(setOp.Right, Place.Except);
                    break;
                default:
                    Visit(setOp.Left, place);
                    Visit(setOp.Right, place);
                    break;
            }
        }

        private void VisitCore(SelectCore core, Place place)
        {
            var before = _references;
            foreach (var item in core.From)
            {
                Visit(item, place);
            }

            var direct = _references > before && core.From.Any(DirectlyNames);
            Visit(core.Where, place);
            Visit(core.Items, place);
            Visit(core.GroupBy, place);
            Visit(core.Having, place);
            Visit(core.Windows, place);
            if (direct && place == Place.Ok)
            {
                foreach (var expr in core.Items.Select(i => i.Expression).Append(core.Having))
                {
                    if (Binder.Walk(expr, e => e is FunctionCallExpr { Over: null } f && Functions.IsAggregate(f.SimpleName)))
                    {
                        throw new SqlException(InvalidRecursion, "aggregate functions are not allowed in a recursive query's recursive term", expr!.Position);
                    }
                }
            }
        }

        private bool DirectlyNames(TableRef item) => item switch
        {
            NamedTableRef named => named.Name.Schema is null && named.Name.Name == name,
            JoinTableRef join => DirectlyNames(join.Left) || DirectlyNames(join.Right),
            _ => false,
        };

        private void Reference(int position, Place place)
        {
            var where = place switch
            {
                Place.NonRecursiveTerm => "within its non-recursive term",
                Place.Subquery => "within a subquery",
                Place.OuterJoin => "within an outer join",
                Place.Intersect => "within INTERSECT",
                Place.Except => "within EXCEPT",
                _ => null,
            };
            if (where is not null)
            {
                throw new SqlException(InvalidRecursion, $"recursive reference to query \"{name}\" must not appear {where}", position);
            }

            if (++_references > 1)
            {
                throw new SqlException(InvalidRecursion, $"recursive reference to query \"{name}\" must not appear more than once", position);
            }
        }
    }
}
