using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Diagnostics;
using Kdb.Storage;
using Kdb.Transactions;

namespace Kdb.Cluster;

/// <summary>
/// Applies committed shard commands to the group's storage engine, deterministically: every replica reaches the
/// same verdicts and the same state. Runs on the host's loop thread only.
/// </summary>
internal sealed class ShardStateMachine(IKvEngine engine) : IVersionSource
{
    private IKvEngine _engine = engine;

    public IKvEngine Engine => _engine;

    /// <summary>Commit records reading below this are rejected (snapshot too old); compaction may drop tombstones at or below it.</summary>
    public ulong GcThreshold { get; private set; } = ReadGcThreshold(engine);

    /// <summary>Databases created or dropped, roles or states changed: readers of the directory refresh.</summary>
    public event Action<string>? DatabaseChanged;

    // Every statement checks its database's state: decoded records are cached, tagged with the generation they were read
    // at. Any directory change bumps the generation after it is written, so a record read before a change never matches.
    private const int MaxCachedRecords = 10_000;
    private readonly ConcurrentDictionary<string, (long Generation, DatabaseRecord Record)> _records = new(StringComparer.Ordinal);
    private long _generation;

    /// <summary>Databases hosted: counted once at open (or snapshot install), then kept by create and drop.</summary>
    public long DatabaseCount => Interlocked.Read(ref _databaseCount);

    private long _databaseCount = CountDatabases(engine);

    private static long CountDatabases(IKvEngine engine)
    {
        var n = 0L;
        foreach (var _ in engine.Scan(SystemKeys.Prefix(SystemKeys.DatabasesTable), SystemKeys.TableEnd(SystemKeys.DatabasesTable)))
        {
            n++;
        }
        return n;
    }

    public void ReplaceEngine(IKvEngine engine)
    {
        _engine = engine;
        Interlocked.Exchange(ref _databaseCount, CountDatabases(engine));
        GcThreshold = ReadGcThreshold(engine);
        Interlocked.Increment(ref _generation);
    }

    /// <summary>Safe on any thread.</summary>
    public DatabaseRecord? FindDatabase(string databaseId)
    {
        var generation = Volatile.Read(ref _generation);
        if (_records.TryGetValue(databaseId, out var cached) && cached.Generation == generation)
        {
            return cached.Record;
        }
        if (_engine.Get(SystemKeys.Database(databaseId)) is not { Found: true } r)
        {
            return null;
        }
        var record = DatabaseRecord.Decode(r.Value!);
        if (_records.Count >= MaxCachedRecords)
        {
            _records.Clear();
        }
        _records[databaseId] = (generation, record);
        return record;
    }

    private void Changed(string databaseId)
    {
        Interlocked.Increment(ref _generation);
        DatabaseChanged?.Invoke(databaseId);
    }

    /// <summary>The database a tenant id belongs to. A tenant key left by a drop or a swap names no database; a key written
    /// before drops cleared it may still name a database id that was created again since, under another tenant, so the
    /// record must carry this very tenant.</summary>
    public DatabaseRecord? FindTenant(ulong tenantId)
    {
        var r = _engine.Get(SystemKeys.Tenant(tenantId));
        if (!r.Found || r.Value!.Length == 0)
        {
            return null;
        }
        return FindDatabase(System.Text.Encoding.UTF8.GetString(r.Value)) is { } db && db.TenantId == tenantId ? db : null;
    }

