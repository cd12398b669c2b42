using System.Diagnostics;
using System.IO.Pipelines;
using System.Net;
using Kdb.Contracts.V1;
using Kdb.Node.Admin;
using Kdb.Provisioning.ControlPlane;
using Kdb.Provisioning.Placement;
using Kdb.Provisioning.Storage;

namespace Kdb.Provisioning.Backups;

/// <summary>A backup, restore or drill that cannot succeed; the message says why and names the backup.</summary>
internal sealed class BackupOperationException(string message) : Exception(message);

/// <summary>
/// Takes, restores, verifies and deletes backups. A backup is the node's consistent export of the database's
/// keyspace at a Raft index, sealed chunk by chunk (see <see cref="BackupCodec"/>), plus a manifest that carries
/// the database's roles. A restore checks every chunk before it creates anything, imports into a new database,
/// then compares the new database's own export with the backup's totals before calling it done.
/// </summary>
internal sealed class BackupService(DatabaseOperations databases, IObjectStore store, ProvisioningOptions options, TimeProvider time)
{
    public IObjectStore Store => store;

    /// <summary>
    /// Takes a backup, or returns the manifest of the one already taken under this id (redelivery). The org comes
    /// from the event; a message from an older sender carries none, and then provisioning's own record is used.
    /// </summary>
    public async Task<BackupManifest> BackupAsync(string backupId, string databaseId, string? orgId, CancellationToken ct)
    {
        if (await BackupManifest.LoadAsync(store, backupId, ct) is { } done)
        {
            return done;
        }
        var started = Stopwatch.GetTimestamp();
        var location = await databases.LocateAsync(databaseId, ct)
            ?? throw new BackupOperationException($"backup {backupId}: database {databaseId} is not placed on any shard group");
        if (string.IsNullOrEmpty(orgId))
        {
            orgId = (await DatabaseRecordInfo.LoadAsync(store, databaseId, ct))?.OrgId
                ?? throw new BackupOperationException($"backup {backupId}: the request names no org (a sender older than BackupRequested.OrgId) and provisioning holds no record of database {databaseId}'s org");
        }
        var info = await databases.DescribeAsync(location, databaseId, ct)
            ?? throw new BackupOperationException($"backup {backupId}: group {location.GroupId} does not host database {databaseId}");
        var (keyId, key) = await databases.Fleet.ControlPlane.CreateBackupKeyAsync(orgId, ct);
        var roles = info.Roles.Select(DatabaseOperations.FromWire).ToList();
        var stage = BackupStages.Since(BackupStages.BackupPrepare, started);
        var sealedExport = await databases.OnGroupAsync(location, (admin, t) => ExportSealedAsync(admin, databaseId, backupId, key, t), ct, Timeout.InfiniteTimeSpan);
        stage = BackupStages.Since(BackupStages.BackupExportSealStore, stage);
        var manifest = new BackupManifest(
            BackupManifest.CurrentVersion, backupId, databaseId, orgId, info.TenantId, keyId,
            sealedExport.Summary.RaftIndex, sealedExport.Summary.Rows, sealedExport.Summary.TotalCrc32C, sealedExport.Summary.Bytes, sealedExport.Summary.Sha256,
            sealedExport.StoredBytes, sealedExport.StoredSha256,
            BackupCodec.SealRoles(key, backupId, BackupManifest.SerializeRoles(roles)),
            sealedExport.Chunks, time.GetUtcNow(), Stopwatch.GetElapsedTime(started).TotalSeconds);
        // Two deliveries racing: the first manifest wins and both report it.
        var swapped = await store.CompareAndSwapAsync(BackupManifest.KeyOf(backupId), null, manifest.Serialize(), ct);
        BackupStages.Since(BackupStages.BackupManifest, stage);
        if (!swapped)
        {
            return await BackupManifest.LoadAsync(store, backupId, ct) ?? manifest;
        }
        return manifest;
    }

