using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace Kdb.Storage.Memtable;

/// <summary>
/// The in-memory delta: a skip list ordered by (key ascending, version descending), written by one
/// thread at a time (the engine's apply lock) and read by any number of threads without locks.
/// Links are published with volatile writes bottom-up after the node is complete, so a reader
/// sees either the old list or a fully formed node. Entries are never removed; a frozen delta is
/// immutable and dropped by the GC once no snapshot references it.
/// </summary>
internal sealed class Delta
{
    private const int MaxHeight = 20;
    private static readonly object TombstoneMarker = new();

    internal sealed class Node(byte[] key, ulong version, object? payload, int height)
    {
        // The key's first 24 bytes as big-endian words (zero-padded): most comparisons during a
        // search end on these, without loading the key array (one cache miss fewer per step).
        public readonly ulong W0 = Word(key, 0);
        public readonly ulong W1 = Word(key, 8);
        public readonly ulong W2 = Word(key, 16);
        public readonly byte[] Key = key;
        public readonly ulong Version = version;
        public object? Payload = payload; // byte[] value, TombstoneMarker, or null for the head
        public readonly Node?[] Next = new Node?[height];

        public OpKind Kind => ReferenceEquals(Volatile.Read(ref Payload), TombstoneMarker) ? OpKind.Delete : OpKind.Put;
        public byte[]? Value => Volatile.Read(ref Payload) as byte[];
    }

    private readonly Node _head = new([], ulong.MaxValue, null, MaxHeight);
    private readonly Node?[] _preds = new Node?[MaxHeight];
    private readonly Node[] _tails;  // writer only: the last node of each level (the head when empty)
    private RangeTombstone[] _rangeTombstones = [];
    private uint _rng = 0x9E3779B9;
    private int _height = 1;
    private long _bytes;
    private long _count;

    public Delta(ulong walFileNo)
    {
        WalFileNo = walFileNo;
        _tails = new Node[MaxHeight];
        _tails.AsSpan().Fill(_head);
    }

    /// <summary>The first WAL file holding this delta's records.</summary>
    public ulong WalFileNo { get; }

    public long ApproximateBytes => Volatile.Read(ref _bytes);
    public long Count => Volatile.Read(ref _count);
    public ulong MaxVersion { get; private set; }
    public RangeTombstone[] RangeTombstones => Volatile.Read(ref _rangeTombstones);

    public bool IsEmpty => Count == 0 && RangeTombstones.Length == 0;

    /// <summary>Records a batch version (also for empty batches, so Raft's applied index advances).</summary>
    public void NoteVersion(ulong version) => MaxVersion = Math.Max(MaxVersion, version);

    /// <summary>Single writer only.</summary>
    public void Add(OpKind kind, byte[] key, byte[]? value, ulong version)
    {
        MaxVersion = Math.Max(MaxVersion, version);
        if (kind == OpKind.DeleteRange)
        {
            var old = _rangeTombstones;
            var rts = new RangeTombstone[old.Length + 1];
            old.CopyTo(rts, 0);
            rts[^1] = new RangeTombstone(key, value!, version);
            Volatile.Write(ref _rangeTombstones, rts);
            Volatile.Write(ref _bytes, _bytes + key.Length + value!.Length + 64);
            return;
        }
        object payload = kind == OpKind.Put ? value! : TombstoneMarker;
        var probe = new Probe(key);
        var x = _head;
        var last = _tails[0];
        if (ReferenceEquals(last, _head) || Compare(last, probe, version) < 0)
        {
            // Keys arriving in order (serial ids, time series, bulk loads, Raft-indexed keys) go
            // after the last node: the predecessors are the tails, no search.
            Array.Copy(_tails, _preds, _height);
            x = last;
        }
        else
        {
            for (var level = _height - 1; level >= 0; level--)
            {
                while (true)
                {
                    var nx = x.Next[level];
                    if (nx is null || Compare(nx, probe, version) >= 0)
                    {
                        break;
                    }
                    x = nx;
                }
                _preds[level] = x;
            }
        }
        var found = x.Next[0];
        if (found is not null && found.Version == version && found.Key.AsSpan().SequenceEqual(key))
        {
            // Same key twice in one batch: the last operation wins, swapped atomically.
            Volatile.Write(ref found.Payload, payload);
            return;
        }
        var h = RandomHeight();
        if (h > _height)
        {
            for (var l = _height; l < h; l++)
            {
                _preds[l] = _head;
            }
            _height = h;
        }
        var node = new Node(key, version, payload, h);
        for (var l = 0; l < h; l++)
        {
            node.Next[l] = _preds[l]!.Next[l];
        }
        for (var l = 0; l < h; l++)
        {
            Volatile.Write(ref _preds[l]!.Next[l], node);
            if (node.Next[l] is null)
            {
                _tails[l] = node;
            }
        }
        // Single writer: plain read-modify-write, published with a volatile store.
        Volatile.Write(ref _bytes, _bytes + key.Length + (value?.Length ?? 0) + 120 + (8 * h));
        Volatile.Write(ref _count, _count + 1);
    }

