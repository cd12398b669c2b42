using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using Kdb.PgWire.Protocol;
using Kdb.PgWire.Types;

namespace Kdb.PgWire.Session;

/// <summary>
/// COPY's binary file format (PostgreSQL's "PGCOPY"): an 11-byte signature, a flags word and a header extension,
/// then one tuple per row — a 16-bit field count, then each field as a 32-bit length (-1 for NULL) and the value in
/// its type's binary format — and a trailer field count of -1. A tuple has the same layout as a DataRow's body.
/// </summary>
public static class PgBinaryCopy
{
    private static readonly byte[] SignatureBytes = [(byte)'P', (byte)'G', (byte)'C', (byte)'O', (byte)'P', (byte)'Y', (byte)'\n', 0xFF, (byte)'\r', (byte)'\n', 0];

    /// <summary>The file header: signature, no flags, an empty extension.</summary>
    public static byte[] Header()
    {
        var header = new byte[SignatureBytes.Length + 8];
        SignatureBytes.CopyTo(header, 0);
        return header;
    }

    /// <summary>The trailer: a field count of -1.</summary>
    public static byte[] Trailer() => [0xFF, 0xFF];

    internal static ReadOnlySpan<byte> Signature => SignatureBytes;

    internal static PgException BadFormat(string message) => new("22P04", message);
}

/// <summary>
/// Encodes rows as binary COPY tuples: write a row through <see cref="Row"/> (BeginRow, one Write per column, with
/// every column in the binary format) and take the tuple from <see cref="EndRow"/>.
/// </summary>
public sealed class PgBinaryCopyWriter : IDisposable
{
    private readonly ScratchBuffer _tuple = new();

    public PgBinaryCopyWriter(IReadOnlyList<PgColumn> columns)
    {
        ArgumentNullException.ThrowIfNull(columns);
        var formats = new PgFormat[columns.Count];
        Array.Fill(formats, PgFormat.Binary);

        // The row writer's output is never used: EndRow takes the tuple before it would be framed as a DataRow.
        Row = new PgRowWriter(new PipeWriterLike(PipeWriter.Create(Stream.Null)), _tuple);
        Row.Configure(columns, formats);
    }

    /// <summary>The writer to encode the current row with (all columns binary).</summary>
    public PgRowWriter Row { get; }

    /// <summary>Ends the row begun with <see cref="PgRowWriter.BeginRow"/>; the tuple is valid until the next row begins.</summary>
    public ReadOnlySpan<byte> EndRow() => Row.EndTuple();

    public void Dispose() => _tuple.Dispose();
}

/// <summary>
/// Reads a binary COPY stream that arrives in chunks cut anywhere. Each complete tuple is handed over as
/// <see cref="PgParameters"/> in the binary format, typed as the target columns, so the usual getters decode it.
/// Malformed input is 22P04 (bad copy file format), as PostgreSQL reports it.
/// </summary>
public sealed class PgBinaryCopyReader : IDisposable
{
    // A tuple is buffered whole before it is decoded: beyond this it cannot be a row the engine would accept (4 MiB).
    private const int MaxTupleBytes = 16 << 20;

    private readonly PgTypeOid[] _types;
    private readonly PgParameters _fields;
    private byte[] _buffer = ArrayPool<byte>.Shared.Rent(8192);
    private int _start;
    private int _end;
    private bool _headerRead;
    private bool _trailerSeen;

    public PgBinaryCopyReader(IReadOnlyList<PgTypeOid> columnTypes)
    {
        ArgumentNullException.ThrowIfNull(columnTypes);
        _types = [.. columnTypes];
        _fields = new PgParameters(_types.Length);
    }

    /// <summary>Rows handed over so far.</summary>
    public long Rows { get; private set; }

    /// <summary>Takes the next chunk of CopyData and calls <paramref name="row"/> for every tuple it completes.</summary>
    public void Feed(ReadOnlySpan<byte> chunk, Action<PgParameters> row)
    {
        ArgumentNullException.ThrowIfNull(row);
        if (chunk.IsEmpty)
        {
            return;
        }

        if (_trailerSeen)
        {
            throw PgBinaryCopy.BadFormat("received copy data after EOF marker");
        }

        Append(chunk);
        while (!_trailerSeen && (_headerRead || TryReadHeader()) && TryReadTuple(row))
        {
        }

        if (_trailerSeen && _end > _start)
        {
            throw PgBinaryCopy.BadFormat("received copy data after EOF marker");
        }
    }

