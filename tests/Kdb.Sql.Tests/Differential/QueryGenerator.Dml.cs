using System.Text;

namespace Kdb.Sql.Tests.Differential;

public sealed partial class QueryGenerator
{
    /// <summary>
    /// INSERT (VALUES, SELECT, ON CONFLICT DO NOTHING / DO UPDATE), UPDATE and DELETE, all with RETURNING. Keys
    /// sometimes collide and foreign keys sometimes dangle, so constraint errors (class 23) are compared too.
    /// </summary>
    private (string, string, int[]?, string?) Dml()
    {
        var table = AnyTable();
        var scope = Scope(table, string.Empty);
        var returning = _random.Next(4) == 0 ? " RETURNING *" : $" RETURNING id, {string.Join(", ", scope.Skip(1).Take(2).Select(c => c.Name))}";
        string sql;
        switch (_random.Next(7))
        {
            case 0:
            case 1:
                {
                    _expr.Features.Add("INSERT VALUES");
                    var rows = Enumerable.Range(0, _random.Next(1, 4)).Select(r => "(" + string.Join(", ", table.Columns.Select((c, i) => i == 0 ? NewKey() : Value(c))) + ")");
                    sql = $"INSERT INTO {table.Name} VALUES {string.Join(", ", rows)}{returning}";
                    break;
                }

            case 2:
                {
                    _expr.Features.Add("ON CONFLICT");
                    var row = "(" + string.Join(", ", table.Columns.Select((c, i) => i == 0 ? NewKey() : Value(c))) + ")";
                    var updatable = table.Columns.Skip(1).Where(c => c.References is null && !c.Unique).ToList();
                    var action = updatable.Count > 0 && _random.Next(2) == 0
                        ? $"DO UPDATE SET {updatable[0].Name} = EXCLUDED.{updatable[0].Name}" + (_random.Next(2) == 0 ? $" WHERE {table.Name}.id > {_random.Next(0, 100)}" : string.Empty)
                        : "DO NOTHING";
                    sql = $"INSERT INTO {table.Name} VALUES {row} ON CONFLICT (id) {action}{returning}";
                    break;
                }

            case 3:
                {
                    _expr.Features.Add("INSERT SELECT");
                    var columns = string.Join(", ", table.Columns.Skip(1).Where(c => !c.Unique).Select(c => c.Name));
                    sql = $"INSERT INTO {table.Name} (id{(columns.Length > 0 ? ", " + columns : string.Empty)}) SELECT id + 100000{(columns.Length > 0 ? ", " + columns : string.Empty)} FROM {table.Name} WHERE {_expr.Predicate(scope, 1)}{returning}";
                    break;
                }

            case 4:
            case 5:
                {
                    _expr.Features.Add("UPDATE");
                    if (_random.Next(5) == 0)
                    {
                        // Key updates exercise ON UPDATE CASCADE and NO ACTION on the children.
                        _expr.Features.Add("UPDATE key");
                        sql = $"UPDATE {table.Name} SET id = id + 1000 WHERE {_expr.Predicate(scope, 1)}{returning}";
                        break;
                    }

                    var targets = table.Columns.Skip(1).OrderBy(_ => _random.Next()).Take(_random.Next(1, 3)).ToList();
                    var sets = targets.Select(c => $"{c.Name} = {(c.References is not null ? Value(c) : _expr.Expr(c.Type, scope, 1))}");
                    sql = $"UPDATE {table.Name} SET {string.Join(", ", sets)} WHERE {_expr.Predicate(scope, 1)}{returning}";
                    break;
                }

            default:
                _expr.Features.Add("DELETE");
                sql = $"DELETE FROM {table.Name} WHERE {_expr.Predicate(scope, 1)}{returning}";
                break;
        }

        var check = new StringBuilder($"SELECT * FROM {table.Name} ORDER BY ");
        check.Append(string.Join(", ", Enumerable.Range(1, table.Columns.Count)));
        return ("dml", sql, null, check.ToString());
    }

    /// <summary>A key that is usually new and sometimes an existing one (a duplicate key error, or a conflict).</summary>
    private string NewKey() => _random.Next(3) == 0 ? (_random.Next(1, 60) * 2).ToString(System.Globalization.CultureInfo.InvariantCulture) : _random.Next(100_000, 200_000).ToString(System.Globalization.CultureInfo.InvariantCulture);

    private string Value(DiffColumn column)
    {
        if (column.References is not null)
        {
            return _expr.Pick("NULL", "2", "4", "6", "99999");
        }

        if (column.Unique)
        {
            return _random.Next(2) == 0 ? "NULL" : DiffSchema.Quote("k" + _random.Next(1, 400));
        }

        return _random.Next(8) == 0 ? "NULL" : DiffSchema.Literal(_random, column.Type);
    }
}
