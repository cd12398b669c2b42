using System.Buffers.Binary;

namespace Kdb.Raft.Tests.Simulation;

internal enum KvOp : byte
{
    Get = 1,
    Put = 2,
    Cas = 3,
}

/// <summary>A KV command in a log entry: [op u8][op id u64][key i32][value i32][expected i32].</summary>
internal readonly record struct KvCommand(KvOp Op, ulong OpId, int Key, int Value, int Expected)
{
    public const int Length = 21;

    public byte[] Encode()
    {
        var b = new byte[Length];
        b[0] = (byte)Op;
        BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(1), OpId);
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(9), Key);
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(13), Value);
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(17), Expected);
        return b;
    }

    public static KvCommand Decode(ReadOnlySpan<byte> b) => new(
        (KvOp)b[0],
        BinaryPrimitives.ReadUInt64LittleEndian(b[1..]),
        BinaryPrimitives.ReadInt32LittleEndian(b[9..]),
        BinaryPrimitives.ReadInt32LittleEndian(b[13..]),
        BinaryPrimitives.ReadInt32LittleEndian(b[17..]));
}

/// <summary>The test state machine: int keys to int values (0 = absent). Applies each index exactly once per incarnation.</summary>
internal sealed class KvStateMachine
{
    private readonly SortedDictionary<int, int> _data = [];

    public ulong AppliedIndex { get; private set; }

    /// <summary>Bytes added to every snapshot so that snapshots span several chunks.</summary>
    public int SnapshotPadding { get; init; }

    public int Get(int key) => _data.TryGetValue(key, out var v) ? v : 0;

    /// <summary>Applies one committed entry; returns 1/0 for a CAS outcome, 1 for other writes.</summary>
    public int Apply(Entry e)
    {
        if (e.Index != AppliedIndex + 1)
        {
            throw new InvalidOperationException($"state machine applied {AppliedIndex}, asked to apply {e.Index}: not exactly once");
        }
        AppliedIndex = e.Index;
        if (e.Type != EntryType.Normal || e.Data.Length == 0)
        {
            return 1;
        }
        var c = KvCommand.Decode(e.Data.Span);
        switch (c.Op)
        {
            case KvOp.Put:
                _data[c.Key] = c.Value;
                return 1;
            case KvOp.Cas:
                if (Get(c.Key) == c.Expected)
                {
                    _data[c.Key] = c.Value;
                    return 1;
                }
                return 0;
            default:
                throw new InvalidOperationException($"unknown op {c.Op}");
        }
    }

    public byte[] Snapshot()
    {
        var b = new byte[8 + 4 + (8 * _data.Count) + SnapshotPadding];
        BinaryPrimitives.WriteUInt64LittleEndian(b, AppliedIndex);
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(8), _data.Count);
        var p = 12;
        foreach (var (k, v) in _data)
        {
            BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(p), k);
            BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(p + 4), v);
            p += 8;
        }
        for (var i = p; i < b.Length; i++)
        {
            b[i] = (byte)(i * 31);
        }
        return b;
    }

    public void Restore(ReadOnlySpan<byte> b, ulong expectedIndex)
    {
        var index = BinaryPrimitives.ReadUInt64LittleEndian(b);
        if (index != expectedIndex)
        {
            throw new InvalidOperationException($"snapshot data is at {index}, metadata says {expectedIndex}");
        }
        _data.Clear();
        var n = BinaryPrimitives.ReadInt32LittleEndian(b[8..]);
        var p = 12;
        for (var i = 0; i < n; i++)
        {
            _data[BinaryPrimitives.ReadInt32LittleEndian(b[p..])] = BinaryPrimitives.ReadInt32LittleEndian(b[(p + 4)..]);
            p += 8;
        }
        AppliedIndex = index;
    }

    public ulong StateHash()
    {
        var h = 14695981039346656037UL;
        foreach (var (k, v) in _data)
        {
            h = (h ^ (uint)k) * 1099511628211UL;
            h = (h ^ (uint)v) * 1099511628211UL;
        }
        return h;
    }
}
