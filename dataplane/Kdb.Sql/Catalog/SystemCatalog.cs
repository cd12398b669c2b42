using Kdb.Sql.Execution;
using Kdb.Sql.Planning;
using Kdb.Sql.Sessions;
using Kdb.Sql.Syntax;
using Kdb.Sql.Types;

namespace Kdb.Sql.Catalog;

/// <summary>
/// pg_catalog and information_schema as views over the tenant's own catalog: enough for psql's \d commands,
/// drivers' type loading and ORMs' schema probes. Only this database, this role and this session appear,
/// so a tenant never learns of another.
/// </summary>
internal static class SystemCatalog
{
    public const uint PgCatalogNamespace = 11;
    public const uint PublicNamespace = 2200;
    public const uint InformationSchemaNamespace = 13183;
    public const uint DatabaseOid = 16384 - 1;
    public const uint RoleOid = 10;

    private sealed record VirtualTable(string Name, (string Name, SqlType Type)[] Columns, Func<ExecContext, IEnumerable<Value[]>> Rows);

    private static readonly SqlType Char = new(SqlTypeId.Char);
    private static readonly SqlType Int2Vector = new(SqlTypeId.Int2Vector);
    private static readonly SqlType OidVector = new(SqlTypeId.OidVector);
    private static readonly SqlType Regproc = new(SqlTypeId.Regproc);

    private static readonly SqlTypeId[] BuiltinTypes =
    [
        SqlTypeId.Bool, SqlTypeId.Bytea, SqlTypeId.Char, SqlTypeId.Name, SqlTypeId.Int8, SqlTypeId.Int2, SqlTypeId.Int2Vector, SqlTypeId.Int4,
        SqlTypeId.Regproc, SqlTypeId.Text, SqlTypeId.Oid, SqlTypeId.OidVector, SqlTypeId.Json, SqlTypeId.Float4, SqlTypeId.Float8, SqlTypeId.Unknown,
        SqlTypeId.Int2Array, SqlTypeId.Int4Array, SqlTypeId.TextArray, SqlTypeId.Int8Array, SqlTypeId.OidArray, SqlTypeId.Bpchar, SqlTypeId.Varchar,
        SqlTypeId.Date, SqlTypeId.Time, SqlTypeId.Timestamp, SqlTypeId.TimestampTz, SqlTypeId.Interval, SqlTypeId.Numeric, SqlTypeId.Regclass,
        SqlTypeId.Regtype, SqlTypeId.Record, SqlTypeId.Void, SqlTypeId.Uuid, SqlTypeId.Jsonb,
    ];

