using Kdb.Sql.Execution;
using Kdb.Sql.Syntax;
using Kdb.Sql.Types;

namespace Kdb.Sql.Planning;

internal sealed partial class Binder
{
    private BoundExpr BindCall(FunctionCallExpr call, ExprScope es)
    {
        var name = call.SimpleName;
        if (call.Name.Count > 1 && call.Name[0] is not ("pg_catalog" or "public" or "information_schema"))
        {
            throw new SqlException(SqlState.InvalidSchemaName, $"schema \"{call.Name[0]}\" does not exist", call.Position);
        }

        if (call.Over is not null)
        {
            return BindWindowCall(call, es);
        }

        if (Array.IndexOf(Functions.WindowOnlyNames, name) >= 0)
        {
            throw new SqlException(SqlState.WindowingError, $"window function {name} requires an OVER clause", call.Position);
        }

        if (SetReturning.IsSetReturning(name))
        {
            return BindSetReturningCall(call, es);
        }

        if (Functions.IsAggregate(name))
        {
            if (es.Agg is null || es.InsideAggregate)
            {
                throw new SqlException(
                    SqlState.GroupingError,
                    es.InsideAggregate ? "aggregate function calls cannot be nested" : $"aggregate functions are not allowed in {es.Clause}",
                    call.Position);
            }

            var spec = BindAggregate(call, es with { Scope = es.Agg.InputScope, InsideAggregate = true });
            var index = es.Agg.Aggregates.FindIndex(a => a.Key == spec.Key);
            if (index < 0)
            {
                index = es.Agg.Aggregates.Count;
                es.Agg.Aggregates.Add(spec);
            }

            return new ColumnExpr(es.Agg.GroupKeys.Count + index, spec.ResultType, name);
        }

        if (call.Distinct || call.Star || call.Filter is not null || call.OrderWithin is not null)
        {
            throw new SqlException(SqlState.WrongObjectType, $"{name} is not an aggregate function", call.Position);
        }

        if (name == "coalesce")
        {
            var args = BindArgs(call, es.Srf is null ? es : es with { Srf = null, SrfBlockedBy = "COALESCE" });
            if (args.Length == 0)
            {
                throw Functions.NoSuchFunction(name, args, call.Position);
            }

            var type = SqlType.Unknown;
            foreach (var arg in args)
            {
                type = TypeResolver.CommonType(type, arg.Type) ?? throw new SqlException(SqlState.DatatypeMismatch, $"COALESCE types {type.DisplayName} and {arg.Type.DisplayName} cannot be matched", call.Position);
            }

            if (type.Id == SqlTypeId.Unknown)
            {
                type = SqlType.Text;
            }

            return new CoalesceExpr(Array.ConvertAll(args, a => TypeResolver.Coerce(a, type, false, call.Position)), type);
        }

        var bound = BindArgs(call, es);
        if (name is "nextval" or "setval")
        {
            _ctx.UsesSequences = true;
        }

        return Functions.Bind(name, bound, call.Position, _ctx.ResolveSequence);
    }

