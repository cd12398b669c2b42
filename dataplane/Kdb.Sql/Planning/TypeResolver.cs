using Kdb.Sql.Execution;
using Kdb.Sql.Syntax;
using Kdb.Sql.Types;

namespace Kdb.Sql.Planning;

/// <summary>Type names to types, common types of operands, and implicit coercions.</summary>
internal static class TypeResolver
{
    public static SqlType FromTypeName(TypeName name)
    {
        var mods = name.Modifiers;
        SqlType type = name.Name switch
        {
            "bool" or "boolean" => SqlType.Bool,
            "int2" or "smallint" or "smallserial" or "serial2" => SqlType.Int2,
            "int4" or "int" or "integer" or "serial" or "serial4" => SqlType.Int4,
            "int8" or "bigint" or "bigserial" or "serial8" => SqlType.Int8,
            "float4" or "real" => SqlType.Float4,
            "float8" or "double precision" => SqlType.Float8,
            "float" => mods.Count > 0 && mods[0] <= 24 ? SqlType.Float4 : SqlType.Float8,
            "numeric" or "decimal" => mods.Count switch
            {
                0 => SqlType.Numeric,
                1 => new SqlType(SqlTypeId.Numeric, CheckNumeric(mods[0], 0, name.Position)),
                2 => new SqlType(SqlTypeId.Numeric, CheckNumeric(mods[0], mods[1], name.Position)),
                _ => throw new SqlException(SqlState.InvalidParameterValue, "invalid NUMERIC type modifier", name.Position),
            },
            "text" => SqlType.Text,
            "varchar" or "character varying" => mods.Count > 0 ? new SqlType(SqlTypeId.Varchar, CheckLength(mods[0], name.Position)) : SqlType.Varchar,
            "character" or "bpchar" => name.Name == "bpchar" && mods.Count == 0
                ? new SqlType(SqlTypeId.Bpchar)
                : new SqlType(SqlTypeId.Bpchar, CheckLength(mods.Count > 0 ? mods[0] : 1, name.Position)),
            "char" or "\"char\"" => new SqlType(SqlTypeId.Char),
            "name" => SqlType.Name,
            "bytea" => SqlType.Bytea,
            "date" => SqlType.Date,
            "timestamp" or "timestamp without time zone" => SqlType.Timestamp,
            "timestamptz" or "timestamp with time zone" => SqlType.TimestampTz,
            "interval" => SqlType.Interval,
            "uuid" => SqlType.Uuid,
            "jsonb" => SqlType.Jsonb,
            "json" => new SqlType(SqlTypeId.Json),
            "oid" => SqlType.Oid,
            "regclass" => new SqlType(SqlTypeId.Regclass),
            "regtype" => new SqlType(SqlTypeId.Regtype),
            "regproc" => new SqlType(SqlTypeId.Regproc),
            "regnamespace" => new SqlType(SqlTypeId.Regnamespace),
            "unknown" => SqlType.Unknown,
            "int2vector" => new SqlType(SqlTypeId.Int2Vector),
            "oidvector" => new SqlType(SqlTypeId.OidVector),
            _ => throw new SqlException(SqlState.UndefinedObject, $"type \"{name.Name}\" does not exist", name.Position),
        };
        if (name.ArrayDimensions > 0)
        {
            return type.ArrayType ?? throw new SqlException(SqlState.FeatureNotSupported, $"arrays of {type.DisplayName} are not supported", name.Position);
        }

        return type;
    }

    public static bool IsSerial(TypeName name) => name.Name is "serial" or "serial4" or "bigserial" or "serial8" or "smallserial" or "serial2";

    private static int CheckNumeric(int precision, int scale, int position)
    {
        if (precision < 1 || precision > 1000)
        {
            throw new SqlException(SqlState.InvalidParameterValue, $"NUMERIC precision {precision} must be between 1 and 1000", position);
        }

        // PostgreSQL 15's range; the scale is stored as an 11-bit two's complement field of the typmod, as there.
        if (scale < -1000 || scale > 1000)
        {
            throw new SqlException(SqlState.InvalidParameterValue, $"NUMERIC scale {scale} must be between -1000 and 1000", position);
        }

        return ((precision << 16) | (scale & 0x7FF)) + 4;
    }

