using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Kdb.Sql.Execution;
using Kdb.Sql.Types;

namespace Kdb.Sql.Planning;

/// <summary>The scalar functions kdb knows, resolved by name and argument types (PostgreSQL's behaviour and names).</summary>
internal static class Functions
{
    public static readonly string[] AggregateNames = ["count", "sum", "avg", "min", "max", "string_agg", "bool_and", "bool_or", "every", "array_agg"];

    public static readonly string[] WindowOnlyNames = ["row_number", "rank", "dense_rank", "percent_rank", "cume_dist", "ntile", "lag", "lead", "first_value", "last_value"];

    public static bool IsAggregate(string name) => Array.IndexOf(AggregateNames, name) >= 0;

    private static FuncExpr Make(string name, BoundExpr[] args, SqlType type, Func<Value[], ExecContext, Value> impl, bool strict = true, bool isVolatile = false) =>
        new(name, args, type, impl, strict, isVolatile);

    private static BoundExpr[] CoerceAll(BoundExpr[] args, SqlType type, int position)
    {
        var result = new BoundExpr[args.Length];
        for (var i = 0; i < args.Length; i++)
        {
            result[i] = Coerce(args[i], type, position);
        }

        return result;
    }

    private static BoundExpr Coerce(BoundExpr arg, SqlType type, int position)
    {
        if (arg.Type.Id == type.Id)
        {
            return arg;
        }

        if (!Casts.IsImplicit(arg.Type, type))
        {
            throw new SqlException(SqlState.UndefinedFunction, $"function argument of type {arg.Type.DisplayName} does not match {type.DisplayName}", position, hint: "No function matches the given name and argument types. You might need to add explicit type casts.");
        }

        return TypeResolver.Coerce(arg, type, explicitCast: false, position);
    }

    private static void Arity(string name, BoundExpr[] args, int min, int max, int position)
    {
        if (args.Length < min || args.Length > max)
        {
            throw NoSuchFunction(name, args, position);
        }
    }

    public static SqlException NoSuchFunction(string name, BoundExpr[] args, int position) =>
        new(SqlState.UndefinedFunction, $"function {name}({string.Join(", ", Array.ConvertAll(args, a => a.Type.DisplayName))}) does not exist", position, hint: "No function matches the given name and argument types. You might need to add explicit type casts.");

    private static SqlType NumericArgType(BoundExpr arg) => arg.Type.Id == SqlTypeId.Unknown ? SqlType.Numeric : arg.Type.IsNumeric ? arg.Type with { Modifier = -1 } : throw new SqlException(SqlState.UndefinedFunction, $"function argument of type {arg.Type.DisplayName} is not numeric");

