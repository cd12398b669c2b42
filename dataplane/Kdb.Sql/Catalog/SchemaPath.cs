using Kdb.Sql.Sessions;
using Kdb.Sql.Syntax;
using Kdb.Sql.Types;

namespace Kdb.Sql.Catalog;

/// <summary>
/// Schemas and name lookup as PostgreSQL does it: a qualified name looks only in its schema; an unqualified one
/// takes the first schema of search_path (that exists) holding a relation of that name; new objects go to the
/// first existing schema of search_path. Tables, views, sequences and indexes share one namespace per schema.
/// </summary>
internal static class SchemaPath
{
    /// <summary>Oids of the schemas created before schemas had stored oids (ordinal after this base).</summary>
    private const uint LegacySchemaOidBase = 30000;

    /// <summary>The user schemas of search_path that exist, in order ("$user" is the session's user).</summary>
    public static IReadOnlyList<string> Effective(SessionState session, CatalogData catalog)
    {
        var result = new List<string>(2);
        foreach (var entry in session.SearchPath)
        {
            var schema = entry == "$user" ? session.User : entry;
            if (catalog.Schemas.Contains(schema) && !result.Contains(schema))
            {
                result.Add(schema);
            }
        }

        return result;
    }

    /// <summary>current_schema(): the first existing schema of search_path, or null.</summary>
    public static string? Current(SessionState session, CatalogData catalog)
    {
        foreach (var entry in session.SearchPath)
        {
            var schema = entry == "$user" ? session.User : entry;
            if (catalog.Schemas.Contains(schema) || schema is "pg_catalog" or "information_schema")
            {
                return schema;
            }
        }

        return null;
    }

    /// <summary>current_schemas(implicit): the existing schemas of search_path, pg_catalog first when asked for.</summary>
    public static Value CurrentSchemas(SessionState session, CatalogData catalog, bool withImplicit)
    {
        var schemas = Effective(session, catalog);
        var values = new List<Value>(schemas.Count + 1);
        if (withImplicit)
        {
            values.Add(Value.FromText("pg_catalog"));
        }

        foreach (var schema in schemas)
        {
            values.Add(Value.FromText(schema));
        }

        return Value.FromArray(values.ToArray());
    }

    /// <summary>The schema a new object named <paramref name="name"/> goes to (3F000 when there is none).</summary>
    public static string ForCreate(SessionState session, CatalogData catalog, QualifiedName name)
    {
        if (name.Schema is { } explicitSchema)
        {
            if (explicitSchema is "pg_catalog" or "information_schema")
            {
                throw new SqlException(SqlState.InsufficientPrivilege, $"permission denied to create \"{explicitSchema}.{name.Name}\"", name.Position, detail: "System catalog modifications are currently disallowed.");
            }

            return catalog.Schemas.Contains(explicitSchema)
                ? explicitSchema
                : throw new SqlException(SqlState.InvalidSchemaName, $"schema \"{explicitSchema}\" does not exist", name.Position);
        }

        var path = Effective(session, catalog);
        return path.Count > 0 ? path[0] : throw new SqlException(SqlState.InvalidSchemaName, "no schema has been selected to create in", name.Position);
    }

    /// <summary>The schema whose relation an unqualified name means, or the name's own schema; null when none holds it.</summary>
    public static string? Locate(SessionState session, CatalogData catalog, QualifiedName name)
    {
        if (name.Schema is not null)
        {
            return name.Schema;
        }

        foreach (var schema in Effective(session, catalog))
        {
            if (HasRelation(catalog, schema, name.Name))
            {
                return schema;
            }
        }

        return null;
    }

    public static bool HasRelation(CatalogData catalog, string schema, string name) =>
        catalog.Tables.Exists(t => t.Schema == schema && (t.Name == name || (t.HasPrimaryKey && t.PrimaryIndex.Name == name) || t.Indexes.Exists(i => i.Name == name)))
        || catalog.Views.Exists(v => v.Schema == schema && v.Name == name)
        || catalog.Sequences.Exists(s => s.Schema == schema && s.Name == name);

