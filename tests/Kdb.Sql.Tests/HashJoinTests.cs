namespace Kdb.Sql.Tests;

/// <summary>
/// The hash join's integer-key table and row arena: duplicate keys on both sides, NULL keys, mixed integer widths,
/// outer joins' unmatched rows, and enough build rows to grow the table several times. Expected answers are
/// computed here from the same formulas.
/// </summary>
public sealed class HashJoinTests : IDisposable
{
    private readonly SqlTestDatabase _db = new();

    public void Dispose() => _db.Dispose();

    [Fact]
    public async Task IntegerKeys_WithDuplicatesNullsAndOuterRows_MatchTheFormulas()
    {
        var s = _db.Session();
        await s.RunAsync("CREATE TABLE l (id int PRIMARY KEY, k bigint, tag text)");
        await s.RunAsync("CREATE TABLE r (id int PRIMARY KEY, k smallint, v int)");
        await s.RunAsync("INSERT INTO l SELECT g, CASE WHEN g % 10 = 0 THEN NULL ELSE g % 700 END, 'l' || g FROM generate_series(1, 3000) g");
        await s.RunAsync("INSERT INTO r SELECT g, CASE WHEN g % 7 = 0 THEN NULL ELSE (g * 13) % 900 END, g FROM generate_series(1, 2500) g");

        var left = Enumerable.Range(1, 3000).Select(g => (Id: g, K: g % 10 == 0 ? (long?)null : g % 700)).ToList();
        var right = Enumerable.Range(1, 2500).Select(g => (Id: g, K: g % 7 == 0 ? (long?)null : g * 13 % 900)).ToList();
        var pairs = left.SelectMany(l => right.Where(r => l.K is not null && r.K == l.K).Select(r => (l, r))).ToList();
        var unmatchedLeft = left.Count(l => !right.Any(r => l.K is not null && r.K == l.K));
        var unmatchedRight = right.Count(r => !left.Any(l => r.K is not null && l.K == r.K));

        Assert.Equal(pairs.Count.ToString(), await s.ScalarAsync("SELECT count(*) FROM l JOIN r ON l.k = r.k"));
        Assert.Equal(pairs.Sum(p => (long)p.r.Id).ToString(), await s.ScalarAsync("SELECT sum(r.v) FROM l JOIN r ON r.k = l.k"));
        Assert.Equal((pairs.Count + unmatchedLeft).ToString(), await s.ScalarAsync("SELECT count(*) FROM l LEFT JOIN r ON l.k = r.k"));
        Assert.Equal((pairs.Count + unmatchedRight).ToString(), await s.ScalarAsync("SELECT count(*) FROM l RIGHT JOIN r ON l.k = r.k"));
        Assert.Equal((pairs.Count + unmatchedLeft + unmatchedRight).ToString(), await s.ScalarAsync("SELECT count(*) FROM l FULL JOIN r ON l.k = r.k"));
        Assert.Equal(unmatchedRight.ToString(), await s.ScalarAsync("SELECT count(*) FROM l FULL JOIN r ON l.k = r.k WHERE l.id IS NULL"));
        Assert.Equal(pairs.Count(p => p.l.Id < p.r.Id).ToString(), await s.ScalarAsync("SELECT count(*) FROM l JOIN r ON l.k = r.k AND l.id < r.id"));

        // The same join with the key repeated as text goes through the generic (non-integer) table.
        Assert.Equal(pairs.Count.ToString(), await s.ScalarAsync("SELECT count(*) FROM l JOIN r ON l.k::text = r.k::text"));
        var first = pairs.OrderBy(p => p.l.Id).ThenBy(p => p.r.Id).First();
        Assert.Equal([$"l{first.l.Id}", first.r.Id.ToString()], (await s.QueryAsync("SELECT l.tag, r.v FROM l JOIN r ON l.k = r.k ORDER BY l.id, r.id LIMIT 1"))[0]);
    }