    public ApplyResult Apply(ulong index, ReadOnlyMemory<byte> command)
    {
        try
        {
            return ShardCommand.TypeOf(command.Span) switch
            {
                ShardCommandType.Commit => ApplyCommit(index, CommitRecordCodec.Decode(command[2..])),
                ShardCommandType.CreateDatabase => ApplyCreate(index, command),
                ShardCommandType.CreateDatabaseBatch => ApplyCreateBatch(index, command)[0],
                ShardCommandType.DropDatabase => ApplyDrop(index, command),
                ShardCommandType.SetRole => ApplySetRole(index, command),
                ShardCommandType.SetDatabaseState => ApplySetState(index, command),
                ShardCommandType.SetWritesPaused => ApplySetWritesPaused(index, command),
                ShardCommandType.AdvanceGcThreshold => ApplyGcThreshold(index, command),
                ShardCommandType.StageChunk => ApplyStage(index, command),
                ShardCommandType.ImportChunk => ApplyImport(index, command),
                ShardCommandType.SwapDatabase => ApplySwap(index, command),
                ShardCommandType.AdoptDatabase => ApplyAdopt(index, command),
                _ => new ApplyResult(ApplyStatus.Invalid, index, Message: "unknown command"),
            };
        }
        catch (Exception e) when (e is InvalidDataException or CommitRecordFormatException or CommitRecordTooLargeException or ArgumentException)
        {
            // Same bytes on every replica: the same refusal everywhere.
            return new ApplyResult(ApplyStatus.Invalid, index, Message: e.Message);
        }
    }

    private ApplyResult ApplyCommit(ulong index, CommitRecord record)
    {
        if (FindTenant(record.Tenant) is not { } db)
        {
            return new ApplyResult(ApplyStatus.NotFound, index, Message: "database does not exist");
        }
        if (db.State == DatabaseState.Suspended)
        {
            return new ApplyResult(ApplyStatus.Suspended, index);
        }
        if (db.State == DatabaseState.ReadOnly && (record.Writes.Count > 0 || record.StagedTransactionId != 0))
        {
            return new ApplyResult(ApplyStatus.ReadOnly, index);
        }
        if (db.WritesPaused && (record.Writes.Count > 0 || record.StagedTransactionId != 0))
        {
            return new ApplyResult(ApplyStatus.WritesPaused, index);
        }
        var validation = CommitValidator.Validate(record, this, index, GcThreshold);
        var batch = new WriteBatch();
        if (record.StagedTransactionId != 0)
        {
            var start = SystemKeys.StagedChunksStart(record.StagedTransactionId);
            var end = SystemKeys.StagedChunksEnd(record.StagedTransactionId);
            if (validation.IsValid)
            {
                foreach (var chunk in _engine.Scan(start, end))
                {
                    var staged = CommitRecordCodec.Decode(chunk.Value);
                    if (staged.Tenant != record.Tenant)
                    {
                        return new ApplyResult(ApplyStatus.Invalid, index, Message: "staged chunks belong to another tenant");
                    }
                    AddWrites(batch, staged.Writes, null);
                }
            }
            batch.DeleteRange(start, end);
            batch.Delete(SystemKeys.StagedTransaction(record.StagedTransactionId));
        }
        if (!validation.IsValid)
        {
            if (batch.Count > 0)
            {
                _engine.Apply(batch, index);
            }
            return new ApplyResult(ApplyStatus.Rejected, index, validation.Verdict, validation.ConflictVersion);
        }
        AddWrites(batch, record.Writes, null);
        if (batch.Count > 0)
        {
            _engine.Apply(batch, index);
        }
        return new ApplyResult(ApplyStatus.Ok, index);
    }

    private ApplyResult ApplyStage(ulong index, ReadOnlyMemory<byte> command)
    {
        var transactionId = BinaryPrimitives.ReadUInt64LittleEndian(command.Span[2..]);
        var sequence = BinaryPrimitives.ReadUInt32LittleEndian(command.Span[10..]);
        var chunk = command[14..];
        var record = CommitRecordCodec.Decode(chunk);
        if (transactionId == 0 || FindTenant(record.Tenant) is not { State: DatabaseState.Active, WritesPaused: false })
        {
            return new ApplyResult(ApplyStatus.Invalid, index, Message: "cannot stage for this database");
        }
        var batch = new WriteBatch();
        batch.Put(SystemKeys.StagedChunk(transactionId, sequence), chunk.Span);
        var registry = SystemKeys.StagedTransaction(transactionId);
        if (!_engine.Get(registry).Found)
        {
            Span<byte> first = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(first, index);
            batch.Put(registry, first);
        }
        _engine.Apply(batch, index);
        return new ApplyResult(ApplyStatus.Ok, index);
    }

