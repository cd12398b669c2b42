using System.Globalization;
using System.Text;
using Kdb.PgWire.Session;
using Kdb.PgWire.Types;
using Kind = Kdb.PgWire.Tests.Support.TestStatement.StatementKind;

namespace Kdb.PgWire.Tests.Support;

/// <summary>A bound <see cref="TestStatement"/>; generate_series and the items query resume after a suspension.</summary>
internal sealed class TestPortal(TestStatement statement, PgParameters parameters) : IPgPortal
{
    private long _next = 1;
    private int _itemIndex;
    private TestDatabase.Item[]? _snapshot;

    private TestSession Session => statement.Session;

    private TestDatabase Db => statement.Session.Database;

    public async ValueTask<PgExecuteResult> ExecuteAsync(PgExecutionContext context)
    {
        Session.CheckNotFailed(statement.Kind);
        PgRowWriter rows = context.Rows;
        switch (statement.Kind)
        {
            case Kind.Echo:
                rows.BeginRow();
                foreach (TestStatement.Item item in statement.Items)
                {
                    WriteItem(rows, item);
                }

                await rows.EndRowAsync();
                return PgExecuteResult.Completed("SELECT 1");
            case Kind.Series:
                long written = 0;
                while (_next <= statement.Number)
                {
                    if (context.MaxRows > 0 && written == context.MaxRows)
                    {
                        return PgExecuteResult.PortalSuspended;
                    }

                    if ((_next & 1023) == 0)
                    {
                        context.CancellationToken.ThrowIfCancellationRequested();
                    }

                    rows.BeginRow();
                    rows.WriteInt64(_next++);
                    Interlocked.Increment(ref Db.RowsProduced);
                    await rows.EndRowAsync();
                    written++;
                }

                return PgExecuteResult.Completed("SELECT " + TestSession.Invariant(written));
            case Kind.Sleep:
                Db.SleepStarted.Release();
                await Task.Delay(TimeSpan.FromMilliseconds(statement.Number), context.CancellationToken);
                rows.BeginRow();
                rows.WriteString(string.Empty);
                await rows.EndRowAsync();
                return PgExecuteResult.Completed("SELECT 1");
            case Kind.SelectItems:
                _snapshot ??= Db.Snapshot();
                long count = 0;
                while (_itemIndex < _snapshot.Length)
                {
                    if (context.MaxRows > 0 && count == context.MaxRows)
                    {
                        return PgExecuteResult.PortalSuspended;
                    }

                    TestDatabase.Item row = _snapshot[_itemIndex++];
                    rows.BeginRow();
                    rows.WriteInt64(row.Id);
                    if (row.Name is null)
                    {
                        rows.WriteNull();
                    }
                    else
                    {
                        rows.WriteString(row.Name);
                    }

                    await rows.EndRowAsync();
                    count++;
                }

                return PgExecuteResult.Completed("SELECT " + TestSession.Invariant(count));
            case Kind.Insert:
                int id = (int)Integer(statement.Items[0]);
                string? name = Text(statement.Items[1]);
                Session.Inserted(Db.Insert(id, name));
                return PgExecuteResult.Completed("INSERT 0 1");
            case Kind.Delete:
                int n = Db.Snapshot().Length;
                Db.Clear();
                return PgExecuteResult.Completed("DELETE " + TestSession.Invariant(n));
            case Kind.Begin:
                return PgExecuteResult.Completed(Session.Begin(context));
            case Kind.Commit:
                return PgExecuteResult.Completed(Session.End(commit: true));
            case Kind.Rollback:
                return PgExecuteResult.Completed(Session.End(commit: false));
            case Kind.Discard:
                context.DiscardAll();
                return PgExecuteResult.Completed("DISCARD ALL");
            case Kind.NoOp:
                return PgExecuteResult.Completed(statement.Items[0].Literal!);
            case Kind.Set:
                if (statement.Items[0].Literal!.Equals("application_name", StringComparison.OrdinalIgnoreCase))
                {
                    context.ReportParameterStatus("application_name", statement.Items[1].Literal!);
                }

                return PgExecuteResult.Completed("SET");
            case Kind.RaiseError:
                throw new PgException("22012", "division by zero", detail: "the detail", hint: "the hint", position: 8);
            case Kind.Notice:
                context.SendNotice(new PgNotice("NOTICE", "00000", "hello from notice", Detail: "notice detail"));
                rows.BeginRow();
                rows.WriteString("done");
                await rows.EndRowAsync();
                return PgExecuteResult.Completed("SELECT 1");
            case Kind.CopyIn:
                return PgExecuteResult.Completed(await CopyInAsync(context));
            case Kind.CopyOut:
                return PgExecuteResult.Completed(await CopyOutAsync(context));
            default:
                throw new InvalidOperationException(statement.Kind.ToString());
        }
    }