    /// <summary>
    /// Restores a backup into <paramref name="target"/> (a database the control plane created for it); returns the
    /// roles restored. A corrupt backup fails before anything is created; a failed import drops what it made.
    /// </summary>
    public async Task<IReadOnlyList<RoleVerifier>> RestoreAsync(string backupId, RestoreTarget target, CancellationToken ct)
    {
        var stage = Stopwatch.GetTimestamp();
        var (manifest, key, roles, plain) = await OpenVerifiedAsync(backupId, target.OrgId, ct);
        stage = BackupStages.Since(BackupStages.RestoreOpen, stage);
        var owner = roles.FirstOrDefault(r => r.Kind == RoleKind.Owner)
            ?? throw new BackupOperationException($"backup {backupId} holds no owner role");
        var location = await databases.EnsureCreatedAsync(target.DatabaseId, target.TenantId, owner, ct)
            ?? throw new BackupOperationException($"restore of backup {backupId}: target database {target.DatabaseId} no longer exists");
        BackupStages.Since(BackupStages.RestoreCreate, stage);
        try
        {
            await ImportAsync(location, target.DatabaseId, manifest, key, plain, roles, ct);
        }
        catch (Exception e) when (DatabaseOperations.IsFinal(e) || e is BackupOperationException)
        {
            // Leave nothing half-restored visible: the target's data goes, the control plane marks it failed.
            await databases.DropAsync(location, target.DatabaseId, ct);
            throw;
        }
        return roles;
    }

    /// <summary>
    /// In-place restore: a safety backup of the database as it is now, then the backup imported into a scratch database
    /// on the same group and verified there, then one swap entry switches the database onto the scratch copy's tenant
    /// (its old data goes, its sessions end with 57P01). Until the swap the database is untouched, and a failure drops
    /// only the scratch copy. The scratch id, its tenant and the safety backup's id derive from the operation, so a
    /// redelivery reuses every step done and recognises a database already swapped.
    /// </summary>
    public async Task<InPlaceRestore> RestoreInPlaceAsync(string backupId, string operationId, RestoreTarget target, string? safetyBackupId, CancellationToken ct)
    {
        var (manifest, key, roles, plain) = await OpenVerifiedAsync(backupId, target.OrgId, ct);
        var owner = roles.FirstOrDefault(r => r.Kind == RoleKind.Owner)
            ?? throw new BackupOperationException($"backup {backupId} holds no owner role");
        var location = await databases.LocateAsync(target.DatabaseId, ct)
            ?? throw new BackupOperationException($"in-place restore of backup {backupId}: database {target.DatabaseId} is not placed on any shard group");
        var (scratchId, scratchTenant, derivedSafetyId) = InPlaceRestore.NamesFor(operationId);
        var safetyId = safetyBackupId ?? derivedSafetyId;
        var current = await databases.DescribeAsync(location, target.DatabaseId, ct)
            ?? throw new BackupOperationException($"in-place restore of backup {backupId}: group {location.GroupId} does not host database {target.DatabaseId}");
        if (current.TenantId == scratchTenant)
        {
            return new InPlaceRestore(roles, scratchTenant, safetyId);
        }
        await BackupAsync(safetyId, target.DatabaseId, target.OrgId, ct);
        var create = new Node.Admin.Wire.CreateDatabaseRequest { GroupId = location.GroupId, DatabaseId = scratchId, TenantId = scratchTenant, Owner = DatabaseOperations.ToWire(owner) };
        await databases.OnGroupAsync(location, (admin, t) => admin.CreateDatabaseAsync(create, t), ct);
        try
        {
            await ImportAsync(location, scratchId, manifest, key, plain, roles, ct);
            await databases.OnGroupAsync(location, (admin, t) => admin.SwapDatabaseAsync(target.DatabaseId, scratchId, t), ct);
        }
        catch (Exception e) when (DatabaseOperations.IsFinal(e) || e is BackupOperationException)
        {
            if ((await databases.DescribeAsync(location, target.DatabaseId, ct))?.TenantId != scratchTenant)
            {
                await databases.DropAsync(location, scratchId, ct);
            }
            throw;
        }
        return new InPlaceRestore(roles, scratchTenant, safetyId);
    }

    /// <summary>What a backup's manifest reports, or null when the object store has no such backup (yet).</summary>
    public async Task<BackupResult?> ResultOfAsync(string backupId, CancellationToken ct) =>
        (await BackupManifest.LoadAsync(store, backupId, ct))?.Result;

