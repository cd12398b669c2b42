using System.Text;

namespace Kdb.Sql.Tests.Differential;

/// <summary>
/// One generated statement. <see cref="SortKeys"/> holds the 0-based output columns whose sequence an ORDER BY
/// fixes (null: the order is free). A DML statement runs inside BEGIN … ROLLBACK on both sides, followed by
/// <see cref="CheckSql"/> (the whole target table, totally ordered) before the rollback.
/// </summary>
public sealed record GeneratedQuery(string Category, string Sql, int[]? SortKeys, IReadOnlyCollection<string> Features, string? CheckSql = null);

/// <summary>
/// Generates the differential test's statements for a <see cref="DiffSchema"/>: filters, aggregates, joins of
/// 2–4 tables of every kind, set operations, CTEs, window functions, subqueries (IN, EXISTS, scalar,
/// correlated), DISTINCT, ORDER BY/LIMIT/OFFSET, and INSERT/UPDATE/DELETE with RETURNING and ON CONFLICT.
/// Results never depend on an order SQL leaves free: LIMIT always follows an ORDER BY over every output
/// column, row_number orders by a key, string_agg has its own ORDER BY.
/// </summary>
public sealed partial class QueryGenerator
{
    private readonly DiffSchema _schema;
    private readonly Random _random;
    private ExprGenerator _expr;

    public QueryGenerator(DiffSchema schema, int seed)
    {
        _schema = schema;
        _random = new Random(seed);
        _expr = new ExprGenerator(_random);
    }

    /// <summary>The next statement.</summary>
    public GeneratedQuery Next()
    {
        _expr = new ExprGenerator(_random);
        var shape = _random.Next(100);
        var (category, sql, keys, check) = shape switch
        {
            < 18 => Filter(),
            < 30 => Aggregate(),
            < 44 => Join(),
            < 48 => CrossJoin(),
            < 56 => SetOperation(),
            < 61 => Cte(),
            < 68 => Window(),
            < 80 => Subquery(),
            < 85 => Distinct(),
            _ => Dml(),
        };
        _expr.Features.Add(category);
        return new GeneratedQuery(category, sql, keys, _expr.Features, check);
    }

    private DiffTable AnyTable() => _schema.Tables[_random.Next(_schema.Tables.Count)];

    private static List<ScopeColumn> Scope(DiffTable table, string alias) => table.Columns.Select(c => new ScopeColumn(alias, c.Name, c.Type)).ToList();

    private (string Category, string Sql, int[]? Keys, string? Check) Filter()
    {
        var table = AnyTable();
        var alias = _random.Next(2) == 0 ? "x" : string.Empty;
        var scope = Scope(table, alias);
        var (projection, count) = Projection(scope, _random.Next(1, 5), allowStar: alias.Length == 0);
        var sql = new StringBuilder($"SELECT {projection} FROM {table.Name}{(alias.Length > 0 ? " " + alias : string.Empty)}");
        if (_random.Next(6) != 0)
        {
            sql.Append(" WHERE ").Append(_expr.Predicate(scope, 2));
        }

        var keys = OrderBy(sql, count, limit: _random.Next(3) == 0);
        return ("filter", sql.ToString(), keys, null);
    }

    /// <summary>A projection of <paramref name="count"/> items: plain columns or aliased expressions (c1, c2...).</summary>
    private (string Sql, int Count) Projection(List<ScopeColumn> scope, int count, bool allowStar = false)
    {
        if (allowStar && _random.Next(8) == 0)
        {
            _expr.Features.Add("star");
            return ("*", scope.Count);
        }

        var items = new List<string>();
        for (var i = 0; i < count; i++)
        {
            if (_random.Next(2) == 0 && scope.Count > 0)
            {
                items.Add(scope[_random.Next(scope.Count)].Ref);
            }
            else
            {
                var type = (DiffType)_random.Next(7);
                items.Add($"{_expr.Expr(type, scope, 2)} AS c{i + 1}");
            }
        }

        return (string.Join(", ", items), items.Count);
    }