    /// <summary>At CopyDone: the data must have ended on a tuple boundary (the trailer may be missing, as PostgreSQL allows).</summary>
    public void Finish()
    {
        if (!_headerRead)
        {
            throw PgBinaryCopy.BadFormat("COPY file signature not recognized");
        }

        if (_end > _start)
        {
            throw PgBinaryCopy.BadFormat("unexpected EOF in COPY data");
        }
    }

    public void Dispose()
    {
        _fields.Detach();
        ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = [];
    }

    private void Append(ReadOnlySpan<byte> chunk)
    {
        if (_end + chunk.Length > _buffer.Length)
        {
            var pending = _end - _start;
            if (pending + chunk.Length > MaxTupleBytes + 64)
            {
                throw new PgException("54000", $"COPY row is too large: more than {MaxTupleBytes} bytes");
            }

            var target = _buffer;
            if (pending + chunk.Length > _buffer.Length)
            {
                target = ArrayPool<byte>.Shared.Rent(Math.Max(pending + chunk.Length, _buffer.Length * 2));
            }

            Buffer.BlockCopy(_buffer, _start, target, 0, pending);
            if (!ReferenceEquals(target, _buffer))
            {
                ArrayPool<byte>.Shared.Return(_buffer);
                _buffer = target;
            }

            _start = 0;
            _end = pending;
        }

        chunk.CopyTo(_buffer.AsSpan(_end));
        _end += chunk.Length;
    }

    private bool TryReadHeader()
    {
        var available = _buffer.AsSpan(_start, _end - _start);
        var signature = PgBinaryCopy.Signature;
        if (!signature.StartsWith(available[..Math.Min(available.Length, signature.Length)]))
        {
            throw PgBinaryCopy.BadFormat("COPY file signature not recognized");
        }

        if (available.Length < signature.Length + 8)
        {
            return false;
        }

        var flags = BinaryPrimitives.ReadInt32BigEndian(available[signature.Length..]);
        if ((flags & (1 << 16)) != 0)
        {
            throw PgBinaryCopy.BadFormat("invalid COPY file header (WITH OIDS)");
        }

        if ((flags & unchecked((int)0xFFFE0000)) != 0)
        {
            throw PgBinaryCopy.BadFormat("unrecognized critical flags in COPY file header");
        }

        var extension = BinaryPrimitives.ReadInt32BigEndian(available[(signature.Length + 4)..]);
        if (extension < 0)
        {
            throw PgBinaryCopy.BadFormat("invalid COPY file header (missing length)");
        }

        if (extension > MaxTupleBytes)
        {
            throw PgBinaryCopy.BadFormat("invalid COPY file header (wrong length)");
        }

        if (available.Length < signature.Length + 8 + extension)
        {
            return false;
        }

        _start += signature.Length + 8 + extension;
        _headerRead = true;
        return true;
    }

    private bool TryReadTuple(Action<PgParameters> row)
    {
        var available = _buffer.AsSpan(_start, _end - _start);
        if (available.Length < 2)
        {
            return false;
        }

        var count = BinaryPrimitives.ReadInt16BigEndian(available);
        if (count == -1)
        {
            _trailerSeen = true;
            _start += 2;
            return false;
        }

        if (count != _types.Length)
        {
            throw PgBinaryCopy.BadFormat($"row field count is {count}, expected {_types.Length}");
        }

        // Measure the whole tuple first: it is decoded only once every field has arrived.
        var offset = 2;
        for (var i = 0; i < count; i++)
        {
            if (available.Length < offset + 4)
            {
                return false;
            }

            var length = BinaryPrimitives.ReadInt32BigEndian(available[offset..]);
            if (length < -1)
            {
                throw PgBinaryCopy.BadFormat("invalid field size");
            }

            if (length > MaxTupleBytes)
            {
                throw new PgException("54000", $"COPY field is too large: {length} bytes");
            }

            offset += 4 + Math.Max(length, 0);
            if (available.Length < offset)
            {
                return false;
            }
        }

        _fields.Reset(count, _buffer);
        var position = _start + 2;
        for (var i = 0; i < count; i++)
        {
            var length = BinaryPrimitives.ReadInt32BigEndian(_buffer.AsSpan(position));
            _fields.Set(i, _types[i], PgFormat.Binary, position + 4, length);
            position += 4 + Math.Max(length, 0);
        }

        try
        {
            row(_fields);
        }
        finally
        {
            // The buffer stays ours: the parameters only borrowed it.
            _fields.Detach();
        }

        _start += offset;
        Rows++;
        return true;
    }
}