    public static BoundExpr Bind(string name, BoundExpr[] args, int position, Func<string, uint> resolveSequence)
    {
        switch (name)
        {
            case "abs":
                Arity(name, args, 1, 1, position);
                {
                    var t = NumericArgType(args[0]);
                    return Make(name, [Coerce(args[0], t, position)], t, (a, _) => a[0].Kind switch
                    {
                        ValueKind.Int => a[0].AsInt == long.MinValue ? throw new SqlException(SqlState.NumericValueOutOfRange, "bigint out of range") : Value.FromInt(Math.Abs(a[0].AsInt)),
                        ValueKind.Float => Value.FromFloat(Math.Abs(a[0].AsFloat)),
                        _ => NumericMath.Abs(a[0]),
                    });
                }

            case "round" or "trunc":
                Arity(name, args, 1, 2, position);
                {
                    var truncate = name == "trunc";
                    if (args.Length == 1 && args[0].Type.Id is SqlTypeId.Float4 or SqlTypeId.Float8)
                    {
                        return Make(name, [Coerce(args[0], SqlType.Float8, position)], SqlType.Float8, (a, _) => Value.FromFloat(truncate ? Math.Truncate(a[0].AsFloat) : Math.Round(a[0].AsFloat, MidpointRounding.ToEven)));
                    }

                    var numeric = Coerce(args[0], SqlType.Numeric, position);
                    if (args.Length == 1)
                    {
                        return Make(name, [numeric], SqlType.Numeric, (a, _) => truncate ? NumericMath.Truncate(a[0], 0) : NumericMath.Round(a[0], 0));
                    }

                    return Make(name, [numeric, Coerce(args[1], SqlType.Int4, position)], SqlType.Numeric, (a, _) => truncate ? NumericMath.Truncate(a[0], (int)a[1].AsInt) : NumericMath.Round(a[0], (int)a[1].AsInt));
                }

            case "ceil" or "ceiling" or "floor":
                Arity(name, args, 1, 1, position);
                {
                    var floor = name == "floor";
                    if (args[0].Type.Id is SqlTypeId.Float4 or SqlTypeId.Float8)
                    {
                        return Make(name, [Coerce(args[0], SqlType.Float8, position)], SqlType.Float8, (a, _) => Value.FromFloat(floor ? Math.Floor(a[0].AsFloat) : Math.Ceiling(a[0].AsFloat)));
                    }

                    return Make(name, [Coerce(args[0], SqlType.Numeric, position)], SqlType.Numeric, (a, _) => NumericMath.Floor(a[0], ceiling: !floor));
                }

            case "sign":
                Arity(name, args, 1, 1, position);
                {
                    var t = NumericArgType(args[0]);
                    return t.Id is SqlTypeId.Float4 or SqlTypeId.Float8
                        ? Make(name, [Coerce(args[0], SqlType.Float8, position)], SqlType.Float8, (a, _) => Value.FromFloat(Math.Sign(a[0].AsFloat)))
                        : Make(name, [Coerce(args[0], SqlType.Numeric, position)], SqlType.Numeric, (a, _) => Value.FromNumeric(NumericMath.Sign(a[0])));
                }

            case "sqrt" or "exp" or "ln" or "log10" or "cbrt" or "sin" or "cos" or "tan" or "atan" or "asin" or "acos" or "degrees" or "radians":
                Arity(name, args, 1, 1, position);
                {
                    Func<double, double> f = name switch
                    {
                        "sqrt" => x => x < 0 ? throw new SqlException("2201F", "cannot take square root of a negative number") : Math.Sqrt(x),
                        "exp" => Math.Exp,
                        "ln" => x => x <= 0 ? throw new SqlException("2201E", x == 0 ? "cannot take logarithm of zero" : "cannot take logarithm of a negative number") : Math.Log(x),
                        "log10" => Math.Log10,
                        "cbrt" => Math.Cbrt,
                        "sin" => Math.Sin,
                        "cos" => Math.Cos,
                        "tan" => Math.Tan,
                        "atan" => Math.Atan,
                        "asin" => Math.Asin,
                        "acos" => Math.Acos,
                        "degrees" => x => x * 180 / Math.PI,
                        _ => x => x * Math.PI / 180,
                    };
                    return Make(name, [Coerce(args[0], SqlType.Float8, position)], SqlType.Float8, (a, _) => Value.FromFloat(f(a[0].AsFloat)));
                }

            case "log":
                Arity(name, args, 1, 2, position);
                return args.Length == 1
                    ? Make(name, [Coerce(args[0], SqlType.Float8, position)], SqlType.Float8, (a, _) => Value.FromFloat(Math.Log10(a[0].AsFloat)))
                    : Make(name, CoerceAll(args, SqlType.Float8, position), SqlType.Float8, (a, _) => Value.FromFloat(Math.Log(a[1].AsFloat, a[0].AsFloat)));
            case "power" or "pow":
                Arity(name, args, 2, 2, position);
                if (args[0].Type.Id == SqlTypeId.Numeric || args[1].Type.Id == SqlTypeId.Numeric)
                {
                    return Make(name, CoerceAll(args, SqlType.Numeric, position), SqlType.Numeric, (a, _) => ArithExpr.NumericOp(Syntax.BinaryOp.Power, a[0], a[1]));
                }

                return Make(name, CoerceAll(args, SqlType.Float8, position), SqlType.Float8, (a, _) => Value.FromFloat(Math.Pow(a[0].AsFloat, a[1].AsFloat)));
            case "mod":
                Arity(name, args, 2, 2, position);
                {
                    var t = TypeResolver.CommonType(NumericArgType(args[0]), NumericArgType(args[1])) ?? SqlType.Numeric;
                    return Make(name, CoerceAll(args, t, position), t, (a, _) => ArithExpr.Compute(Syntax.BinaryOp.Modulo, t.Kind == ValueKind.Int ? ArithKind.Int : ArithKind.Numeric, a[0], a[1], t));
                }

            case "pi":
                Arity(name, args, 0, 0, position);
                return new ConstExpr(Value.FromFloat(Math.PI), SqlType.Float8);
            case "random":
                Arity(name, args, 0, 0, position);
                return Make(name, args, SqlType.Float8, (_, _) => Value.FromFloat(Random.Shared.NextDouble()), isVolatile: true);
            case "nullif":
                Arity(name, args, 2, 2, position);
                {
                    var t = TypeResolver.CommonType(args[0].Type, args[1].Type) ?? throw NoSuchFunction(name, args, position);
                    return Make(name, CoerceAll(args, t, position), t, (a, _) => a[0].IsNull ? Value.Null : !a[1].IsNull && Value.Compare(a[0], a[1]) == 0 ? Value.Null : a[0], strict: false);
                }

            case "greatest" or "least":
                {
                    if (args.Length == 0)
                    {
                        throw NoSuchFunction(name, args, position);
                    }

                    var t = args[0].Type;
                    foreach (var arg in args)
                    {
                        t = TypeResolver.CommonType(t, arg.Type) ?? throw new SqlException(SqlState.DatatypeMismatch, $"{name.ToUpperInvariant()} types {t.DisplayName} and {arg.Type.DisplayName} cannot be matched", position);
                    }

                    var greatest = name == "greatest";
                    return Make(name, CoerceAll(args, t, position), t, (a, _) =>
                    {
                        var best = Value.Null;
                        foreach (var v in a)
                        {
                            if (!v.IsNull && (best.IsNull || (Value.Compare(v, best) > 0) == greatest && Value.Compare(v, best) != 0))
                            {
                                best = v;
                            }
                        }

                        return best;
                    }, strict: false);
                }

            case "lower" or "upper" or "initcap" or "reverse" or "md5" or "quote_ident" or "quote_literal":
                Arity(name, args, 1, 1, position);
                {
                    Func<string, string> f = name switch
                    {
                        "lower" => AsciiLower,
                        "upper" => AsciiUpper,
                        "initcap" => InitCap,
                        "reverse" => s => new string(s.Reverse().ToArray()),
                        "md5" => s => Convert.ToHexStringLower(MD5.HashData(Encoding.UTF8.GetBytes(s))),
                        "quote_ident" => Syntax.SqlFormatter.QuoteIdentifier,
                        _ => s => "'" + s.Replace("'", "''", StringComparison.Ordinal) + "'",
                    };
                    return Make(name, [TextArg(args[0], position)], SqlType.Text, (a, _) => Value.FromText(f(a[0].AsText)));
                }

            case "length" or "char_length" or "character_length" or "octet_length" or "bit_length":
                Arity(name, args, 1, 1, position);
                if (args[0].Type.Id == SqlTypeId.Bytea)
                {
                    return Make(name, args, SqlType.Int4, (a, _) => Value.FromInt(a[0].AsBytes.Length * (name == "bit_length" ? 8 : 1)));
                }

                // char(n) keeps its padding in bytes (bpcharoctetlen), though not in characters.
                var padTo = args[0].Type.Id == SqlTypeId.Bpchar ? args[0].Type.MaxLength : 0;
                return name is "octet_length" or "bit_length"
                    ? Make(name, [TextArg(args[0], position)], SqlType.Int4, (a, _) => Value.FromInt((Encoding.UTF8.GetByteCount(a[0].AsText) + Math.Max(0, padTo - CountChars(a[0].AsText))) * (name == "bit_length" ? 8 : 1)))
                    : Make(name, [TextArg(args[0], position, trimBpchar: true)], SqlType.Int4, (a, _) => Value.FromInt(CountChars(a[0].AsText)));
            case "substring" or "substr":
                Arity(name, args, 2, 3, position);
                {
                    var text = TextArg(args[0], position);
                    var rest = CoerceAll(args[1..], SqlType.Int4, position);
                    return Make(name, [text, .. rest], SqlType.Text, (a, _) => Value.FromText(Substring(a[0].AsText, a[1].AsInt, a.Length > 2 ? a[2].AsInt : null)));
                }

            case "btrim" or "ltrim" or "rtrim" or "trim":
                Arity(name, args, 1, 2, position);
                {
                    var mode = name;
                    var coerced = Array.ConvertAll(args, x => TextArg(x, position));
                    return Make(name, coerced, SqlType.Text, (a, _) =>
                    {
                        var chars = a.Length > 1 ? a[1].AsText.ToCharArray() : [' '];
                        var s = a[0].AsText;
                        return Value.FromText(mode switch { "ltrim" => s.TrimStart(chars), "rtrim" => s.TrimEnd(chars), _ => s.Trim(chars) });
                    });
                }

            case "concat":
                return Make(name, Array.ConvertAll(args, x => AnyToText(x)), SqlType.Text, (a, _) =>
                {
                    var sb = new StringBuilder();
                    foreach (var v in a)
                    {
                        if (!v.IsNull)
                        {
                            sb.Append(v.AsText);
                        }
                    }

                    return Value.FromText(sb.ToString());
                }, strict: false);
            case "concat_ws":
                if (args.Length < 1)
                {
                    throw NoSuchFunction(name, args, position);
                }

                return Make(name, Array.ConvertAll(args, x => AnyToText(x)), SqlType.Text, (a, _) =>
                {
                    if (a[0].IsNull)
                    {
                        return Value.Null;
                    }

                    var parts = new List<string>();
                    for (var i = 1; i < a.Length; i++)
                    {
                        if (!a[i].IsNull)
                        {
                            parts.Add(a[i].AsText);
                        }
                    }

                    return Value.FromText(string.Join(a[0].AsText, parts));
                }, strict: false);
            case "replace":
                Arity(name, args, 3, 3, position);
                return Make(name, Array.ConvertAll(args, x => TextArg(x, position)), SqlType.Text, (a, _) => Value.FromText(a[1].AsText.Length == 0 ? a[0].AsText : a[0].AsText.Replace(a[1].AsText, a[2].AsText, StringComparison.Ordinal)));
            case "position" or "strpos":
                Arity(name, args, 2, 2, position);
                {
                    // position(sub IN s) arrives as position(sub, s); strpos(s, sub).
                    var swap = name == "strpos";
                    return Make(name, Array.ConvertAll(args, x => TextArg(x, position)), SqlType.Int4, (a, _) =>
                    {
                        var (haystack, needle) = swap ? (a[0].AsText, a[1].AsText) : (a[1].AsText, a[0].AsText);
                        var index = haystack.IndexOf(needle, StringComparison.Ordinal);
                        return Value.FromInt(index < 0 ? 0 : CountChars(haystack[..index]) + 1);
                    });
                }

            case "left" or "right":
                Arity(name, args, 2, 2, position);
                {
                    var isLeft = name == "left";
                    return Make(name, [TextArg(args[0], position), Coerce(args[1], SqlType.Int4, position)], SqlType.Text, (a, _) =>
                    {
                        var s = a[0].AsText;
                        var n = (int)a[1].AsInt;
                        var take = n >= 0 ? Math.Min(n, s.Length) : Math.Max(0, s.Length + n);
                        return Value.FromText(isLeft ? s[..take] : s[(s.Length - take)..]);
                    });
                }

            case "repeat":
                Arity(name, args, 2, 2, position);
                return Make(name, [TextArg(args[0], position), Coerce(args[1], SqlType.Int4, position)], SqlType.Text, (a, ctx) =>
                {
                    var count = Math.Max(0, a[1].AsInt);
                    var size = a[0].AsText.Length * count;
                    if (size > 256L << 20)
                    {
                        throw new SqlException(SqlState.ProgramLimitExceeded, "requested length too large");
                    }

                    ctx.ChargeMemory(size * 2);
                    return Value.FromText(string.Concat(Enumerable.Repeat(a[0].AsText, (int)count)));
                });
            case "lpad" or "rpad":
                Arity(name, args, 2, 3, position);
                {
                    var isLeft = name == "lpad";
                    var bound = args.Length == 3
                        ? new[] { TextArg(args[0], position), Coerce(args[1], SqlType.Int4, position), TextArg(args[2], position) }
                        : new[] { TextArg(args[0], position), Coerce(args[1], SqlType.Int4, position) };
                    return Make(name, bound, SqlType.Text, (a, _) =>
                    {
                        var s = a[0].AsText;
                        var n = (int)Math.Clamp(a[1].AsInt, 0, 10_000_000);
                        var fill = a.Length > 2 ? a[2].AsText : " ";
                        if (s.Length >= n)
                        {
                            return Value.FromText(s[..n]);
                        }

                        if (fill.Length == 0)
                        {
                            return Value.FromText(s);
                        }

                        var pad = new StringBuilder();
                        while (pad.Length < n - s.Length)
                        {
                            pad.Append(fill);
                        }

                        var padding = pad.ToString(0, n - s.Length);
                        return Value.FromText(isLeft ? padding + s : s + padding);
                    });
                }

            case "split_part":
                Arity(name, args, 3, 3, position);
                return Make(name, [TextArg(args[0], position), TextArg(args[1], position), Coerce(args[2], SqlType.Int4, position)], SqlType.Text, (a, _) =>
                {
                    var parts = a[1].AsText.Length == 0 ? [a[0].AsText] : a[0].AsText.Split(a[1].AsText);
                    var n = (int)a[2].AsInt;
                    if (n == 0)
                    {
                        throw new SqlException(SqlState.InvalidParameterValue, "field position must not be zero");
                    }

                    var index = n > 0 ? n - 1 : parts.Length + n;
                    return Value.FromText(index >= 0 && index < parts.Length ? parts[index] : string.Empty);
                });
            case "to_hex":
                Arity(name, args, 1, 1, position);
                return Make(name, [Coerce(args[0], SqlType.Int8, position)], SqlType.Text, (a, _) => Value.FromText(a[0].AsInt.ToString("x", CultureInfo.InvariantCulture)));
            case "now" or "current_timestamp" or "transaction_timestamp":
                Arity(name, args, 0, 0, position);
                return Make(name, args, SqlType.TimestampTz, (_, ctx) => Value.FromTimestamp(ctx.TransactionTimestamp));
            case "statement_timestamp":
                return Make(name, args, SqlType.TimestampTz, (_, ctx) => Value.FromTimestamp(ctx.StatementTimestamp));
            case "clock_timestamp":
                return Make(name, args, SqlType.TimestampTz, (_, _) => Value.FromTimestamp(DateTimeText.FromDateTime(DateTime.UtcNow)), isVolatile: true);
            case "localtimestamp":
                return Make(name, args, SqlType.Timestamp, (_, ctx) => Value.FromTimestamp(ctx.TransactionTimestamp));
            case "current_date":
                return Make(name, args, SqlType.Date, (_, ctx) => Value.FromDate((int)Math.Floor(ctx.TransactionTimestamp / (double)DateTimeText.MicrosPerDay)));
            case "date_trunc":
                Arity(name, args, 2, 2, position);
                {
                    var t = args[1].Type.Id == SqlTypeId.Timestamp ? SqlType.Timestamp : args[1].Type.Id == SqlTypeId.Interval ? SqlType.Interval : SqlType.TimestampTz;
                    if (t.Id == SqlTypeId.Interval)
                    {
                        throw NoSuchFunction(name, args, position);
                    }

                    return Make(name, [TextArg(args[0], position), Coerce(args[1], t, position)], t, (a, _) => Value.FromTimestamp(DateTrunc(a[0].AsText, a[1].AsTimestamp)));
                }

            case "extract" or "date_part":
                Arity(name, args, 2, 2, position);
                {
                    var source = args[1].Type.Id == SqlTypeId.Unknown ? Coerce(args[1], SqlType.TimestampTz, position) : args[1];
                    var numericResult = name == "extract";
                    return Make(name, [TextArg(args[0], position), source], numericResult ? SqlType.Numeric : SqlType.Float8, (a, _) =>
                    {
                        var v = Extract(a[0].AsText, a[1], source.Type);
                        return numericResult ? Value.FromNumeric(v) : Value.FromFloat((double)v);
                    });
                }

            case "age":
                Arity(name, args, 1, 2, position);
                return Make(name, CoerceAll(args, SqlType.Timestamp, position), SqlType.Interval, (a, ctx) =>
                {
                    var end = a.Length == 2 ? a[0].AsTimestamp : (long)Math.Floor(ctx.TransactionTimestamp / (double)DateTimeText.MicrosPerDay) * DateTimeText.MicrosPerDay;
                    var start = a.Length == 2 ? a[1].AsTimestamp : a[0].AsTimestamp;
                    return Value.FromInterval(Age(DateTimeText.ToDateTime(end), DateTimeText.ToDateTime(start)));
                });
            case "gen_random_uuid" or "uuid_generate_v4":
                Arity(name, args, 0, 0, position);
                return Make(name, args, SqlType.Uuid, (_, _) => Value.FromUuid(Guid.NewGuid()), isVolatile: true);
            case "version":
                return new ConstExpr(Value.FromText("PostgreSQL 15.0 (kdb 0.1) on x86_64-pc-linux-gnu, compiled by .NET 10, 64-bit"), SqlType.Text);
            case "current_database" or "current_catalog":
                return Make(name, args, SqlType.Name, (_, ctx) => Value.FromText(ctx.Session.Database));
            case "current_schema":
                return Make(name, args, SqlType.Name, (_, ctx) => Catalog.SchemaPath.Current(ctx.Session, ctx.Catalog) is { } current ? Value.FromText(current) : Value.Null);
            case "current_schemas":
                Arity(name, args, 1, 1, position);
                return Make(name, [Coerce(args[0], SqlType.Bool, position)], SqlType.TextArray, (a, ctx) => Catalog.SchemaPath.CurrentSchemas(ctx.Session, ctx.Catalog, a[0].AsBool));
            case "current_user" or "session_user" or "user" or "current_role":
                return Make(name, args, SqlType.Name, (_, ctx) => Value.FromText(ctx.Session.User));
            case "pg_backend_pid":
                return Make(name, args, SqlType.Int4, (_, ctx) => Value.FromInt(ctx.Session.BackendPid));
            case "inet_server_port" or "inet_client_port":
                return new ConstExpr(Value.Null, SqlType.Int4);
            case "txid_current" or "pg_current_xact_id":
                return Make(name, args, SqlType.Int8, (_, ctx) => Value.FromInt((long)ctx.Transaction.ReadVersion));
            case "nextval" or "currval" or "setval":
                Arity(name, args, name == "setval" ? 2 : 1, name == "setval" ? 3 : 1, position);
                {
                    var sequenceId = args[0] switch
                    {
                        ConstExpr { Value.Kind: ValueKind.Text } text => resolveSequence(text.Value.AsText),
                        ConstExpr { Value.Kind: ValueKind.Int } oid => (uint)oid.Value.AsInt,
                        _ => throw new SqlException(SqlState.FeatureNotSupported, $"{name} needs the sequence name as a literal", position),
                    };
                    if (name == "nextval")
                    {
                        return Make(name, [], SqlType.Int8, (_, ctx) => Value.FromInt(ctx.Sequences.NextValue(sequenceId)), isVolatile: true);
                    }

                    if (name == "currval")
                    {
                        return Make(name, [], SqlType.Int8, (_, ctx) => Value.FromInt(ctx.Sequences.CurrentValue(sequenceId)), isVolatile: true);
                    }

                    var rest = args.Length == 3 ? new[] { Coerce(args[1], SqlType.Int8, position), Coerce(args[2], SqlType.Bool, position) } : new[] { Coerce(args[1], SqlType.Int8, position) };
                    return Make(name, rest, SqlType.Int8, (a, ctx) =>
                    {
                        ctx.Sequences.SetValue(sequenceId, a[0].AsInt, a.Length < 2 || a[1].AsBool);
                        return a[0];
                    }, isVolatile: true);
                }

            case "pg_typeof":
                Arity(name, args, 1, 1, position);
                {
                    // A regtype is an oid (the binary format sends it as one); its name is printed at output time, without typmod.
                    return new ConstExpr(Value.FromInt((long)args[0].Type.Id), new SqlType(SqlTypeId.Regtype));
                }

            case "jsonb_typeof" or "json_typeof":
                Arity(name, args, 1, 1, position);
                return Make(name, [Coerce(args[0], SqlType.Jsonb, position)], SqlType.Text, (a, _) =>
                {
                    var s = a[0].AsText.TrimStart();
                    return Value.FromText(s.Length == 0 ? "null" : s[0] switch { '{' => "object", '[' => "array", '"' => "string", 't' or 'f' => "boolean", 'n' => "null", _ => "number" });
                });
            case "to_jsonb" or "to_json":
                Arity(name, args, 1, 1, position);
                {
                    var argType = args[0].Type;
                    return Make(name, args, SqlType.Jsonb, (a, _) => Value.FromText(ToJson(a[0], argType)));
                }

            case "array_length":
                Arity(name, args, 2, 2, position);
                return Make(name, [args[0], Coerce(args[1], SqlType.Int4, position)], SqlType.Int4, (a, _) => a[1].AsInt == 1 && a[0].AsArray.Length > 0 ? Value.FromInt(a[0].AsArray.Length) : Value.Null);
            case "array_upper" or "array_lower":
                Arity(name, args, 2, 2, position);
                {
                    var upper = name == "array_upper";
                    var zeroBased = args[0].Type.Id is SqlTypeId.Int2Vector or SqlTypeId.OidVector;
                    return Make(name, [args[0], Coerce(args[1], SqlType.Int4, position)], SqlType.Int4, (a, _) =>
                        a[1].AsInt != 1 || a[0].AsArray.Length == 0
                            ? Value.Null
                            : Value.FromInt(upper ? a[0].AsArray.Length - (zeroBased ? 1 : 0) : (zeroBased ? 0 : 1)));
                }

            case "cardinality":
                Arity(name, args, 1, 1, position);
                return Make(name, args, SqlType.Int4, (a, _) => Value.FromInt(a[0].AsArray.Length));
            case "array_position":
                Arity(name, args, 2, 2, position);
                {
                    var element = args[0].Type.ElementType ?? SqlType.Text;
                    return Make(name, [args[0], Coerce(args[1], element.Id == SqlTypeId.Text ? args[1].Type.Id == SqlTypeId.Unknown ? SqlType.Text : args[1].Type : element, position)], SqlType.Int4, (a, _) =>
                    {
                        var items = a[0].AsArray;
                        for (var i = 0; i < items.Length; i++)
                        {
                            if (!items[i].IsNull && !a[1].IsNull && Value.Compare(items[i], a[1]) == 0)
                            {
                                return Value.FromInt(i + 1);
                            }
                        }

                        return Value.Null;
                    }, strict: false);
                }

            case "array_to_string":
                Arity(name, args, 2, 3, position);
                {
                    var element = args[0].Type.ElementType ?? SqlType.Text;
                    return Make(name, [args[0], TextArg(args[1], position)], SqlType.Text, (a, _) =>
                        Value.FromText(string.Join(a[1].AsText, a[0].AsArray.Where(v => !v.IsNull).Select(v => ValueText.Format(v, element)))));
                }

            case "pg_encoding_to_char":
                return new ConstExpr(Value.FromText("UTF8"), SqlType.Name);
            case "pg_size_pretty":
                Arity(name, args, 1, 1, position);
                return Make(name, [Coerce(args[0], SqlType.Int8, position)], SqlType.Text, (a, _) => Value.FromText(SizePretty(a[0].AsInt)));
            case "has_table_privilege" or "has_schema_privilege" or "has_database_privilege" or "has_column_privilege" or "has_sequence_privilege"  or "pg_type_is_visible" or "pg_function_is_visible":
                return Make(name, args, SqlType.Bool, (_, _) => Value.True, strict: false);
            case "pg_table_is_visible":
                Arity(name, args, 1, 1, position);
                return Make(name, [Coerce(args[0], SqlType.Oid, position)], SqlType.Bool, (a, ctx) => Value.FromBool(Catalog.SystemCatalog.IsVisible(ctx.Catalog, ctx.Session, (uint)a[0].AsInt)));
            case "obj_description" or "col_description" or "shobj_description":
                return new ConstExpr(Value.Null, SqlType.Text);
            case "pg_get_userbyid":
                return Make(name, args, SqlType.Name, (_, ctx) => Value.FromText(ctx.Session.User), strict: false);
            case "pg_is_in_recovery":
                return new ConstExpr(Value.False, SqlType.Bool);
            case "pg_postmaster_start_time":
                return new ConstExpr(Value.FromTimestamp(DateTimeText.FromDateTime(System.Diagnostics.Process.GetCurrentProcess().StartTime.ToUniversalTime())), SqlType.TimestampTz);
            case "format_type":
                Arity(name, args, 2, 2, position);
                return Make(name, [Coerce(args[0], SqlType.Oid, position), Coerce(args[1], SqlType.Int4, position)], SqlType.Text, (a, _) =>
                    Value.FromText(new SqlType((SqlTypeId)(uint)a[0].AsInt, a[1].IsNull ? -1 : (int)a[1].AsInt).DisplayName), strict: false);
            default:
                return SystemFunctions.Bind(name, args, position);
        }
    }