    /// <summary>
    /// Appends an ORDER BY (ordinals, with ASC/DESC and NULLS FIRST/LAST) and returns the sort keys, or null when
    /// no ORDER BY was added. With <paramref name="limit"/> every output column is a key, so the order is total
    /// and LIMIT/OFFSET pick the same rows on both engines.
    /// </summary>
    private int[]? OrderBy(StringBuilder sql, int columns, bool limit)
    {
        if (!limit && _random.Next(2) == 0)
        {
            return null;
        }

        _expr.Features.Add("ORDER BY");
        var keys = Enumerable.Range(0, columns).OrderBy(_ => _random.Next()).Take(limit ? columns : _random.Next(1, Math.Min(columns, 3) + 1)).ToArray();
        sql.Append(" ORDER BY ");
        for (var i = 0; i < keys.Length; i++)
        {
            sql.Append(i == 0 ? string.Empty : ", ").Append(keys[i] + 1);
            var direction = _expr.Pick(string.Empty, " ASC", " DESC");
            sql.Append(direction);
            if (_random.Next(3) == 0)
            {
                _expr.Features.Add("NULLS FIRST/LAST");
                sql.Append(_expr.Pick(" NULLS FIRST", " NULLS LAST"));
            }
        }

        if (limit)
        {
            _expr.Features.Add("LIMIT/OFFSET");
            sql.Append(" LIMIT ").Append(_random.Next(1, 12));
            if (_random.Next(2) == 0)
            {
                sql.Append(" OFFSET ").Append(_random.Next(0, 8));
            }
        }

        return keys;
    }

    private (string, string, int[]?, string?) Aggregate()
    {
        var table = AnyTable();
        var scope = Scope(table, "g");
        var groups = _random.Next(0, 3);
        var groupColumns = scope.Where(c => c.Name != "id").OrderBy(_ => _random.Next()).Take(groups).ToList();
        var items = groupColumns.Select(c => c.Ref).ToList();
        var aggregates = _random.Next(1, 4);
        for (var i = 0; i < aggregates; i++)
        {
            items.Add(AggregateCall(scope) + $" AS a{i + 1}");
        }

        var sql = new StringBuilder($"SELECT {string.Join(", ", items)} FROM {table.Name} g");
        if (_random.Next(3) != 0)
        {
            sql.Append(" WHERE ").Append(_expr.Predicate(scope, 1));
        }

        if (groupColumns.Count > 0)
        {
            _expr.Features.Add("GROUP BY");
            sql.Append(" GROUP BY ").Append(_random.Next(3) == 0 ? string.Join(", ", Enumerable.Range(1, groupColumns.Count)) : string.Join(", ", groupColumns.Select(c => c.Ref)));
            if (_random.Next(3) == 0)
            {
                _expr.Features.Add("HAVING");
                sql.Append(" HAVING ").Append(_expr.Pick("count(*) > 1", "count(*) = 1", $"{AggregateCall(scope)} IS NOT NULL", "sum(g.id) > 100", "min(g.id) < 50"));
            }
        }

        var keys = OrderBy(sql, items.Count, limit: groupColumns.Count > 0 && _random.Next(4) == 0);
        return ("aggregate", sql.ToString(), keys, null);
    }

