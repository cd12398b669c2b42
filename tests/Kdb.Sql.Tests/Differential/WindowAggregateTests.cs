using Kdb.Testing;
using Kdb.Testing.Postgres;

namespace Kdb.Sql.Tests.Differential;

/// <summary>
/// Aggregates inside window functions against PostgreSQL 15: a window over the grouped rows (sum(count(*)) OVER,
/// rank() OVER (ORDER BY sum(x))), in arguments, keys, named windows and ORDER BY; and the misuses PostgreSQL
/// rejects (nested aggregates, ungrouped columns, windows inside windows) with its SQLSTATEs.
/// </summary>
[Collection(TestCollections.Postgres)]
public sealed class WindowAggregateTests(PostgresFixture server) : DiffCaseSuite(server, "winagg", Setup, AnswerQueries, ErrorQueries)
{
    private static readonly string[] Setup =
    [
        "CREATE TABLE sale (id int PRIMARY KEY, region text NOT NULL, item text NOT NULL, qty int NOT NULL, price numeric(8,2))",
        "INSERT INTO sale VALUES (1, 'n', 'a', 3, 1.50), (2, 'n', 'b', 1, 2.00), (3, 's', 'a', 7, 1.50), (4, 's', 'a', 2, NULL)," +
            " (5, 'e', 'c', 4, 9.99), (6, 'n', 'a', 5, 1.25), (7, 'w', 'b', 1, 2.00), (8, 's', 'c', 6, 3.00)",
    ];

    private static readonly string[] AnswerQueries =
    [
        "SELECT region, count(*), sum(count(*)) OVER () FROM sale GROUP BY region ORDER BY region",
        "SELECT region, sum(qty), rank() OVER (ORDER BY sum(qty) DESC) FROM sale GROUP BY region ORDER BY region",
        "SELECT region, sum(qty), dense_rank() OVER (ORDER BY sum(qty)), row_number() OVER (ORDER BY sum(qty), region) FROM sale GROUP BY region ORDER BY region",
        "SELECT region, item, sum(qty), sum(sum(qty)) OVER (PARTITION BY region) FROM sale GROUP BY region, item ORDER BY region, item",
        "SELECT region, item, count(*), sum(count(*)) OVER (PARTITION BY region ORDER BY item) FROM sale GROUP BY region, item ORDER BY region, item",
        "SELECT item, avg(price), max(avg(price)) OVER (), min(sum(qty)) OVER () FROM sale GROUP BY item ORDER BY item",
        "SELECT item, sum(qty) * 100 / sum(sum(qty)) OVER () AS pct FROM sale GROUP BY item ORDER BY item",
        "SELECT region, rank() OVER (PARTITION BY count(*) > 2 ORDER BY max(qty)) FROM sale GROUP BY region ORDER BY region",
        "SELECT count(*), sum(count(*)) OVER () FROM sale",
        "SELECT rank() OVER (ORDER BY sum(qty)) FROM sale",
        "SELECT region, sum(qty) FROM sale GROUP BY region ORDER BY rank() OVER (ORDER BY sum(qty) DESC), region",
        "SELECT region, sum(count(*)) OVER w, rank() OVER w FROM sale GROUP BY region WINDOW w AS (ORDER BY count(*), region) ORDER BY region",
        "SELECT region, count(*) FILTER (WHERE qty > 2), sum(count(*) FILTER (WHERE qty > 2)) OVER () FROM sale GROUP BY region ORDER BY region",
        "SELECT region, string_agg(item, ',' ORDER BY item), count(*) OVER () FROM sale GROUP BY region HAVING sum(qty) > 2 ORDER BY region",
        "SELECT region, lag(sum(qty)) OVER (ORDER BY region), lead(count(*), 1, 0::bigint) OVER (ORDER BY region) FROM sale GROUP BY region ORDER BY region",
        "SELECT region, first_value(region) OVER (ORDER BY sum(price) DESC NULLS LAST) FROM sale GROUP BY region ORDER BY region",
        "SELECT sum(qty) OVER (ORDER BY id), id FROM sale ORDER BY id",
        "SELECT sum(count(*)) OVER (ORDER BY generate_series(1, 2)) FROM sale",
    ];

    private static readonly string[] ErrorQueries =
    [
        "SELECT sum(sum(qty)) FROM sale",
        "SELECT sum(sum(count(*))) OVER () FROM sale",
        "SELECT region, sum(qty) OVER () FROM sale GROUP BY region",
        "SELECT region, rank() OVER (ORDER BY qty) FROM sale GROUP BY region",
        "SELECT sum(rank() OVER ()) FROM sale",
        "SELECT sum(sum(qty) OVER ()) OVER () FROM sale",
        "SELECT region FROM sale GROUP BY region HAVING rank() OVER () > 1",
        "SELECT region FROM sale WHERE sum(qty) OVER () > 1",
        "SELECT region, count(*) FROM sale GROUP BY region, rank() OVER ()",
    ];
}
