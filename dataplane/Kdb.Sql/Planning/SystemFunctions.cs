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
                return new FuncExpr(name, args, SqlType.Text, (a, ctx) => Value.FromText(SystemCatalog.ViewDefinition(ctx.Catalog, ctx.Session, a[0])), strict: true, volatileFunction: false);
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
                {
                    var which = name;
                    return new FuncExpr(name, args, SqlType.Int8, (a, ctx) => Value.FromInt(RelationBytes(which, a, ctx)), strict: false, volatileFunction: true);
                }
            case "pg_advisory_unlock_all":
                // kdb has no advisory locks, so there is never one to release (drivers call this on pool reset).
                return new FuncExpr(name, args, new SqlType(SqlTypeId.Void), (_, _) => Value.Null, strict: false, volatileFunction: true);
            default:
                throw Functions.NoSuchFunction(name, args, position);
        }
    }

    /// <summary>
    /// Logical size in bytes (keys plus values as stored) of a table's rows, its indexes, or the whole
    /// database: the engine compresses nothing and shares files among tenants, so this is what a tenant holds.
    /// </summary>
    private static long RelationBytes(string function, Value[] args, ExecContext ctx)
    {
        var tenant = ctx.Transaction.Tenant;
        if (function == "pg_database_size")
        {
            return RangeBytes(Codec.KeyEncoder.Prefix(tenant, 0, 0).AsSpan(0, 8).ToArray(), ctx);
        }

        if (args.Length == 0 || args[0].IsNull)
        {
            return 0;
        }

        var oid = args[0].Kind == ValueKind.Int ? (uint)args[0].AsInt : SystemCatalog.ResolveRelation(ctx.Catalog, ctx.Session, args[0].AsText) ?? 0;
        var table = ctx.Catalog.Tables.Find(t => t.Id == oid);
        if (table is null)
        {
            // An index by its own oid: its entries.
            foreach (var owner in ctx.Catalog.Tables)
            {
                var index = owner.Indexes.Find(i => i.Oid == oid);
                if (index is not null)
                {
                    return RangeBytes(Codec.KeyEncoder.Prefix(tenant, owner.Id, index.Id), ctx);
                }
            }

            return 0;
        }

        var rows = RangeBytes(Codec.KeyEncoder.Prefix(tenant, table.Id, 0), ctx);
        var all = RangeBytes(Codec.KeyEncoder.Prefix(tenant, table.Id, 0).AsSpan(0, 12).ToArray(), ctx);
        return function switch
        {
            "pg_total_relation_size" => all,
            "pg_indexes_size" => all - rows,
            _ => rows,
        };
    }

    private static long RangeBytes(byte[] prefix, ExecContext ctx)
    {
        long bytes = 0;
        var end = Codec.KeyEncoder.PrefixEnd(prefix);
        foreach (var entry in ctx.Transaction.Snapshot.Scan(prefix, end))
        {
            ctx.CheckCancellation();
            bytes += entry.Key.Length + entry.Value.Length;
        }

        return bytes;
    }
}
