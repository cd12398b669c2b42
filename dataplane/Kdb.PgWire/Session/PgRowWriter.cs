using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using Kdb.PgWire.Protocol;
using Kdb.PgWire.Types;

namespace Kdb.PgWire.Session;

/// <summary>
/// Writes result rows as DataRow messages straight into the connection's output pipe, encoding each
/// value in the text or binary format the client asked for that column. Call <see cref="BeginRow"/>,
/// one Write call per column in order, then <see cref="EndRowAsync"/>, which applies backpressure: it
/// waits for the client to take data once 32 KB are unflushed, so a client that stops reading stops the
/// producer instead of growing a buffer.
/// </summary>
public sealed class PgRowWriter
{
    // Flush threshold: below Kestrel's and Pipe's 64 KB pause threshold so one flush never has to wait for two windows.
    private const int FlushThreshold = 32 * 1024;

    private readonly PipeWriterLike _output;
    private readonly ScratchBuffer _row;
    private IReadOnlyList<PgColumn> _columns = [];
    private PgFormat[] _formats = [];
    private int _column = -1;
    private int _lengthAt;

    internal PgRowWriter(PipeWriterLike output, ScratchBuffer row)
    {
        _output = output;
        _row = row;
    }

    /// <summary>Rows completed since the current Execute began.</summary>
    public long RowCount { get; internal set; }

    /// <summary>Number of columns of each row.</summary>
    public int ColumnCount => _columns.Count;

    /// <summary>The format the client asked for a column.</summary>
    public PgFormat FormatOf(int column) => _formats[column];

    internal CancellationToken CancellationToken { get; set; }

    internal void Configure(IReadOnlyList<PgColumn> columns, PgFormat[] formats)
    {
        _columns = columns;
        _formats = formats;
        _column = -1;
        RowCount = 0;
    }

    /// <summary>Starts a row.</summary>
    public void BeginRow()
    {
        if (_column >= 0)
        {
            ThrowState("BeginRow called inside a row");
        }

        _row.Reset();
        BinaryPrimitives.WriteInt16BigEndian(_row.GetSpan(2), (short)_columns.Count);
        _row.Advance(2);
        _column = 0;
    }

    /// <summary>Writes SQL NULL.</summary>
    public void WriteNull()
    {
        Next();
        BinaryPrimitives.WriteInt32BigEndian(_row.GetSpan(4), -1);
        _row.Advance(4);
        _column++;
    }

    /// <summary>A bool column.</summary>
    public void WriteBoolean(bool value)
    {
        Start(PgTypeOid.Bool, out _, out PgFormat f);
        PgValueCodec.WriteBool(_row, f, value);
        End();
    }

    /// <summary>An int2, int4, int8, oid, regclass, regtype, regproc, numeric, float or text column (range-checked for the smaller integer types).</summary>
    public void WriteInt64(long value)
    {
        Start(null, out PgTypeOid t, out PgFormat f);
        switch (t)
        {
            case PgTypeOid.Int2 or PgTypeOid.Int4 or PgTypeOid.Int8:
                PgValueCodec.WriteInteger(_row, t, f, value);
                break;
            case PgTypeOid.Numeric:
                PgValueCodec.WriteDecimal(_row, f, value);
                break;
            case PgTypeOid.Float4 or PgTypeOid.Float8:
                PgValueCodec.WriteFloat(_row, t, f, value);
                break;
            case PgTypeOid.Text or PgTypeOid.Varchar or PgTypeOid.Bpchar or PgTypeOid.Unknown:
                PgValueCodec.WriteInteger(_row, PgTypeOid.Int8, PgFormat.Text, value);
                break;
            case PgTypeOid.Oid or PgTypeOid.Regclass or PgTypeOid.Regtype or PgTypeOid.Regproc:
                PgValueCodec.WriteOid(_row, f, value);
                break;
            default:
                throw PgValueCodec.WrongType(t, "an integer");
        }

        End();
    }

    /// <summary>A float4 or float8 column.</summary>
    public void WriteDouble(double value)
    {
        Start(null, out PgTypeOid t, out PgFormat f);
        if (t is not (PgTypeOid.Float4 or PgTypeOid.Float8))
        {
            throw PgValueCodec.WrongType(t, "a float");
        }

        PgValueCodec.WriteFloat(_row, t, f, value);
        End();
    }

    /// <summary>A numeric column.</summary>
    public void WriteDecimal(decimal value)
    {
        Start(PgTypeOid.Numeric, out _, out PgFormat f);
        PgValueCodec.WriteDecimal(_row, f, value);
        End();
    }

    /// <summary>A numeric column whose value is beyond decimal, as PostgreSQL prints it (<c>[-]digits[.digits]</c>).</summary>
    public void WriteNumericText(ReadOnlySpan<char> value)
    {
        Start(PgTypeOid.Numeric, out _, out PgFormat f);
        PgValueCodec.WriteNumericText(_row, f, value);
        End();
    }

    /// <summary>A text, varchar, bpchar, unknown, name, "char", json or jsonb column.</summary>
    public void WriteString(ReadOnlySpan<char> value)
    {
        Start(null, out PgTypeOid t, out PgFormat f);
        switch (t)
        {
            case PgTypeOid.Text or PgTypeOid.Varchar or PgTypeOid.Bpchar or PgTypeOid.Unknown or PgTypeOid.Jsonb:
                PgValueCodec.WriteString(_row, t, f, value);
                break;
            case PgTypeOid.Name or PgTypeOid.Json:
                // Both are plain UTF-8 in either format (json has no version byte, unlike jsonb).
                PgValueCodec.WriteString(_row, PgTypeOid.Text, f, value);
                break;
            case PgTypeOid.Char:
                PgValueCodec.WriteChar(_row, f, value);
                break;
            default:
                throw PgValueCodec.WrongType(t, "a string");
        }

        End();
    }