    private static readonly Dictionary<string, VirtualTable> PgCatalog = Build(
    [
        new("pg_namespace", [("oid", SqlType.Oid), ("nspname", SqlType.Name), ("nspowner", SqlType.Oid), ("nspacl", SqlType.TextArray)], Namespaces),
        new("pg_class", [
            ("oid", SqlType.Oid), ("relname", SqlType.Name), ("relnamespace", SqlType.Oid), ("reltype", SqlType.Oid), ("reloftype", SqlType.Oid), ("relowner", SqlType.Oid),
            ("relam", SqlType.Oid), ("relfilenode", SqlType.Oid), ("reltablespace", SqlType.Oid), ("relpages", SqlType.Int4), ("reltuples", SqlType.Float4),
            ("relallvisible", SqlType.Int4), ("reltoastrelid", SqlType.Oid), ("relhasindex", SqlType.Bool), ("relisshared", SqlType.Bool), ("relpersistence", Char),
            ("relkind", Char), ("relnatts", SqlType.Int2), ("relchecks", SqlType.Int2), ("relhasrules", SqlType.Bool), ("relhastriggers", SqlType.Bool),
            ("relhassubclass", SqlType.Bool), ("relrowsecurity", SqlType.Bool), ("relforcerowsecurity", SqlType.Bool), ("relispopulated", SqlType.Bool),
            ("relreplident", Char), ("relispartition", SqlType.Bool), ("relrewrite", SqlType.Oid), ("relfrozenxid", SqlType.Int8), ("relminmxid", SqlType.Int8),
            ("relacl", SqlType.TextArray), ("reloptions", SqlType.TextArray), ("relpartbound", SqlType.Text)], Classes),
        new("pg_attribute", [
            ("attrelid", SqlType.Oid), ("attname", SqlType.Name), ("atttypid", SqlType.Oid), ("attstattarget", SqlType.Int4), ("attlen", SqlType.Int2),
            ("attnum", SqlType.Int2), ("attndims", SqlType.Int4), ("attcacheoff", SqlType.Int4), ("atttypmod", SqlType.Int4), ("attbyval", SqlType.Bool),
            ("attalign", Char), ("attstorage", Char), ("attcompression", Char), ("attnotnull", SqlType.Bool), ("atthasdef", SqlType.Bool), ("atthasmissing", SqlType.Bool),
            ("attidentity", Char), ("attgenerated", Char), ("attisdropped", SqlType.Bool), ("attislocal", SqlType.Bool), ("attinhcount", SqlType.Int4),
            ("attcollation", SqlType.Oid), ("attacl", SqlType.TextArray), ("attoptions", SqlType.TextArray), ("attfdwoptions", SqlType.TextArray)], Attributes),
        new("pg_type", [
            ("oid", SqlType.Oid), ("typname", SqlType.Name), ("typnamespace", SqlType.Oid), ("typowner", SqlType.Oid), ("typlen", SqlType.Int2), ("typbyval", SqlType.Bool),
            ("typtype", Char), ("typcategory", Char), ("typispreferred", SqlType.Bool), ("typisdefined", SqlType.Bool), ("typdelim", Char), ("typrelid", SqlType.Oid),
            ("typsubscript", Regproc), ("typelem", SqlType.Oid), ("typarray", SqlType.Oid), ("typinput", Regproc), ("typoutput", Regproc), ("typreceive", Regproc),
            ("typsend", Regproc), ("typmodin", Regproc), ("typmodout", Regproc), ("typanalyze", Regproc), ("typalign", Char), ("typstorage", Char),
            ("typnotnull", SqlType.Bool), ("typbasetype", SqlType.Oid), ("typtypmod", SqlType.Int4), ("typndims", SqlType.Int4), ("typcollation", SqlType.Oid),
            ("typdefaultbin", SqlType.Text), ("typdefault", SqlType.Text), ("typacl", SqlType.TextArray)], Types),
        new("pg_index", [
            ("indexrelid", SqlType.Oid), ("indrelid", SqlType.Oid), ("indnatts", SqlType.Int2), ("indnkeyatts", SqlType.Int2), ("indisunique", SqlType.Bool),
            ("indnullsnotdistinct", SqlType.Bool), ("indisprimary", SqlType.Bool), ("indisexclusion", SqlType.Bool), ("indimmediate", SqlType.Bool),
            ("indisclustered", SqlType.Bool), ("indisvalid", SqlType.Bool), ("indcheckxmin", SqlType.Bool), ("indisready", SqlType.Bool), ("indislive", SqlType.Bool),
            ("indisreplident", SqlType.Bool), ("indkey", Int2Vector), ("indcollation", OidVector), ("indclass", OidVector), ("indoption", Int2Vector),
            ("indexprs", SqlType.Text), ("indpred", SqlType.Text)], Indexes),
        new("pg_constraint", [
            ("oid", SqlType.Oid), ("conname", SqlType.Name), ("connamespace", SqlType.Oid), ("contype", Char), ("condeferrable", SqlType.Bool), ("condeferred", SqlType.Bool),
            ("convalidated", SqlType.Bool), ("conrelid", SqlType.Oid), ("contypid", SqlType.Oid), ("conindid", SqlType.Oid), ("conparentid", SqlType.Oid),
            ("confrelid", SqlType.Oid), ("confupdtype", Char), ("confdeltype", Char), ("confmatchtype", Char), ("conislocal", SqlType.Bool), ("coninhcount", SqlType.Int4),
            ("connoinherit", SqlType.Bool), ("conkey", new SqlType(SqlTypeId.Int2Array)), ("confkey", new SqlType(SqlTypeId.Int2Array)), ("conbin", SqlType.Text)], Constraints),
        new("pg_attrdef", [("oid", SqlType.Oid), ("adrelid", SqlType.Oid), ("adnum", SqlType.Int2), ("adbin", SqlType.Text)], AttrDefaults),
        new("pg_database", [
            ("oid", SqlType.Oid), ("datname", SqlType.Name), ("datdba", SqlType.Oid), ("encoding", SqlType.Int4), ("datlocprovider", Char), ("datistemplate", SqlType.Bool),
            ("datallowconn", SqlType.Bool), ("datconnlimit", SqlType.Int4), ("datfrozenxid", SqlType.Int8), ("datminmxid", SqlType.Int8), ("dattablespace", SqlType.Oid),
            ("datcollate", SqlType.Text), ("datctype", SqlType.Text), ("daticulocale", SqlType.Text), ("datcollversion", SqlType.Text), ("datacl", SqlType.TextArray)], Databases),
        new("pg_roles", RoleColumns(), Roles),
        new("pg_authid", RoleColumns(), Roles),
        new("pg_user", [("usename", SqlType.Name), ("usesysid", SqlType.Oid), ("usecreatedb", SqlType.Bool), ("usesuper", SqlType.Bool), ("userepl", SqlType.Bool), ("usebypassrls", SqlType.Bool), ("passwd", SqlType.Text), ("valuntil", SqlType.TimestampTz), ("useconfig", SqlType.TextArray)],
            ctx => [[Value.FromText(ctx.Session.User), Value.FromInt(RoleOid), Value.False, Value.False, Value.False, Value.False, Value.FromText("********"), Value.Null, Value.Null]]),
        new("pg_auth_members", [("roleid", SqlType.Oid), ("member", SqlType.Oid), ("grantor", SqlType.Oid), ("admin_option", SqlType.Bool)], _ => []),
        new("pg_tables", [("schemaname", SqlType.Name), ("tablename", SqlType.Name), ("tableowner", SqlType.Name), ("tablespace", SqlType.Name), ("hasindexes", SqlType.Bool), ("hasrules", SqlType.Bool), ("hastriggers", SqlType.Bool), ("rowsecurity", SqlType.Bool)],
            ctx => ctx.Catalog.Tables.Select(t => new[] { Value.FromText(t.Schema), Value.FromText(t.Name), Value.FromText(ctx.Session.User), Value.Null, Value.FromBool(t.HasPrimaryKey || t.Indexes.Count > 0), Value.False, Value.False, Value.False })),
        new("pg_settings", [("name", SqlType.Text), ("setting", SqlType.Text), ("unit", SqlType.Text), ("category", SqlType.Text), ("short_desc", SqlType.Text), ("context", SqlType.Text), ("vartype", SqlType.Text), ("source", SqlType.Text)],
            ctx => ctx.Session.All.Select(p => new[] { Value.FromText(p.Key), Value.FromText(p.Value), Value.Null, Value.FromText("kdb"), Value.Null, Value.FromText("user"), Value.FromText("string"), Value.FromText("session") })),
        new("pg_stat_activity", [("datid", SqlType.Oid), ("datname", SqlType.Name), ("pid", SqlType.Int4), ("usename", SqlType.Name), ("application_name", SqlType.Text), ("client_addr", SqlType.Text), ("backend_start", SqlType.TimestampTz), ("xact_start", SqlType.TimestampTz), ("query_start", SqlType.TimestampTz), ("state", SqlType.Text), ("query", SqlType.Text)],
            ctx => [[Value.FromInt(DatabaseOid), Value.FromText(ctx.Session.Database), Value.FromInt(ctx.Session.BackendPid), Value.FromText(ctx.Session.User), Value.FromText(ctx.Session.Get("application_name") ?? string.Empty), Value.Null, Value.Null, Value.FromTimestamp(ctx.TransactionTimestamp), Value.FromTimestamp(ctx.StatementTimestamp), Value.FromText("active"), Value.Null]]),
        new("pg_am", [("oid", SqlType.Oid), ("amname", SqlType.Name), ("amhandler", Regproc), ("amtype", Char)],
            _ => [[Value.FromInt(2), Value.FromText("heap"), Value.FromInt(0), Value.FromText("t")], [Value.FromInt(403), Value.FromText("btree"), Value.FromInt(0), Value.FromText("i")]]),
        new("pg_sequence", [("seqrelid", SqlType.Oid), ("seqtypid", SqlType.Oid), ("seqstart", SqlType.Int8), ("seqincrement", SqlType.Int8), ("seqmax", SqlType.Int8), ("seqmin", SqlType.Int8), ("seqcache", SqlType.Int8), ("seqcycle", SqlType.Bool)],
            ctx => ctx.Catalog.Sequences.Select(s => new[] { Value.FromInt(s.Id), Value.FromInt((long)s.TypeId), Value.FromInt(s.Start), Value.FromInt(s.Increment), Value.FromInt(s.MaxValue), Value.FromInt(s.MinValue), Value.FromInt(s.Cache), Value.FromBool(s.Cycle) })),
        new("pg_description", [("objoid", SqlType.Oid), ("classoid", SqlType.Oid), ("objsubid", SqlType.Int4), ("description", SqlType.Text)], _ => []),
        new("pg_inherits", [("inhrelid", SqlType.Oid), ("inhparent", SqlType.Oid), ("inhseqno", SqlType.Int4), ("inhdetachpending", SqlType.Bool)], _ => []),
        new("pg_partitioned_table", [("partrelid", SqlType.Oid), ("partstrat", Char), ("partnatts", SqlType.Int2), ("partdefid", SqlType.Oid)], _ => []),
        new("pg_trigger", [("oid", SqlType.Oid), ("tgrelid", SqlType.Oid), ("tgname", SqlType.Name), ("tgisinternal", SqlType.Bool), ("tgenabled", Char)], _ => []),
        new("pg_policy", [("oid", SqlType.Oid), ("polname", SqlType.Name), ("polrelid", SqlType.Oid), ("polcmd", Char), ("polpermissive", SqlType.Bool),
            ("polroles", new SqlType(SqlTypeId.OidArray)), ("polqual", SqlType.Text), ("polwithcheck", SqlType.Text)], _ => []),
        new("pg_rewrite", [("oid", SqlType.Oid), ("rulename", SqlType.Name), ("ev_class", SqlType.Oid)], _ => []),
        new("pg_enum", [("oid", SqlType.Oid), ("enumtypid", SqlType.Oid), ("enumsortorder", SqlType.Float4), ("enumlabel", SqlType.Name)], _ => []),
        new("pg_range", [("rngtypid", SqlType.Oid), ("rngsubtype", SqlType.Oid), ("rngmultitypid", SqlType.Oid)], _ => []),
        new("pg_extension", [("oid", SqlType.Oid), ("extname", SqlType.Name), ("extversion", SqlType.Text)], _ => []),
        new("pg_collation", [("oid", SqlType.Oid), ("collname", SqlType.Name), ("collnamespace", SqlType.Oid), ("collprovider", Char)],
            _ => [[Value.FromInt(100), Value.FromText("default"), Value.FromInt(PgCatalogNamespace), Value.FromText("d")], [Value.FromInt(950), Value.FromText("C"), Value.FromInt(PgCatalogNamespace), Value.FromText("c")]]),
        new("pg_proc", [("oid", SqlType.Oid), ("proname", SqlType.Name), ("pronamespace", SqlType.Oid), ("prokind", Char), ("prorettype", SqlType.Oid)], _ => []),
        new("pg_statistic_ext", [("oid", SqlType.Oid), ("stxrelid", SqlType.Oid), ("stxname", SqlType.Name), ("stxnamespace", SqlType.Oid), ("stxowner", SqlType.Oid),
            ("stxstattarget", SqlType.Int4), ("stxkeys", Int2Vector), ("stxkind", SqlType.TextArray)], _ => []),
        new("pg_publication", [("oid", SqlType.Oid), ("pubname", SqlType.Name), ("pubowner", SqlType.Oid), ("puballtables", SqlType.Bool), ("pubinsert", SqlType.Bool),
            ("pubupdate", SqlType.Bool), ("pubdelete", SqlType.Bool), ("pubtruncate", SqlType.Bool), ("pubviaroot", SqlType.Bool)], _ => []),
        new("pg_publication_namespace", [("oid", SqlType.Oid), ("pnpubid", SqlType.Oid), ("pnnspid", SqlType.Oid)], _ => []),
        new("pg_publication_rel", [("oid", SqlType.Oid), ("prpubid", SqlType.Oid), ("prrelid", SqlType.Oid), ("prqual", SqlType.Text), ("prattrs", Int2Vector)], _ => []),
        new("pg_foreign_table", [("ftrelid", SqlType.Oid), ("ftserver", SqlType.Oid)], _ => []),
        new("pg_tablespace", [("oid", SqlType.Oid), ("spcname", SqlType.Name)], _ => [[Value.FromInt(1663), Value.FromText("pg_default")]]),
        new("pg_views", [("schemaname", SqlType.Name), ("viewname", SqlType.Name), ("viewowner", SqlType.Name), ("definition", SqlType.Text)],
            ctx => ctx.Catalog.Views.Select(v => new[] { Value.FromText(v.Schema), Value.FromText(v.Name), Value.FromText(ctx.Session.User), Value.FromText(v.Sql) })),
        new("pg_indexes", [("schemaname", SqlType.Name), ("tablename", SqlType.Name), ("indexname", SqlType.Name), ("tablespace", SqlType.Name), ("indexdef", SqlType.Text)],
            ctx => AllIndexes(ctx.Catalog).Select(x => new[] { Value.FromText(x.Table.Schema), Value.FromText(x.Table.Name), Value.FromText(x.Index.Name), Value.Null, Value.FromText(IndexDefinition(ctx.Catalog, x.Index.Oid)) })),
    ]);