    /// <summary>
    /// A set-returning function in the select list becomes a column of a ProjectSet step; its arguments may hold
    /// further set-returning functions, which run in a ProjectSet below it, as in PostgreSQL.
    /// </summary>
    private BoundExpr BindSetReturningCall(FunctionCallExpr call, ExprScope es)
    {
        const string Hint = "You might be able to move the set-returning function into a LATERAL FROM item.";
        if (es.InsideAggregate || es.SrfBlockedBy == "window function calls")
        {
            var what = es.InsideAggregate ? "aggregate function calls" : "window function calls";
            throw new SqlException(SqlState.FeatureNotSupported, $"{what} cannot contain set-returning function calls", call.Position, hint: Hint);
        }

        if (es.Srf is null)
        {
            throw new SqlException(SqlState.FeatureNotSupported, $"set-returning functions are not allowed in {es.SrfBlockedBy ?? es.Clause}", call.Position, hint: es.SrfBlockedBy is null ? null : Hint);
        }

        if (call.Distinct || call.Star || call.Filter is not null || call.OrderWithin is not null)
        {
            throw new SqlException(SqlState.WrongObjectType, $"{call.SimpleName} is not an aggregate function", call.Position);
        }

        var text = SqlFormatter.Format(call);
        if (es.Window?.KeySrf is { } keySrf && keySrf.TryFind(text, out var key))
        {
            // The same function in a window's keys already expanded the rows below the window (PostgreSQL computes it once).
            return new SrfRefExpr(keySrf, key.Level, key.Index, key.Type, call.SimpleName);
        }

        var (level, index) = es.Srf.Add(text, () => SetReturning.Bind(call.SimpleName, BindArgs(call, es), call.Position));
        es.Srf.TryFind(text, out var bound);
        var type = bound.Type;
        return new SrfRefExpr(es.Srf, level, index, type, call.SimpleName);
    }

    private BoundExpr[] BindArgs(FunctionCallExpr call, ExprScope es)
    {
        var args = new BoundExpr[call.Arguments.Count];
        for (var i = 0; i < args.Length; i++)
        {
            args[i] = BindExpr(call.Arguments[i], es);
        }

        return args;
    }

    private AggregateSpec BindAggregate(FunctionCallExpr call, ExprScope inner)
    {
        var name = call.SimpleName;
        var key = SqlFormatter.Format(call);
        var filter = call.Filter is null ? null : CoerceBool(BindExpr(call.Filter, inner), call.Position, "FILTER");
        var order = BindOrderWithin(call, inner);
        if (call.Star)
        {
            if (name != "count")
            {
                throw new SqlException(SqlState.SyntaxError, $"{name}(*) is not allowed", call.Position);
            }

            return new AggregateSpec { Kind = AggKind.CountStar, Arguments = [], ResultType = SqlType.Int8, Filter = filter, Key = key };
        }

        var args = BindArgs(call, inner);
        switch (name)
        {
            case "count":
                Expect(1);
                return new AggregateSpec { Kind = AggKind.Count, Arguments = args, ResultType = SqlType.Int8, Distinct = call.Distinct, Filter = filter, Key = key };
            case "sum" or "avg":
                {
                    Expect(1);
                    var arg = args[0].Type.Id == SqlTypeId.Unknown ? TypeResolver.Coerce(args[0], SqlType.Numeric, false, call.Position) : args[0];
                    var t = arg.Type.Id;
                    SqlType result;
                    if (t == SqlTypeId.Interval)
                    {
                        result = SqlType.Interval;
                    }
                    else if (!arg.Type.IsNumeric)
                    {
                        throw Functions.NoSuchFunction(name, args, call.Position);
                    }
                    else if (name == "sum")
                    {
                        result = t switch
                        {
                            SqlTypeId.Int2 or SqlTypeId.Int4 => SqlType.Int8,
                            SqlTypeId.Int8 or SqlTypeId.Numeric => SqlType.Numeric,
                            SqlTypeId.Float4 => SqlType.Float4,
                            _ => SqlType.Float8,
                        };
                    }
                    else
                    {
                        result = t is SqlTypeId.Float4 or SqlTypeId.Float8 ? SqlType.Float8 : SqlType.Numeric;
                    }

                    return new AggregateSpec { Kind = name == "sum" ? AggKind.Sum : AggKind.Avg, Arguments = [arg], ResultType = result, Distinct = call.Distinct, Filter = filter, Key = key };
                }

            case "min" or "max":
                {
                    Expect(1);
                    var arg = args[0].Type.Id == SqlTypeId.Unknown ? TypeResolver.Coerce(args[0], SqlType.Text, false, call.Position) : args[0];
                    if (arg.Type.Id is SqlTypeId.Bool or SqlTypeId.Jsonb or SqlTypeId.Json || arg.Type.ElementType is not null && arg.Type.Id != SqlTypeId.TextArray)
                    {
                        throw Functions.NoSuchFunction(name, args, call.Position);
                    }

                    return new AggregateSpec { Kind = name == "min" ? AggKind.Min : AggKind.Max, Arguments = [arg], ResultType = arg.Type, Distinct = call.Distinct, Filter = filter, Key = key };
                }

            case "string_agg":
                {
                    Expect(2);
                    var value = args[0].Type.IsString || args[0].Type.Id == SqlTypeId.Unknown ? TypeResolver.Coerce(args[0], SqlType.Text, false, call.Position) : throw Functions.NoSuchFunction(name, args, call.Position);
                    var delimiter = TypeResolver.Coerce(args[1], SqlType.Text, false, call.Position);
                    return new AggregateSpec { Kind = AggKind.StringAgg, Arguments = [value, delimiter], ResultType = SqlType.Text, Distinct = call.Distinct, Filter = filter, Key = key, OrderWithin = order };
                }

            case "bool_and" or "bool_or" or "every":
                Expect(1);
                return new AggregateSpec { Kind = name == "bool_or" ? AggKind.BoolOr : AggKind.BoolAnd, Arguments = [CoerceBool(args[0], call.Position, name)], ResultType = SqlType.Bool, Distinct = call.Distinct, Filter = filter, Key = key };
            default:
                {
                    Expect(1);
                    var arg = args[0].Type.Id == SqlTypeId.Unknown ? TypeResolver.Coerce(args[0], SqlType.Text, false, call.Position) : args[0];
                    var arrayType = arg.Type.ArrayType ?? throw new SqlException(SqlState.FeatureNotSupported, $"array_agg of {arg.Type.DisplayName} is not supported", call.Position);
                    return new AggregateSpec { Kind = AggKind.ArrayAgg, Arguments = [arg], ResultType = arrayType, Distinct = call.Distinct, Filter = filter, Key = key, OrderWithin = order };
                }
        }

        void Expect(int n)
        {
            if (args.Length != n)
            {
                throw Functions.NoSuchFunction(name, args, call.Position);
            }
        }
    }