    private ApplyResult ApplyCreate(ulong index, ReadOnlyMemory<byte> command) => ApplyCreates(index, [command])[0];

    /// <summary>Applies a <see cref="ShardCommandType.CreateDatabaseBatch"/>: one result per create, in order (a single
    /// Invalid result when the batch itself is malformed). Every replica reaches the same results.</summary>
    public ApplyResult[] ApplyCreateBatch(ulong index, ReadOnlyMemory<byte> command)
    {
        List<ReadOnlyMemory<byte>> creates;
        try
        {
            creates = ShardCommand.SplitCreateBatch(command);
        }
        catch (InvalidDataException e)
        {
            return [new ApplyResult(ApplyStatus.Invalid, index, Message: e.Message)];
        }
        return ApplyCreates(index, creates);
    }

    // The engine takes one batch per version (the Raft index), so every create of an entry goes into one write batch;
    // creates earlier in the same entry are not in the engine yet and are looked up in `added` instead.
    private ApplyResult[] ApplyCreates(ulong index, List<ReadOnlyMemory<byte>> creates)
    {
        var results = new ApplyResult[creates.Count];
        var batch = new WriteBatch();
        var added = new Dictionary<string, ulong>(StringComparer.Ordinal);
        var tenants = new HashSet<ulong>();
        for (var i = 0; i < creates.Count; i++)
        {
            try
            {
                results[i] = AddCreate(index, creates[i], batch, added, tenants);
            }
            catch (Exception e) when (e is InvalidDataException or ArgumentException)
            {
                results[i] = new ApplyResult(ApplyStatus.Invalid, index, Message: e.Message);
            }
        }
        if (added.Count > 0)
        {
            _engine.Apply(batch, index);
            Interlocked.Add(ref _databaseCount, added.Count);
            foreach (var databaseId in added.Keys)
            {
                Changed(databaseId);
            }
        }
        return results;
    }

    private ApplyResult AddCreate(ulong index, ReadOnlyMemory<byte> command, WriteBatch batch, Dictionary<string, ulong> added, HashSet<ulong> tenants)
    {
        var r = ShardCommand.Read(command);
        var databaseId = r.String();
        var tenantId = r.U64();
        var owner = r.Role();
        if (tenantId == 0 || databaseId.Length is 0 or > 63)
        {
            return new ApplyResult(ApplyStatus.Invalid, index, Message: "invalid database id or tenant id");
        }
        var existingTenant = FindDatabase(databaseId)?.TenantId ?? added.GetValueOrDefault(databaseId);
        if (existingTenant != 0)
        {
            return existingTenant == tenantId ? new ApplyResult(ApplyStatus.Ok, index, Message: "exists") : new ApplyResult(ApplyStatus.AlreadyExists, index);
        }
        if (tenants.Contains(tenantId) || _engine.Get(SystemKeys.Tenant(tenantId)).Found)
        {
            return new ApplyResult(ApplyStatus.AlreadyExists, index, Message: "tenant id in use");
        }
        var record = new DatabaseRecord(databaseId, tenantId, DatabaseState.Active, [owner], index);
        batch.Put(SystemKeys.Database(databaseId), record.Encode());
        batch.Put(SystemKeys.Tenant(tenantId), System.Text.Encoding.UTF8.GetBytes(databaseId));
        added[databaseId] = tenantId;
        tenants.Add(tenantId);
        return new ApplyResult(ApplyStatus.Ok, index);
    }

    private ApplyResult ApplyDrop(ulong index, ReadOnlyMemory<byte> command)
    {
        var databaseId = ShardCommand.Read(command).String();
        if (FindDatabase(databaseId) is not { } db)
        {
            return new ApplyResult(ApplyStatus.NotFound, index);
        }
        var batch = new WriteBatch();
        batch.DeleteRange(SystemKeys.TenantStart(db.TenantId), SystemKeys.TenantEnd(db.TenantId) ?? [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]);
        batch.Delete(SystemKeys.Database(databaseId));
        // The tenant key stays reserved (a tenant id is never reused, DESIGN) but names no database: a commit from a session
        // opened before the drop must find no database, even once a database with the same id exists again.
        batch.Put(SystemKeys.Tenant(db.TenantId), []);
        _engine.Apply(batch, index);
        Interlocked.Decrement(ref _databaseCount);
        Changed(databaseId);
        return new ApplyResult(ApplyStatus.Ok, index);
    }

