using Kdb.Testing;
using Kdb.Testing.Postgres;

namespace Kdb.Sql.Tests.Differential;

/// <summary>
/// INSERT and UPDATE coerce values to the column types by PostgreSQL's assignment rules: implicit and assignment
/// casts apply (numeric rounds to the column's scale, bigint narrows with a range check, anything goes to text,
/// timestamps truncate to dates), explicit-only casts are refused with 42804, and range and length errors are
/// 22003 and 22001. Compared with PostgreSQL 15.
/// </summary>
[Collection(TestCollections.Postgres)]
public sealed class AssignmentCoercionTests(PostgresFixture server) : DiffCaseSuite(server, "coerce", Setup, AnswerQueries, ErrorQueries)
{
    private static readonly string[] Setup =
    [
        "SET TIME ZONE 'UTC'",
        "CREATE TABLE c (id serial PRIMARY KEY, i2 smallint, i4 int, i8 bigint, n numeric(5,2), t text, vc varchar(3), ch char(3), d date, ts timestamp, tz timestamptz, b bool, f real, dp double precision)",
    ];

    private static readonly string[] AnswerQueries =
    [
        "INSERT INTO c (i2) VALUES (32767) RETURNING i2",
        "INSERT INTO c (i2) VALUES (-32768::bigint) RETURNING i2",
        "INSERT INTO c (i4) VALUES (2.5) RETURNING i4",
        "INSERT INTO c (i4) VALUES (-2.5) RETURNING i4",
        "INSERT INTO c (i4) VALUES (2.5::float8), (3.5::float8), (-0.5::float8) RETURNING i4",
        "INSERT INTO c (i8) VALUES (2.5::real) RETURNING i8",
        "INSERT INTO c (n) VALUES (1.005), (123.456), (-1.005), (999.994) RETURNING n",
        "INSERT INTO c (n) VALUES (7), (7::bigint), (1.5::float8) RETURNING n",
        "INSERT INTO c (t) VALUES (42), (1.50), (true), ('2024-01-02'::date) RETURNING t",
        "INSERT INTO c (t) VALUES (interval '1 day 02:00') RETURNING t",
        "INSERT INTO c (vc) VALUES ('abc   '), ('ab') RETURNING vc, length(vc)",
        "INSERT INTO c (ch) VALUES ('a'), ('abc  ') RETURNING ch, length(ch), octet_length(ch)",
        "INSERT INTO c (d) VALUES ('2024-01-02 10:00'::timestamp), ('2024-01-02 23:30+00'::timestamptz) RETURNING d",
        "INSERT INTO c (ts) VALUES ('2024-01-02'::date), ('2024-01-02 05:00+02'::timestamptz) RETURNING ts",
        "INSERT INTO c (tz) VALUES ('2024-01-02'::date), ('2024-01-02 05:00'::timestamp) RETURNING tz",
        "INSERT INTO c (i8) VALUES ('12'), (' 13 ') RETURNING i8",
        "INSERT INTO c (i2) SELECT 100::bigint RETURNING i2",
        "INSERT INTO c (i4) SELECT x FROM (VALUES (1.4), (1.6)) v(x) RETURNING i4",
        "INSERT INTO c (f, dp) VALUES (1.5, 0.1), (1e10, 12345678901234567890) RETURNING f, dp",
        "INSERT INTO c (b) VALUES ('yes'), ('off') RETURNING b",
        "UPDATE c SET i2 = 7::bigint WHERE i2 = 32767 RETURNING i2",
        "UPDATE c SET n = n * 1.001 WHERE n = 123.46 RETURNING n",
        "UPDATE c SET t = i4 WHERE i4 IS NOT NULL RETURNING t",
        "INSERT INTO c (i4, n) VALUES (DEFAULT, NULL) RETURNING i4, n",
        "INSERT INTO c (i2, i4, i8) VALUES (1::int, 2::smallint, 3::int) RETURNING i2, i4, i8",
        "SELECT count(*) FROM c",
    ];

    private static readonly string[] ErrorQueries =
    [
        "INSERT INTO c (i2) VALUES (32768)",
        "INSERT INTO c (i2) VALUES (40000::bigint)",
        "INSERT INTO c (i2) VALUES (32767.5)",
        "INSERT INTO c (i4) VALUES (2147483648)",
        "INSERT INTO c (i8) VALUES (9223372036854775808)",
        "INSERT INTO c (i4) VALUES (1e300::float8)",
        "INSERT INTO c (i4) VALUES ('x'::text)",
        "INSERT INTO c (i4) VALUES ('abc')",
        "INSERT INTO c (i4) VALUES ('1.5')",
        "INSERT INTO c (b) VALUES (1)",
        "INSERT INTO c (i4) VALUES (true)",
        "INSERT INTO c (d) VALUES (1)",
        "INSERT INTO c (ts) VALUES (1::int)",
        "INSERT INTO c (n) VALUES (1000)",
        "INSERT INTO c (n) VALUES (999.995)",
        "INSERT INTO c (vc) VALUES ('abcd')",
        "INSERT INTO c (ch) VALUES ('abcd')",
        "INSERT INTO c (i4) SELECT 'x'::text",
        "UPDATE c SET i4 = 'x'::text",
        "UPDATE c SET d = 5",
        "INSERT INTO c (i4) VALUES (1, 2)",
        "INSERT INTO c (i4, i2) VALUES (1)",
        "INSERT INTO c (nosuch) VALUES (1)",
        "INSERT INTO c (i4) VALUES ('2024-01-01'::date)",
        "INSERT INTO c (d) VALUES ('not a date')",
        "INSERT INTO c (b) VALUES ('maybe')",
        "INSERT INTO c (i4) VALUES (ARRAY[1])",
        "INSERT INTO c (i4) VALUES (NULL::text)",
        "INSERT INTO c (i4, i2) SELECT 1",
        "CREATE TABLE wide (n numeric(1001, 2))",
        "SELECT 1::numeric(0)",
    ];
}