    private static int CheckLength(int length, int position) =>
        length < 1 || length > 10_485_760
            ? throw new SqlException(SqlState.InvalidParameterValue, $"length for type varchar must be between 1 and 10485760", position)
            : length + 4;

    /// <summary>The type both operands convert to for comparison or arithmetic (PostgreSQL's preferred-type rules, simplified).</summary>
    public static SqlType? CommonType(SqlType a, SqlType b)
    {
        if (a.Id == b.Id)
        {
            return a.Modifier != b.Modifier ? new SqlType(a.Id) : a;
        }

        if (a.Id == SqlTypeId.Unknown)
        {
            return b.Id == SqlTypeId.Unknown ? SqlType.Text : b;
        }

        if (b.Id == SqlTypeId.Unknown)
        {
            return a;
        }

        if (a.IsNumeric && b.IsNumeric)
        {
            return Casts.NumericRank(a.Id) >= Casts.NumericRank(b.Id) ? a with { Modifier = -1 } : b with { Modifier = -1 };
        }

        if (a.IsString && b.IsString)
        {
            return SqlType.Text;
        }

        if (a.Category == 'D' && b.Category == 'D')
        {
            return a.Id == SqlTypeId.TimestampTz || b.Id == SqlTypeId.TimestampTz ? SqlType.TimestampTz : SqlType.Timestamp;
        }

        if (a.ElementType is { } ea && b.ElementType is { } eb && ea.Id == eb.Id)
        {
            return a;
        }

        if (a.Id is SqlTypeId.Jsonb or SqlTypeId.Json && b.Id is SqlTypeId.Jsonb or SqlTypeId.Json)
        {
            return SqlType.Jsonb;
        }

        return null;
    }

    /// <summary>Wraps an expression in a cast to <paramref name="to"/> when needed; unknown literals are converted at bind time.</summary>
    public static BoundExpr Coerce(BoundExpr expr, SqlType to, bool explicitCast, int position)
    {
        if (expr.Type.Id == to.Id && (to.Modifier < 0 || expr.Type.Modifier == to.Modifier))
        {
            return expr;
        }

        if (expr is ParamExpr param && param.Type.Id == SqlTypeId.Unknown)
        {
            param.Type = to with { Modifier = -1 };
            return to.Modifier >= 0 ? new Execution.CastExpr(param, to, explicitCast) : param;
        }

        var arrayMismatch = (expr.Type.ElementType is not null || to.ElementType is not null) && expr.Type.Id != SqlTypeId.Unknown
            && !(expr.Type.ElementType is { } fromElement && to.ElementType is { } toElement && (fromElement.Id == toElement.Id || Casts.IsAssignable(fromElement, toElement)));
        if (!explicitCast && (arrayMismatch || (!Casts.IsAssignable(expr.Type, to) && !Casts.IsImplicit(expr.Type, to))))
        {
            throw new SqlException(SqlState.DatatypeMismatch, $"column is of type {to.DisplayName} but expression is of type {expr.Type.DisplayName}", position, hint: "You will need to rewrite or cast the expression.");
        }

        if (explicitCast && !Casts.IsExplicit(expr.Type, to))
        {
            throw new SqlException(SqlState.CannotCoerce, $"cannot cast type {expr.Type.DisplayName} to {to.DisplayName}", position);
        }

        if (expr is ConstExpr constant)
        {
            try
            {
                return new ConstExpr(Casts.Convert(constant.Value, constant.Type, to, explicitCast), to);
            }
            catch (SqlException e) when (e.Position == 0)
            {
                throw new SqlException(e.SqlState, e.Message, position, e.Detail, e.Hint);
            }
        }

        return new Execution.CastExpr(expr, to, explicitCast);
    }
}