    private ApplyResult ApplySetRole(ulong index, ReadOnlyMemory<byte> command)
    {
        var r = ShardCommand.Read(command);
        var databaseId = r.String();
        var role = r.Role();
        if (FindDatabase(databaseId) is not { } db)
        {
            return new ApplyResult(ApplyStatus.NotFound, index);
        }
        var roles = new List<DatabaseRole>(db.Roles.Count + 1);
        var found = false;
        foreach (var existing in db.Roles)
        {
            if (string.Equals(existing.Name, role.Name, StringComparison.Ordinal))
            {
                found = true;
                if (role.Verifier.Length > 0)
                {
                    roles.Add(role);
                }
            }
            else
            {
                roles.Add(existing);
            }
        }
        if (!found)
        {
            if (role.Verifier.Length == 0)
            {
                return new ApplyResult(ApplyStatus.NotFound, index, Message: "role does not exist");
            }
            roles.Add(role);
        }
        Put(index, SystemKeys.Database(databaseId), (db with { Roles = roles }).Encode());
        Changed(databaseId);
        return new ApplyResult(ApplyStatus.Ok, index);
    }

    /// <summary>
    /// A move's write pause, kept apart from the quota state: a quota change arriving while the database moves sets its
    /// state without lifting the pause, and the pause ending does not undo a quota change.
    /// </summary>
    private ApplyResult ApplySetWritesPaused(ulong index, ReadOnlyMemory<byte> command)
    {
        var r = ShardCommand.Read(command);
        var databaseId = r.String();
        var paused = r.U8();
        if (paused > 1)
        {
            return new ApplyResult(ApplyStatus.Invalid, index, Message: "invalid pause flag");
        }
        if (FindDatabase(databaseId) is not { } db)
        {
            return new ApplyResult(ApplyStatus.NotFound, index);
        }
        Put(index, SystemKeys.Database(databaseId), (db with { WritesPaused = paused == 1 }).Encode());
        Changed(databaseId);
        return new ApplyResult(ApplyStatus.Ok, index);
    }

    private ApplyResult ApplySetState(ulong index, ReadOnlyMemory<byte> command)
    {
        var r = ShardCommand.Read(command);
        var databaseId = r.String();
        var state = r.U8();
        if (state > (byte)DatabaseState.Suspended)
        {
            return new ApplyResult(ApplyStatus.Invalid, index, Message: "unknown state");
        }
        if (FindDatabase(databaseId) is not { } db)
        {
            return new ApplyResult(ApplyStatus.NotFound, index);
        }
        Put(index, SystemKeys.Database(databaseId), (db with { State = (DatabaseState)state }).Encode());
        Changed(databaseId);
        return new ApplyResult(ApplyStatus.Ok, index);
    }

    private ApplyResult ApplyGcThreshold(ulong index, ReadOnlyMemory<byte> command)
    {
        var threshold = ShardCommand.Read(command).U64();
        if (threshold <= GcThreshold || threshold >= index)
        {
            return new ApplyResult(ApplyStatus.Ok, index, Message: "unchanged");
        }
        var batch = new WriteBatch();
        Span<byte> value = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(value, threshold);
        batch.Put(SystemKeys.GcThreshold, value);
        // Staged chunks of transactions that began before the threshold can never commit now: discard them.
        foreach (var staged in _engine.Scan(SystemKeys.Prefix(SystemKeys.StagedTransactionsTable), SystemKeys.TableEnd(SystemKeys.StagedTransactionsTable)))
        {
            if (BinaryPrimitives.ReadUInt64LittleEndian(staged.Value) < threshold)
            {
                var transactionId = BinaryPrimitives.ReadUInt64BigEndian(staged.Key.AsSpan(16));
                batch.DeleteRange(SystemKeys.StagedChunksStart(transactionId), SystemKeys.StagedChunksEnd(transactionId));
                batch.Delete(staged.Key);
            }
        }
        _engine.Apply(batch, index);
        GcThreshold = threshold;
        _engine.SetGcThreshold(threshold);
        return new ApplyResult(ApplyStatus.Ok, index);
    }

