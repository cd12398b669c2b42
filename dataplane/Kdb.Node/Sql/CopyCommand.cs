using System.Text;
using Kdb.PgWire.Session;
using Kdb.PgWire.Types;
using Kdb.Sql;
using Kdb.Sql.Planning;
using Kdb.Sql.Sessions;
using Kdb.Sql.Syntax;
using Kdb.Sql.Types;

namespace Kdb.Node.Sql;

/// <summary>
/// <c>COPY ... FROM STDIN</c> and <c>COPY ... TO STDOUT</c> in text and CSV format: the wire layer's copy
/// sub-protocol around the engine's row-level COPY API (FROM) or an ordinary query (TO).
/// </summary>
internal sealed class CopyCommand(SqlSession session, CopyStatement copy, string sql) : IPgStatement, IPgPortal
{
    public ReadOnlyMemory<PgTypeOid> ParameterTypes => ReadOnlyMemory<PgTypeOid>.Empty;

    public IReadOnlyList<PgColumn>? Columns => null;

    /// <summary>A cheap test before parsing: the statement's first word is COPY.</summary>
    public static bool LooksLikeCopy(string sql)
    {
        var text = sql.AsSpan().TrimStart();
        while (text.StartsWith("--") || text.StartsWith("/*"))
        {
            var end = text.StartsWith("--") ? text.IndexOf('\n') : text.IndexOf("*/");
            if (end < 0)
            {
                return false;
            }

            text = text[(end + (text.StartsWith("--") ? 1 : 2))..].TrimStart();
        }

        return text.Length > 4 && text[..4].Equals("copy", StringComparison.OrdinalIgnoreCase) && (char.IsWhiteSpace(text[4]) || text[4] == '(');
    }

    public IPgPortal Bind(PgParameters parameters) => this;

    public async ValueTask<PgExecuteResult> ExecuteAsync(PgExecutionContext context)
    {
        // A COPY's cost grows with its data: it never runs on a socket's completion thread (see PoolHop), and goes back to
        // the pool after each wait for the client.
        await PoolHop.IfOffPool();
        try
        {
            var format = CopyFormat.From(copy.Options, copy.From);
            return copy.From ? await CopyInAsync(context, format) : await CopyOutAsync(context, format);
        }
        catch (SqlException e)
        {
            throw SqlErrors.ToPg(e);
        }
    }