    private static BoundExpr TextArg(BoundExpr arg, int position, bool trimBpchar = false)
    {
        if (arg.Type.Id == SqlTypeId.Bpchar && trimBpchar)
        {
            return arg;
        }

        return arg.Type.IsString || arg.Type.Id == SqlTypeId.Unknown
            ? TypeResolver.Coerce(arg, SqlType.Text, explicitCast: false, position)
            : throw new SqlException(SqlState.UndefinedFunction, $"function argument of type {arg.Type.DisplayName} is not text", position, hint: "You might need to add explicit type casts.");
    }

    private static BoundExpr AnyToText(BoundExpr arg) =>
        arg.Type.Id is SqlTypeId.Text ? arg : new Execution.CastExpr(arg, SqlType.Text, true);

    private static int CountChars(string s)
    {
        var n = 0;
        for (var i = 0; i < s.Length; i++)
        {
            if (!char.IsLowSurrogate(s[i]))
            {
                n++;
            }
        }

        return n;
    }

    private static string Substring(string s, long start, long? count)
    {
        if (count < 0)
        {
            throw new SqlException("22011", "negative substring length not allowed");
        }

        var from = start - 1;
        var to = count is null ? long.MaxValue : from + count.Value;
        from = Math.Max(0, from);
        to = Math.Min(s.Length, to);
        return to <= from ? string.Empty : s.Substring((int)from, (int)(to - from));
    }

