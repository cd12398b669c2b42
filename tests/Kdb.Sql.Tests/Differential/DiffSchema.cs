using System.Globalization;
using System.Text;

namespace Kdb.Sql.Tests.Differential;

/// <summary>The column types the generator uses; each maps to one PostgreSQL type.</summary>
public enum DiffType
{
    Int,
    BigInt,
    Numeric,
    Text,
    Bool,
    Date,
    Timestamp,
}

/// <summary>A generated column. <see cref="References"/> names the parent table of a foreign key.</summary>
public sealed record DiffColumn(string Name, DiffType Type, bool NotNull, string? References = null, bool Unique = false, string OnDelete = "");

/// <summary>A generated table: its first column <c>id</c> is the primary key.</summary>
public sealed record DiffTable(string Name, IReadOnlyList<DiffColumn> Columns, int RowCount);

/// <summary>
/// A seeded random schema (3–6 tables with int, bigint, numeric, text, bool, date and timestamp columns, NULLs,
/// primary keys, secondary indexes and foreign keys) and its data (50–300 rows a table), as SQL text that runs
/// unchanged on kdb and on PostgreSQL. Values come from small domains so that joins, GROUP BY and DISTINCT
/// meet duplicates and NULLs often.
/// </summary>
public sealed class DiffSchema
{
    /// <summary>
    /// Words for text columns: mixed case, LIKE metacharacters, a quote, an empty string. ASCII only: the test server
    /// runs with the C locale, where upper/lower leave non-ASCII letters alone, which says nothing about kdb.
    /// </summary>
    internal static readonly string[] Words =
    [
        "apple", "Apple", "banana", "cherry", "date", "elder fig", "a_b", "50%", "", "o'neil", "zeta", " pad ", "Banana", "kiwi",
    ];

    /// <summary>Referential actions of generated foreign keys (the empty string is NO ACTION).</summary>
    private static readonly string[] ForeignKeyActions = ["", "", " ON DELETE CASCADE", " ON DELETE SET NULL", " ON UPDATE CASCADE", " ON DELETE RESTRICT"];

    private DiffSchema(int seed, List<DiffTable> tables, List<string> ddl, List<string> data)
    {
        Seed = seed;
        Tables = tables;
        Ddl = ddl;
        Data = data;
    }

    /// <summary>The seed everything was generated from.</summary>
    public int Seed { get; }

    /// <summary>Tables in creation order (a foreign key only points to an earlier table).</summary>
    public IReadOnlyList<DiffTable> Tables { get; }

    /// <summary>CREATE TABLE and CREATE INDEX statements.</summary>
    public IReadOnlyList<string> Ddl { get; }

    /// <summary>INSERT statements loading the data.</summary>
    public IReadOnlyList<string> Data { get; }

    /// <summary>Generates the schema and data of <paramref name="seed"/>.</summary>
    public static DiffSchema Generate(int seed)
    {
        var random = new Random(seed);
        var tables = new List<DiffTable>();
        var ddl = new List<string>();
        var data = new List<string>();
        var tableCount = random.Next(3, 7);
        for (var t = 1; t <= tableCount; t++)
        {
            var name = "t" + t;
            var columns = new List<DiffColumn> { new("id", t > 1 && random.Next(4) == 0 ? DiffType.BigInt : DiffType.Int, true) };
            var extra = random.Next(3, 7);
            for (var c = 1; c <= extra; c++)
            {
                var type = (DiffType)random.Next(7);
                columns.Add(new DiffColumn(Prefix(type) + c, type, random.Next(6) == 0));
            }

            // Every table after the first refers to an earlier one, so multi-table joins have keys to follow.
            if (t > 1)
            {
                var parent = random.Next(1, t);
                columns.Add(new DiffColumn("r" + parent, tables[parent - 1].Columns[0].Type, false, "t" + parent, OnDelete: ForeignKeyActions[random.Next(ForeignKeyActions.Length)]));
                if (random.Next(3) == 0 && t > 2)
                {
                    var other = random.Next(1, t);
                    if (other != parent)
                    {
                        columns.Add(new DiffColumn("r" + other, tables[other - 1].Columns[0].Type, false, "t" + other));
                    }
                }
            }

            if (random.Next(3) == 0)
            {
                columns.Add(new DiffColumn("code", DiffType.Text, false, Unique: true));
            }

            var table = new DiffTable(name, columns, random.Next(50, 301));
            tables.Add(table);
            ddl.Add(CreateTable(table));
            var indexed = columns.Where(c => c.Name != "id" && !c.Unique).ToList();
            var indexCount = random.Next(0, 3);
            for (var i = 0; i < indexCount && indexed.Count > 0; i++)
            {
                var column = indexed[random.Next(indexed.Count)];
                indexed.Remove(column);
                ddl.Add($"CREATE INDEX {name}_{column.Name}_idx ON {name} ({column.Name})");
            }
        }

        foreach (var table in tables)
        {
            data.AddRange(Rows(random, table, tables));
        }

        return new DiffSchema(seed, tables, ddl, data);
    }

