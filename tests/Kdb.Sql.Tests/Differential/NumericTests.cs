using Kdb.Testing;
using Kdb.Testing.Postgres;

namespace Kdb.Sql.Tests.Differential;

/// <summary>
/// Arbitrary-precision numeric against PostgreSQL 15: values past decimal's 28 digits through arithmetic, division's
/// display scale, rounding, casts, aggregates, keys and indexes. Unlike the general comparer (which forgives long
/// fractions), every cell here must equal PostgreSQL's text exactly: the digits are the point.
/// </summary>
[Collection(TestCollections.Postgres)]
public sealed class NumericTests(PostgresFixture server)
{
    private static readonly string[] Setup =
    [
        "CREATE TABLE big (id int PRIMARY KEY, v numeric, w numeric(40,10))",
        "INSERT INTO big VALUES (1, 123456789012345678901234567890123, 1.5), (2, -0.0000000000000000000000000000000012345, 123456789012345678901234567890.0123456789)," +
            " (3, 1.5, -99999999999999999999999999999.9999999999), (4, 1e40, 0), (5, NULL, NULL), (6, 123456789012345678901234567890123.000, 2.25)",
        "CREATE INDEX big_v ON big (v)",
        "CREATE TABLE bk (k numeric PRIMARY KEY, tag text)",
        "INSERT INTO bk VALUES (1e40, 'a'), (1e40 + 1, 'b'), (1.0000000000000000000000000000001, 'c'), (1, 'd'), (-1e40, 'e'), (0.5, 'f'), (1e-35, 'g'), (1e250, 'h'), (-1e250, 'i'), (1e-100, 'j'), (-1e-100, 'k')",
    ];

    private static readonly string[] Answers =
    [
        "SELECT 12345678901234567890123456789012345678901234567890 + 1, 12345678901234567890123456789012345678901234567890 - 0.001",
        "SELECT 1.000000000000000000000000000000001 * 3, 99999999999999999999999999999.99 * 99999999999999999999999999999.99",
        "SELECT 0.1234567890123456789 * 0.1234567890123456789, -12345678901234.5678901234 * 98765432109876.5432109876",
        "SELECT 1::numeric / 3, 2::numeric / 3, 10::numeric / 4, 1 / 7.0, 100000::numeric / 3",
        "SELECT 123456789012345678901234567890 / 7, 1 / 3.000000000000000000000000000000000000, 0.0000000000000000000000000000001 / 3",
        "SELECT 1234567890123456789012345678901234567890 / 0.00001, 2 / 123456789012345678901234567890.0, -5::numeric / 3",
        "SELECT 10000000000000000000000000000000 % 7, -123456789012345678901234567890.5 % 7.25, 7.5 % -2",
        "SELECT round(2.5555555555555555555555555555555555, 30), round(-1234567890123456789012345678901.5), trunc(1.99999999999999999999999999999999, 31)",
        "SELECT round(123456789012345678901234567890.12, -5), round(1.5, 3), trunc(-2.75, 1), round(-0.5), round(2.5)",
        "SELECT floor(-12345678901234567890123456789.5), ceil(12345678901234567890123456789.1), abs(-1e40), sign(-1e40), -(1e40)",
        "SELECT '1e40'::numeric, '-0.000000000000000000000000000000000012345'::numeric, '1.5e35'::numeric, ' +.5e-30 '::numeric, '1e5'::numeric",
        "SELECT 1e40::float8::numeric, 1e-40::float8::numeric, 1e40::numeric::float8, 12345678901234567890123456789012.5::float8",
        "SELECT 1234567890123456789.4999999999999999999999999999999::bigint, 2.5000000000000000000000000000001::int, 1e40::text",
        "SELECT 1.23456789012345678901234567890123456789::numeric(40,38), 12345678901234567890123456789012345.678::numeric(40,2), 0.000000000000000000000000000000005::numeric(40,32)",
        "SELECT 1e40 > 1e39, 1e40 = 10000000000000000000000000000000000000000.000, 0.1000000000000000000000000000000001 > 0.1, 1e40 > 5, 1e40 < 1e41::float8",
        "SELECT id, v, w FROM big ORDER BY v NULLS FIRST, id",
        "SELECT id, v FROM big ORDER BY v DESC, id",
        "SELECT sum(v), avg(v), sum(w), avg(w), min(v), max(v), count(DISTINCT v) FROM big",
        "SELECT count(*), min(id) FROM big GROUP BY v ORDER BY min(id)",
        "SELECT id FROM big WHERE v = 123456789012345678901234567890123 ORDER BY id",
        "SELECT id FROM big WHERE v > 1e30 ORDER BY id",
        "SELECT id, w * 2, w / 3, w + v FROM big ORDER BY id",
        "SELECT k, tag FROM bk ORDER BY k",
        "SELECT k, tag FROM bk WHERE k >= 1 AND k < 1e40 ORDER BY k DESC",
        "SELECT a.tag, b.id FROM bk a JOIN big b ON a.k = b.v ORDER BY 1, 2",
        "SELECT sum(x) FROM (VALUES (9223372036854775807::bigint), (9223372036854775807::bigint)) t(x)",
        "SELECT sum(x), avg(x) FROM (VALUES (99999999999999999999999999999.9), (99999999999999999999999999999.9), (0.00000000000000000000001)) t(x)",
        "SELECT pg_typeof(1e40)::text, pg_typeof(1e40 + 1)::text",
        "UPDATE big SET w = w / 7 WHERE id = 2 RETURNING id, w",
        "SELECT length('1e1001'::numeric::text), '-1e-300'::numeric::text, '1e1001'::numeric > 1e1000",
        "SELECT id, w FROM big ORDER BY id",
    ];

