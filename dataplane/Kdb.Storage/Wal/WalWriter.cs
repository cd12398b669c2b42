namespace Kdb.Storage.Wal;

/// <summary>
/// Appends records to the current WAL file with leader/follower group commit: appenders (serialized
/// by the engine's apply lock) only copy into a memory buffer. A writer that needs durability and
/// finds no fsync running becomes the leader: it writes everything buffered so far in one write and
/// one fsync, publishes the durable ticket and wakes every waiter at once. Writers arriving while
/// that fsync runs are followers: they wait on the gate until a published ticket covers them, and
/// the first of them not covered leads the next fsync, which carries everything buffered meanwhile.
/// (Holding one lock across the fsync instead made covered writers re-check one at a time, queued
/// behind an uncovered writer's own fsync, so little batching happened.)
/// Lock order: engine apply lock → IO lock → buffer lock; the gate is never held while taking another.
/// </summary>
internal sealed class WalWriter : IDisposable
{
    private const int SpillBytes = 1 << 20;

    private readonly string _dir;
    private readonly object _ioLock = new();   // the file: writes, fsyncs, rotation
    private readonly object _gate = new();     // leader election and the durable ticket's waiters
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
    private bool _leading;     // under _gate: a leader's fsync is running
    private int _waiters;      // under _gate: followers waiting for a publish
    private Exception? _failed; // under _ioLock: a write or fsync failed; nothing more is written

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

    /// <summary>Test seam: runs on the syncing thread after the buffer is written, before the fsync
    /// (tests hold an fsync open to check who waits for it).</summary>
    internal Action? BeforeFsync { get; set; }

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
            lock (_ioLock)
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
        lock (_gate)
        {
            while (_leading)
            {
                if (_durable >= ticket)
                {
                    return;
                }
                // Follower: the running fsync may not cover this ticket, but the next one will
                // carry it; wait for a publish (or for the leader to step down on failure).
                _waiters++;
                Monitor.Wait(_gate);
                _waiters--;
            }
            if (_durable >= ticket)
            {
                return;
            }
            _leading = true;
        }
        try
        {
            lock (_ioLock)
            {
                WriteOut(fsync: true);
            }
        }
        finally
        {
            lock (_gate)
            {
                _leading = false;
                if (_waiters > 0)
                {
                    Monitor.PulseAll(_gate);
                }
            }
        }
    }

    /// <summary>Writes and fsyncs everything appended so far.</summary>
    public void SyncAll()
    {
        lock (_ioLock)
        {
            WriteOut(fsync: true);
        }
    }

    private void WriteOut(bool fsync)
    {
        if (_failed is not null)
        {
            // After a failed write or fsync the file's state is unknown (and a retried fsync can
            // report success for pages the kernel already dropped), so no later write may claim
            // durability: every waiter gets the error until the engine is reopened and replays.
            throw new IOException("an earlier WAL write or fsync failed; the engine must be reopened", _failed);
        }
        long end;
        ulong endSeq;
        lock (_bufLock)
        {
            (_buf, _spare) = (_spare, _buf);
            end = _appended;
            endSeq = _lastSeq;
        }
        try
        {
            if (_spare.Length > 0)
            {
                _fs.Write(_spare.WrittenSpan);
                _spare.Reset();
            }
            if (fsync)
            {
                BeforeFsync?.Invoke();
                _fs.Flush(true);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _failed = e;
            throw;
        }
        if (fsync)
        {
            Interlocked.Increment(ref _syncs);
            lock (_gate)
            {
                // Published under the gate so that a follower cannot miss the wake-up between its
                // check and its wait; every follower covered by this fsync returns at once.
                Volatile.Write(ref _durableSeq, endSeq);
                Volatile.Write(ref _durable, end);
                if (_waiters > 0)
                {
                    Monitor.PulseAll(_gate);
                }
            }
        }
    }

    /// <summary>Finishes the current file (written and fsynced) and starts <paramref name="fileNo"/>.
    /// Called under the engine's apply lock, so nothing is appended meanwhile.</summary>
    public void Rotate(ulong fileNo)
    {
        lock (_ioLock)
        {
            WriteOut(fsync: true);
            _fs.Dispose();
            _fs = Create(fileNo);
            FileNo = fileNo;
        }
    }

    public void Dispose()
    {
        lock (_ioLock)
        {
            try
            {
                if (_failed is null)
                {
                    WriteOut(fsync: true);
                }
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
