using Kdb.Sql.Catalog;
using Kdb.Sql.Execution;
using Kdb.Sql.Types;

namespace Kdb.Sql.Planning;

/// <summary>Functions that read the catalog (psql's \d queries and drivers use them).</summary>
internal static class SystemFunctions
{
    public static BoundExpr Bind(string name, BoundExpr[] args, int position)
    {
        switch (name)
        {
            case "pg_get_expr":
                return new FuncExpr(name, args, SqlType.Text, (a, _) => a[0], strict: true, volatileFunction: false);
            case "pg_get_indexdef":
                return new FuncExpr(name, args, SqlType.Text, (a, ctx) => Value.FromText(SystemCatalog.IndexDefinition(ctx.Catalog, (uint)a[0].AsInt)), strict: true, volatileFunction: false);
            case "pg_get_constraintdef":
                return new FuncExpr(name, args, SqlType.Text, (a, ctx) => Value.FromText(SystemCatalog.ConstraintDefinition(ctx.Catalog, (uint)a[0].AsInt)), strict: true, volatileFunction: false);
            case "pg_get_viewdef":
                return new FuncExpr(name, args, SqlType.Text, (a, ctx) => Value.FromText(SystemCatalog.ViewDefinition(ctx.Catalog, a[0])), strict: true, volatileFunction: false);
            case "array_upper" or "array_lower" when args.Length == 2 && args[0].Type.Kind == ValueKind.Array:
                // psql's \d publication query reads int2vector bounds; kdb arrays are one-dimensional with lower bound 1.
                var upper = name == "array_upper";
                return new FuncExpr(name, args, SqlType.Int4, (a, _) =>
                    a[1].AsInt != 1 || a[0].AsArray.Length == 0 ? Value.Null : Value.FromInt(upper ? a[0].AsArray.Length : 1), strict: true, volatileFunction: false);
            case "pg_get_statisticsobjdef_columns":
                // kdb has no extended statistics objects, so no oid names one.
                return new FuncExpr(name, args, SqlType.Text, (_, _) => Value.Null, strict: true, volatileFunction: false);
            case "pg_relation_is_publishable":
                // kdb has no logical replication publications.
                return new FuncExpr(name, args, SqlType.Bool, (_, _) => Value.False, strict: true, volatileFunction: false);
            case "pg_relation_size" or "pg_total_relation_size" or "pg_table_size" or "pg_indexes_size" or "pg_database_size":
                return new FuncExpr(name, args, SqlType.Int8, (_, _) => Value.FromInt(0), strict: false, volatileFunction: false);
            case "pg_advisory_unlock_all":
                // kdb has no advisory locks, so there is never one to release (drivers call this on pool reset).
                return new FuncExpr(name, args, new SqlType(SqlTypeId.Void), (_, _) => Value.Null, strict: false, volatileFunction: true);
            default:
                throw Functions.NoSuchFunction(name, args, position);
        }
    }
}
