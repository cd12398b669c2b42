using System.Diagnostics;
using System.Globalization;
using Kdb.Sql.Types;

namespace Kdb.Sql.Benchmarks;

/// <summary>
/// The four figures of issue 5, each measured on kdb and on SQLite in the same run over the same data: prepared
/// point SELECT by primary key, single-row autocommit INSERT, a count(*) of an equi-join, a GROUP BY. Data comes
/// from the same integer formulas on both sides, and each query's answer is checked equal before it is timed.
/// </summary>
internal static class SqlBench
{
    public static async Task RunAsync(KdbSide kdb, SqliteSide sqlite, BenchSettings settings, Action<string, double, string> emit)
    {
        await LoadAsync(kdb, sqlite, settings);
        await PointSelectAsync(kdb, sqlite, settings, emit);
        await InsertAsync(kdb, sqlite, settings, emit);
        await QueryAsync(kdb, sqlite, settings, emit, "join", $"join_{Size(settings.JoinRows)}", "SELECT count(*) FROM ja JOIN jb ON ja.id = jb.aid");
        emit("sql_join_100k_over_sqlite", Ratio("join"), "x");
        await QueryAsync(kdb, sqlite, settings, emit, "groupby", $"groupby_{Size(settings.GroupRows)}", "SELECT grp, count(*), sum(v) FROM g GROUP BY grp");
        emit("sql_groupby_1m_over_sqlite", Ratio("groupby"), "x");
    }

    private static readonly Dictionary<string, (double Kdb, double Sqlite)> Rates = [];

    private static string Size(int rows) => rows >= 1_000_000 ? $"{rows / 1_000_000}m" : $"{rows / 1000}k";

    private static double Ratio(string figure) => Rates[figure].Kdb / Rates[figure].Sqlite;

    private static async Task LoadAsync(KdbSide kdb, SqliteSide sqlite, BenchSettings s)
    {
        var started = Stopwatch.StartNew();
        await kdb.RunAsync("CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL, name text NOT NULL)");
        await kdb.RunAsync("CREATE TABLE ins (id int PRIMARY KEY, v int NOT NULL, s text NOT NULL)");
        await kdb.RunAsync("CREATE TABLE ja (id int PRIMARY KEY, k int NOT NULL)");
        await kdb.RunAsync("CREATE TABLE jb (id int PRIMARY KEY, aid int NOT NULL)");
        await kdb.RunAsync("CREATE TABLE g (id int PRIMARY KEY, grp int NOT NULL, v int NOT NULL)");
        sqlite.Run("CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL, name TEXT NOT NULL)");
        sqlite.Run("CREATE TABLE ins (id INTEGER PRIMARY KEY, v INTEGER NOT NULL, s TEXT NOT NULL)");
        sqlite.Run("CREATE TABLE ja (id INTEGER PRIMARY KEY, k INTEGER NOT NULL)");
        sqlite.Run("CREATE TABLE jb (id INTEGER PRIMARY KEY, aid INTEGER NOT NULL)");
        sqlite.Run("CREATE TABLE g (id INTEGER PRIMARY KEY, grp INTEGER NOT NULL, v INTEGER NOT NULL)");

        // The same formulas on both sides; kept within int range for generate_series' integer arithmetic.
        await LoadKdbAsync(kdb, "accounts", "g, ((g % 100000) * 7919) % 100000, 'acct' || g", s.PointRows);
        sqlite.Load("INSERT INTO accounts VALUES ($id, $b, $n)", s.PointRows, (p, i) => Bind(p, ("$id", i), ("$b", i % 100000 * 7919 % 100000), ("$n", "acct" + i)));
        await LoadKdbAsync(kdb, "ja", "g, g % 1000", s.JoinRows);
        sqlite.Load("INSERT INTO ja VALUES ($id, $k)", s.JoinRows, (p, i) => Bind(p, ("$id", i), ("$k", i % 1000)));
        await LoadKdbAsync(kdb, "jb", $"g, (g * 4831) % {s.JoinRows} + 1", s.JoinRows);
        sqlite.Load("INSERT INTO jb VALUES ($id, $a)", s.JoinRows, (p, i) => Bind(p, ("$id", i), ("$a", (long)i * 4831 % s.JoinRows + 1)));
        await LoadKdbAsync(kdb, "g", "g, g % 100, (g % 1000) * 3", s.GroupRows);
        sqlite.Load("INSERT INTO g VALUES ($id, $grp, $v)", s.GroupRows, (p, i) => Bind(p, ("$id", i), ("$grp", i % 100), ("$v", i % 1000 * 3)));
        Console.Error.WriteLine($"# loaded both sides in {started.Elapsed.TotalSeconds:F1} s");
    }