    private static readonly Dictionary<string, VirtualTable> InformationSchema = Build(
    [
        new("tables", [("table_catalog", SqlType.Name), ("table_schema", SqlType.Name), ("table_name", SqlType.Name), ("table_type", SqlType.Text), ("is_insertable_into", SqlType.Text)],
            ctx => ctx.Catalog.Tables.Select(t => new[] { Value.FromText(ctx.Session.Database), Value.FromText(t.Schema), Value.FromText(t.Name), Value.FromText("BASE TABLE"), Value.FromText("YES") })
                .Concat(ctx.Catalog.Views.Select(v => new[] { Value.FromText(ctx.Session.Database), Value.FromText(v.Schema), Value.FromText(v.Name), Value.FromText("VIEW"), Value.FromText("NO") }))),
        new("columns", [("table_catalog", SqlType.Name), ("table_schema", SqlType.Name), ("table_name", SqlType.Name), ("column_name", SqlType.Name), ("ordinal_position", SqlType.Int4),
            ("column_default", SqlType.Text), ("is_nullable", SqlType.Text), ("data_type", SqlType.Text), ("character_maximum_length", SqlType.Int4), ("numeric_precision", SqlType.Int4),
            ("numeric_scale", SqlType.Int4), ("udt_name", SqlType.Name), ("is_identity", SqlType.Text)], ColumnsInfo),
        new("schemata", [("catalog_name", SqlType.Name), ("schema_name", SqlType.Name), ("schema_owner", SqlType.Name)],
            ctx => ctx.Catalog.Schemas.Concat(["pg_catalog", "information_schema"]).Select(s => new[] { Value.FromText(ctx.Session.Database), Value.FromText(s), Value.FromText(ctx.Session.User) })),
        new("table_constraints", [("constraint_catalog", SqlType.Name), ("constraint_schema", SqlType.Name), ("constraint_name", SqlType.Name), ("table_schema", SqlType.Name), ("table_name", SqlType.Name), ("constraint_type", SqlType.Text)],
            ctx => ConstraintRows(ctx.Catalog).Select(c => new[] { Value.FromText(ctx.Session.Database), Value.FromText(c.Table.Schema), Value.FromText(c.Name), Value.FromText(c.Table.Schema), Value.FromText(c.Table.Name), Value.FromText(c.Kind switch { 'p' => "PRIMARY KEY", 'u' => "UNIQUE", 'f' => "FOREIGN KEY", _ => "CHECK" }) })),
        new("sequences", [("sequence_catalog", SqlType.Name), ("sequence_schema", SqlType.Name), ("sequence_name", SqlType.Name), ("data_type", SqlType.Text)],
            ctx => ctx.Catalog.Sequences.Select(s => new[] { Value.FromText(ctx.Session.Database), Value.FromText(s.Schema), Value.FromText(s.Name), Value.FromText(new SqlType(s.TypeId).DisplayName) })),
    ]);