    private int RandomHeight()
    {
        var h = 1;
        // xorshift; branching factor 4.
        _rng ^= _rng << 13;
        _rng ^= _rng >> 17;
        _rng ^= _rng << 5;
        var r = _rng;
        while (h < MaxHeight && (r & 3) == 0)
        {
            h++;
            r >>= 2;
        }
        return h;
    }

    /// <summary>Bytes [at, at + 8) of the key as a big-endian word, zero-padded past its end.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Word(ReadOnlySpan<byte> key, int at)
    {
        if (key.Length >= at + 8)
        {
            return BinaryPrimitives.ReadUInt64BigEndian(key.Slice(at, 8));
        }
        Span<byte> tmp = stackalloc byte[8];
        tmp.Clear();
        if (key.Length > at)
        {
            key[at..].CopyTo(tmp);
        }
        return BinaryPrimitives.ReadUInt64BigEndian(tmp);
    }

    /// <summary>A search key with its words computed once.</summary>
    private readonly ref struct Probe(ReadOnlySpan<byte> key)
    {
        public readonly ReadOnlySpan<byte> Key = key;
        public readonly ulong W0 = Word(key, 0);
        public readonly ulong W1 = Word(key, 8);
        public readonly ulong W2 = Word(key, 16);
    }

    /// <summary>Key order of a node against a probe. Unequal words decide it (zero padding orders a
    /// key before its extensions); equal words leave only the lengths when both keys fit in them.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int CompareKey(Node a, in Probe b)
    {
        if (a.W0 != b.W0)
        {
            return a.W0 < b.W0 ? -1 : 1;
        }
        if (a.W1 != b.W1)
        {
            return a.W1 < b.W1 ? -1 : 1;
        }
        if (a.W2 != b.W2)
        {
            return a.W2 < b.W2 ? -1 : 1;
        }
        var al = a.Key.Length;
        return al <= 24 && b.Key.Length <= 24 ? al.CompareTo(b.Key.Length) : a.Key.AsSpan().SequenceCompareTo(b.Key);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Compare(Node a, in Probe b, ulong bVer)
    {
        var c = CompareKey(a, b);
        return c != 0 ? c : bVer.CompareTo(a.Version);
    }

    /// <summary>First node with (key, version) ≥ (key, maxVersion) in list order: the newest
    /// version ≤ maxVersion of key, or the next key.</summary>
    public Node? Seek(ReadOnlySpan<byte> key, ulong maxVersion = ulong.MaxValue)
    {
        var probe = new Probe(key);
        var x = _head;
        for (var level = Volatile.Read(ref _height) - 1; level >= 0; level--)
        {
            while (true)
            {
                var nx = Volatile.Read(ref x.Next[level]);
                if (nx is null || Compare(nx, probe, maxVersion) >= 0)
                {
                    break;
                }
                x = nx;
            }
        }
        return Volatile.Read(ref x.Next[0]);
    }

    /// <summary>Last node strictly before (key, +∞ version) — the greatest entry with a smaller key — or null.</summary>
    public Node? SeekBefore(ReadOnlySpan<byte> key)
    {
        var probe = new Probe(key);
        var x = _head;
        for (var level = Volatile.Read(ref _height) - 1; level >= 0; level--)
        {
            while (true)
            {
                var nx = Volatile.Read(ref x.Next[level]);
                if (nx is null || CompareKey(nx, probe) >= 0)
                {
                    break;
                }
                x = nx;
            }
        }
        return ReferenceEquals(x, _head) ? null : x;
    }

    /// <summary>The last node of the list, or null.</summary>
    public Node? Last()
    {
        var x = _head;
        for (var level = Volatile.Read(ref _height) - 1; level >= 0; level--)
        {
            while (true)
            {
                var nx = Volatile.Read(ref x.Next[level]);
                if (nx is null)
                {
                    break;
                }
                x = nx;
            }
        }
        return ReferenceEquals(x, _head) ? null : x;
    }

    public static Node? NextOf(Node n) => Volatile.Read(ref n.Next[0]);

    /// <summary>Newest entry of exactly <paramref name="key"/> with version ≤ maxVersion.</summary>
    public Node? Find(ReadOnlySpan<byte> key, ulong maxVersion)
    {
        var n = Seek(key, maxVersion);
        return n is not null && n.Key.AsSpan().SequenceEqual(key) ? n : null;
    }
}