    private static async Task LoadKdbAsync(KdbSide kdb, string table, string select, int rows)
    {
        // Chunks keep each transaction's write set moderate.
        for (var start = 1; start <= rows; start += 50_000)
        {
            var end = Math.Min(rows, start + 49_999);
            await kdb.RunAsync($"INSERT INTO {table} SELECT {select} FROM generate_series({start}, {end}) g");
        }
    }

    private static void Bind(Microsoft.Data.Sqlite.SqliteParameterCollection parameters, params (string Name, object Value)[] values)
    {
        foreach (var (name, value) in values)
        {
            if (parameters.Contains(name))
            {
                parameters[name].Value = value;
            }
            else
            {
                parameters.AddWithValue(name, value);
            }
        }
    }

    private static async Task PointSelectAsync(KdbSide kdb, SqliteSide sqlite, BenchSettings s, Action<string, double, string> emit)
    {
        var statement = kdb.Session.Prepare("SELECT balance, name FROM accounts WHERE id = $1", [SqlTypeId.Int4]);
        var args = new Value[1];
        var key = 1u;
        long checksum = 0;
        async ValueTask KdbOnce()
        {
            key = key * 1664525 + 1013904223;
            args[0] = Value.FromInt((key >> 8) % (uint)s.PointRows + 1);
            using (var cursor = await statement.ExecuteAsync(args))
            {
                if (cursor.MoveNext())
                {
                    checksum += cursor.Current[0].AsInt;
                }

                while (cursor.MoveNext())
                {
                }
            }

            await kdb.Session.SyncAsync();
        }

        using var command = sqlite.Connection.CreateCommand();
        command.CommandText = "SELECT balance, name FROM accounts WHERE id = $id";
        var parameter = command.Parameters.AddWithValue("$id", 1);
        command.Prepare();
        var sqliteKey = 1u;
        long sqliteChecksum = 0;
        ValueTask SqliteOnce()
        {
            sqliteKey = sqliteKey * 1664525 + 1013904223;
            parameter.Value = (long)((sqliteKey >> 8) % (uint)s.PointRows + 1);
            using var reader = command.ExecuteReader();
            if (reader.Read())
            {
                sqliteChecksum += reader.GetInt64(0);
                _ = reader.GetString(1);
            }

            return ValueTask.CompletedTask;
        }

        // Same key sequence on both sides: the checksums agree when the answers do.
        for (var i = 0; i < 1000; i++)
        {
            await KdbOnce();
            await SqliteOnce();
        }

        if (checksum != sqliteChecksum)
        {
            throw new InvalidOperationException($"point select answers differ: kdb checksum {checksum}, SQLite {sqliteChecksum}");
        }

        var kdbRate = await TimedAsync(KdbOnce, s);
        var sqliteRate = await TimedAsync(SqliteOnce, s);

        // Steady-state allocation: the same loop, counted on this thread only (the loop completes synchronously).
        const int Probe = 20_000;
        for (var i = 0; i < Probe; i++)
        {
            await KdbOnce();
        }

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < Probe; i++)
        {
            await KdbOnce();
        }