    private static Dictionary<string, VirtualTable> Build(VirtualTable[] tables) => tables.ToDictionary(t => t.Name, StringComparer.Ordinal);

    private static (string, SqlType)[] RoleColumns() =>
    [
        ("oid", SqlType.Oid), ("rolname", SqlType.Name), ("rolsuper", SqlType.Bool), ("rolinherit", SqlType.Bool), ("rolcreaterole", SqlType.Bool), ("rolcreatedb", SqlType.Bool),
        ("rolcanlogin", SqlType.Bool), ("rolreplication", SqlType.Bool), ("rolconnlimit", SqlType.Int4), ("rolpassword", SqlType.Text), ("rolvaliduntil", SqlType.TimestampTz),
        ("rolbypassrls", SqlType.Bool), ("rolconfig", SqlType.TextArray),
    ];

    private static IEnumerable<Value[]> Roles(ExecContext ctx) =>
    [[
        Value.FromInt(RoleOid), Value.FromText(ctx.Session.User), Value.False, Value.True, Value.False, Value.False, Value.True, Value.False, Value.FromInt(-1),
        Value.FromText("********"), Value.Null, Value.False, Value.Null,
    ]];

    /// <summary>Binds a pg_catalog or information_schema relation, or returns null when the name is not one.</summary>
    public static BoundQuery? TryBind(QualifiedName name, BindContext ctx)
    {
        VirtualTable? table = null;
        if (name.Schema is null or "pg_catalog")
        {
            PgCatalog.TryGetValue(name.Name, out table);
            if (name.Schema is null && table is not null && ctx.FindTable(name) is not null)
            {
                // search_path puts pg_catalog first, as PostgreSQL does; a user table of the same name needs "public.".
                return Bind(table);
            }
        }
        else if (name.Schema == "information_schema")
        {
            InformationSchema.TryGetValue(name.Name, out table);
        }

        return table is null ? null : Bind(table);
    }

