using System.Collections;
using System.Collections.Concurrent;
using System.Reflection;
using Kdb.Sql.Syntax;

namespace Kdb.Sql.Planning;

/// <summary>
/// The column names a query can possibly read, found by walking its whole syntax tree (subqueries
/// included). Scans decode only those columns. Anything that could read a column without naming it (*,
/// NATURAL joins, column aliases on a table) makes the answer "all" (null). A superset is always safe.
/// </summary>
internal static class ColumnUsage
{
    private static readonly ConcurrentDictionary<Type, PropertyInfo[]> Properties = new();

    public static HashSet<string>? Collect(Statement statement)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        return Visit(statement, names) ? names : null;
    }

    /// <summary>Adds what <paramref name="node"/> reads; false when it may read every column.</summary>
    private static bool Visit(object? node, HashSet<string> names)
    {
        switch (node)
        {
            case null or string:
                return true;
            case StarExpr:
                return false;
            case ColumnRefExpr column:
                names.Add(column.Column);
                return true;
            case JoinTableRef { Natural: true }:
                return false;
            case JoinTableRef { Using: { } usingColumns } join:
                foreach (var name in usingColumns)
                {
                    names.Add(name);
                }

                return Visit(join.Left, names) && Visit(join.Right, names) && Visit(join.On, names);
            case NamedTableRef { ColumnAliases: not null }:
                return false;
            case IEnumerable items:
                foreach (var item in items)
                {
                    if (!Visit(item, names))
                    {
                        return false;
                    }
                }

                return true;
        }

        var type = node.GetType();
        if (type.Namespace != typeof(Statement).Namespace || type.IsEnum || type.IsPrimitive)
        {
            return true;
        }

        foreach (var property in Properties.GetOrAdd(type, t => t.GetProperties(BindingFlags.Public | BindingFlags.Instance)))
        {
            if (property.PropertyType.IsPrimitive || property.PropertyType.IsEnum || property.PropertyType == typeof(string) || property.GetIndexParameters().Length > 0)
            {
                continue;
            }

            if (!Visit(property.GetValue(node), names))
            {
                return false;
            }
        }

        return true;
    }
}