    // Time every replica spends applying import entries (decode, retenant, memtable), for the provisioning benchmark's stages.
    private static readonly System.Diagnostics.Metrics.Meter ImportMeter = new("Kdb.Cluster.Import");

    private static readonly System.Diagnostics.Metrics.Counter<double> ImportApplySeconds = ImportMeter.CreateCounter<double>(
        "kdb_import_apply", unit: "s", description: "Seconds spent applying import entries (all groups of this node)");

    private ApplyResult ApplyImport(ulong index, ReadOnlyMemory<byte> command)
    {
        var started = Stopwatch.GetTimestamp();
        var r = ShardCommand.Read(command);
        var databaseId = r.String();
        var record = CommitRecordCodec.Decode(r.Rest);
        if (FindDatabase(databaseId) is not { } db)
        {
            return new ApplyResult(ApplyStatus.NotFound, index);
        }
        var batch = new WriteBatch();
        AddWrites(batch, record.Writes, db.TenantId);
        if (batch.Count > 0)
        {
            _engine.Apply(batch, index);
        }
        ImportApplySeconds.Add(Stopwatch.GetElapsedTime(started).TotalSeconds);
        return new ApplyResult(ApplyStatus.Ok, index);
    }

    /// <summary>
    /// In-place restore: the database's record moves onto the staged copy's tenant (with the staged roles, keeping its own
    /// state), its old range is tombstoned and the staged record goes, in one batch. The old tenant key stays reserved
    /// but names no database, so a commit from a session opened before the swap finds no database instead of writing
    /// into the tombstoned range.
    /// </summary>
    private ApplyResult ApplySwap(ulong index, ReadOnlyMemory<byte> command)
    {
        var r = ShardCommand.Read(command);
        var databaseId = r.String();
        var stagedId = r.String();
        if (string.Equals(databaseId, stagedId, StringComparison.Ordinal))
        {
            return new ApplyResult(ApplyStatus.Invalid, index, Message: "a database cannot be swapped onto itself");
        }
        if (FindDatabase(databaseId) is not { } db)
        {
            return new ApplyResult(ApplyStatus.NotFound, index, Message: $"database {databaseId} does not exist");
        }
        if (FindDatabase(stagedId) is not { } staged)
        {
            return new ApplyResult(ApplyStatus.NotFound, index, Message: $"staged database {stagedId} does not exist");
        }
        var batch = new WriteBatch();
        batch.DeleteRange(SystemKeys.TenantStart(db.TenantId), SystemKeys.TenantEnd(db.TenantId) ?? [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]);
        batch.Put(SystemKeys.Database(databaseId), (db with { TenantId = staged.TenantId, Roles = staged.Roles }).Encode());
        batch.Put(SystemKeys.Tenant(staged.TenantId), System.Text.Encoding.UTF8.GetBytes(databaseId));
        batch.Put(SystemKeys.Tenant(db.TenantId), []);
        batch.Delete(SystemKeys.Database(stagedId));
        _engine.Apply(batch, index);
        Interlocked.Decrement(ref _databaseCount);
        Changed(databaseId);
        Changed(stagedId);
        return new ApplyResult(ApplyStatus.Ok, index);
    }

