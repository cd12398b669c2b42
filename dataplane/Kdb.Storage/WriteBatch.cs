namespace Kdb.Storage;

/// <summary>Kind of an operation in a batch and of a stored entry. Persisted: values are frozen.</summary>
public enum OpKind : byte
{
    /// <summary>A value.</summary>
    Put = 1,
    /// <summary>A point tombstone.</summary>
    Delete = 2,
    /// <summary>A range tombstone over [key, endKey).</summary>
    DeleteRange = 3,
}

/// <summary>An atomic group of puts, deletes and range deletes. Within one batch a range delete
/// covers only older versions: a put of the same batch inside the range survives; for the same key
/// twice the last operation wins.</summary>
public sealed class WriteBatch
{
    internal readonly List<BatchOp> Ops = [];

    /// <summary>Number of operations.</summary>
    public int Count => Ops.Count;

    /// <summary>Approximate bytes of keys and values.</summary>
    public long ByteSize { get; private set; }

    /// <summary>Adds a put. Throws <see cref="ArgumentException"/> for a key over 4 KiB, an empty key
    /// or a value over 4 MiB.</summary>
    public WriteBatch Put(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value)
    {
        CheckKey(key, nameof(key));
        if (value.Length > KvEngine.MaxValueBytes)
        {
            throw new ArgumentException($"value of {value.Length} bytes exceeds the {KvEngine.MaxValueBytes}-byte limit", nameof(value));
        }
        Ops.Add(new BatchOp(OpKind.Put, key.ToArray(), value.ToArray()));
        ByteSize += key.Length + value.Length;
        return this;
    }

    /// <summary>Adds a point delete (a tombstone carrying the batch version).</summary>
    public WriteBatch Delete(ReadOnlySpan<byte> key)
    {
        CheckKey(key, nameof(key));
        Ops.Add(new BatchOp(OpKind.Delete, key.ToArray(), null));
        ByteSize += key.Length;
        return this;
    }

    /// <summary>Adds one tombstone for every key in [<paramref name="start"/>, <paramref name="end"/>).</summary>
    public WriteBatch DeleteRange(ReadOnlySpan<byte> start, ReadOnlySpan<byte> end)
    {
        CheckKey(start, nameof(start));
        CheckKey(end, nameof(end));
        if (start.SequenceCompareTo(end) >= 0)
        {
            throw new ArgumentException("range delete needs start < end", nameof(end));
        }
        Ops.Add(new BatchOp(OpKind.DeleteRange, start.ToArray(), end.ToArray()));
        ByteSize += start.Length + end.Length;
        return this;
    }

    /// <summary>Removes all operations.</summary>
    public void Clear()
    {
        Ops.Clear();
        ByteSize = 0;
    }

    private static void CheckKey(ReadOnlySpan<byte> key, string name)
    {
        if (key.Length == 0)
        {
            throw new ArgumentException("keys must not be empty", name);
        }
        if (key.Length > KvEngine.MaxKeyBytes)
        {
            throw new ArgumentException($"key of {key.Length} bytes exceeds the {KvEngine.MaxKeyBytes}-byte limit", name);
        }
    }
}

/// <summary>One operation. For <see cref="OpKind.DeleteRange"/>, <see cref="Value"/> holds the end key.</summary>
internal readonly record struct BatchOp(OpKind Kind, byte[] Key, byte[]? Value);

/// <summary>A range tombstone: hides entries in [Start, End) with a lower version.</summary>
internal sealed record RangeTombstone(byte[] Start, byte[] End, ulong Version)
{
    public bool Covers(ReadOnlySpan<byte> key) =>
        key.SequenceCompareTo(Start) >= 0 && key.SequenceCompareTo(End) < 0;

    public bool Intersects(ReadOnlySpan<byte> start, byte[]? end) =>
        (end is null || Start.AsSpan().SequenceCompareTo(end) < 0) && End.AsSpan().SequenceCompareTo(start) > 0;
}