        var perOp = (GC.GetAllocatedBytesForCurrentThread() - before) / (double)Probe;
        emit("sql_point_select_kdb_per_s", kdbRate, "op/s");
        emit("sql_point_select_sqlite_per_s", sqliteRate, "op/s");
        emit("sql_point_select_over_sqlite", kdbRate / sqliteRate, "x");
        emit("sql_point_select_alloc_bytes", perOp, "B");
    }

    private static async Task InsertAsync(KdbSide kdb, SqliteSide sqlite, BenchSettings s, Action<string, double, string> emit)
    {
        var statement = kdb.Session.Prepare("INSERT INTO ins VALUES ($1, $2, $3)", [SqlTypeId.Int4, SqlTypeId.Int4, SqlTypeId.Text]);
        var args = new Value[3];
        var nextKdb = 0;
        async ValueTask KdbOnce()
        {
            nextKdb++;
            args[0] = Value.FromInt(nextKdb);
            args[1] = Value.FromInt(nextKdb % 1000);
            args[2] = Value.FromText("row");
            using (var cursor = await statement.ExecuteAsync(args))
            {
                while (cursor.MoveNext())
                {
                }
            }

            await kdb.Session.SyncAsync();
        }

        using var command = sqlite.Connection.CreateCommand();
        command.CommandText = "INSERT INTO ins VALUES ($id, $v, $s)";
        var id = command.Parameters.AddWithValue("$id", 0);
        var v = command.Parameters.AddWithValue("$v", 0);
        command.Parameters.AddWithValue("$s", "row");
        command.Prepare();
        var nextSqlite = 0;
        ValueTask SqliteOnce()
        {
            nextSqlite++;
            id.Value = nextSqlite;
            v.Value = nextSqlite % 1000;
            command.ExecuteNonQuery();
            return ValueTask.CompletedTask;
        }

        var kdbRate = await TimedAsync(KdbOnce, s);
        var sqliteRate = await TimedAsync(SqliteOnce, s);
        var kdbCount = await kdb.ScalarAsync("SELECT count(*) FROM ins");
        var sqliteCount = sqlite.Scalar("SELECT count(*) FROM ins");
        if (kdbCount != nextKdb.ToString(CultureInfo.InvariantCulture) || sqliteCount != nextSqlite.ToString(CultureInfo.InvariantCulture))
        {
            throw new InvalidOperationException($"insert counts are off: kdb {kdbCount} of {nextKdb}, SQLite {sqliteCount} of {nextSqlite}");
        }

        emit("sql_insert_kdb_per_s", kdbRate, "op/s");
        emit("sql_insert_sqlite_per_s", sqliteRate, "op/s");
        emit("sql_insert_over_sqlite", kdbRate / sqliteRate, "x");
    }

    /// <summary>Runs one analytic query on both sides: answers compared, then queries per second over several repeats.</summary>
    private static async Task QueryAsync(KdbSide kdb, SqliteSide sqlite, BenchSettings s, Action<string, double, string> emit, string figure, string name, string sql)
    {
        async Task<string> KdbAnswer()
        {
            var result = (await kdb.Session.ExecuteAsync(sql))[^1];
            return string.Join(";", result.Rows.Select(r => string.Join(",", r.Select((value, i) => ValueText.Format(value, result.Columns![i].Type)))).Order(StringComparer.Ordinal));
        }

        string SqliteAnswer()
        {
            using var command = sqlite.Connection.CreateCommand();
            command.CommandText = sql;
            using var reader = command.ExecuteReader();
            var rows = new List<string>();
            while (reader.Read())
            {
                var cells = new string[reader.FieldCount];
                for (var i = 0; i < cells.Length; i++)
                {
                    cells[i] = Convert.ToString(reader.GetValue(i), CultureInfo.InvariantCulture)!;
                }

                rows.Add(string.Join(",", cells));
            }

            return string.Join(";", rows.Order(StringComparer.Ordinal));
        }

        var kdbAnswer = await KdbAnswer();
        var sqliteAnswer = SqliteAnswer();
        if (kdbAnswer != sqliteAnswer)
        {
            throw new InvalidOperationException($"{figure} answers differ:\nkdb:    {Cut(kdbAnswer)}\nSQLite: {Cut(sqliteAnswer)}");
        }

        var kdbSeconds = await BestOfAsync(async () => await KdbAnswer(), s.QueryRepeats);
        var sqliteSeconds = await BestOfAsync(() => Task.FromResult(SqliteAnswer()), s.QueryRepeats);
        Rates[figure] = (1 / kdbSeconds, 1 / sqliteSeconds);
        emit($"sql_{name}_kdb_ms", kdbSeconds * 1000, "ms");
        emit($"sql_{name}_sqlite_ms", sqliteSeconds * 1000, "ms");
    }

    private static string Cut(string text) => text.Length > 300 ? text[..300] + "…" : text;

    /// <summary>Median of <paramref name="repeats"/> timed runs (after the checking run, which warmed both up).</summary>
    private static async Task<double> BestOfAsync(Func<Task<string>> run, int repeats)
    {
        var times = new List<double>();
        for (var i = 0; i < repeats; i++)
        {
            var started = Stopwatch.GetTimestamp();
            await run();
            times.Add(Stopwatch.GetElapsedTime(started).TotalSeconds);
        }

        times.Sort();
        return times[times.Count / 2];
    }

    /// <summary>Operations per second of <paramref name="once"/>: warm-up, then as many as fit in the timed window.</summary>
    private static async Task<double> TimedAsync(Func<ValueTask> once, BenchSettings s)
    {
        var warm = Stopwatch.StartNew();
        while (warm.Elapsed.TotalSeconds < s.WarmupSeconds)
        {
            for (var i = 0; i < 100; i++)
            {
                await once();
            }
        }

        long ops = 0;
        var timed = Stopwatch.StartNew();
        while (timed.Elapsed.TotalSeconds < s.Seconds)
        {
            for (var i = 0; i < 100; i++)
            {
                await once();
            }

            ops += 100;
        }

        return ops / timed.Elapsed.TotalSeconds;
    }
}