    public static TableDef? FindTable(SessionState session, CatalogData catalog, QualifiedName name)
    {
        var schema = Locate(session, catalog, name);
        return schema is null ? null : catalog.Tables.Find(t => t.Schema == schema && t.Name == name.Name);
    }

    public static ViewDef? FindView(SessionState session, CatalogData catalog, QualifiedName name)
    {
        var schema = Locate(session, catalog, name);
        return schema is null ? null : catalog.Views.Find(v => v.Schema == schema && v.Name == name.Name);
    }

    public static SequenceDef? FindSequence(SessionState session, CatalogData catalog, QualifiedName name)
    {
        var schema = Locate(session, catalog, name);
        return schema is null ? null : catalog.Sequences.Find(s => s.Schema == schema && s.Name == name.Name);
    }

    /// <summary>The table owning the index <paramref name="name"/>.</summary>
    public static TableDef? FindIndexOwner(SessionState session, CatalogData catalog, QualifiedName name)
    {
        var schema = Locate(session, catalog, name);
        return schema is null ? null : catalog.Tables.Find(t => t.Schema == schema && (t.Indexes.Exists(i => i.Name == name.Name) || (t.HasPrimaryKey && t.PrimaryIndex.Name == name.Name)));
    }

    /// <summary>pg_namespace oid of a schema: public and the system schemas have PostgreSQL's fixed oids.</summary>
    public static uint Oid(CatalogData catalog, string schema) => schema switch
    {
        "public" => SystemCatalog.PublicNamespace,
        "pg_catalog" => SystemCatalog.PgCatalogNamespace,
        "information_schema" => SystemCatalog.InformationSchemaNamespace,
        _ => catalog.SchemaOids.TryGetValue(schema, out var oid) ? oid : LegacySchemaOidBase + (uint)Math.Max(0, catalog.Schemas.IndexOf(schema)),
    };

    public static string? NameOf(CatalogData catalog, uint oid)
    {
        foreach (var schema in catalog.Schemas)
        {
            if (Oid(catalog, schema) == oid)
            {
                return schema;
            }
        }

        return oid switch
        {
            SystemCatalog.PgCatalogNamespace => "pg_catalog",
            SystemCatalog.InformationSchemaNamespace => "information_schema",
            _ => null,
        };
    }

    /// <summary>A relation's name as regclass prints it: qualified only when search_path would not find it unqualified.</summary>
    public static string Display(SessionState? session, CatalogData catalog, string schema, string name)
    {
        var quoted = SqlFormatter.QuoteIdentifier(name);
        if (session is not null && Locate(session, catalog, new QualifiedName(0, null, name)) == schema)
        {
            return quoted;
        }

        return session is null && schema == "public" ? quoted : SqlFormatter.QuoteIdentifier(schema) + "." + quoted;
    }

    /// <summary>Parses a search_path setting: comma-separated names, each optionally double-quoted.</summary>
    public static string[] Parse(string setting)
    {
        var result = new List<string>();
        var i = 0;
        while (i < setting.Length)
        {
            while (i < setting.Length && (setting[i] == ',' || char.IsWhiteSpace(setting[i])))
            {
                i++;
            }

            if (i >= setting.Length)
            {
                break;
            }

            result.Add(ReadIdentifier(setting, ref i, c => c == ',' || char.IsWhiteSpace(c)));
            while (i < setting.Length && setting[i] != ',')
            {
                i++;
            }
        }

        return result.ToArray();
    }

    /// <summary>Reads one identifier at <paramref name="i"/>: double-quoted (with "" escapes) as written, else lower-cased up to a stop character.</summary>
    public static string ReadIdentifier(string text, ref int i, Func<char, bool> stop)
    {
        var sb = new System.Text.StringBuilder();
        if (i < text.Length && text[i] == '"')
        {
            i++;
            while (i < text.Length)
            {
                if (text[i] == '"')
                {
                    if (i + 1 < text.Length && text[i + 1] == '"')
                    {
                        sb.Append('"');
                        i += 2;
                        continue;
                    }

                    i++;
                    break;
                }

                sb.Append(text[i++]);
            }

            return sb.ToString();
        }

        while (i < text.Length && !stop(text[i]))
        {
            sb.Append(char.ToLowerInvariant(text[i++]));
        }

        return sb.ToString();
    }
}