    private string AggregateCall(List<ScopeColumn> scope)
    {
        var column = scope[_random.Next(scope.Count)];
        var numeric = scope.Where(c => c.Type is DiffType.Int or DiffType.BigInt or DiffType.Numeric).ToList();
        var number = numeric.Count > 0 ? numeric[_random.Next(numeric.Count)].Ref : "g.id";
        switch (_random.Next(13))
        {
            case 0:
                _expr.Features.Add("count(*)");
                return "count(*)";
            case 1:
                _expr.Features.Add("count");
                return $"count({column.Ref})";
            case 2:
                _expr.Features.Add("count DISTINCT");
                return $"count(DISTINCT {column.Ref})";
            case 3:
            case 4:
                _expr.Features.Add("sum");
                return $"sum({number})";
            case 5:
                _expr.Features.Add("avg");
                return $"avg({number})";
            case 6:
            case 7:
                _expr.Features.Add("min/max");
                return $"{_expr.Pick("min", "max")}({column.Ref})";
            case 8:
                {
                    _expr.Features.Add("string_agg");
                    var texts = ExprGenerator.Of(scope, DiffType.Text);
                    var text = texts.Length > 0 ? texts[_random.Next(texts.Length)].Ref : "CAST(g.id AS text)";
                    return $"string_agg({text}, ',' ORDER BY {text})";
                }

            case 9:
                {
                    _expr.Features.Add("bool_and/bool_or");
                    return $"{_expr.Pick("bool_and", "bool_or")}({_expr.Predicate(scope, 0)})";
                }

            case 10:
                _expr.Features.Add("sum of expression");
                return $"sum({_expr.Expr(DiffType.Int, scope, 1)})";
            case 11:
                _expr.Features.Add("aggregate FILTER");
                return $"count(*) FILTER (WHERE {_expr.Predicate(scope, 0)})";
            default:
                _expr.Features.Add("sum DISTINCT");
                return $"sum(DISTINCT {number})";
        }
    }

    /// <summary>A chain of 2–4 tables joined on foreign keys, each join INNER, LEFT, RIGHT or FULL (or a comma join).</summary>
    private (string, string, int[]?, string?) Join()
    {
        var count = _random.Next(2, 5);
        var joined = new List<(DiffTable Table, string Alias)>();
        var first = _schema.Tables[_random.Next(1, _schema.Tables.Count)];
        joined.Add((first, "a1"));
        var from = new StringBuilder($"{first.Name} a1");
        var comma = _random.Next(6) == 0;
        var where = new List<string>();
        for (var i = 2; i <= count; i++)
        {
            var links = new List<(DiffTable Table, string Condition)>();
            foreach (var (table, alias) in joined)
            {
                foreach (var fk in table.Columns.Where(c => c.References is not null))
                {
                    links.Add((_schema.Tables.First(t => t.Name == fk.References), $"{alias}.{fk.Name} = a{i}.id"));
                }

                foreach (var child in _schema.Tables)
                {
                    foreach (var fk in child.Columns.Where(c => c.References == table.Name))
                    {
                        links.Add((child, $"a{i}.{fk.Name} = {alias}.id"));
                    }
                }
            }

            if (links.Count == 0)
            {
                break;
            }

            var (next, condition) = links[_random.Next(links.Count)];
            if (comma)
            {
                _expr.Features.Add("comma join");
                from.Append($", {next.Name} a{i}");
                where.Add(condition);
            }
            else
            {
                var kind = _expr.Pick("JOIN", "INNER JOIN", "LEFT JOIN", "LEFT OUTER JOIN", "RIGHT JOIN", "FULL JOIN", "FULL OUTER JOIN");
                _expr.Features.Add(kind.Replace(" OUTER", string.Empty, StringComparison.Ordinal).Replace("INNER ", string.Empty, StringComparison.Ordinal));
                var extra = _random.Next(5) == 0 && !kind.StartsWith("FULL", StringComparison.Ordinal) ? " AND " + _expr.Predicate(Scope(next, $"a{i}"), 0) : string.Empty;
                from.Append($" {kind} {next.Name} a{i} ON {condition}{extra}");
            }

            joined.Add((next, $"a{i}"));
        }

        var scope = joined.SelectMany(j => Scope(j.Table, j.Alias)).ToList();
        if (_random.Next(3) != 0)
        {
            where.Add(_expr.Predicate(scope, 1));
        }

        var whereSql = where.Count > 0 ? " WHERE " + string.Join(" AND ", where) : string.Empty;
        if (_random.Next(4) == 0)
        {
            var group = scope[_random.Next(scope.Count)];
            var sqlGroup = new StringBuilder($"SELECT {group.Ref}, count(*) AS n, {AggregateCallJoined(scope)} AS m FROM {from}{whereSql} GROUP BY {group.Ref}");
            var orderKeys = OrderBy(sqlGroup, 3, false);
            return ("join aggregate", sqlGroup.ToString(), orderKeys, null);
        }

        var (projection, items) = Projection(scope, _random.Next(2, 6));
        var sql = new StringBuilder($"SELECT {projection} FROM {from}{whereSql}");
        var keys = OrderBy(sql, items, limit: _random.Next(4) == 0);
        return ("join", sql.ToString(), keys, null);
    }

