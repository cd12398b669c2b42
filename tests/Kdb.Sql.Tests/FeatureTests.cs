namespace Kdb.Sql.Tests;

public sealed class FeatureTests : IDisposable
{
    private readonly SqlTestDatabase _db = new();

    public void Dispose() => _db.Dispose();

    private async Task<Sessions.SqlSession> SeededAsync()
    {
        var s = _db.Session();
        await s.RunAsync("CREATE TABLE items (id int PRIMARY KEY, name text, price numeric(8,2), qty int, added date)");
        await s.RunAsync("INSERT INTO items VALUES (1, 'apple', 1.20, 10, '2024-01-05'), (2, 'banana', 0.50, NULL, '2024-02-01'), (3, 'cherry', 7.00, 3, NULL), (4, 'date', NULL, 0, '2023-12-31')");
        return s;
    }

    [Theory]
    [InlineData("SELECT count(*) FROM items WHERE qty IS NULL", "1")]
    [InlineData("SELECT count(*) FROM items WHERE qty > 0 OR qty IS NULL", "3")]
    [InlineData("SELECT string_agg(name, ',' ORDER BY name DESC) FROM items", "date,cherry,banana,apple")]
    [InlineData("SELECT sum(price) FROM items", "8.70")]
    [InlineData("SELECT avg(qty) FROM items", "4.3333333333333333")]
    [InlineData("SELECT max(added) FROM items", "2024-02-01")]
    [InlineData("SELECT count(DISTINCT qty) FROM items", "3")]
    [InlineData("SELECT name FROM items WHERE name LIKE 'b%'", "banana")]
    [InlineData("SELECT name FROM items WHERE name ILIKE '%ERR%'", "cherry")]
    [InlineData("SELECT CASE WHEN qty > 5 THEN 'many' WHEN qty > 0 THEN 'few' ELSE 'none' END FROM items WHERE id = 3", "few")]
    [InlineData("SELECT coalesce(qty, -1) FROM items WHERE id = 2", "-1")]
    [InlineData("SELECT upper(name) || '!' FROM items WHERE id = 1", "APPLE!")]
    [InlineData("SELECT length(name) FROM items WHERE id = 2", "6")]
    [InlineData("SELECT substring(name from 2 for 3) FROM items WHERE id = 2", "ana")]
    [InlineData("SELECT added + 1 FROM items WHERE id = 4", "2024-01-01")]
    [InlineData("SELECT added - date '2024-01-01' FROM items WHERE id = 1", "4")]
    [InlineData("SELECT date_trunc('month', timestamp '2024-05-17 10:11:12')", "2024-05-01 00:00:00")]
    [InlineData("SELECT extract(year from added) FROM items WHERE id = 1", "2024")]
    [InlineData("SELECT interval '1 day 2 hours' * 2", "2 days 04:00:00")]
    [InlineData("SELECT 7 / 2, 7 % 3", "3")]
    [InlineData("SELECT 7.0 / 2", "3.5000000000000000")]
    [InlineData("SELECT 1.5::float8 * 2", "3")]
    [InlineData("SELECT round(2.345, 2)", "2.35")]
    [InlineData("SELECT '42'::int + 1", "43")]
    [InlineData("SELECT '{\"a\": {\"b\": 7}}'::jsonb -> 'a' ->> 'b'", "7")]
    [InlineData("SELECT count(*) FROM items WHERE id IN (SELECT id FROM items WHERE qty > 1)", "2")]
    [InlineData("SELECT count(*) FROM items i WHERE EXISTS (SELECT 1 FROM items j WHERE j.id = i.id + 1)", "3")]
    [InlineData("SELECT (SELECT max(id) FROM items) + 1", "5")]
    [InlineData("SELECT count(*) FROM (SELECT name FROM items UNION SELECT 'apple') u", "4")]
    [InlineData("SELECT count(*) FROM (SELECT name FROM items UNION ALL SELECT 'apple') u", "5")]
    [InlineData("SELECT count(*) FROM (SELECT id FROM items EXCEPT SELECT 1) e", "3")]
    [InlineData("WITH cheap AS (SELECT * FROM items WHERE price < 2) SELECT count(*) FROM cheap", "2")]
    [InlineData("SELECT name FROM items ORDER BY qty DESC NULLS LAST LIMIT 1", "apple")]
    [InlineData("SELECT name FROM items ORDER BY qty NULLS FIRST LIMIT 1", "banana")]
    [InlineData("SELECT name FROM items ORDER BY 1 DESC LIMIT 1 OFFSET 1", "cherry")]
    [InlineData("SELECT DISTINCT qty > 0 FROM items WHERE qty IS NOT NULL ORDER BY 1 LIMIT 1", "f")]
    [InlineData("SELECT sum(qty) OVER (ORDER BY id) FROM items ORDER BY id DESC LIMIT 1", "13")]
    [InlineData("SELECT row_number() OVER (ORDER BY name DESC) FROM items WHERE id = 1", "1")]
    [InlineData("SELECT r FROM (SELECT id, row_number() OVER (ORDER BY name DESC) AS r FROM items) x WHERE id = 1", "4")]
    [InlineData("SELECT count(*) FROM generate_series(1, 10) g WHERE g % 2 = 0", "5")]
    [InlineData("SELECT greatest(1, 5, 3), least('b', 'a')", "5")]
    [InlineData("SELECT nullif(1, 1) IS NULL", "t")]
    [InlineData("SELECT 1 BETWEEN 0 AND 2 AND NOT 3 BETWEEN 0 AND 2", "t")]
    [InlineData("SELECT NULL = NULL IS NULL", "t")]
    [InlineData("SELECT current_database()", "testdb")]
    [InlineData("SELECT a.name FROM items a JOIN items b ON a.id = b.id + 1 WHERE b.name = 'apple'", "banana")]
    [InlineData("SELECT count(*) FROM items a CROSS JOIN items b", "16")]
    [InlineData("SELECT count(*) FROM items a FULL JOIN (SELECT 9 AS id) b ON a.id = b.id", "5")]
    [InlineData("SELECT qty, count(*) FROM items GROUP BY qty HAVING count(*) >= 1 ORDER BY qty NULLS FIRST LIMIT 1", "NULL")]
    public async Task Query_ReturnsPostgresAnswer(string sql, string expected)
    {
        var s = await SeededAsync();
        Assert.Equal(expected, await s.ScalarAsync(sql));
    }

