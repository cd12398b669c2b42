using Kdb.Sql.Execution;
using Kdb.Sql.Syntax;
using Kdb.Sql.Types;

namespace Kdb.Sql.Planning;

/// <summary>
/// SEARCH and CYCLE of a recursive CTE, computed as PostgreSQL's rewrite does (rewriteSearchAndCycle): the CTE gains
/// columns; the non-recursive term starts them, and the recursive term carries the parent row's values (read from
/// the work table under the recursive reference's name) and extends them. A row is held as the array of its fields,
/// so arrays of rows order depth-first and (depth, fields) rows order breadth-first under the ordinary comparison.
/// </summary>
internal sealed class SearchCycle
{
    private const string SyntaxErrorState = SqlState.SyntaxError;

    private readonly int[] _searchBy = [];
    private readonly bool _breadth;
    private readonly bool _search;
    private readonly int[] _cycleOn = [];
    private readonly bool _cycle;
    private readonly Value _markValue;
    private readonly Value _markDefault;

    private SearchCycle(CommonTableExpr cte, IReadOnlyList<ResultColumn> columns, Value markValue, Value markDefault, SqlType markType)
    {
        var extra = new List<ResultColumn>();
        if (cte.Search is { } search)
        {
            _search = true;
            _breadth = search.BreadthFirst;
            _searchBy = Resolve(search.Columns, columns, "search");
            extra.Add(new ResultColumn(search.SequenceColumn, new SqlType(_breadth ? SqlTypeId.Record : SqlTypeId.RecordArray)));
        }

        if (cte.Cycle is { } cycle)
        {
            _cycle = true;
            _cycleOn = Resolve(cycle.Columns, columns, "cycle");
            _markValue = markValue;
            _markDefault = markDefault;
            extra.Add(new ResultColumn(cycle.MarkColumn, markType));
            extra.Add(new ResultColumn(cycle.PathColumn, new SqlType(SqlTypeId.RecordArray)));
        }

        Extra = extra;
    }

    /// <summary>The added columns, after the CTE's own.</summary>
    public IReadOnlyList<ResultColumn> Extra { get; }

    /// <summary>
    /// Validates the clauses against the CTE's columns (PostgreSQL's errors) and plans the added columns. A name
    /// clash among the CTE's columns and the added ones comes back in <paramref name="nameClash"/> instead of being
    /// thrown: PostgreSQL analyses the recursive term first, where a reference to the doubled name is 42702.
    /// </summary>
    public static SearchCycle Create(CommonTableExpr cte, IReadOnlyList<ResultColumn> columns, Func<Expr, BoundExpr> bindConstant, int position, out SqlException? nameClash)
    {
        bool Used(string name) => columns.Any(c => c.Name == name);
        SqlException? clash = null;
        void Clash(string message) => clash ??= new SqlException(SyntaxErrorState, message, position);
        if (cte.Search is { } s && Used(s.SequenceColumn))
        {
            Clash($"search sequence column name \"{s.SequenceColumn}\" already used in WITH query column list");
        }

        var markValue = Value.True;
        var markDefault = Value.False;
        var markType = SqlType.Bool;
        if (cte.Cycle is { } c)
        {
            if (Used(c.MarkColumn))
            {
                Clash($"cycle mark column name \"{c.MarkColumn}\" already used in WITH query column list");
            }

            if (Used(c.PathColumn))
            {
                Clash($"cycle path column name \"{c.PathColumn}\" already used in WITH query column list");
            }

            if (c.MarkColumn == c.PathColumn)
            {
                Clash("cycle mark column name and cycle path column name are the same");
            }

            if (cte.Search is { } search && search.SequenceColumn == c.MarkColumn)
            {
                Clash("search sequence column name and cycle mark column name are the same");
            }

            if (cte.Search is { } search2 && search2.SequenceColumn == c.PathColumn)
            {
                Clash("search sequence column name and cycle path column name are the same");
            }

            if (c.MarkValue is not null && c.MarkDefault is not null)
            {
                var to = bindConstant(c.MarkValue);
                var fallback = bindConstant(c.MarkDefault);
                var common = TypeResolver.CommonType(to.Type, fallback.Type)
                    ?? throw new SqlException(SqlState.DatatypeMismatch, $"CYCLE types {to.Type.DisplayName} and {fallback.Type.DisplayName} cannot be matched", c.MarkValue.Position);
                markType = common.Id == SqlTypeId.Unknown ? SqlType.Text : common;
                markValue = TypeResolver.Coerce(to, markType, false, c.MarkValue.Position).Eval([], null!);
                markDefault = TypeResolver.Coerce(fallback, markType, false, c.MarkDefault.Position).Eval([], null!);
            }
        }

        nameClash = clash;
        return new SearchCycle(cte, columns, markValue, markDefault, markType);
    }

