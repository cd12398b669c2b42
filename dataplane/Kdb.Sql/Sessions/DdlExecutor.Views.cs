using Kdb.Sql.Catalog;
using Kdb.Sql.Planning;
using Kdb.Sql.Syntax;
using Kdb.Sql.Types;

namespace Kdb.Sql.Sessions;

/// <summary>
/// View dependencies, as PostgreSQL's pg_depend keeps them: a table, view or column a view reads cannot be dropped
/// (2BP01) unless CASCADE, which drops the views too, and a column it reads cannot change type (0A000).
/// </summary>
internal sealed partial class DdlExecutor
{
    private const string CascadeHint = "Use DROP ... CASCADE to drop the dependent objects too.";

    /// <summary>CREATE OR REPLACE VIEW may only add columns at the end, as in PostgreSQL.</summary>
    private static void CheckViewReplacement(ViewDef existing, List<string> names, List<SqlTypeId> types, HashSet<uint> dependencies, int position)
    {
        if (dependencies.Contains(existing.Id))
        {
            // The old definition would expand into itself on every use.
            throw new SqlException("42P17", $"infinite recursion detected in rules for relation \"{existing.Name}\"", position);
        }

        if (names.Count < existing.ColumnNames.Count)
        {
            throw new SqlException(SqlState.InvalidTableDefinition, "cannot drop columns from view", position);
        }

        for (var i = 0; i < existing.ColumnNames.Count; i++)
        {
            if (names[i] != existing.ColumnNames[i])
            {
                throw new SqlException(
                    SqlState.InvalidTableDefinition,
                    $"cannot change name of view column \"{existing.ColumnNames[i]}\" to \"{names[i]}\"",
                    position,
                    hint: "Use ALTER VIEW ... RENAME COLUMN ... to change name of view column instead.");
            }

            if (i < existing.ColumnTypes.Count && types[i] != existing.ColumnTypes[i])
            {
                throw new SqlException(
                    SqlState.InvalidTableDefinition,
                    $"cannot change data type of view column \"{names[i]}\" from {new SqlType(existing.ColumnTypes[i]).DisplayName} to {new SqlType(types[i]).DisplayName}",
                    position);
            }
        }
    }

    /// <summary>The columns of the tables a view reads that its query names (all of them when it has a <c>*</c>).</summary>
    private List<ViewColumnDependency> ColumnDependencies(SelectStatement query, HashSet<uint> relations)
    {
        // By name: a column of the same name in another table of the view is also counted, which only errs on the safe side.
        var used = ColumnUsage.Collect(query);
        var dependencies = new List<ViewColumnDependency>();
        foreach (var table in _catalog.Tables)
        {
            if (!relations.Contains(table.Id))
            {
                continue;
            }

            foreach (var column in table.Columns)
            {
                if (!column.Dropped && (used is null || used.Contains(column.Name)))
                {
                    dependencies.Add(new ViewColumnDependency { TableId = table.Id, Slot = column.Slot });
                }
            }
        }

        return dependencies;
    }

    /// <summary>
    /// Before <paramref name="what"/> (a table or view with oid <paramref name="oid"/>) is dropped: refuses while views
    /// read it, or with CASCADE drops them (and the views over those). Views named in the same DROP are no obstacle.
    /// </summary>
    private void DropViewsOn(uint oid, string what, bool cascade, IReadOnlyList<QualifiedName> alsoDropped)
    {
        var dependents = _catalog.Views.FindAll(v => v.DependsOn.Contains(oid) && !alsoDropped.Any(n => n.Name == v.Name && (n.Schema is null || n.Schema == v.Schema)));
        DropDependentViews(dependents, what, what, cascade);
    }

    /// <summary>Before a column is dropped: the views reading it block the drop, or go with CASCADE.</summary>
    private void DropViewsOnColumn(TableDef table, ColumnDef column, bool cascade)
    {
        var dependents = _catalog.Views.FindAll(v => ReadsColumn(v, table, column));
        DropDependentViews(dependents, $"column {column.Name} of table {table.Name}", $"column {column.Name} of table {table.Name}", cascade);
    }

    /// <summary>A column a view reads keeps its type (PostgreSQL: 0A000).</summary>
    private void RefuseIfViewReadsColumn(TableDef table, ColumnDef column)
    {
        if (_catalog.Views.Find(v => ReadsColumn(v, table, column)) is { } view)
        {
            throw new SqlException(
                SqlState.FeatureNotSupported,
                "cannot alter type of a column used by a view or rule",
                detail: $"rule _RETURN on view {view.Name} depends on column \"{column.Name}\"");
        }
    }

    /// <summary>
    /// Views are stored as SQL text, so a rename under one would change what it reads: refused, where PostgreSQL (which
    /// binds views by oid) lets the view follow the new name.
    /// </summary>
    private void RefuseRenameUnderView(TableDef table, ColumnDef? column)
    {
        var view = column is null ? _catalog.Views.Find(v => v.DependsOn.Contains(table.Id)) : _catalog.Views.Find(v => ReadsColumn(v, table, column));
        if (view is not null)
        {
            var what = column is null ? $"table {table.Name}" : $"column {column.Name} of table {table.Name}";
            throw new SqlException(
                SqlState.FeatureNotSupported,
                $"cannot rename {what} because view {view.Name} depends on it",
                detail: "kdb stores a view as its SQL text, so the view would lose what it reads.",
                hint: "Drop the view, rename, and create the view again.");
        }
    }

    private static bool ReadsColumn(ViewDef view, TableDef table, ColumnDef column) =>
        view.ColumnDependencies.Exists(d => d.TableId == table.Id && d.Slot == column.Slot);

    private void DropDependentViews(List<ViewDef> dependents, string what, string dependsOnText, bool cascade)
    {
        if (dependents.Count == 0)
        {
            return;
        }

        if (!cascade)
        {
            throw new SqlException(
                SqlState.DependentObjectsStillExist,
                $"cannot drop {what} because other objects depend on it",
                detail: string.Join("\n", dependents.Select(v => $"view {v.Name} depends on {dependsOnText}")),
                hint: CascadeHint);
        }

        foreach (var view in dependents)
        {
            if (_catalog.Views.Remove(view))
            {
                Notices.Add($"drop cascades to view {view.Name}");
                DropViewsOn(view.Id, $"view {view.Name}", cascade: true, []);
            }
        }
    }
}
