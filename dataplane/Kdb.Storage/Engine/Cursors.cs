using Kdb.Storage.Memtable;
using Kdb.Storage.Segments;

namespace Kdb.Storage.Engine;

/// <summary>Iterates one source, one entry per key (the newest visible), forward or reverse.</summary>
internal interface ICursor
{
    bool Valid { get; }
    ReadOnlySpan<byte> Key { get; }
    ulong Version { get; }
    OpKind Kind { get; }
    ReadOnlySpan<byte> Value { get; }
    void Next();
}

internal sealed class DeltaCursor : ICursor
{
    private readonly Delta _delta;
    private readonly ulong _maxVersion;
    private readonly bool _reverse;
    private Delta.Node? _node;

    public DeltaCursor(Delta delta, ulong maxVersion, byte[] start, byte[]? end, bool reverse)
    {
        _delta = delta;
        _maxVersion = maxVersion;
        _reverse = reverse;
        if (!reverse)
        {
            _node = delta.Seek(start);
            SkipForward();
        }
        else
        {
            var last = end is null ? delta.Last() : delta.SeekBefore(end);
            PositionReverse(last);
        }
    }

    public bool Valid => _node is not null;
    public ReadOnlySpan<byte> Key => _node!.Key;
    public ulong Version => _node!.Version;
    public OpKind Kind => _node!.Kind;
    public ReadOnlySpan<byte> Value => _node!.Value;

    // Forward: land on the newest visible version of the next key.
    private void SkipForward()
    {
        while (_node is not null && _node.Version > _maxVersion)
        {
            _node = Delta.NextOf(_node);
        }
    }

    // Reverse: from any node of key K, land on K's newest visible version, or walk to earlier keys.
    private void PositionReverse(Delta.Node? any)
    {
        while (any is not null)
        {
            var n = _delta.Find(any.Key, _maxVersion);
            if (n is not null)
            {
                _node = n;
                return;
            }
            any = _delta.SeekBefore(any.Key);
        }
        _node = null;
    }

    public void Next()
    {
        var cur = _node!;
        if (!_reverse)
        {
            var n = Delta.NextOf(cur);
            while (n is not null && n.Key.AsSpan().SequenceEqual(cur.Key))
            {
                n = Delta.NextOf(n);
            }
            _node = n;
            SkipForward();
        }
        else
        {
            PositionReverse(_delta.SeekBefore(cur.Key));
        }
    }
}

internal sealed class SegmentCursor : ICursor
{
    private readonly Segment _seg;
    private readonly bool _reverse;
    private long _pos;

    public SegmentCursor(Segment seg, byte[] start, byte[]? end, bool reverse)
    {
        _seg = seg;
        _reverse = reverse;
        _pos = reverse ? (end is null ? seg.Count : seg.LowerBound(end)) - 1 : seg.LowerBound(start);
    }

    public bool Valid => _pos >= 0 && _pos < _seg.Count;
    public ReadOnlySpan<byte> Key => _seg.KeyAt(_pos);
    public ulong Version => _seg.VersionAt(_pos);
    public OpKind Kind => _seg.KindAt(_pos);
    public ReadOnlySpan<byte> Value => _seg.ValueAt(_pos);
    public void Next() => _pos += _reverse ? -1 : 1;
}