    private async ValueTask<string> CopyInAsync(PgExecutionContext context)
    {
        await context.StartCopyInAsync(2, PgFormat.Text);
        var data = new MemoryStream();
        while (true)
        {
            ReadOnlyMemory<byte> chunk = await context.ReadCopyDataAsync();
            if (chunk.IsEmpty)
            {
                break;
            }

            data.Write(chunk.Span);
        }

        char separator = statement.Csv ? ',' : '\t';
        long count = 0;
        foreach (string line in Encoding.UTF8.GetString(data.ToArray()).Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            if (line == "\\.")
            {
                break;
            }

            string[] fields = line.TrimEnd('\r').Split(separator);
            if (fields.Length != 2 || !int.TryParse(fields[0], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int id))
            {
                throw new PgException("22P04", "invalid input for COPY", detail: $"line {count + 1}: \"{line}\"");
            }

            Session.Inserted(Db.Insert(id, fields[1] == "\\N" ? null : fields[1]));
            count++;
        }

        return "COPY " + TestSession.Invariant(count);
    }

    private async ValueTask<string> CopyOutAsync(PgExecutionContext context)
    {
        context.StartCopyOut(2, PgFormat.Text);
        char separator = statement.Csv ? ',' : '\t';
        TestDatabase.Item[] items = Db.Snapshot();
        foreach (TestDatabase.Item item in items)
        {
            string line = item.Id.ToString(CultureInfo.InvariantCulture) + separator + (item.Name ?? (statement.Csv ? string.Empty : "\\N")) + "\n";
            await context.WriteCopyDataAsync(Encoding.UTF8.GetBytes(line));
        }

        return "COPY " + TestSession.Invariant(items.Length);
    }

    private long Integer(TestStatement.Item item) => item.Parameter > 0
        ? parameters.GetInt64(item.Parameter - 1)
        : long.Parse(item.Literal!, CultureInfo.InvariantCulture);

    private string? Text(TestStatement.Item item) => item.Parameter > 0
        ? parameters.IsNull(item.Parameter - 1) ? null : parameters.GetString(item.Parameter - 1)
        : item.Literal;

    private void WriteItem(PgRowWriter rows, TestStatement.Item item)
    {
        if (item.Parameter == 0)
        {
            if (item.Type == PgTypeOid.Int4)
            {
                rows.WriteInt64(long.Parse(item.Literal!, CultureInfo.InvariantCulture));
            }
            else
            {
                rows.WriteString(item.Literal!);
            }

            return;
        }

        int p = item.Parameter - 1;
        if (parameters.IsNull(p))
        {
            rows.WriteNull();
            return;
        }

        switch (item.Type)
        {
            case PgTypeOid.Bool:
                rows.WriteBoolean(parameters.GetBoolean(p));
                break;
            case PgTypeOid.Int2 or PgTypeOid.Int4 or PgTypeOid.Int8:
                rows.WriteInt64(parameters.GetInt64(p));
                break;
            case PgTypeOid.Float4 or PgTypeOid.Float8:
                rows.WriteDouble(parameters.GetDouble(p));
                break;
            case PgTypeOid.Numeric:
                rows.WriteDecimal(parameters.GetDecimal(p));
                break;
            case PgTypeOid.Bytea:
                rows.WriteBytes(parameters.GetBytes(p));
                break;
            case PgTypeOid.Date:
                rows.WriteDate(parameters.GetDate(p));
                break;
            case PgTypeOid.Timestamp or PgTypeOid.TimestampTz:
                rows.WriteDateTime(parameters.GetDateTime(p));
                break;
            case PgTypeOid.Interval:
                rows.WriteInterval(parameters.GetInterval(p));
                break;
            case PgTypeOid.Uuid:
                rows.WriteGuid(parameters.GetGuid(p));
                break;
            default:
                rows.WriteString(parameters.GetString(p));
                break;
        }
    }

    public void Dispose()
    {
    }
}
