using Kdb.Sql.Types;

namespace Kdb.Sql.Tests;

/// <summary>
/// pg_typeof yields a regtype: an oid value, of the kind the wire layer expects of a regtype column before it sends
/// the binary form (a 4-byte oid), and the name without typmod in text, as PostgreSQL's regtypeout prints it.
/// </summary>
public sealed class RegtypeBinaryTests : IDisposable
{
    private readonly SqlTestDatabase _db = new();

    public void Dispose() => _db.Dispose();

    [Fact]
    public async Task PgTypeof_IsAnOidOfTheArgumentsType()
    {
        var s = _db.Session();
        await s.RunAsync("CREATE TABLE ty (a varchar(10), b numeric(10,2), c char(3), d int8[])");
        await s.RunAsync("INSERT INTO ty VALUES ('x', 1.5, 'ab', '{1}')");
        // The cursor is what the wire layer reads (materialized results turn reg* values into their names).
        using (var cursor = await s.Prepare("SELECT pg_typeof(a), pg_typeof(b), pg_typeof(c), pg_typeof(d), pg_typeof(1), pg_typeof('u') FROM ty").ExecuteAsync([]))
        {
            Assert.True(cursor.MoveNext());
            uint[] expected = [1043, 1700, 1042, 1016, 23, 705];
            string[] names = ["character varying", "numeric", "character", "bigint[]", "integer", "unknown"];
            for (var i = 0; i < expected.Length; i++)
            {
                Assert.Equal(SqlTypeId.Regtype, cursor.Columns![i].Type.Id);
                Assert.Equal(SqlType.KindOf(SqlTypeId.Regtype), cursor.Current[i].Kind);
                Assert.Equal(expected[i], (uint)cursor.Current[i].AsInt);
                Assert.Equal(names[i], cursor.FormatText(cursor.Current[i], cursor.Columns[i].Type));
            }

            Assert.False(cursor.MoveNext());
        }

        await s.RunAsync("COMMIT");

        Assert.Equal(
            ["character varying", "numeric", "character", "bigint[]", "integer", "unknown"],
            (await s.QueryAsync("SELECT pg_typeof(a)::text, pg_typeof(b)::text, pg_typeof(c)::text, pg_typeof(d)::text, pg_typeof(1)::text, pg_typeof('u')::text FROM ty"))[0]);
        Assert.Equal("t", await s.ScalarAsync("SELECT pg_typeof(b) = 'numeric'::regtype AND pg_typeof(a) <> 'text'::regtype FROM ty"));
    }
}