    // The database's collation is C (ctype C.UTF-8 as PostgreSQL's libc provider applies it): case mapping
    // changes ASCII letters only, as the differential test against PostgreSQL showed.
    private static string AsciiLower(string s) => string.Create(s.Length, s, (span, source) =>
    {
        for (var i = 0; i < source.Length; i++)
        {
            span[i] = source[i] is >= 'A' and <= 'Z' ? (char)(source[i] + 32) : source[i];
        }
    });

    private static string AsciiUpper(string s) => string.Create(s.Length, s, (span, source) =>
    {
        for (var i = 0; i < source.Length; i++)
        {
            span[i] = source[i] is >= 'a' and <= 'z' ? (char)(source[i] - 32) : source[i];
        }
    });

    private static string InitCap(string s)
    {
        var chars = s.ToCharArray();
        var startOfWord = true;
        for (var i = 0; i < chars.Length; i++)
        {
            if (char.IsLetterOrDigit(chars[i]))
            {
                chars[i] = startOfWord ? AsciiUpper(chars[i].ToString())[0] : AsciiLower(chars[i].ToString())[0];
                startOfWord = false;
            }
            else
            {
                startOfWord = true;
            }
        }

        return new string(chars);
    }

    private static long DateTrunc(string field, long micros)
    {
        var dt = DateTimeText.ToDateTime(micros);
        var truncated = field.ToLowerInvariant() switch
        {
            "microseconds" => dt,
            "milliseconds" => new DateTime(dt.Ticks - (dt.Ticks % TimeSpan.TicksPerMillisecond), DateTimeKind.Utc),
            "second" => new DateTime(dt.Year, dt.Month, dt.Day, dt.Hour, dt.Minute, dt.Second, DateTimeKind.Utc),
            "minute" => new DateTime(dt.Year, dt.Month, dt.Day, dt.Hour, dt.Minute, 0, DateTimeKind.Utc),
            "hour" => new DateTime(dt.Year, dt.Month, dt.Day, dt.Hour, 0, 0, DateTimeKind.Utc),
            "day" => dt.Date,
            "week" => dt.Date.AddDays(-(((int)dt.DayOfWeek + 6) % 7)),
            "month" => new DateTime(dt.Year, dt.Month, 1, 0, 0, 0, DateTimeKind.Utc),
            "quarter" => new DateTime(dt.Year, (((dt.Month - 1) / 3) * 3) + 1, 1, 0, 0, 0, DateTimeKind.Utc),
            "year" => new DateTime(dt.Year, 1, 1, 0, 0, 0, DateTimeKind.Utc),
            "decade" => new DateTime(dt.Year - (dt.Year % 10), 1, 1, 0, 0, 0, DateTimeKind.Utc),
            "century" => new DateTime(((dt.Year - 1) / 100 * 100) + 1, 1, 1, 0, 0, 0, DateTimeKind.Utc),
            "millennium" => new DateTime(((dt.Year - 1) / 1000 * 1000) + 1, 1, 1, 0, 0, 0, DateTimeKind.Utc),
            _ => throw new SqlException(SqlState.InvalidParameterValue, $"unit \"{field}\" not recognized for type timestamp"),
        };
        return DateTimeText.FromDateTime(truncated);
    }

