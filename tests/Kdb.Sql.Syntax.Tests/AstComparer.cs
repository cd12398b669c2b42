using System.Collections;
using System.Reflection;

namespace Kdb.Sql.Syntax.Tests;

/// <summary>
/// Structural equality of syntax trees that ignores source positions and captured source text
/// (records compare lists by reference, so their generated Equals cannot be used).
/// </summary>
internal static class AstComparer
{
    public static void AssertEqual(object? expected, object? actual, string context = "")
    {
        var diff = Diff(expected, actual, "$");
        if (diff is not null)
        {
            Assert.Fail($"{context}\n{diff}");
        }
    }

    public static string? Diff(object? a, object? b, string path)
    {
        if (a is null || b is null)
        {
            return a is null && b is null ? null : $"{path}: {a ?? "null"} vs {b ?? "null"}";
        }

        if (a is IList la && b is IList lb)
        {
            if (la.Count != lb.Count)
            {
                return $"{path}: {la.Count} items vs {lb.Count}";
            }

            for (var i = 0; i < la.Count; i++)
            {
                var d = Diff(la[i], lb[i], $"{path}[{i}]");
                if (d is not null)
                {
                    return d;
                }
            }

            return null;
        }

        var type = a.GetType();
        if (type != b.GetType())
        {
            return $"{path}: {type.Name} vs {b.GetType().Name}";
        }

        if (a is string || type.IsPrimitive || type.IsEnum || a is decimal)
        {
            return Equals(a, b) ? null : $"{path}: '{a}' vs '{b}'";
        }

        if (a is IReadOnlyDictionary<string, string> da && b is IReadOnlyDictionary<string, string> db)
        {
            if (da.Count != db.Count)
            {
                return $"{path}: {da.Count} entries vs {db.Count}";
            }

            foreach (var kv in da)
            {
                if (!db.TryGetValue(kv.Key, out var v) || v != kv.Value)
                {
                    return $"{path}[{kv.Key}]: '{kv.Value}' vs '{v}'";
                }
            }

            return null;
        }

        foreach (var p in type.GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (p.GetIndexParameters().Length > 0 || p.Name == "Position" || IsSourceText(type, p.Name))
            {
                continue;
            }

            var d = Diff(p.GetValue(a), p.GetValue(b), $"{path}.{type.Name}.{p.Name}");
            if (d is not null)
            {
                return d;
            }
        }

        return null;
    }

    // Source text captured beside a tree differs after formatting by design.
    private static bool IsSourceText(Type type, string property) =>
        (type == typeof(CreateViewStatement) && property == "Text") ||
        (type == typeof(PrepareStatement) && property == "TargetText");
}