    private async ValueTask<PgExecuteResult> CopyInAsync(PgExecutionContext context, CopyFormat format)
    {
        if (copy.Table is null)
        {
            throw new PgException("42601", "COPY FROM needs a table, not a query");
        }

        var target = await session.BeginCopyInAsync(QuoteName(copy.Table), copy.Columns, context.CancellationToken);
        if (format.Binary)
        {
            return await CopyInBinaryAsync(context, target);
        }

        await context.StartCopyInAsync((short)target.Columns.Count, PgFormat.Text);
        var parser = new CopyParser(format, target.Columns.Count);
        while (true)
        {
            var chunk = await context.ReadCopyDataAsync();
            await PoolHop.IfOffPool();
            if (chunk.IsEmpty)
            {
                break;
            }

            context.CancellationToken.ThrowIfCancellationRequested();
            parser.Feed(chunk.Span, target.AddRow);
            await target.FlushAsync(context.CancellationToken);
        }

        parser.Finish(target.AddRow);
        await target.FlushAsync(context.CancellationToken);
        return PgExecuteResult.Completed("COPY " + target.Complete().ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    private async ValueTask<PgExecuteResult> CopyOutAsync(PgExecutionContext context, CopyFormat format)
    {
        string query;
        if (copy.Table is not null)
        {
            var columns = copy.Columns is { Count: > 0 } list ? string.Join(", ", list.Select(QuoteIdentifier)) : "*";
            query = $"SELECT {columns} FROM {QuoteName(copy.Table)}";
        }
        else
        {
            query = InnerQueryText(sql, copy.Query!.Position);
        }

        var statement = await session.PrepareAsync(query, null, context.CancellationToken);
        using var cursor = await statement.ExecuteAsync([], context.CancellationToken);
        var resultColumns = cursor.Columns ?? statement.Columns ?? [];
        if (format.Binary)
        {
            return await CopyOutBinaryAsync(context, cursor, resultColumns);
        }

        context.StartCopyOut((short)resultColumns.Count, PgFormat.Text);
        var line = new StringBuilder(256);
        if (format.Header)
        {
            for (var i = 0; i < resultColumns.Count; i++)
            {
                if (i > 0)
                {
                    line.Append(format.Delimiter);
                }

                format.AppendField(line, resultColumns[i].Name);
            }

            line.Append('\n');
            await context.WriteCopyDataAsync(Encoding.UTF8.GetBytes(line.ToString()));
        }

        long rows = 0;
        while (cursor.MoveNext())
        {
            context.CancellationToken.ThrowIfCancellationRequested();
            line.Clear();
            var row = cursor.Current;
            for (var i = 0; i < resultColumns.Count; i++)
            {
                if (i > 0)
                {
                    line.Append(format.Delimiter);
                }

                if (row[i].IsNull)
                {
                    line.Append(format.Null);
                }
                else
                {
                    format.AppendField(line, cursor.FormatText(row[i], resultColumns[i].Type));
                }
            }

            line.Append('\n');
            await context.WriteCopyDataAsync(Encoding.UTF8.GetBytes(line.ToString()));
            await PoolHop.IfOffPool();
            rows++;
        }

        return PgExecuteResult.Completed("COPY " + rows.ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    /// <summary>Binary COPY FROM: each tuple's fields decode with the column types' binary input, as Bind parameters do.</summary>
    private static async ValueTask<PgExecuteResult> CopyInBinaryAsync(PgExecutionContext context, SqlCopyIn target)
    {
        var types = new SqlType[target.Columns.Count];
        var wire = new PgTypeOid[types.Length];
        for (var i = 0; i < types.Length; i++)
        {
            types[i] = target.Columns[i].Type;
            wire[i] = PgValues.WireType(types[i]);
        }

        await context.StartCopyInAsync((short)types.Length, PgFormat.Binary);
        var values = new Value[types.Length];
        using var reader = new PgBinaryCopyReader(wire);
        void AddRow(PgParameters fields)
        {
            for (var i = 0; i < values.Length; i++)
            {
                values[i] = PgValues.Read(fields, i, types[i]);
            }

            target.AddValues(values);
        }

        while (true)
        {
            var chunk = await context.ReadCopyDataAsync();
            await PoolHop.IfOffPool();
            if (chunk.IsEmpty)
            {
                break;
            }

            context.CancellationToken.ThrowIfCancellationRequested();
            reader.Feed(chunk.Span, AddRow);
            await target.FlushAsync(context.CancellationToken);
        }

        reader.Finish();
        await target.FlushAsync(context.CancellationToken);
        return PgExecuteResult.Completed("COPY " + target.Complete().ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    /// <summary>Binary COPY TO: a header, one tuple per row in the columns' binary formats (a DataRow's body), a trailer.</summary>
    private static async ValueTask<PgExecuteResult> CopyOutBinaryAsync(PgExecutionContext context, SqlCursor cursor, IReadOnlyList<ResultColumn> resultColumns)
    {
        var columns = new PgColumn[resultColumns.Count];
        var types = new SqlType[columns.Length];
        for (var i = 0; i < columns.Length; i++)
        {
            columns[i] = PgValues.Column(resultColumns[i]);
            types[i] = resultColumns[i].Type;
        }

        context.StartCopyOut((short)columns.Length, PgFormat.Binary);
        using var writer = new PgBinaryCopyWriter(columns);

        // The header travels in the first row's CopyData (or the trailer's), as PostgreSQL sends it: Npgsql's binary
        // exporter reads the first row from the header's message.
        byte[]? header = PgBinaryCopy.Header();
        long rows = 0;
        while (cursor.MoveNext())
        {
            context.CancellationToken.ThrowIfCancellationRequested();
            var row = cursor.Current;
            writer.Row.BeginRow();
            for (var i = 0; i < columns.Length; i++)
            {
                PgValues.Write(writer.Row, row[i], types[i], columns[i].Type);
            }

            await context.WriteCopyDataAsync(WithHeader(ref header, writer.EndRow()));
            await PoolHop.IfOffPool();
            rows++;
        }

        await context.WriteCopyDataAsync(WithHeader(ref header, PgBinaryCopy.Trailer()));
        return PgExecuteResult.Completed("COPY " + rows.ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    private static byte[] WithHeader(ref byte[]? header, ReadOnlySpan<byte> data)
    {
        if (header is null)
        {
            return data.ToArray();
        }

        var message = new byte[header.Length + data.Length];
        header.CopyTo(message, 0);
        data.CopyTo(message.AsSpan(header.Length));
        header = null;
        return message;
    }

    /// <summary>The text of <c>(query)</c> in <c>COPY (query) TO STDOUT</c>: from the query's start to its closing parenthesis.</summary>
    internal static string InnerQueryText(string sql, int position)
    {
        var start = Math.Clamp(position - 1, 0, sql.Length);
        var depth = 1;
        var i = start;
        while (i < sql.Length)
        {
            var c = sql[i];
            if (c is '\'' or '"')
            {
                var close = sql.IndexOf(c, i + 1);
                i = close < 0 ? sql.Length : close + 1;
                continue;
            }

            if (c == '(')
            {
                depth++;
            }
            else if (c == ')' && --depth == 0)
            {
                return sql[start..i];
            }

            i++;
        }

        throw new PgException("42601", "syntax error in COPY query: unbalanced parentheses");
    }

    private static string QuoteName(QualifiedName name) =>
        name.Schema is null ? QuoteIdentifier(name.Name) : QuoteIdentifier(name.Schema) + "." + QuoteIdentifier(name.Name);

    private static string QuoteIdentifier(string name) => "\"" + name.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    public void Dispose()
    {
    }
}