    private static decimal Extract(string field, in Value value, SqlType type)
    {
        var f = field.ToLowerInvariant();
        if (value.Kind == ValueKind.Interval)
        {
            var i = value.AsInterval;
            return f switch
            {
                "year" or "years" => i.Months / 12,
                "month" or "months" or "mon" => i.Months % 12,
                "day" or "days" => i.Days,
                "hour" or "hours" => i.Microseconds / 3_600_000_000L,
                "minute" or "minutes" => i.Microseconds / 60_000_000L % 60,
                "second" or "seconds" => i.Microseconds % 60_000_000L / 1_000_000m,
                "epoch" => ((i.Months * 30m) + i.Days) * 86400m + (i.Microseconds / 1_000_000m),
                _ => throw new SqlException(SqlState.InvalidParameterValue, $"unit \"{field}\" not supported for type interval"),
            };
        }

        var micros = value.Kind == ValueKind.Date ? value.AsDate * DateTimeText.MicrosPerDay : value.AsTimestamp;
        var dt = DateTimeText.ToDateTime(micros);
        var fraction = (micros % 1_000_000 + 1_000_000) % 1_000_000;
        return f switch
        {
            "year" or "years" => dt.Year,
            "month" or "months" or "mon" => dt.Month,
            "day" or "days" => dt.Day,
            "hour" or "hours" => dt.Hour,
            "minute" or "minutes" => dt.Minute,
            "second" or "seconds" => dt.Second + (fraction / 1_000_000m),
            "milliseconds" => (dt.Second * 1000m) + (fraction / 1000m),
            "microseconds" => (dt.Second * 1_000_000m) + fraction,
            "dow" => (int)dt.DayOfWeek,
            "isodow" => dt.DayOfWeek == DayOfWeek.Sunday ? 7 : (int)dt.DayOfWeek,
            "doy" => dt.DayOfYear,
            "week" => ISOWeek.GetWeekOfYear(dt),
            "quarter" => ((dt.Month - 1) / 3) + 1,
            "decade" => dt.Year / 10,
            "century" => ((dt.Year - 1) / 100) + 1,
            "millennium" => ((dt.Year - 1) / 1000) + 1,
            "epoch" => (micros / 1_000_000m) + 946_684_800m,
            "timezone" => 0,
            _ => throw new SqlException(SqlState.InvalidParameterValue, $"unit \"{field}\" not recognized for type {type.DisplayName}"),
        };
    }