    private static BoundQuery Bind(VirtualTable table)
    {
        var columns = table.Columns.Select(c => new ResultColumn(c.Name, c.Type)).ToList();
        return new BoundQuery(new GeneratorOp($"Function Scan on {table.Name}", columns.Count, table.Rows), columns);
    }

    private static IEnumerable<Value[]> Namespaces(ExecContext ctx)
    {
        yield return [Value.FromInt(PgCatalogNamespace), Value.FromText("pg_catalog"), Value.FromInt(RoleOid), Value.Null];
        yield return [Value.FromInt(PublicNamespace), Value.FromText("public"), Value.FromInt(RoleOid), Value.Null];
        yield return [Value.FromInt(InformationSchemaNamespace), Value.FromText("information_schema"), Value.FromInt(RoleOid), Value.Null];
        foreach (var schema in ctx.Catalog.Schemas)
        {
            if (schema != "public")
            {
                yield return [Value.FromInt(SchemaPath.Oid(ctx.Catalog, schema)), Value.FromText(schema), Value.FromInt(RoleOid), Value.Null];
            }
        }
    }

    private static Value[] ClassRow(uint oid, string name, uint schema, char kind, int columns, bool hasIndex, int checks) =>
    [
        Value.FromInt(oid), Value.FromText(name), Value.FromInt(schema), Value.FromInt(0), Value.FromInt(0), Value.FromInt(RoleOid),
        Value.FromInt(kind == 'i' ? 403 : kind == 'r' ? 2 : 0), Value.FromInt(oid), Value.FromInt(0), Value.FromInt(0), Value.FromFloat(-1),
        Value.FromInt(0), Value.FromInt(0), Value.FromBool(hasIndex), Value.False, Value.FromText("p"),
        Value.FromText(kind.ToString()), Value.FromInt(columns), Value.FromInt(checks), Value.False, Value.False,
        Value.False, Value.False, Value.False, Value.True,
        Value.FromText("d"), Value.False, Value.FromInt(0), Value.FromInt(0), Value.FromInt(0),
        Value.Null, Value.Null, Value.Null,
    ];

    private static IEnumerable<Value[]> Classes(ExecContext ctx)
    {
        foreach (var table in ctx.Catalog.Tables)
        {
            var schema = SchemaPath.Oid(ctx.Catalog, table.Schema);
            yield return ClassRow(table.Id, table.Name, schema, 'r', table.Columns.Count, table.HasPrimaryKey || table.Indexes.Count > 0, table.Checks.Count);
            foreach (var index in IndexesOf(table))
            {
                yield return ClassRow(index.Oid, index.Name, schema, 'i', index.Columns.Length, false, 0);
            }
        }

        foreach (var view in ctx.Catalog.Views)
        {
            yield return ClassRow(view.Id, view.Name, SchemaPath.Oid(ctx.Catalog, view.Schema), 'v', view.ColumnNames.Count, false, 0);
        }

        foreach (var sequence in ctx.Catalog.Sequences)
        {
            yield return ClassRow(sequence.Id, sequence.Name, SchemaPath.Oid(ctx.Catalog, sequence.Schema), 'S', 3, false, 0);
        }
    }

    private static IEnumerable<IndexDef> IndexesOf(TableDef table)
    {
        if (table.HasPrimaryKey)
        {
            yield return table.PrimaryIndex;
        }

        foreach (var index in table.Indexes)
        {
            yield return index;
        }
    }

    private static IEnumerable<(TableDef Table, IndexDef Index)> AllIndexes(CatalogData catalog)
    {
        foreach (var table in catalog.Tables)
        {
            foreach (var index in IndexesOf(table))
            {
                yield return (table, index);
            }
        }
    }

    private static IEnumerable<Value[]> Attributes(ExecContext ctx)
    {
        foreach (var table in ctx.Catalog.Tables)
        {
            foreach (var column in table.Columns)
            {
                yield return AttributeRow(table.Id, column.Dropped ? $"........pg.dropped.{column.Slot + 1}........" : column.Name, column.Type, (short)(column.Slot + 1), column.NotNull, column.DefaultSql is not null, column.Identity, column.Dropped);
            }

            foreach (var index in IndexesOf(table))
            {
                for (var i = 0; i < index.Columns.Length; i++)
                {
                    var column = index.Columns[i] >= 0 ? table.Columns[index.Columns[i]] : null;
                    yield return AttributeRow(index.Oid, column?.Name ?? "expr", column?.Type ?? SqlType.Text, (short)(i + 1), false, false, IdentityKind.None, false);
                }
            }
        }

        foreach (var view in ctx.Catalog.Views)
        {
            for (var i = 0; i < view.ColumnNames.Count; i++)
            {
                yield return AttributeRow(view.Id, view.ColumnNames[i], new SqlType(view.ColumnTypes[i]), (short)(i + 1), false, false, IdentityKind.None, false);
            }
        }
    }