    /// <summary>
    /// An int2[], int4[], int8[], oid[], int2vector or oidvector column. <paramref name="nulls"/> marks NULL
    /// elements (empty: none).
    /// </summary>
    public void WriteIntegerArray(ReadOnlySpan<long> values, ReadOnlySpan<bool> nulls)
    {
        Start(null, out PgTypeOid t, out PgFormat f);
        PgTypeOid element = PgArrayTypes.ElementOf(t);
        if (element is not (PgTypeOid.Int2 or PgTypeOid.Int4 or PgTypeOid.Int8 or PgTypeOid.Oid))
        {
            throw PgValueCodec.WrongType(t, "an integer array");
        }

        PgValueCodec.WriteIntegerArray(_row, t, f, values, nulls);
        End();
    }

    /// <summary>A text[] column; null elements are SQL NULL.</summary>
    public void WriteStringArray(IReadOnlyList<string?> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        Start(PgTypeOid.TextArray, out _, out PgFormat f);
        PgValueCodec.WriteStringArray(_row, f, values);
        End();
    }

    /// <summary>A bytea column.</summary>
    public void WriteBytes(ReadOnlySpan<byte> value)
    {
        Start(PgTypeOid.Bytea, out _, out PgFormat f);
        PgValueCodec.WriteBytea(_row, f, value);
        End();
    }

    /// <summary>A date column.</summary>
    public void WriteDate(DateOnly value)
    {
        Start(PgTypeOid.Date, out _, out PgFormat f);
        PgValueCodec.WriteDate(_row, f, value);
        End();
    }

    /// <summary>A timestamp or timestamptz column (timestamptz values are taken as UTC unless Kind is Local).</summary>
    public void WriteDateTime(DateTime value)
    {
        Start(null, out PgTypeOid t, out PgFormat f);
        if (t is not (PgTypeOid.Timestamp or PgTypeOid.TimestampTz))
        {
            throw PgValueCodec.WrongType(t, "a timestamp");
        }

        PgValueCodec.WriteDateTime(_row, t, f, value);
        End();
    }

    /// <summary>An interval column.</summary>
    public void WriteInterval(PgInterval value)
    {
        Start(PgTypeOid.Interval, out _, out PgFormat f);
        PgValueCodec.WriteInterval(_row, f, value);
        End();
    }

    /// <summary>A uuid column.</summary>
    public void WriteGuid(Guid value)
    {
        Start(PgTypeOid.Uuid, out _, out PgFormat f);
        PgValueCodec.WriteUuid(_row, f, value);
        End();
    }

    /// <summary>Pre-encoded bytes, already in the column's format (<see cref="FormatOf"/>).</summary>
    public void WriteRaw(ReadOnlySpan<byte> encoded)
    {
        Start(null, out _, out _);
        _row.Write(encoded);
        End();
    }

    /// <summary>
    /// Completes the row and sends it. Completes synchronously unless 32 KB are waiting for the client,
    /// in which case it waits until the transport took them (or the statement is canceled, which throws
    /// <see cref="OperationCanceledException"/>). Throws <see cref="IOException"/> when the client is gone:
    /// let both propagate.
    /// </summary>
    public ValueTask EndRowAsync()
    {
        if (_column != _columns.Count)
        {
            ThrowState($"row has {_column} of {_columns.Count} values");
        }

        _column = -1;
        int body = _row.Written;
        Span<byte> span = _output.GetSpan(5 + body);
        span[0] = (byte)BackendMessageCode.DataRow;
        BinaryPrimitives.WriteInt32BigEndian(span[1..], body + 4);
        _row.WrittenSpan.CopyTo(span[5..]);
        _output.Advance(5 + body);
        RowCount++;
        return _output.Unflushed >= FlushThreshold ? FlushAsync() : ValueTask.CompletedTask;
    }

    /// <summary>Completes the row without sending it: its body (field count, then length-prefixed fields) is a binary COPY tuple.</summary>
    internal ReadOnlySpan<byte> EndTuple()
    {
        if (_column != _columns.Count)
        {
            ThrowState($"row has {_column} of {_columns.Count} values");
        }

        _column = -1;
        RowCount++;
        return _row.WrittenSpan;
    }

    private async ValueTask FlushAsync()
    {
        System.IO.Pipelines.FlushResult r = await _output.FlushAsync(CancellationToken).ConfigureAwait(false);
        if (r.IsCompleted)
        {
            // The transport is gone: this ends the connection, it is not a statement error.
            throw new IOException("client closed the connection");
        }
    }

    private void Next()
    {
        if (_column < 0 || _column >= _columns.Count)
        {
            ThrowState(_column < 0 ? "value written outside a row" : "too many values in row");
        }
    }

    private void Start(PgTypeOid? expected, out PgTypeOid type, out PgFormat format)
    {
        Next();
        type = _columns[_column].Type;
        format = _formats[_column];
        if (expected is { } e && e != type)
        {
            throw PgValueCodec.WrongType(type, PgTypes.NameOf(e));
        }

        _lengthAt = _row.Written;
        _row.GetSpan(4);
        _row.Advance(4);
    }

    private void End()
    {
        BinaryPrimitives.WriteInt32BigEndian(_row.WrittenMutable(_lengthAt, 4), _row.Written - _lengthAt - 4);
        _column++;
    }

    [DoesNotReturn]
    private static void ThrowState(string message) => throw new InvalidOperationException(message);
}
