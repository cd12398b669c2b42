using System.Globalization;
using Kdb.Sql.Sessions;
using Kdb.Sql.Types;

namespace Kdb.Sql.Catalog;

/// <summary>
/// Text output of the object-identifier types that print as names (regclass, regtype, regnamespace). Their values are
/// oids, and the binary format sends the oid; only the text form needs the catalog, so it is resolved at output time
/// against the catalog the statement ran on, as PostgreSQL's output functions do.
/// </summary>
public static class RegValues
{
    /// <summary>True for the types whose text output is a name looked up in the catalog.</summary>
    public static bool PrintsAsName(SqlTypeId type) => type is SqlTypeId.Regclass or SqlTypeId.Regtype or SqlTypeId.Regnamespace;

    /// <summary>The text form of a non-null value of a type that <see cref="PrintsAsName"/>.</summary>
    internal static string Name(CatalogData catalog, SessionState? session, in Value value, SqlTypeId type)
    {
        if (value.Kind == ValueKind.Text)
        {
            // A value already cast to text is the name.
            return value.AsText;
        }

        var oid = (uint)value.AsInt;
        return type switch
        {
            SqlTypeId.Regclass => SystemCatalog.RelationName(catalog, session, oid),
            SqlTypeId.Regnamespace => SchemaPath.NameOf(catalog, oid) ?? oid.ToString(CultureInfo.InvariantCulture),
            // regtypeout prints bpchar without a typmod as "character", unlike format_type(oid, -1).
            _ => (SqlTypeId)oid == SqlTypeId.Bpchar ? "character" : new SqlType((SqlTypeId)oid).DisplayName,
        };
    }
}