    /// <summary>
    /// A move's flip on the target group: the staged copy's record becomes the database's (its tenant, data and roles kept,
    /// the given state), in one batch. Sessions never resolve the staged id, so the copy is invisible until this entry; the
    /// source copy on the other group is dropped afterwards, and its sessions then end (their tenant is not the record's).
    /// </summary>
    private ApplyResult ApplyAdopt(ulong index, ReadOnlyMemory<byte> command)
    {
        var r = ShardCommand.Read(command);
        var databaseId = r.String();
        var stagedId = r.String();
        var state = r.U8();
        if (state > (byte)DatabaseState.Suspended || databaseId.Length is 0 or > 63 || string.Equals(databaseId, stagedId, StringComparison.Ordinal))
        {
            return new ApplyResult(ApplyStatus.Invalid, index, Message: "invalid adopt: unknown state, bad id or a database adopting itself");
        }
        if (FindDatabase(stagedId) is not { } staged)
        {
            return new ApplyResult(ApplyStatus.NotFound, index, Message: $"staged database {stagedId} does not exist");
        }
        if (FindDatabase(databaseId) is not null)
        {
            return new ApplyResult(ApplyStatus.AlreadyExists, index, Message: $"database {databaseId} already exists on this group");
        }
        var batch = new WriteBatch();
        batch.Put(SystemKeys.Database(databaseId), (staged with { DatabaseId = databaseId, State = (DatabaseState)state }).Encode());
        batch.Put(SystemKeys.Tenant(staged.TenantId), System.Text.Encoding.UTF8.GetBytes(databaseId));
        batch.Delete(SystemKeys.Database(stagedId));
        _engine.Apply(batch, index);
        Changed(databaseId);
        Changed(stagedId);
        return new ApplyResult(ApplyStatus.Ok, index);
    }

    private void Put(ulong index, byte[] key, byte[] value)
    {
        var batch = new WriteBatch();
        batch.Put(key, value);
        _engine.Apply(batch, index);
    }

    /// <summary>Adds writes to a batch, rewriting the tenant prefix when importing into another tenant.</summary>
    private static void AddWrites(WriteBatch batch, IReadOnlyList<TxWrite> writes, ulong? retenant)
    {
        foreach (var write in writes)
        {
            var key = Retenant(write.Key.Span, retenant);
            switch (write.Kind)
            {
                case WriteKind.Put:
                    batch.Put(key, write.ValueOrEnd.Span);
                    break;
                case WriteKind.Delete:
                    batch.Delete(key);
                    break;
                case WriteKind.DeleteRange:
                    batch.DeleteRange(key, RetenantEnd(write.Key.Span, write.ValueOrEnd.Span, retenant));
                    break;
            }
        }
    }

    private static ReadOnlySpan<byte> Retenant(ReadOnlySpan<byte> key, ulong? tenant)
    {
        // An import's keys already carry the target's tenant (the node proposing it wrote it): the batch copies them anyway.
        if (tenant is not { } t || key.Length < 8 || BinaryPrimitives.ReadUInt64BigEndian(key) == t)
        {
            return key;
        }
        var copy = key.ToArray();
        BinaryPrimitives.WriteUInt64BigEndian(copy, t);
        return copy;
    }

    /// <summary>A range delete's end under <paramref name="tenant"/>: inside the start's tenant it moves with it; past it (a
    /// change stream's range reaching the tenant's end) it becomes the target tenant's end, so an import never deletes
    /// beyond its own tenant.</summary>
    private static ReadOnlySpan<byte> RetenantEnd(ReadOnlySpan<byte> start, ReadOnlySpan<byte> end, ulong? tenant)
    {
        if (tenant is not { } t || start.Length < 8)
        {
            return end;
        }
        if (end.Length >= 8 && end[..8].SequenceEqual(start[..8]))
        {
            return Retenant(end, tenant);
        }
        return SystemKeys.TenantEnd(t) ?? [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];
    }

    private static ulong ReadGcThreshold(IKvEngine engine) =>
        engine.Get(SystemKeys.GcThreshold) is { Found: true } r ? BinaryPrimitives.ReadUInt64LittleEndian(r.Value) : 0;

    ulong IVersionSource.NewestVersion(ReadOnlySpan<byte> key) => _engine.NewestVersion(key);

    ulong IVersionSource.NewestVersionInRange(ReadOnlySpan<byte> start, ReadOnlySpan<byte> end) =>
        _engine.NewestVersionInRange(start.ToArray(), end.IsEmpty ? null : end.ToArray());
}
