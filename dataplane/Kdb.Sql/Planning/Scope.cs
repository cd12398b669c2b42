using Kdb.Sql.Types;

namespace Kdb.Sql.Planning;

/// <summary>A column visible to expressions: where it sits in the row and how it is named.</summary>
internal sealed record ScopeColumn(string? Qualifier, string Name, SqlType Type, int Index, uint TableOid = 0, short AttNum = 0, bool HiddenFromStar = false, bool System = false);

/// <summary>
/// The columns of the row an expression is evaluated against, and the enclosing query's scope for correlated
/// references (each step outwards is one level of outer-row depth).
/// </summary>
internal sealed class Scope
{
    public Scope(IReadOnlyList<ScopeColumn> columns, Scope? parent)
    {
        Columns = columns;
        Parent = parent;
    }

    public IReadOnlyList<ScopeColumn> Columns { get; }

    public Scope? Parent { get; }

    /// <summary>Set when an expression bound in a child scope referenced this scope's columns (a correlated subquery).</summary>
    public bool ReferencedFromInside { get; set; }

    public static Scope Empty(Scope? parent) => new([], parent);

    /// <summary>Finds a column by optional qualifier; throws 42702 when the name is ambiguous.</summary>
    public ScopeColumn? Find(string? qualifier, string name, int position)
    {
        ScopeColumn? found = null;
        foreach (var column in Columns)
        {
            if (column.Name != name || (qualifier is not null && column.Qualifier != qualifier))
            {
                continue;
            }

            if (qualifier is null && column.HiddenFromStar && found is not null)
            {
                continue;
            }

            if (found is not null && !(qualifier is null && column.HiddenFromStar))
            {
                if (found.HiddenFromStar)
                {
                    found = column;
                    continue;
                }

                throw new SqlException(SqlState.AmbiguousColumn, $"column reference \"{name}\" is ambiguous", position);
            }

            found ??= column;
        }

        return found;
    }

    public bool HasQualifier(string qualifier)
    {
        foreach (var column in Columns)
        {
            if (column.Qualifier == qualifier)
            {
                return true;
            }
        }

        return false;
    }
}

/// <summary>A result column as clients see it (RowDescription).</summary>
public sealed record ResultColumn(string Name, SqlType Type, uint TableOid = 0, short AttNum = 0);