    private static readonly string[] Errors =
    [
        "SELECT 1e40::numeric(39,0)",
        "SELECT 1::numeric(1001, 0)",
        "SELECT 1e40 / 0",
        "SELECT 1e40 % 0.0",
        "SELECT 1e40::bigint",
        "SELECT 2147483648.5::int",
        "SELECT 'abc'::numeric",
        "SELECT '1e'::numeric",
        "SELECT '1.2.3'::numeric",
        "SELECT '1e200000'::numeric",
        "SELECT '1e-20000'::numeric",
        "SELECT '1e-1000000'::numeric",
        "SELECT '1e2000000000'::numeric",
        "SELECT 1e40::numeric(1000, 999)",
        "SELECT '.'::numeric",
        "INSERT INTO big VALUES (99, 1, 1e31)",
        "INSERT INTO bk VALUES (1.00, 'dup')",
        "INSERT INTO bk VALUES (10000000000000000000000000000000000000000.0, 'dup')",
    ];

    // PostgreSQL 15's numeric(p,s) with s < 0 (rounding to tens, hundreds, ...) or s > p (only digits after the point).
    private static readonly string[] TypmodSetup =
    [
        "CREATE TABLE tm (id int PRIMARY KEY, a numeric(3,-1), b numeric(2,4), c numeric(5,-3))",
        "INSERT INTO tm VALUES (1, 1234, 0.0012345, 1234567), (2, -5, 0.0099, -499), (3, NULL, 0.00005, 500)",
    ];

    private static readonly string[] TypmodAnswers =
    [
        "SELECT 12345.678::numeric(5,-2), 123.4::numeric(3,-1), 0.00123::numeric(3,5), 949::numeric(1,-2), 1::numeric(3,-2)",
        "SELECT '1e3'::numeric(2,-3), '-0.5'::numeric(1,-1), 5::numeric(1,-1), 15::numeric(1,-1), -15::numeric(1,-1), 0.004::numeric(2,3), 0.0049::numeric(2,3)",
        "SELECT 1::numeric(2,-1000), 0::numeric(2,1000), '1e-1000'::numeric(1,1000)::text = '0.' || repeat('0', 999) || '1', 1234::numeric(3,-1)::numeric(2,-2), round(1234.5::numeric(5,-1), -2)",
        "SELECT CAST(1234.5 AS numeric(4,-1)), 1234.5::decimal(4,-1), 12345::numeric(3, - 3) * 1, 123456789012345678901234567890123::numeric(40,-5)",
        "SELECT id, a, b, c FROM tm ORDER BY id",
        "SELECT format_type(atttypid, atttypmod), atttypmod FROM pg_attribute WHERE attrelid = 'tm'::regclass AND attnum > 1 ORDER BY attnum",
        "SELECT column_name, numeric_precision, numeric_scale FROM information_schema.columns WHERE table_name = 'tm' AND column_name <> 'id' ORDER BY ordinal_position",
        "UPDATE tm SET a = a + 7, c = c * 2 WHERE id = 1 RETURNING a, c",
    ];

    private static readonly string[] TypmodErrors =
    [
        "SELECT 0.1::numeric(3,5)",
        "SELECT 99999::numeric(3,-2)",
        "SELECT 950::numeric(1,-2)",
        "SELECT 0.0999::numeric(2,3)",
        "SELECT 1::numeric(2,1000)",
        "SELECT 1::numeric(2,-1001)",
        "SELECT 1::numeric(2,1001)",
        "SELECT 1::numeric(0,0)",
        "SELECT 1::numeric(1,2,3)",
        "SELECT 1::numeric(3,+1)",
        "SELECT 1::varchar(-1)",
        "INSERT INTO tm VALUES (9, 9999, 0, 0)",
        "INSERT INTO tm VALUES (9, 0, 0.01, 0)",
        "CREATE TABLE tbad (x numeric(5,-1001))",
    ];

    [Fact]
    public Task Typmods_MatchPostgresDigitForDigit() => AnswersMatchDigitForDigitAsync("numtypmod", TypmodSetup, TypmodAnswers);

    [Fact]
    public Task TypmodErrors_MatchPostgres() => DiffCases.ErrorsMatchAsync(server, "numtypmoderr", TypmodSetup, TypmodErrors);

    [Fact]
    public Task Answers_MatchPostgresDigitForDigit() => AnswersMatchDigitForDigitAsync("bignum", Setup, Answers);

    private async Task AnswersMatchDigitForDigitAsync(string name, string[] setup, string[] answers)
    {
        var failures = new List<string>();
        await DiffCases.RunAllAsync(server, name, setup, answers, (sql, kdb, pg) =>
        {
            if (pg.IsError || kdb.IsError || !SameText(kdb, pg))
            {
                failures.Add($"{sql}\nkdb: {kdb.Describe()}\npg:  {pg.Describe()}");
            }
        });
        Assert.True(failures.Count == 0, string.Join("\n\n", failures));
    }

    [Fact]
    public Task Errors_MatchPostgres() => DiffCases.ErrorsMatchAsync(server, "bignumerr", Setup, Errors);

    private static bool SameText(DiffOutcome kdb, DiffOutcome pg)
    {
        if (!kdb.Names.SequenceEqual(pg.Names) || !kdb.TypeOids.SequenceEqual(pg.TypeOids) || kdb.Rows.Count != pg.Rows.Count)
        {
            return false;
        }

        for (var r = 0; r < kdb.Rows.Count; r++)
        {
            if (!kdb.Rows[r].SequenceEqual(pg.Rows[r]))
            {
                return false;
            }
        }

        return true;
    }
}