    private (BoundExpr, bool, bool)[] BindOrderWithin(FunctionCallExpr call, ExprScope inner)
    {
        if (call.OrderWithin is null)
        {
            return [];
        }

        var keys = new (BoundExpr, bool, bool)[call.OrderWithin.Count];
        for (var i = 0; i < keys.Length; i++)
        {
            var item = call.OrderWithin[i];
            keys[i] = (BindExpr(item.Expression, inner), item.Descending, item.NullsFirst ?? item.Descending);
        }

        return keys;
    }

    private BoundExpr BindWindowCall(FunctionCallExpr call, ExprScope es)
    {
        if (es.InsideAggregate)
        {
            throw new SqlException(SqlState.GroupingError, "aggregate function calls cannot contain window function calls", call.Position);
        }

        if (es.Window is null)
        {
            throw new SqlException(SqlState.WindowingError, $"window functions are not allowed in {es.Clause}", call.Position);
        }

        var spec = call.Over!;
        if (spec.Name is not null && es.Window.Named.TryGetValue(spec.Name, out var named))
        {
            spec = new WindowSpec(null, spec.PartitionBy.Count > 0 ? spec.PartitionBy : named.PartitionBy, spec.OrderBy.Count > 0 ? spec.OrderBy : named.OrderBy, spec.Frame ?? named.Frame);
        }
        else if (spec.Name is not null)
        {
            throw new SqlException(SqlState.UndefinedObject, $"window \"{spec.Name}\" does not exist", call.Position);
        }

        // Window arguments and keys see the row after grouping (an aggregate inside is computed by the grouping step).
        var inner = es with { Window = null, Srf = null, SrfBlockedBy = "window function calls" };
        var keys = es.Window.KeySrf is { } keySrf ? es with { Window = null, Srf = keySrf, SrfBlockedBy = null, Clause = "window definitions" } : inner;
        var partition = spec.PartitionBy.Select(e => BindExpr(e, keys)).ToArray();
        var order = spec.OrderBy.Select(o => (BindExpr(o.Expression, keys), o.Descending, o.NullsFirst ?? o.Descending)).ToArray();
        var frame = FrameMode.RangeToCurrent;
        if (spec.Frame is { } f)
        {
            if (f.End.Kind == FrameBoundKind.UnboundedFollowing && f.Start.Kind == FrameBoundKind.UnboundedPreceding)
            {
                frame = FrameMode.WholePartition;
            }
            else if (f.Start.Kind == FrameBoundKind.UnboundedPreceding && f.End.Kind == FrameBoundKind.CurrentRow)
            {
                frame = f.Units.Equals("rows", StringComparison.OrdinalIgnoreCase) ? FrameMode.RowsToCurrent : FrameMode.RangeToCurrent;
            }
            else
            {
                throw new SqlException(SqlState.FeatureNotSupported, "only frames from UNBOUNDED PRECEDING to CURRENT ROW or UNBOUNDED FOLLOWING are supported", call.Position);
            }
        }

        var name = call.SimpleName;
        WindowFunc function;
        var key = SqlFormatter.Format(call);
        if (Functions.IsAggregate(name))
        {
            // The arguments are read per row of the window's input: in a grouped query a plain aggregate among them
            // (sum(count(*)) OVER ...) is the grouping step's, as in PostgreSQL; only nesting inside that one is an error.
            var aggregate = BindAggregate(call with { Over = null }, inner);
            function = new WindowFunc { Kind = WindowKind.Aggregate, Aggregate = aggregate, PartitionBy = partition, OrderBy = order, Frame = frame, ResultType = aggregate.ResultType, Key = key };
        }
        else
        {
            var args = BindArgs(call, inner);
            var kind = name switch
            {
                "row_number" => WindowKind.RowNumber,
                "rank" => WindowKind.Rank,
                "dense_rank" => WindowKind.DenseRank,
                "percent_rank" => WindowKind.PercentRank,
                "cume_dist" => WindowKind.CumeDist,
                "ntile" => WindowKind.Ntile,
                "lag" => WindowKind.Lag,
                "lead" => WindowKind.Lead,
                "first_value" => WindowKind.FirstValue,
                "last_value" => WindowKind.LastValue,
                _ => throw new SqlException(SqlState.WrongObjectType, $"OVER specified, but {name} is not a window function nor an aggregate function", call.Position),
            };
            var resultType = kind switch
            {
                WindowKind.RowNumber or WindowKind.Rank or WindowKind.DenseRank => SqlType.Int8,
                WindowKind.PercentRank or WindowKind.CumeDist => SqlType.Float8,
                WindowKind.Ntile => SqlType.Int4,
                _ => args.Length > 0 ? args[0].Type : throw Functions.NoSuchFunction(name, args, call.Position),
            };
            if (kind is WindowKind.Lag or WindowKind.Lead && args.Length > 1)
            {
                args[1] = TypeResolver.Coerce(args[1], SqlType.Int4, false, call.Position);
                if (args.Length > 2)
                {
                    args[2] = TypeResolver.Coerce(args[2], resultType, false, call.Position);
                }
            }

            if (kind == WindowKind.Ntile)
            {
                args[0] = TypeResolver.Coerce(args[0], SqlType.Int4, false, call.Position);
            }

            function = new WindowFunc { Kind = kind, Arguments = args, PartitionBy = partition, OrderBy = order, Frame = frame, ResultType = resultType, Key = key };
        }

        var index = es.Window.Functions.FindIndex(w => w.Key == key);
        if (index < 0)
        {
            index = es.Window.Functions.Count;
            es.Window.Functions.Add(function);
        }

        return new WindowRefExpr(es.Window, index, function.ResultType, name);
    }
}
