using Kdb.Sql.Catalog;
using Kdb.Sql.Execution;
using Kdb.Sql.Sessions;
using Kdb.Sql.Syntax;
using Kdb.Sql.Types;

namespace Kdb.Sql.Planning;

/// <summary>A CTE visible to a query: its materialized plan is shared by every reference.</summary>
internal sealed class CteBinding(string name, Operator plan, IReadOnlyList<ResultColumn> columns)
{
    public string Name { get; } = name;

    /// <summary>An operator that is also <see cref="ISharedRows"/>: every reference reads the same rows.</summary>
    public Operator Plan { get; } = plan;

    public IReadOnlyList<ResultColumn> Columns { get; } = columns;

    /// <summary>Set while a recursive CTE's recursive term is bound: its self-reference reads this working table.</summary>
    public WorkTable? WorkTable { get; init; }
}

/// <summary>State of binding one statement: the catalog, the parameters' types and the CTEs in scope.</summary>
internal sealed class BindContext
{
    private readonly List<ParamExpr> _parameters = [];
    private readonly List<Dictionary<string, CteBinding>> _cteFrames = [];
    private readonly Dictionary<uint, TableInfo> _tables = [];

    public BindContext(CatalogData catalog, ulong tenant, SessionState session, IReadOnlyList<SqlType>? declaredParameterTypes)
    {
        Catalog = catalog;
        Tenant = tenant;
        Session = session;
        if (declaredParameterTypes is not null)
        {
            for (var i = 0; i < declaredParameterTypes.Count; i++)
            {
                _parameters.Add(new ParamExpr(i, declaredParameterTypes[i]));
            }
        }
    }

    public CatalogData Catalog { get; }

    public ulong Tenant { get; }

    public SessionState Session { get; }

    /// <summary>Column names the statement may read (null: all); scans decode only these.</summary>
    public HashSet<string>? ReadColumns { get; set; }

    /// <summary>When set (CREATE VIEW), collects the oids of the tables and views the statement reads.</summary>
    public HashSet<uint>? Dependencies { get; set; }

    /// <summary>True once the statement reads or writes a table (pg_catalog views included): then it needs a snapshot.</summary>
    public bool TouchesData { get; set; }

    public ParamExpr Parameter(int number, int position)
    {
        if (number < 1 || number > 65535)
        {
            throw new SqlException(SqlState.UndefinedParameter, $"there is no parameter ${number}", position);
        }

        while (_parameters.Count < number)
        {
            _parameters.Add(new ParamExpr(_parameters.Count, SqlType.Unknown));
        }

        return _parameters[number - 1];
    }

    /// <summary>The parameters' resolved types; one still unknown is taken as text, as PostgreSQL does.</summary>
    public SqlType[] ParameterTypes()
    {
        var types = new SqlType[_parameters.Count];
        for (var i = 0; i < types.Length; i++)
        {
            if (_parameters[i].Type.Id == SqlTypeId.Unknown)
            {
                _parameters[i].Type = SqlType.Text;
            }

            types[i] = _parameters[i].Type;
        }

        return types;
    }

    public TableInfo TableInfo(TableDef table)
    {
        if (!_tables.TryGetValue(table.Id, out var info))
        {
            info = new TableInfo(Tenant, table);
            _tables[table.Id] = info;
        }

        return info;
    }

    public void PushCtes() => _cteFrames.Add(new Dictionary<string, CteBinding>(StringComparer.Ordinal));

    public void PopCtes() => _cteFrames.RemoveAt(_cteFrames.Count - 1);

    public void AddCte(CteBinding cte, int position)
    {
        if (!_cteFrames[^1].TryAdd(cte.Name, cte))
        {
            throw new SqlException(SqlState.DuplicateAlias, $"WITH query name \"{cte.Name}\" specified more than once", position);
        }
    }

    /// <summary>Replaces a CTE of the innermost WITH (a recursive CTE, once its recursive term is bound).</summary>
    public void ReplaceCte(CteBinding cte) => _cteFrames[^1][cte.Name] = cte;

    public CteBinding? FindCte(string name)
    {
        for (var i = _cteFrames.Count - 1; i >= 0; i--)
        {
            if (_cteFrames[i].TryGetValue(name, out var cte))
            {
                return cte;
            }
        }

        return null;
    }

    public TableDef? FindTable(QualifiedName name) => SchemaPath.FindTable(Session, Catalog, name);

    public ViewDef? FindView(QualifiedName name) => SchemaPath.FindView(Session, Catalog, name);

    public TableDef RequireTable(QualifiedName name)
    {
        var table = FindTable(name);
        if (table is null)
        {
            if (FindView(name) is not null)
            {
                throw new SqlException(SqlState.WrongObjectType, $"\"{name.Name}\" is not a table", name.Position);
            }

            throw new SqlException(SqlState.UndefinedTable, $"relation \"{name}\" does not exist", name.Position);
        }

        return table;
    }

    /// <summary>Set when the statement calls nextval or setval (its run then needs to be repeatable: see SqlSession).</summary>
    public bool UsesSequences { get; set; }

    public uint ResolveSequence(string text)
    {
        UsesSequences = true;
        var dot = text.LastIndexOf('.');
        var name = new QualifiedName(0, dot < 0 ? null : text[..dot].Trim('"'), (dot < 0 ? text : text[(dot + 1)..]).Trim('"'));
        var sequence = SchemaPath.FindSequence(Session, Catalog, name)
            ?? throw new SqlException(SqlState.UndefinedTable, $"relation \"{text}\" does not exist");
        return sequence.Id;
    }
}