    [Fact]
    public async Task OnConflict_AndReturning()
    {
        var s = await SeededAsync();
        var rows = await s.QueryAsync("INSERT INTO items (id, name) VALUES (1, 'x') ON CONFLICT (id) DO UPDATE SET name = excluded.name || items.name RETURNING id, name");
        Assert.Equal(["1", "xapple"], rows[0]);
        Assert.Equal("INSERT 0 0", await s.RunAsync("INSERT INTO items (id, name) VALUES (2, 'y') ON CONFLICT DO NOTHING"));
        var deleted = await s.QueryAsync("DELETE FROM items WHERE qty = 0 RETURNING name");
        Assert.Equal("date", deleted[0][0]);
        Assert.Equal("UPDATE 2", await s.RunAsync("UPDATE items SET qty = coalesce(qty, 0) + 1 WHERE price < 2"));
    }

    [Fact]
    public async Task AlterTable_AddDropColumnsAndPrimaryKey()
    {
        var s = _db.Session();
        await s.RunAsync("CREATE TABLE h (tid int, delta int)");
        await s.RunAsync("INSERT INTO h VALUES (1, 10), (2, 20)");
        await s.RunAsync("ALTER TABLE h ADD COLUMN note text DEFAULT 'n'");
        Assert.Equal("n", await s.ScalarAsync("SELECT note FROM h WHERE tid = 2"));
        await s.RunAsync("ALTER TABLE h ADD PRIMARY KEY (tid)");
        await s.FailsAsync("INSERT INTO h VALUES (1, 5)", "23505");
        await s.RunAsync("ALTER TABLE h DROP COLUMN delta");
        Assert.Equal(["1", "n"], (await s.QueryAsync("SELECT * FROM h ORDER BY tid"))[0]);
        await s.RunAsync("CREATE INDEX h_note ON h (note)");
        Assert.Equal("2", await s.ScalarAsync("SELECT count(*) FROM h WHERE note = 'n'"));
        await s.RunAsync("TRUNCATE h");
        Assert.Equal("0", await s.ScalarAsync("SELECT count(*) FROM h"));
        await s.RunAsync("DROP TABLE h");
        await s.FailsAsync("SELECT * FROM h", "42P01");
    }

    [Fact]
    public async Task ViewsSequencesAndIdentity()
    {
        var s = _db.Session();
        await s.RunAsync("CREATE TABLE t (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, v text)");
        await s.RunAsync("INSERT INTO t (v) VALUES ('a'), ('b')");
        Assert.Equal("2", await s.ScalarAsync("SELECT max(id) FROM t"));
        await s.RunAsync("CREATE VIEW tv AS SELECT id, upper(v) AS u FROM t");
        Assert.Equal("B", await s.ScalarAsync("SELECT u FROM tv WHERE id = 2"));
        await s.RunAsync("CREATE SEQUENCE s START 10 INCREMENT 5");
        Assert.Equal("10", await s.ScalarAsync("SELECT nextval('s')"));
        Assert.Equal("15", await s.ScalarAsync("SELECT nextval('s')"));
        Assert.Equal("15", await s.ScalarAsync("SELECT currval('s')"));
    }

    [Fact]
    public async Task IndexSelection_ShowsInExplain()
    {
        var s = await SeededAsync();
        await s.RunAsync("CREATE INDEX items_name ON items (name)");
        var plan = string.Join("\n", (await s.QueryAsync("EXPLAIN SELECT * FROM items WHERE name = 'apple'")).Select(r => r[0]));
        Assert.True(plan.Contains("items_name", StringComparison.Ordinal), plan);
        var point = string.Join("\n", (await s.QueryAsync("EXPLAIN SELECT * FROM items WHERE id = 3")).Select(r => r[0]));
        Console.WriteLine(point);
        Assert.Contains("items_pkey", point);
        Assert.Equal("apple", await s.ScalarAsync("SELECT name FROM items WHERE name = 'apple'"));
        Assert.Equal("banana", await s.ScalarAsync("SELECT name FROM items WHERE name > 'apple' ORDER BY name LIMIT 1"));
    }