    /// <summary>The short prefix that names a column of <paramref name="type"/>.</summary>
    internal static string Prefix(DiffType type) => type switch
    {
        DiffType.Int => "i",
        DiffType.BigInt => "b",
        DiffType.Numeric => "n",
        DiffType.Text => "s",
        DiffType.Bool => "f",
        DiffType.Date => "d",
        _ => "ts",
    };

    /// <summary>The PostgreSQL type name.</summary>
    internal static string SqlName(DiffType type) => type switch
    {
        DiffType.Int => "integer",
        DiffType.BigInt => "bigint",
        DiffType.Numeric => "numeric(10,2)",
        DiffType.Text => "text",
        DiffType.Bool => "boolean",
        DiffType.Date => "date",
        _ => "timestamp",
    };

    /// <summary>A random literal of <paramref name="type"/> (never NULL), in the value domain of the data.</summary>
    internal static string Literal(Random random, DiffType type)
    {
        switch (type)
        {
            case DiffType.Int:
                return random.Next(40) == 0 ? "2147483647" : random.Next(-5, 21).ToString(CultureInfo.InvariantCulture);
            case DiffType.BigInt:
                return random.Next(10) == 0 ? "9000000000" : random.Next(-5, 21).ToString(CultureInfo.InvariantCulture);
            case DiffType.Numeric:
                return (random.Next(-2000, 2001) / 20m).ToString("0.00", CultureInfo.InvariantCulture);
            case DiffType.Text:
                return Quote(Words[random.Next(Words.Length)]);
            case DiffType.Bool:
                return random.Next(2) == 0 ? "true" : "false";
            case DiffType.Date:
                return "DATE '" + new DateOnly(2020, 1, 1).AddDays(random.Next(0, 60) * 25).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture) + "'";
            default:
                var at = new DateTime(2020, 1, 1).AddDays(random.Next(0, 60) * 25).AddSeconds(random.Next(0, 4) * 3600 * 7 + random.Next(0, 2) * 59);
                return "TIMESTAMP '" + at.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture) + "'";
        }
    }

    internal static string Quote(string text) => "'" + text.Replace("'", "''", StringComparison.Ordinal) + "'";

    private static string CreateTable(DiffTable table)
    {
        var sql = new StringBuilder($"CREATE TABLE {table.Name} (");
        for (var i = 0; i < table.Columns.Count; i++)
        {
            var column = table.Columns[i];
            sql.Append(i == 0 ? string.Empty : ", ").Append(column.Name).Append(' ').Append(SqlName(column.Type));
            if (i == 0)
            {
                sql.Append(" PRIMARY KEY");
            }
            else if (column.NotNull)
            {
                sql.Append(" NOT NULL");
            }

            if (column.Unique)
            {
                sql.Append(" UNIQUE");
            }

            if (column.References is not null)
            {
                sql.Append(" REFERENCES ").Append(column.References).Append(" (id)").Append(column.OnDelete);
            }
        }

        return sql.Append(')').ToString();
    }

    private static IEnumerable<string> Rows(Random random, DiffTable table, List<DiffTable> tables)
    {
        var rows = new List<string>();
        for (var row = 1; row <= table.RowCount; row++)
        {
            var values = new StringBuilder("(");
            for (var i = 0; i < table.Columns.Count; i++)
            {
                var column = table.Columns[i];
                values.Append(i == 0 ? string.Empty : ", ");
                if (i == 0)
                {
                    // Keys with gaps and a few negatives, so range predicates and joins miss now and then.
                    var id = row * 2 - (row % 7 == 0 ? 1 : 0);
                    values.Append(column.Type == DiffType.BigInt && row % 50 == 0 ? 5_000_000_000L + row : id);
                }
                else if (column.References is not null)
                {
                    var parent = tables.First(t => t.Name == column.References);
                    if (random.Next(8) == 0)
                    {
                        values.Append("NULL");
                    }
                    else
                    {
                        var parentRow = random.Next(1, parent.RowCount + 1);
                        values.Append(parent.Columns[0].Type == DiffType.BigInt && parentRow % 50 == 0 ? 5_000_000_000L + parentRow : parentRow * 2 - (parentRow % 7 == 0 ? 1 : 0));
                    }
                }
                else if (column.Unique)
                {
                    values.Append(random.Next(5) == 0 ? "NULL" : Quote("k" + row));
                }
                else if (!column.NotNull && random.Next(7) == 0)
                {
                    values.Append("NULL");
                }
                else
                {
                    values.Append(DataValue(random, column.Type));
                }
            }

            rows.Add(values.Append(')').ToString());
        }

        for (var start = 0; start < rows.Count; start += 60)
        {
            yield return $"INSERT INTO {table.Name} VALUES " + string.Join(", ", rows.Skip(start).Take(60));
        }
    }

    private static string DataValue(Random random, DiffType type) => type switch
    {
        DiffType.Int => random.Next(-5, 21).ToString(CultureInfo.InvariantCulture),
        DiffType.BigInt => random.Next(12) == 0 ? (random.NextInt64(-4_000_000_000_000, 4_000_000_000_000)).ToString(CultureInfo.InvariantCulture) : random.Next(-5, 21).ToString(CultureInfo.InvariantCulture),
        _ => Literal(random, type),
    };
}