    private static Value[] AttributeRow(uint relation, string name, SqlType type, short number, bool notNull, bool hasDefault, IdentityKind identity, bool dropped) =>
    [
        Value.FromInt(relation), Value.FromText(name), Value.FromInt(dropped ? 0 : (long)type.Id), Value.FromInt(-1), Value.FromInt(type.Length),
        Value.FromInt(number), Value.FromInt(type.ElementType is null ? 0 : 1), Value.FromInt(-1), Value.FromInt(type.Modifier), Value.FromBool(type.Length is > 0 and <= 8),
        Value.FromText("i"), Value.FromText(type.Length > 0 ? "p" : "x"), Value.FromText(string.Empty), Value.FromBool(notNull), Value.FromBool(hasDefault), Value.False,
        Value.FromText(identity switch { IdentityKind.Always => "a", IdentityKind.ByDefault when hasDefault is false => "d", _ => string.Empty }), Value.FromText(string.Empty), Value.FromBool(dropped), Value.True, Value.FromInt(0),
        Value.FromInt(type.IsString ? 100 : 0), Value.Null, Value.Null, Value.Null,
    ];

    private static IEnumerable<Value[]> Types(ExecContext ctx)
    {
        foreach (var id in BuiltinTypes)
        {
            var type = new SqlType(id);
            var array = type.ArrayType is { } at && at.Id != id ? (long)at.Id : 0;
            var element = type.ElementType is { } et ? (long)et.Id : 0;
            var category = type.Category switch { 'X' => "X", 'A' => "A", 'U' when id is SqlTypeId.Uuid or SqlTypeId.Jsonb or SqlTypeId.Json => "U", 'U' => "P", var c => c.ToString() };
            if (id == SqlTypeId.Bytea)
            {
                category = "U";
            }

            yield return
            [
                Value.FromInt((long)id), Value.FromText(type.InternalName), Value.FromInt(PgCatalogNamespace), Value.FromInt(RoleOid), Value.FromInt(type.Length), Value.FromBool(type.Length is > 0 and <= 8),
                Value.FromText(id is SqlTypeId.Record or SqlTypeId.Void ? "p" : "b"), Value.FromText(category), Value.FromBool(id is SqlTypeId.Bool or SqlTypeId.Float8 or SqlTypeId.Text or SqlTypeId.TimestampTz or SqlTypeId.Oid), Value.True, Value.FromText(","), Value.FromInt(0),
                Value.FromInt(0), Value.FromInt(element), Value.FromInt(array), Value.FromInt(0), Value.FromInt(0), Value.FromInt(0),
                Value.FromInt(0), Value.FromInt(0), Value.FromInt(0), Value.FromInt(0), Value.FromText("i"), Value.FromText("p"),
                Value.False, Value.FromInt(0), Value.FromInt(-1), Value.FromInt(0), Value.FromInt(type.IsString ? 100 : 0),
                Value.Null, Value.Null, Value.Null,
            ];
        }
    }

    private static IEnumerable<Value[]> Indexes(ExecContext ctx)
    {
        foreach (var (table, index) in AllIndexes(ctx.Catalog))
        {
            var keys = index.Columns.Select(c => Value.FromInt(c + 1)).ToArray();
            var options = index.Descending.Select(d => Value.FromInt(d ? 3 : 0)).ToArray();
            yield return
            [
                Value.FromInt(index.Oid), Value.FromInt(table.Id), Value.FromInt(index.Columns.Length), Value.FromInt(index.Columns.Length), Value.FromBool(index.Unique || index.Primary),
                Value.False, Value.FromBool(index.Primary), Value.False, Value.True,
                Value.False, Value.True, Value.False, Value.True, Value.True,
                Value.False, Value.FromArray(keys), Value.FromArray(index.Columns.Select(_ => Value.FromInt(0)).ToArray()), Value.FromArray(index.Columns.Select(_ => Value.FromInt(1978)).ToArray()), Value.FromArray(options),
                Value.Null, Value.Null,
            ];
        }
    }

    private sealed record ConstraintRow(uint Oid, string Name, char Kind, TableDef Table, int[] Columns, uint IndexOid, ForeignKeyDef? ForeignKey, CheckDef? Check);

    private static IEnumerable<ConstraintRow> ConstraintRows(CatalogData catalog)
    {
        foreach (var table in catalog.Tables)
        {
            var n = 0u;
            foreach (var index in IndexesOf(table))
            {
                if (index.IsConstraint || index.Primary)
                {
                    yield return new ConstraintRow(index.Oid + 1_000_000, index.Name, index.Primary ? 'p' : 'u', table, index.Columns, index.Oid, null, null);
                }
            }

            foreach (var check in table.Checks)
            {
                yield return new ConstraintRow(table.Id + 2_000_000 + (n++ * 4096), check.Name, 'c', table, check.Columns, 0, null, check);
            }

            foreach (var fk in table.ForeignKeys)
            {
                yield return new ConstraintRow(table.Id + 3_000_000 + (n++ * 4096), fk.Name, 'f', table, fk.Columns, 0, fk, null);
            }
        }
    }

