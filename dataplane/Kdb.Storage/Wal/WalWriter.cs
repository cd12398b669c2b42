namespace Kdb.Storage.Wal;

/// <summary>
/// Appends records to the current WAL file with group commit: appenders (serialized by the engine's
/// apply lock) only copy into a memory buffer; whoever then needs durability takes the sync lock,
/// writes everything buffered so far in one write and one fsync, and every writer whose record was
/// in that buffer returns without a sync of its own. While one fsync runs, the next group gathers.
/// Lock order: engine apply lock → sync lock → buffer lock.
/// </summary>
internal sealed class WalWriter : IDisposable
{
    private const int SpillBytes = 1 << 20;

    private readonly string _dir;
    private readonly object _syncLock = new();
    private readonly object _bufLock = new();
    private ByteWriter _buf = new(SpillBytes);
    private ByteWriter _spare = new(SpillBytes);
    private FileStream _fs;
    private long _appended;   // logical bytes appended since open
    private long _durable;    // logical bytes fsynced
    private long _fileBytes;
    private ulong _lastSeq;    // seq of the last record appended
    private ulong _durableSeq; // seq of the last record fsynced
    private long _syncs;

    /// <param name="dir">The WAL directory.</param>
    /// <param name="fileNo">The number of the first file to create.</param>
    /// <param name="durableSeq">The last seq already durable (replayed at open).</param>
    public WalWriter(string dir, ulong fileNo, ulong durableSeq = 0)
    {
        _dir = dir;
        _lastSeq = durableSeq;
        _durableSeq = durableSeq;
        _fs = Create(fileNo);
        FileNo = fileNo;
    }

    public ulong FileNo { get; private set; }

    public long FileBytes => _fileBytes;

    /// <summary>fsyncs of record data since open.</summary>
    public long Syncs => Volatile.Read(ref _syncs);

    /// <summary>The seq of the newest record known to be fsynced.</summary>
    public ulong DurableSeq => Volatile.Read(ref _durableSeq);

    /// <summary>The ticket of everything appended so far (to sync a record whose own ticket the caller did not keep).</summary>
    public long AppendedTicket
    {
        get
        {
            lock (_bufLock)
            {
                return _appended;
            }
        }
    }

    private FileStream Create(ulong fileNo)
    {
        var fs = new FileStream(WalFormat.FileName(_dir, fileNo), FileMode.CreateNew, FileAccess.Write, FileShare.Read, 0);
        Span<byte> h = stackalloc byte[WalFormat.FileHeaderSize];
        WalFormat.WriteFileHeader(h);
        fs.Write(h);
        fs.Flush(true);
        FileUtil.FsyncDirectory(_dir);
        _fileBytes = WalFormat.FileHeaderSize;
        return fs;
    }

    /// <summary>Buffers one record; returns the ticket to pass to <see cref="Sync"/>.</summary>
    public long Append(ulong seq, ReadOnlySpan<byte> payload, bool spill)
    {
        long ticket;
        lock (_bufLock)
        {
            var h = _buf.Reserve(WalFormat.RecordHeaderSize);
            System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(h, payload.Length);
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(h[4..], WalFormat.RecordCrc(payload.Length, seq, payload));
            System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(h[8..], seq);
            _buf.Bytes(payload);
            _appended += WalFormat.RecordHeaderSize + payload.Length;
            _lastSeq = seq;
            _fileBytes += WalFormat.RecordHeaderSize + payload.Length;
            ticket = _appended;
            spill &= _buf.Length >= SpillBytes;
        }
        if (spill)
        {
            lock (_syncLock)
            {
                WriteOut(fsync: false);
            }
        }
        return ticket;
    }

    /// <summary>Returns once every record up to <paramref name="ticket"/> is on disk.</summary>
    public void Sync(long ticket)
    {
        if (Volatile.Read(ref _durable) >= ticket)
        {
            return;
        }
        lock (_syncLock)
        {
            if (_durable >= ticket)
            {
                return;
            }
            WriteOut(fsync: true);
        }
    }

    /// <summary>Writes and fsyncs everything appended so far.</summary>
    public void SyncAll()
    {
        lock (_syncLock)
        {
            WriteOut(fsync: true);
        }
    }

    private void WriteOut(bool fsync)
    {
        long end;
        ulong endSeq;
        lock (_bufLock)
        {
            (_buf, _spare) = (_spare, _buf);
            end = _appended;
            endSeq = _lastSeq;
        }
        if (_spare.Length > 0)
        {
            _fs.Write(_spare.WrittenSpan);
            _spare.Reset();
        }
        if (fsync)
        {
            _fs.Flush(true);
            Interlocked.Increment(ref _syncs);
            Volatile.Write(ref _durable, end);
            Volatile.Write(ref _durableSeq, endSeq);
        }
    }

    /// <summary>Finishes the current file (written and fsynced) and starts <paramref name="fileNo"/>.
    /// Called under the engine's apply lock, so nothing is appended meanwhile.</summary>
    public void Rotate(ulong fileNo)
    {
        lock (_syncLock)
        {
            WriteOut(fsync: true);
            _fs.Dispose();
            _fs = Create(fileNo);
            FileNo = fileNo;
        }
    }

    public void Dispose()
    {
        lock (_syncLock)
        {
            try
            {
                WriteOut(fsync: true);
            }
            finally
            {
                _fs.Dispose();
                _buf.Dispose();
                _spare.Dispose();
            }
        }
    }
}
