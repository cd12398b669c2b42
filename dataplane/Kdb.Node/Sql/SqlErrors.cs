using Kdb.PgWire.Session;
using Kdb.Sql;

namespace Kdb.Node.Sql;

/// <summary>Engine errors as the protocol reports them: the same SQLSTATE, message, detail, hint and position.</summary>
internal static class SqlErrors
{
    public static PgException ToPg(SqlException e) => new(e.SqlState, e.Message, e.Detail, e.Hint, e.Position);

    public static PgNotice ToPg(Kdb.Sql.Sessions.SqlNotice n) => new(n.Severity, n.SqlState, n.Message);
}