    private static IEnumerable<Value[]> Constraints(ExecContext ctx)
    {
        foreach (var c in ConstraintRows(ctx.Catalog))
        {
            yield return
            [
                Value.FromInt(c.Oid), Value.FromText(c.Name), Value.FromInt(SchemaPath.Oid(ctx.Catalog, c.Table.Schema)), Value.FromText(c.Kind.ToString()), Value.False, Value.False,
                Value.True, Value.FromInt(c.Table.Id), Value.FromInt(0), Value.FromInt(c.IndexOid), Value.FromInt(0),
                Value.FromInt(c.ForeignKey?.ReferencedTableId ?? 0), Value.FromText(c.ForeignKey is null ? " " : ActionCode(c.ForeignKey.OnUpdate)), Value.FromText(c.ForeignKey is null ? " " : ActionCode(c.ForeignKey.OnDelete)), Value.FromText(c.ForeignKey is null ? " " : "s"), Value.True, Value.FromInt(0),
                Value.False, Value.FromArray(c.Columns.Select(x => Value.FromInt(x + 1)).ToArray()), c.ForeignKey is null ? Value.Null : Value.FromArray(c.ForeignKey.ReferencedColumns.Select(x => Value.FromInt(x + 1)).ToArray()), c.Check is null ? Value.Null : Value.FromText(c.Check.Sql),
            ];
        }
    }

    private static string ActionCode(ReferentialAction action) => action switch
    {
        ReferentialAction.Restrict => "r",
        ReferentialAction.Cascade => "c",
        ReferentialAction.SetNull => "n",
        ReferentialAction.SetDefault => "d",
        _ => "a",
    };

    private static IEnumerable<Value[]> AttrDefaults(ExecContext ctx)
    {
        foreach (var table in ctx.Catalog.Tables)
        {
            foreach (var column in table.Columns)
            {
                if (column.DefaultSql is not null && !column.Dropped)
                {
                    yield return [Value.FromInt(table.Id + 4_000_000 + (column.Slot * 4096L)), Value.FromInt(table.Id), Value.FromInt(column.Slot + 1), Value.FromText(column.DefaultSql)];
                }
            }
        }
    }

    private static IEnumerable<Value[]> Databases(ExecContext ctx) =>
    [[
        Value.FromInt(DatabaseOid), Value.FromText(ctx.Session.Database), Value.FromInt(RoleOid), Value.FromInt(6), Value.FromText("c"), Value.False,
        Value.True, Value.FromInt(-1), Value.FromInt(0), Value.FromInt(0), Value.FromInt(1663),
        Value.FromText("C.UTF-8"), Value.FromText("C.UTF-8"), Value.Null, Value.Null, Value.Null,
    ]];

    private static IEnumerable<Value[]> ColumnsInfo(ExecContext ctx)
    {
        foreach (var table in ctx.Catalog.Tables)
        {
            var position = 0;
            foreach (var column in table.Columns)
            {
                if (column.Dropped)
                {
                    continue;
                }

                // numeric_scale is PostgreSQL 15's (typmod - 4) & 65535: a negative scale shows as 2047, 2046, ...
                var type = column.Type;
                yield return
                [
                    Value.FromText(ctx.Session.Database), Value.FromText(table.Schema), Value.FromText(table.Name), Value.FromText(column.Name), Value.FromInt(++position),
                    Value.FromText(column.DefaultSql), Value.FromText(column.NotNull ? "NO" : "YES"), Value.FromText(type.ElementType is null ? type.DisplayName.Split('(')[0] : "ARRAY"),
                    type.MaxLength > 0 ? Value.FromInt(type.MaxLength) : Value.Null,
                    type.Id switch { SqlTypeId.Int2 => Value.FromInt(16), SqlTypeId.Int4 => Value.FromInt(32), SqlTypeId.Int8 => Value.FromInt(64), SqlTypeId.Numeric when type.Precision > 0 => Value.FromInt(type.Precision), _ => Value.Null },
                    type.Id switch { SqlTypeId.Int2 or SqlTypeId.Int4 or SqlTypeId.Int8 => Value.FromInt(0), SqlTypeId.Numeric when type.Modifier >= 4 => Value.FromInt((type.Modifier - 4) & 0xFFFF), _ => Value.Null },
                    Value.FromText(type.InternalName), Value.FromText(column.Identity == IdentityKind.None ? "NO" : "YES"),
                ];
            }
        }
    }

    /// <summary>The oid of a table, index, view or sequence named by text (regclass input), or null.</summary>
    public static uint? ResolveRelation(CatalogData catalog, SessionState session, string text)
    {
        var name = ParseRelationName(text.Trim());
        var schema = SchemaPath.Locate(session, catalog, name);
        if (schema is null)
        {
            return null;
        }

        if (catalog.Tables.Find(t => t.Schema == schema && t.Name == name.Name) is { } table)
        {
            return table.Id;
        }

        foreach (var (owner, index) in AllIndexes(catalog))
        {
            if (owner.Schema == schema && index.Name == name.Name)
            {
                return index.Oid;
            }
        }

        return catalog.Views.Find(v => v.Schema == schema && v.Name == name.Name)?.Id ?? catalog.Sequences.Find(s => s.Schema == schema && s.Name == name.Name)?.Id;
    }