    private static int[] Resolve(IReadOnlyList<string> names, IReadOnlyList<ResultColumn> columns, string what)
    {
        var result = new int[names.Count];
        for (var i = 0; i < names.Count; i++)
        {
            var index = -1;
            for (var j = 0; j < columns.Count; j++)
            {
                index = columns[j].Name == names[i] ? j : index;
            }

            if (index < 0)
            {
                throw new SqlException(SyntaxErrorState, $"{what} column \"{names[i]}\" not in WITH query column list");
            }

            if (Array.IndexOf(result, index, 0, i) >= 0)
            {
                throw new SqlException(SqlState.DuplicateColumn, $"{what} column \"{names[i]}\" specified more than once");
            }

            result[i] = index;
        }

        return result;
    }

    /// <summary>The recursive term must be a plain SELECT that reads the CTE by a name; the parent's added columns are appended to its list.</summary>
    public QueryBody CarryParentColumns(QueryBody right, string cteName)
    {
        if (right is not SelectCore core)
        {
            throw new SqlException(SyntaxErrorState, "with a SEARCH or CYCLE clause, the right side of the UNION must be a SELECT", right.Position);
        }

        var reference = FindReference(core.From, cteName) ?? cteName;
        var items = core.Items.ToList();
        foreach (var column in Extra)
        {
            items.Add(new SelectItem(new ColumnRefExpr(core.Position, [reference, column.Name]), null));
        }

        return core with { Items = items };
    }

    private static string? FindReference(IEnumerable<TableRef> from, string cteName)
    {
        foreach (var item in from)
        {
            var found = item switch
            {
                NamedTableRef { Name.Schema: null } named when named.Name.Name == cteName => named.Alias ?? cteName,
                JoinTableRef join => FindReference([join.Left, join.Right], cteName),
                _ => null,
            };
            if (found is not null)
            {
                return found;
            }
        }

        return null;
    }

    /// <summary>The non-recursive term's rows gain their starting values.</summary>
    public BoundExpr[] Start(BoundExpr[] own)
    {
        var exprs = new List<BoundExpr>(own);
        if (_search)
        {
            exprs.Add(Compute("search", own, _breadth ? SqlTypeId.Record : SqlTypeId.RecordArray, (a, _) =>
                _breadth ? Value.FromArray([Value.FromInt(0), .. Pick(a, _searchBy)]) : Value.FromArray([Value.FromArray(Pick(a, _searchBy))])));
        }

        if (_cycle)
        {
            var markType = Extra[^2].Type;
            exprs.Add(new ConstExpr(_markDefault, markType));
            exprs.Add(Compute("cycle_path", own, SqlTypeId.RecordArray, (a, _) => Value.FromArray([Value.FromArray(Pick(a, _cycleOn))])));
        }

        return [.. exprs];
    }

    /// <summary>The recursive term's rows: its own columns, then the parent's added ones, extended by the new row.</summary>
    public (BoundExpr? Filter, BoundExpr[] Exprs) Extend(BoundExpr[] own)
    {
        var exprs = new List<BoundExpr>(own);
        var parent = own.Length;
        BoundExpr? filter = null;
        if (_search)
        {
            var args = own.Append(new ColumnExpr(parent, Extra[0].Type, "parent_seq")).ToArray();
            exprs.Add(Compute("search", args, _breadth ? SqlTypeId.Record : SqlTypeId.RecordArray, (a, _) =>
            {
                var previous = a[^1].AsArray;
                return _breadth
                    ? Value.FromArray([Value.FromInt(previous[0].AsInt + 1), .. Pick(a, _searchBy)])
                    : Value.FromArray([.. previous, Value.FromArray(Pick(a, _searchBy))]);
            }));
            parent++;
        }

        if (_cycle)
        {
            var markType = Extra[^2].Type;
            var markColumn = new ColumnExpr(parent, markType, "parent_mark");
            var markValue = _markValue;
            filter = new FuncExpr("cycle_open", [markColumn], SqlType.Bool, (a, _) => Value.FromBool(a[0].IsNull || !Value.Equal(a[0], markValue)), false, false);
            var args = own.Append(new ColumnExpr(parent + 1, Extra[^1].Type, "parent_path")).ToArray();
            exprs.Add(Compute("cycle_mark", args, markType.Id, (a, _) =>
            {
                var row = Value.FromArray(Pick(a, _cycleOn));
                return Array.Exists(a[^1].AsArray, seen => Value.Equal(seen, row)) ? _markValue : _markDefault;
            }, markType));
            exprs.Add(Compute("cycle_path", args, SqlTypeId.RecordArray, (a, _) => Value.FromArray([.. a[^1].AsArray, Value.FromArray(Pick(a, _cycleOn))])));
        }

        return (filter, [.. exprs]);
    }

    private static FuncExpr Compute(string name, BoundExpr[] args, SqlTypeId type, Func<Value[], ExecContext, Value> impl, SqlType? exact = null) =>
        new(name, args, exact ?? new SqlType(type), impl, false, false);

    private static Value[] Pick(Value[] row, int[] indexes)
    {
        var fields = new Value[indexes.Length];
        for (var i = 0; i < indexes.Length; i++)
        {
            fields[i] = row[indexes[i]];
        }

        return fields;
    }

    /// <summary>PostgreSQL: SEARCH or CYCLE on a CTE that does not read itself.</summary>
    public static SqlException NotRecursive(int position) => new(SyntaxErrorState, "WITH query is not recursive", position);
}