    private string AggregateCallJoined(List<ScopeColumn> scope)
    {
        var column = scope[_random.Next(scope.Count)];
        return _expr.Pick($"count({column.Ref})", $"max({column.Ref})", $"min({column.Ref})", $"count(DISTINCT {column.Ref})");
    }

    private (string, string, int[]?, string?) CrossJoin()
    {
        var left = AnyTable();
        var right = AnyTable();
        var scope = Scope(left, "l").Concat(Scope(right, "r")).ToList();
        var (projection, items) = Projection(scope, _random.Next(2, 4));
        var sql = new StringBuilder($"SELECT {projection} FROM {left.Name} l CROSS JOIN {right.Name} r WHERE l.id < {_random.Next(5, 25)} AND r.id < {_random.Next(5, 25)}");
        if (_random.Next(2) == 0)
        {
            sql.Append(" AND ").Append(_expr.Predicate(scope, 1));
        }

        _expr.Features.Add("CROSS JOIN");
        var orderKeys = OrderBy(sql, items, limit: _random.Next(3) == 0);
        return ("cross join", sql.ToString(), orderKeys, null);
    }

    private (string, string, int[]?, string?) SetOperation()
    {
        var types = Enumerable.Range(0, _random.Next(1, 3)).Select(_ => (DiffType)_random.Next(7)).ToArray();
        string Side()
        {
            var table = AnyTable();
            var scope = Scope(table, "s");
            var items = types.Select(t => _expr.Expr(t, scope, _random.Next(0, 2))).ToList();
            return $"SELECT {string.Join(", ", items)} FROM {table.Name} s WHERE {_expr.Predicate(scope, 1)}";
        }

        var op = _expr.Pick("UNION", "UNION ALL", "INTERSECT", "INTERSECT ALL", "EXCEPT", "EXCEPT ALL");
        _expr.Features.Add(op);
        var sql = new StringBuilder($"{Side()} {op} {Side()}");
        if (_random.Next(4) == 0)
        {
            var op2 = _expr.Pick("UNION", "UNION ALL", "EXCEPT");
            _expr.Features.Add(op2);
            sql.Append($" {op2} {Side()}");
        }

        var keys = OrderBy(sql, types.Length, limit: _random.Next(4) == 0);
        return ("set operation", sql.ToString(), keys, null);
    }