    private static Interval Age(DateTime end, DateTime start)
    {
        var negative = end < start;
        if (negative)
        {
            (end, start) = (start, end);
        }

        var months = ((end.Year - start.Year) * 12) + end.Month - start.Month;
        var anchor = start.AddMonths(months);
        if (anchor > end)
        {
            months--;
            anchor = start.AddMonths(months);
        }

        var rest = end - anchor;
        var result = new Interval(months, rest.Days, (rest.Ticks % TimeSpan.TicksPerDay) / 10);
        return negative ? new Interval(-result.Months, -result.Days, -result.Microseconds) : result;
    }

    private static string SizePretty(long bytes)
    {
        string[] units = ["bytes", "kB", "MB", "GB", "TB"];
        double size = bytes;
        var unit = 0;
        while (Math.Abs(size) >= 10 * 1024 && unit < units.Length - 1)
        {
            size /= 1024;
            unit++;
        }

        return Math.Round(size).ToString(CultureInfo.InvariantCulture) + " " + units[unit];
    }

    private static string ToJson(in Value v, SqlType type)
    {
        if (v.IsNull)
        {
            return "null";
        }

        switch (v.Kind)
        {
            case ValueKind.Bool:
                return v.AsBool ? "true" : "false";
            case ValueKind.Int or ValueKind.Numeric or ValueKind.Float:
                return ValueText.Format(v, type);
            case ValueKind.Text when type.Id is SqlTypeId.Jsonb or SqlTypeId.Json:
                return v.AsText;
            default:
                var sb = new StringBuilder();
                Jsonb.WriteString(ValueText.Format(v, type).Replace(' ', type.Category == 'D' ? 'T' : ' '), sb);
                return sb.ToString();
        }
    }
}