    [Fact]
    public async Task Errors_HaveSqlStates()
    {
        var s = await SeededAsync();
        await s.FailsAsync("SELECT nope FROM items", "42703");
        await s.FailsAsync("SELECT * FROM nope", "42P01");
        await s.FailsAsync("SELECT 1/0", "22012");
        await s.FailsAsync("SELECT 'x'::int", "22P02");
        await s.FailsAsync("SELECT name, count(*) FROM items", "42803");
        await s.FailsAsync("SELEC 1", "42601");
        await s.FailsAsync("SELECT 2147483647::int + 1", "22003");
        await s.FailsAsync("SELECT (SELECT id FROM items)", "21000");
        Assert.Equal("1", await s.ScalarAsync("SELECT 1"));
    }

    [Fact]
    public async Task Limits_GiveSqlStatesNotCrashes()
    {
        var s = _db.Session();
        await s.RunAsync("CREATE TABLE big (id int PRIMARY KEY, body text)");
        await s.FailsAsync("INSERT INTO big VALUES (1, repeat('x', 5000000))", "54000");
        await s.FailsAsync("CREATE TABLE k (id text PRIMARY KEY); INSERT INTO k VALUES (repeat('k', 5000))", "54000");
        await s.RunAsync("SET statement_timeout = 50");
        await s.FailsAsync("SELECT count(*) FROM generate_series(1, 100000000) a", "57014");
        await s.RunAsync("SET statement_timeout = 0");
        var small = new SqlTestDatabase();
        var limited = new Sessions.SqlDatabase(small.Store, 7, "limited", new Sessions.SqlOptions { StatementMemoryBytes = 1 << 20 }).OpenSession("owner");
        await limited.FailsAsync("SELECT g FROM generate_series(1, 200000) g ORDER BY g DESC", "53200");
        Assert.Equal("1", await limited.ScalarAsync("SELECT 1"));
        small.Dispose();
        Assert.Equal("0", await s.ScalarAsync("SELECT count(*) FROM big"));
    }

    [Fact]
    public async Task TenantsAreIsolatedInOneEngine()
    {
        var other = new Sessions.SqlDatabase(_db.Store, 43, "other").OpenSession("owner");
        var s = _db.Session();
        await s.RunAsync("CREATE TABLE secrets (id int PRIMARY KEY, v text)");
        await s.RunAsync("INSERT INTO secrets VALUES (1, 'tenant 42')");
        await other.FailsAsync("SELECT * FROM secrets", "42P01");
        Assert.Equal("0", await other.ScalarAsync("SELECT count(*) FROM pg_class WHERE relname = 'secrets'"));
        Assert.Equal("other", await other.ScalarAsync("SELECT string_agg(datname, ',') FROM pg_database"));
        await other.RunAsync("CREATE TABLE secrets (id int PRIMARY KEY, v text)");
        Assert.Equal("0", await other.ScalarAsync("SELECT count(*) FROM secrets"));
        Assert.Equal("1", await s.ScalarAsync("SELECT count(*) FROM secrets"));
    }

    [Fact]
    public async Task PrepareExecuteAndExplainAnalyze()
    {
        var s = await SeededAsync();
        await s.RunAsync("PREPARE byid (int) AS SELECT name FROM items WHERE id = $1");
        Assert.Equal("cherry", await s.ScalarAsync("EXECUTE byid (3)"));
        await s.RunAsync("DEALLOCATE byid");
        await s.FailsAsync("EXECUTE byid (3)", "26000");
        var plan = await s.QueryAsync("EXPLAIN ANALYZE SELECT count(*) FROM items");
        Assert.Contains(plan, r => r[0].Contains("Execution Time", StringComparison.Ordinal));
    }

    [Fact]
    public async Task RelationSizes_CountStoredBytes()
    {
        var s = await SeededAsync();
        await s.RunAsync("CREATE INDEX items_name ON items (name)");
        var rows = long.Parse(await s.ScalarAsync("SELECT pg_relation_size('items')"), System.Globalization.CultureInfo.InvariantCulture);
        var total = long.Parse(await s.ScalarAsync("SELECT pg_total_relation_size('items'::regclass)"), System.Globalization.CultureInfo.InvariantCulture);
        var indexes = long.Parse(await s.ScalarAsync("SELECT pg_indexes_size('items')"), System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(rows > 0 && indexes > 0 && total == rows + indexes, $"{rows} {indexes} {total}");
        await s.RunAsync("INSERT INTO items (id, name) VALUES (10, 'fig')");
        Assert.True(long.Parse(await s.ScalarAsync("SELECT pg_relation_size('items')"), System.Globalization.CultureInfo.InvariantCulture) > rows);
        Assert.NotEqual("0", await s.ScalarAsync("SELECT pg_database_size(current_database())"));
    }
}