    private (string, string, int[]?, string?) Cte()
    {
        var table = AnyTable();
        var inner = Scope(table, string.Empty).OrderBy(_ => _random.Next()).Take(_random.Next(2, 5)).ToList();
        if (!inner.Exists(c => c.Name == "id"))
        {
            inner.Insert(0, new ScopeColumn(string.Empty, "id", table.Columns[0].Type));
        }

        var cte = $"WITH w AS (SELECT {string.Join(", ", inner.Select(c => c.Name))} FROM {table.Name} WHERE {_expr.Predicate(Scope(table, table.Name), 1)})";
        var scope = inner.Select(c => c with { Alias = "w" }).ToList();
        _expr.Features.Add("WITH");
        StringBuilder sql;
        int items;
        if (_random.Next(3) == 0)
        {
            var other = AnyTable();
            var both = scope.Concat(Scope(other, "o")).ToList();
            (var projection, items) = Projection(both, _random.Next(2, 4));
            var fk = other.Columns.FirstOrDefault(c => c.References == table.Name);
            var on = fk is not null ? $"o.{fk.Name} = w.id" : "o.id = w.id";
            sql = new StringBuilder($"{cte} SELECT {projection} FROM w {_expr.Pick("JOIN", "LEFT JOIN")} {other.Name} o ON {on}");
        }
        else if (_random.Next(2) == 0)
        {
            var group = scope[_random.Next(scope.Count)];
            sql = new StringBuilder($"{cte} SELECT {group.Ref}, count(*) AS n, sum(w.id) AS total FROM w GROUP BY {group.Ref}");
            items = 3;
        }
        else
        {
            (var projection, items) = Projection(scope, _random.Next(1, 4));
            sql = new StringBuilder($"{cte} SELECT {projection} FROM w WHERE {_expr.Predicate(scope, 1)}");
        }

        var orderKeys = OrderBy(sql, items, limit: _random.Next(4) == 0);
        return ("cte", sql.ToString(), orderKeys, null);
    }

    private (string, string, int[]?, string?) Window()
    {
        var table = AnyTable();
        var scope = Scope(table, string.Empty);
        var partition = scope[_random.Next(1, scope.Count)];
        var orderBy = scope[_random.Next(scope.Count)];
        var numbers = scope.Where(c => c.Type is DiffType.Int or DiffType.Numeric or DiffType.BigInt).ToList();
        var number = numbers.Count > 0 ? numbers[_random.Next(numbers.Count)].Name : "id";
        var over = $"PARTITION BY {partition.Name}";
        var functions = new List<string>
        {
            $"row_number() OVER ({_expr.Pick(over + " ", string.Empty)}ORDER BY id{_expr.Pick(string.Empty, " DESC")})",
            $"rank() OVER ({over} ORDER BY {orderBy.Name}{_expr.Pick(string.Empty, " DESC", " NULLS FIRST")})",
            $"dense_rank() OVER (ORDER BY {orderBy.Name})",
            $"sum({number}) OVER ({over})",
            $"count(*) OVER ({over} ORDER BY id)",
            $"{_expr.Pick("min", "max", "avg", "count")}({number}) OVER ({over} ORDER BY {orderBy.Name})",
            $"sum({number}) OVER (ORDER BY id)",
            $"count({orderBy.Name}) OVER ()",
        };
        var picked = functions.OrderBy(_ => _random.Next()).Take(_random.Next(1, 4)).ToList();
        _expr.Features.Add("window");
        var items = new List<string> { "id", partition.Name };
        items.AddRange(picked.Select((f, i) => $"{f} AS w{i + 1}"));
        var sql = new StringBuilder($"SELECT {string.Join(", ", items)} FROM {table.Name}");
        if (_random.Next(2) == 0)
        {
            sql.Append(" WHERE ").Append(_expr.Predicate(scope, 1));
        }

        var orderKeys = OrderBy(sql, items.Count, limit: _random.Next(4) == 0);
        return ("window", sql.ToString(), orderKeys, null);
    }

