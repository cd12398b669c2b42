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
}