    [Fact]
    public async Task DenseAndSparseBuildKeys_ProbesOutsideTheRangeAndExtremes_MatchTheFormulas()
    {
        // Build keys 1..n are dense (indexed by key - min); scaled by a large stride they are sparse (hashed); the
        // extremes of bigint make the key range overflow a signed subtraction. Probe keys fall below, inside and above.
        var s = _db.Session();
        await s.RunAsync("CREATE TABLE p (id int PRIMARY KEY, k bigint)");
        await s.RunAsync("CREATE TABLE dense (id int PRIMARY KEY, k bigint)");
        await s.RunAsync("CREATE TABLE sparse (id int PRIMARY KEY, k bigint)");
        await s.RunAsync("CREATE TABLE nulls (id int PRIMARY KEY, k bigint)");
        await s.RunAsync("INSERT INTO p SELECT g, g - 500 FROM generate_series(1, 3000) g");
        await s.RunAsync("INSERT INTO p VALUES (3001, 9223372036854775807), (3002, -9223372036854775808), (3003, NULL)");
        await s.RunAsync("INSERT INTO dense SELECT g, g % 1200 FROM generate_series(1, 2000) g");
        await s.RunAsync("INSERT INTO sparse SELECT g, (g % 1500) * 1000003 - 700000000 FROM generate_series(1, 2000) g");
        await s.RunAsync("INSERT INTO sparse VALUES (2001, 9223372036854775807), (2002, -9223372036854775808), (2003, NULL)");
        await s.RunAsync("INSERT INTO nulls VALUES (1, NULL), (2, NULL)");

        var probe = Enumerable.Range(1, 3000).Select(g => (long?)(g - 500)).Append(long.MaxValue).Append(long.MinValue).Append(null).ToList();
        var dense = Enumerable.Range(1, 2000).Select(g => (long?)(g % 1200)).ToList();
        var sparse = Enumerable.Range(1, 2000).Select(g => (long?)((g % 1500 * 1000003L) - 700000000)).Append(long.MaxValue).Append(long.MinValue).Append(null).ToList();
        static int Pairs(List<long?> l, List<long?> r) => l.Sum(a => r.Count(b => a is not null && a == b));
        static int Unmatched(List<long?> l, List<long?> r) => l.Count(a => !r.Any(b => a is not null && a == b));

        Assert.Equal(Pairs(probe, dense).ToString(), await s.ScalarAsync("SELECT count(*) FROM p JOIN dense d ON p.k = d.k"));
        Assert.Equal((Pairs(probe, dense) + Unmatched(probe, dense)).ToString(), await s.ScalarAsync("SELECT count(*) FROM p LEFT JOIN dense d ON p.k = d.k"));
        Assert.Equal((Pairs(probe, dense) + Unmatched(dense, probe)).ToString(), await s.ScalarAsync("SELECT count(*) FROM p RIGHT JOIN dense d ON p.k = d.k"));
        Assert.Equal(Pairs(probe, sparse).ToString(), await s.ScalarAsync("SELECT count(*) FROM p JOIN sparse x ON p.k = x.k"));
        Assert.Equal((Pairs(probe, sparse) + Unmatched(probe, sparse) + Unmatched(sparse, probe)).ToString(), await s.ScalarAsync("SELECT count(*) FROM p FULL JOIN sparse x ON p.k = x.k"));
        Assert.Equal("2", await s.ScalarAsync("SELECT count(*) FROM p JOIN sparse x ON p.k = x.k WHERE p.k IN (9223372036854775807, -9223372036854775808)"));
        Assert.Equal("0", await s.ScalarAsync("SELECT count(*) FROM p JOIN nulls n ON p.k = n.k"));
        Assert.Equal(probe.Count.ToString(), await s.ScalarAsync("SELECT count(*) FROM p LEFT JOIN nulls n ON p.k = n.k"));
        Assert.Equal("0", await s.ScalarAsync("SELECT count(*) FROM p JOIN (SELECT * FROM dense WHERE false) e ON p.k = e.k"));

        // Rows of one key come back newest build row first; the sum checks every duplicate was chained.
        Assert.Equal(dense.Select((k, i) => (k, Id: i + 1)).Where(d => d.k == 7).Sum(d => d.Id).ToString(), await s.ScalarAsync("SELECT sum(d.id) FROM p JOIN dense d ON p.k = d.k WHERE p.k = 7"));
    }

    [Fact]
    public async Task UngroupedAggregates_OverManyRowsAndNone_AreOneRow()
    {
        var s = _db.Session();
        await s.RunAsync("CREATE TABLE a (id int PRIMARY KEY, v int)");
        await s.RunAsync("INSERT INTO a SELECT g, g % 5 FROM generate_series(1, 1000) g");
        Assert.Equal(["1000", "2000", "0", "4"], (await s.QueryAsync("SELECT count(*), sum(v), min(v), max(v) FROM a"))[0]);
        Assert.Equal(["0", "NULL"], (await s.QueryAsync("SELECT count(*), sum(v) FROM a WHERE id < 0"))[0]);
        Assert.Single(await s.QueryAsync("SELECT count(*) FROM a HAVING count(*) > 0"));
        Assert.Empty(await s.QueryAsync("SELECT count(*) FROM a HAVING count(*) > 1000"));
    }
}