    private (string, string, int[]?, string?) Subquery()
    {
        var child = _schema.Tables[_random.Next(1, _schema.Tables.Count)];
        var fk = child.Columns.First(c => c.References is not null);
        var parent = _schema.Tables.First(t => t.Name == fk.References);
        var outerScope = Scope(parent, "p");
        var innerScope = Scope(child, "c");
        string condition;
        var kind = _random.Next(8);
        switch (kind)
        {
            case 0:
                _expr.Features.Add("IN subquery");
                condition = $"p.id {_expr.Pick("IN", "NOT IN")} (SELECT c.{fk.Name} FROM {child.Name} c WHERE {_expr.Predicate(innerScope, 1)})";
                break;
            case 1:
                {
                    _expr.Features.Add("IN subquery");
                    var type = (DiffType)_random.Next(7);
                    condition = $"{_expr.Expr(type, outerScope, 0)} {_expr.Pick("IN", "NOT IN")} (SELECT {_expr.Expr(type, innerScope, 0)} FROM {child.Name} c)";
                    break;
                }

            case 2:
            case 3:
                _expr.Features.Add("EXISTS");
                condition = $"{_expr.Pick("EXISTS", "NOT EXISTS")} (SELECT 1 FROM {child.Name} c WHERE c.{fk.Name} = p.id AND {_expr.Predicate(innerScope, 1)})";
                break;
            case 4:
                {
                    _expr.Features.Add("scalar subquery");
                    var number = innerScope.Where(c => c.Type == DiffType.Int).Select(c => c.Ref).DefaultIfEmpty("c.id").First();
                    condition = $"p.id {_expr.Pick("<", ">", "=")} (SELECT {_expr.Pick("max", "min", "count", "avg")}({number}) FROM {child.Name} c)";
                    break;
                }

            case 5:
                _expr.Features.Add("scalar subquery returning rows");
                condition = $"p.id = (SELECT c.{fk.Name} FROM {child.Name} c WHERE c.id = {_expr.Pick("p.id", "2", "c.id")})";
                break;
            case 6:
                {
                    _expr.Features.Add("ANY/ALL");
                    var op = _expr.Pick("= ANY", "< ALL", "> ANY", "<> ALL");
                    condition = $"p.id {op} (SELECT c.{fk.Name} FROM {child.Name} c WHERE {_expr.Predicate(innerScope, 0)})";
                    break;
                }

            default:
                _expr.Features.Add("correlated subquery");
                condition = $"(SELECT count(*) FROM {child.Name} c WHERE c.{fk.Name} = p.id) {_expr.Pick(">", "=", "<")} {_random.Next(0, 3)}";
                break;
        }

        var items = new List<string> { "p.id" };
        if (_random.Next(2) == 0)
        {
            _expr.Features.Add("correlated scalar subquery in projection");
            var column = innerScope[_random.Next(innerScope.Count)];
            items.Add($"(SELECT {_expr.Pick("max", "min", "count")}({column.Ref}) FROM {child.Name} c WHERE c.{fk.Name} = p.id) AS sq");
        }

        var (projection, more) = Projection(outerScope, _random.Next(0, 3));
        if (more > 0)
        {
            items.Add(projection);
        }

        var sql = new StringBuilder($"SELECT {string.Join(", ", items)} FROM {parent.Name} p WHERE {condition}");
        var orderKeys = OrderBy(sql, items.Count - (more > 0 ? 1 : 0) + more, limit: _random.Next(4) == 0);
        return ("subquery", sql.ToString(), orderKeys, null);
    }

    private (string, string, int[]?, string?) Distinct()
    {
        var table = AnyTable();
        var scope = Scope(table, "t");
        var items = scope.Where(c => c.Name != "id").OrderBy(_ => _random.Next()).Take(_random.Next(1, 3)).Select(c => c.Ref).ToList();
        if (_random.Next(3) == 0)
        {
            items.Add($"{_expr.Expr(DiffType.Int, scope, 1)} AS e");
        }

        _expr.Features.Add("DISTINCT");
        var sql = new StringBuilder($"SELECT DISTINCT {string.Join(", ", items)} FROM {table.Name} t");
        if (_random.Next(2) == 0)
        {
            sql.Append(" WHERE ").Append(_expr.Predicate(scope, 1));
        }

        var orderKeys = OrderBy(sql, items.Count, limit: _random.Next(3) == 0);
        return ("distinct", sql.ToString(), orderKeys, null);
    }
}