    /// <summary>Restores a backup into a scratch database, compares it, drops it; returns what was checked.</summary>
    public async Task<string> DrillAsync(string backupId, CancellationToken ct)
    {
        var manifest = await BackupManifest.LoadAsync(store, backupId, ct)
            ?? throw new BackupOperationException($"backup {backupId} is not in the object store");
        var scratchId = "db_drill" + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(6));
        var (_, key, roles, plain) = await OpenVerifiedAsync(backupId, manifest.OrgId, ct);
        var owner = roles.First(r => r.Kind == RoleKind.Owner);
        var chosen = await databases.Fleet.PlaceAsync(ct);
        var location = new DatabaseLocation(chosen.GroupId, chosen.NodeIds, chosen.LeaderNodeId);
        var tenant = BitConverter.ToUInt64(System.Security.Cryptography.RandomNumberGenerator.GetBytes(8)) | 1UL << 63;
        var create = new Node.Admin.Wire.CreateDatabaseRequest { GroupId = location.GroupId, DatabaseId = scratchId, TenantId = tenant, Owner = DatabaseOperations.ToWire(owner) };
        await databases.OnGroupAsync(location, (admin, t) => admin.CreateDatabaseAsync(create, t), ct);
        try
        {
            await ImportAsync(location, scratchId, manifest, key, plain, [], ct);
            return $"restored into a scratch database on group {location.GroupId}: {manifest.Rows} rows, CRC32C {manifest.TotalCrc32C:x16}, Raft index {manifest.RaftIndex}, {manifest.PlaintextBytes} bytes";
        }
        finally
        {
            await databases.DropAsync(location, scratchId, ct);
        }
    }

    /// <summary>Deletes a backup's chunks, then its manifest; false when it was already gone.</summary>
    public async Task<bool> DeleteAsync(string backupId, CancellationToken ct)
    {
        BackupManifest? manifest;
        try
        {
            manifest = await BackupManifest.LoadAsync(store, backupId, ct);
        }
        catch (ObjectCorruptException)
        {
            manifest = null;
            await store.DeleteAsync(BackupManifest.KeyOf(backupId), ct);
        }
        if (manifest is null)
        {
            return false;
        }
        foreach (var chunk in manifest.Chunks)
        {
            await store.DeleteAsync(BackupManifest.ChunkKey(chunk.Sha256), ct);
        }
        // The manifest goes last, so a crash midway leaves it to find the remaining chunks on redelivery.
        await store.DeleteAsync(BackupManifest.KeyOf(backupId), ct);
        return true;
    }

    /// <summary>A backup's plaintext up to this size is kept from the verification pass for the import, instead of being
    /// loaded, checked and decrypted a second time; a larger one is read again, chunk by chunk.</summary>
    private const long KeptPlaintextBytes = 64L << 20;

    /// <summary>The manifest, key and roles of a backup whose every chunk was checked; its plaintext chunks when kept.</summary>
    private async Task<(BackupManifest Manifest, byte[] Key, IReadOnlyList<RoleVerifier> Roles, IReadOnlyList<ReadOnlyMemory<byte>>? Plaintext)> OpenVerifiedAsync(
        string backupId, string orgId, CancellationToken ct)
    {
        BackupManifest manifest;
        try
        {
            manifest = await BackupManifest.LoadAsync(store, backupId, ct)
                ?? throw new BackupOperationException($"backup {backupId} is not in the object store");
        }
        catch (ObjectCorruptException e)
        {
            throw new BackupCorruptException($"backup {backupId} is corrupt: {e.Message}");
        }
        var key = await databases.Fleet.ControlPlane.BackupKeyAsync(orgId, manifest.KeyId, ct)
            ?? throw new BackupOperationException($"backup {backupId}: its key {manifest.KeyId} is not one of org {orgId}'s backup keys");
        var roles = BackupManifest.DeserializeRoles(BackupCodec.OpenRoles(key, backupId, manifest.SealedRoles));
        // Every chunk is checked before anything is created (each chunk the codec hands over is a fresh array).
        var kept = manifest.PlaintextBytes <= KeptPlaintextBytes ? new List<ReadOnlyMemory<byte>>(manifest.Chunks.Count) : null;
        await BackupCodec.OpenAsync(manifest, store, key, plain =>
        {
            kept?.Add(plain);
            return Task.CompletedTask;
        }, ct);
        return (manifest, key, roles, kept);
    }

    private async Task ImportAsync(DatabaseLocation location, string databaseId, BackupManifest manifest, byte[] key, IReadOnlyList<ReadOnlyMemory<byte>>? plaintext,
        IReadOnlyList<RoleVerifier> roles, CancellationToken ct)
    {
        var stage = Stopwatch.GetTimestamp();
        // Once the node has the whole stream it stages, verifies and proposes it, and answers only then; the verification
        // below is a scan on the nodes that returns one summary. Neither moves bytes that count as progress.
        OperationProgress.ExpectQuiet(QuietPhaseBound(manifest.PlaintextBytes));
        try
        {
            await databases.OnGroupAsync(location, async (admin, t) =>
            {
                await using var source = OperationProgress.Counting(plaintext is null ? BackupCodec.OpenStream(manifest, store, key, t) : BackupCodec.OpenStream(plaintext, t));
                return await admin.ImportAsync(databaseId, source, t);
            }, ct, Timeout.InfiniteTimeSpan);
        }
        catch (NodeAdminException e) when (e.Status == HttpStatusCode.Conflict && e.Detail?.Contains("needs a new or emptied database", StringComparison.Ordinal) == true)
        {
            // An earlier delivery (or attempt) imported it, whole or in part: the comparison below decides. Any other
            // conflict (an entry the group refused) fails the restore with the node's reason, not as a mismatch.
        }
        stage = BackupStages.Since(BackupStages.RestoreImport, stage);
        foreach (var role in roles.Where(r => r.Kind != RoleKind.Owner))
        {
            await databases.OnGroupAsync(location, (admin, t) => admin.SetRoleAsync(databaseId, DatabaseOperations.ToWire(role), t), ct);
        }
        OperationProgress.ExpectQuiet(QuietPhaseBound(manifest.PlaintextBytes));
        var check = await databases.OnGroupAsync(location, (admin, t) => ExportSummaryAsync(admin, databaseId, t), ct, Timeout.InfiniteTimeSpan);
        if (check.Rows != manifest.Rows || check.TotalCrc32C != manifest.TotalCrc32C)
        {
            throw new BackupOperationException(
                $"restore of backup {manifest.BackupId} does not match it: {check.Rows} rows (CRC32C {check.TotalCrc32C:x}) restored, {manifest.Rows} (CRC32C {manifest.TotalCrc32C:x}) backed up");
        }
        BackupStages.Since(BackupStages.RestoreVerify, stage);
    }

    /// <summary>How long a node may take over a silent phase on <paramref name="bytes"/> of data before the operation is
    /// treated as stuck: a minute plus 2 MB/s (a loaded 2-core node proposes and applies an import at 10–25 MB/s).</summary>
    internal static TimeSpan QuietPhaseBound(long bytes) => TimeSpan.FromSeconds(60 + (Math.Max(0, bytes) / 2_000_000.0));

    private async Task<(ExportSummary Summary, List<ChunkRef> Chunks, long StoredBytes, string StoredSha256)> ExportSealedAsync(
        NodeAdminClient admin, string databaseId, string backupId, byte[] key, CancellationToken ct)
    {
        var pipe = new Pipe(new PipeOptions(pauseWriterThreshold: 8 << 20, resumeWriterThreshold: 4 << 20));
        var export = ExportIntoAsync(admin, databaseId, pipe.Writer, ct);
        await using var reader = pipe.Reader.AsStream();
        var sealedExport = await BackupCodec.SealAsync(reader, store, key, backupId, options.BackupChunkBytes, ct);
        await export;
        return sealedExport;
    }

    /// <summary>The totals of the database's export (the node scans and checksums it, but sends only the closing chunk).</summary>
    private static async Task<ExportSummary> ExportSummaryAsync(NodeAdminClient admin, string databaseId, CancellationToken ct)
    {
        var totals = new MemoryStream();
        await admin.ExportTotalsAsync(databaseId, totals, ct);
        totals.Position = 0;
        return await BackupCodec.ReadExportAsync(totals, _ => Task.CompletedTask, ct);
    }

    private static async Task ExportIntoAsync(NodeAdminClient admin, string databaseId, PipeWriter writer, CancellationToken ct)
    {
        try
        {
            // Bytes arriving count as the operation's progress: a backup whose export stalls stops being heartbeated.
            await using (var sink = OperationProgress.Counting(writer.AsStream(leaveOpen: true)))
            {
                await admin.ExportAsync(databaseId, sink, ct);
            }
            await writer.CompleteAsync();
        }
        catch (Exception e)
        {
            await writer.CompleteAsync(e);
            throw;
        }
    }
}

/// <summary>What an in-place restore did: the roles restored, the database's new tenant id, the safety backup taken first.</summary>
internal sealed record InPlaceRestore(IReadOnlyList<RoleVerifier> Roles, ulong TenantId, string SafetyBackupId)
{
    /// <summary>The scratch database, its tenant (top bit set, as for drills) and the safety backup of an operation.</summary>
    public static (string ScratchId, ulong Tenant, string SafetyBackupId) NamesFor(string operationId)
    {
        var hash = System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(operationId));
        var suffix = Convert.ToHexStringLower(hash.AsSpan(0, 10));
        return ("db_restore_" + suffix, System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(hash.AsSpan(16)) | 1UL << 63, "safety-" + suffix);
    }
}
