using Kdb.Sql.Sessions;
using Kdb.Sql.Types;
using Npgsql;

namespace Kdb.Sql.Tests.Differential;

/// <summary>Runs statements on kdb's engine and reads the answers in PostgreSQL's text form.</summary>
internal sealed class KdbSide(SqlSession session)
{
    /// <summary>A statement that has not answered within this long fails the whole seed: the session is stuck.</summary>
    private static readonly TimeSpan Hang = TimeSpan.FromSeconds(60);

    public async Task<DiffOutcome> RunAsync(string sql, bool dml = false)
    {
        Task<IReadOnlyList<SqlResult>> run = Task.Run(async () => await session.ExecuteAsync(sql));
        try
        {
            var results = await run.WaitAsync(Hang);
            var last = results[^1];
            var columns = last.Columns ?? [];
            var rows = new List<string?[]>(last.Rows.Count);
            foreach (var row in last.Rows)
            {
                var text = new string?[columns.Count];
                for (var i = 0; i < text.Length; i++)
                {
                    text[i] = row[i].IsNull ? null : ValueText.Format(row[i], columns[i].Type);
                }

                rows.Add(text);
            }

            var affected = dml && long.TryParse(last.CommandTag.Split(' ')[^1], out var n) ? n : -1;
            return new DiffOutcome(null, null, columns.Select(c => c.Name).ToList(), columns.Select(c => (uint)c.Type.Id).ToList(), rows, affected);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"kdb did not answer within {Hang.TotalSeconds} s: {sql}");
        }
        catch (SqlException e)
        {
            return DiffOutcome.Failed(e.SqlState, e.Message);
        }
        catch (Exception e)
        {
            // Anything but SqlException is an engine crash; "XX" never matches a PostgreSQL class.
            return DiffOutcome.Failed("XXKDB", $"{e.GetType().Name}: {e.Message} at {e.StackTrace?.Split('\n').FirstOrDefault()?.Trim()}");
        }
    }
}

/// <summary>Runs statements on PostgreSQL, every result column read in the text format PostgreSQL itself produces.</summary>
internal sealed class PgSide(NpgsqlConnection connection)
{
    public async Task<DiffOutcome> RunAsync(string sql, bool dml = false)
    {
        // AllResultTypesAreUnknown makes Npgsql ask for text results, so values are PostgreSQL's own output.
        await using var command = new NpgsqlCommand(sql, connection) { AllResultTypesAreUnknown = true, CommandTimeout = 60 };
        try
        {
            await using var reader = await command.ExecuteReaderAsync();
            var names = new List<string>();
            var oids = new List<uint>();
            for (var i = 0; i < reader.FieldCount; i++)
            {
                names.Add(reader.GetName(i));
                oids.Add(reader.GetDataTypeOID(i));
            }

            var rows = new List<string?[]>();
            while (await reader.ReadAsync())
            {
                var row = new string?[reader.FieldCount];
                for (var i = 0; i < row.Length; i++)
                {
                    row[i] = await reader.IsDBNullAsync(i) ? null : reader.GetString(i);
                }

                rows.Add(row);
            }

            await reader.CloseAsync();
            return new DiffOutcome(null, null, names, oids, rows, dml ? reader.RecordsAffected : -1);
        }
        catch (PostgresException e)
        {
            return DiffOutcome.Failed(e.SqlState, e.MessageText);
        }
    }
}