    /// <summary>A possibly qualified, possibly quoted relation name as regclass input reads it.</summary>
    private static QualifiedName ParseRelationName(string text)
    {
        var parts = new List<string>(2);
        var i = 0;
        while (i <= text.Length)
        {
            parts.Add(SchemaPath.ReadIdentifier(text, ref i, c => c == '.'));
            if (i >= text.Length || text[i] != '.')
            {
                break;
            }

            i++;
        }

        return parts.Count > 1 ? new QualifiedName(0, parts[^2], parts[^1]) : new QualifiedName(0, null, parts[0]);
    }

    /// <summary>A relation's name as regclass output prints it (qualified when search_path would not find it), or the oid.</summary>
    public static string RelationName(CatalogData catalog, SessionState? session, uint oid)
    {
        if (catalog.Tables.Find(t => t.Id == oid) is { } table)
        {
            return SchemaPath.Display(session, catalog, table.Schema, table.Name);
        }

        var (owner, index) = AllIndexes(catalog).FirstOrDefault(x => x.Index.Oid == oid);
        if (index is not null)
        {
            return SchemaPath.Display(session, catalog, owner.Schema, index.Name);
        }

        if (catalog.Views.Find(v => v.Id == oid) is { } view)
        {
            return SchemaPath.Display(session, catalog, view.Schema, view.Name);
        }

        return catalog.Sequences.Find(s => s.Id == oid) is { } sequence
            ? SchemaPath.Display(session, catalog, sequence.Schema, sequence.Name)
            : oid.ToString(System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>pg_table_is_visible: search_path finds the relation by its bare name (system relations always).</summary>
    public static bool IsVisible(CatalogData catalog, SessionState session, uint oid)
    {
        var (schema, name) = catalog.Tables.Find(t => t.Id == oid) is { } table ? (table.Schema, table.Name)
            : AllIndexes(catalog).FirstOrDefault(x => x.Index.Oid == oid) is { Index: not null } x ? (x.Table.Schema, x.Index.Name)
            : catalog.Views.Find(v => v.Id == oid) is { } view ? (view.Schema, view.Name)
            : catalog.Sequences.Find(s => s.Id == oid) is { } sequence ? (sequence.Schema, sequence.Name)
            : (null, null);
        return name is null || SchemaPath.Locate(session, catalog, new QualifiedName(0, null, name)) == schema;
    }

    /// <summary>An index expression as pg_get_indexdef prints it: a function call bare, anything else in parentheses.</summary>
    private static string ExpressionKey(string sql) => SqlParser.ParseExpression(sql) is FunctionCallExpr ? sql : "(" + sql + ")";

    public static string IndexDefinition(CatalogData catalog, uint oid)
    {
        foreach (var (table, index) in AllIndexes(catalog))
        {
            if (index.Oid == oid)
            {
                var columns = index.Columns.Select((c, i) => (c >= 0 ? SqlFormatter.QuoteIdentifier(table.Columns[c].Name) : ExpressionKey(index.Expressions![i]!)) + (index.Descending[i] ? " DESC" : string.Empty));
                return $"CREATE {(index.Unique || index.Primary ? "UNIQUE " : string.Empty)}INDEX {SqlFormatter.QuoteIdentifier(index.Name)} ON {table.Schema}.{SqlFormatter.QuoteIdentifier(table.Name)} USING btree ({string.Join(", ", columns)}){(index.Predicate is null ? string.Empty : $" WHERE ({index.Predicate})")}";
            }
        }

        return string.Empty;
    }

    public static string ConstraintDefinition(CatalogData catalog, uint oid)
    {
        foreach (var c in ConstraintRows(catalog))
        {
            if (c.Oid != oid)
            {
                continue;
            }

            var columns = string.Join(", ", c.Columns.Select(x => SqlFormatter.QuoteIdentifier(c.Table.Columns[x].Name)));
            switch (c.Kind)
            {
                case 'p':
                    return $"PRIMARY KEY ({columns})";
                case 'u':
                    return $"UNIQUE ({columns})";
                case 'c':
                    return $"CHECK ({c.Check!.Sql})";
                default:
                    var fk = c.ForeignKey!;
                    var target = catalog.Tables.Find(t => t.Id == fk.ReferencedTableId);
                    var targetColumns = target is null ? string.Empty : string.Join(", ", fk.ReferencedColumns.Select(x => SqlFormatter.QuoteIdentifier(target.Columns[x].Name)));
                    var text = $"FOREIGN KEY ({columns}) REFERENCES {SqlFormatter.QuoteIdentifier(target?.Name ?? "?")}({targetColumns})";
                    if (fk.OnUpdate != ReferentialAction.NoAction)
                    {
                        text += " ON UPDATE " + ActionText(fk.OnUpdate);
                    }

                    if (fk.OnDelete != ReferentialAction.NoAction)
                    {
                        text += " ON DELETE " + ActionText(fk.OnDelete);
                    }

                    return text;
            }
        }

        return string.Empty;
    }

    private static string ActionText(ReferentialAction action) => action switch
    {
        ReferentialAction.Restrict => "RESTRICT",
        ReferentialAction.Cascade => "CASCADE",
        ReferentialAction.SetNull => "SET NULL",
        ReferentialAction.SetDefault => "SET DEFAULT",
        _ => "NO ACTION",
    };

    public static string ViewDefinition(CatalogData catalog, SessionState session, in Value view)
    {
        var oid = view.Kind == ValueKind.Int ? (uint)view.AsInt : ResolveRelation(catalog, session, view.AsText) ?? 0;
        return catalog.Views.Find(v => v.Id == oid)?.Sql ?? string.Empty;
    }
}
