using System.Collections.Concurrent;
using System.IO.Pipelines;
using System.Net;
using Kdb.Contracts.V1;
using Kdb.Node.Admin;
using Kdb.Node.Admin.Wire;
using Kdb.Provisioning.Backups;
using Kdb.Provisioning.Consumers;
using Kdb.Provisioning.Placement;
using WireRoleKind = Kdb.Node.Admin.Wire.RoleKind;
using WireState = Kdb.Node.Admin.Wire.DatabaseState;

namespace Kdb.Provisioning.Moves;

/// <summary>A move that cannot happen; the database stays on its source group, usable, and the message says why.</summary>
internal sealed class MoveFailedException(string message) : Exception(message);

/// <summary>
/// Moves a database to another shard group. The source is paused (read-only: writes get 25006, reads go on), its export
/// (consistent at a Raft index) streams into a staged copy on the target group that no session resolves to, the copy's
/// own export is compared with the source's (rows, CRC32C), and one entry on the target (adopt) turns the copy into the
/// database, still paused. Then the placement moves (the route flip: proxies follow the route table), the source copy is
/// dropped (its open sessions end with 57P01) and the pause ends. Until the adopt a failure drops the staged copy and
/// lifts the pause; after it the move only goes forward. The staged id and the copy's tenant derive from the operation,
/// so a redelivery reuses every step done and recognises a database already adopted. A move has a deadline
/// (<see cref="ProvisioningOptions.MoveTimeout"/> after its request): past it, a move not yet adopted rolls back instead
/// of starting or going on, so the control plane's re-sent request, past its own timeout, gets a final answer either way.
/// </summary>
internal sealed class DatabaseMover(DatabaseOperations databases, ProvisioningOptions options, TimeProvider time)
{
    // Operations this process is moving now: the control plane re-sends a request every 30 s while it runs, and a second
    // copy running alongside would import into the same staged database.
    private readonly ConcurrentDictionary<string, byte> _running = new(StringComparer.Ordinal);

    /// <summary>The staged copy's id and tenant (top bit set, as for restores) of a move operation.</summary>
    public static (string StagedId, ulong Tenant) NamesFor(string operationId)
    {
        var hash = System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes("move/" + operationId));
        return ("db_move_" + Convert.ToHexStringLower(hash.AsSpan(0, 10)), System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(hash.AsSpan(16)) | 1UL << 63);
    }

    /// <summary>
    /// Moves the database; <paramref name="lastAttempt"/>: any failure now rolls back instead of being retried. Null when
    /// this process is already moving it for the same operation (a re-sent request): that attempt answers.
    /// </summary>
    public async Task<DatabaseMoved?> MoveAsync(DatabaseMoveRequested m, bool lastAttempt, CancellationToken ct)
    {
        if (!_running.TryAdd(m.OperationId, 0))
        {
            return null;
        }
        try
        {
            return await MoveOnceAsync(m, lastAttempt, ct);
        }
        finally
        {
            _running.TryRemove(m.OperationId, out _);
        }
    }

    private async Task<DatabaseMoved> MoveOnceAsync(DatabaseMoveRequested m, bool lastAttempt, CancellationToken ct)
    {
        var (stagedId, tenant) = NamesFor(m.OperationId);
        var target = await GroupAsync(m.TargetGroupId, ct)
            ?? throw new MoveFailedException($"target shard group {m.TargetGroupId} is unknown: no alive node hosts it");
        if (await databases.DescribeAsync(target, m.DatabaseId, ct) is { } there)
        {
            if (there.TenantId != tenant)
            {
                throw new MoveFailedException($"target shard group {m.TargetGroupId} already hosts database {m.DatabaseId}");
            }
        }
        else
        {
            var source = await GroupAsync(m.SourceGroupId, ct)
                ?? throw new MoveFailedException($"source shard group {m.SourceGroupId} is unknown: no alive node hosts it");
            await CopyAsync(m, source, target, stagedId, tenant, lastAttempt, ct);
        }
        return await FinishAsync(m, target, tenant, ct);
    }

    private async Task CopyAsync(DatabaseMoveRequested m, DatabaseLocation source, DatabaseLocation target, string stagedId, ulong tenant, bool lastAttempt, CancellationToken ct)
    {
        var current = await databases.DescribeAsync(source, m.DatabaseId, ct)
            ?? throw new MoveFailedException($"source shard group {m.SourceGroupId} does not host database {m.DatabaseId}");
        var owner = current.Roles.FirstOrDefault(r => r.Kind == WireRoleKind.Owner)
            ?? throw new MoveFailedException($"database {m.DatabaseId} has no owner role on its source group");
        // Every step up to the adopt stops at the deadline; the rollback (and its adopt check) uses the caller's token.
        var remaining = m.Timestamp + options.MoveTimeout - time.GetUtcNow();
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(remaining <= TimeSpan.Zero ? TimeSpan.Zero : remaining < TimeSpan.FromDays(1) ? remaining : TimeSpan.FromDays(1));
        var step = deadline.Token;
        try
        {
            step.ThrowIfCancellationRequested();
            await databases.OnGroupAsync(source, (admin, t) => admin.SetStateOnGroupAsync(m.DatabaseId, source.GroupId, WireState.ReadOnly, t), step);
            target = await WaitForLeaderAsync(target, step);
            var create = new CreateDatabaseRequest { GroupId = target.GroupId, DatabaseId = stagedId, TenantId = tenant, Owner = owner };
            await databases.OnGroupAsync(target, (admin, t) => admin.CreateDatabaseAsync(create, t), step);
            var copied = await CopyDataAsync(source, target, m.DatabaseId, stagedId, step);
            var check = await SummaryAsync(target, stagedId, step);
            if (copied is { } c && (check.Rows != c.Rows || check.TotalCrc32C != c.TotalCrc32C))
            {
                throw new MoveFailedException($"the copy of database {m.DatabaseId} does not match its source: {check.Rows} rows (CRC32C {check.TotalCrc32C:x}) copied, {c.Rows} (CRC32C {c.TotalCrc32C:x}) at the source");
            }
            if (copied is null && await SummaryAsync(source, m.DatabaseId, step) is var s && (check.Rows != s.Rows || check.TotalCrc32C != s.TotalCrc32C))
            {
                throw new MoveFailedException($"the copy of database {m.DatabaseId} left by an earlier attempt does not match its source");
            }
            // Roles are read again last, so a role changed while the data was copied moves too.
            var roles = (await databases.DescribeAsync(source, m.DatabaseId, step))?.Roles ?? current.Roles;
            foreach (var role in roles)
            {
                await databases.OnGroupAsync(target, (admin, t) => admin.SetRoleAsync(stagedId, role, t), step);
            }
            await databases.OnGroupAsync(target, (admin, t) => admin.AdoptDatabaseAsync(m.DatabaseId, stagedId, WireState.ReadOnly, t), step);
        }
        catch (Exception e) when (DatabaseOperations.IsFinal(e) || e is MoveFailedException || lastAttempt || (step.IsCancellationRequested && !ct.IsCancellationRequested))
        {
            if ((await databases.DescribeAsync(target, m.DatabaseId, ct))?.TenantId == tenant)
            {
                return; // The adopt was applied though its answer was lost: the move goes on.
            }
            await databases.DropAsync(target, stagedId, ct);
            await databases.OnGroupAsync(source, (admin, t) => admin.SetStateOnGroupAsync(m.DatabaseId, source.GroupId, QuotaStateChangedConsumer.ToWire(m.State), t), ct);
            throw e as MoveFailedException ?? new MoveFailedException(step.IsCancellationRequested && !ct.IsCancellationRequested
                ? $"timed out: not copied within {options.MoveTimeout.TotalSeconds:0} s of the request (MoveTimeout); rolled back, the database stays on its source group"
                : e.Message);
        }
    }

    /// <summary>After the adopt: the route flip, the source copy dropped, the pause lifted. Every step may be repeated.</summary>
    private async Task<DatabaseMoved> FinishAsync(DatabaseMoveRequested m, DatabaseLocation target, ulong tenant, CancellationToken ct)
    {
        if (!await databases.Fleet.ControlPlane.PutPlacementAsync(m.DatabaseId, target.GroupId, target.NodeIds, ct))
        {
            throw new MoveFailedException($"database {m.DatabaseId} is gone from the control plane");
        }
        if (await GroupAsync(m.SourceGroupId, ct) is { } source)
        {
            try
            {
                await databases.OnGroupAsync(source, (admin, t) => admin.DropDatabaseOnGroupAsync(m.DatabaseId, source.GroupId, t), ct);
            }
            catch (NodeAdminException e) when (e.Status == HttpStatusCode.NotFound)
            {
                // Dropped by an earlier delivery.
            }
        }
        await databases.OnGroupAsync(target, (admin, t) => admin.SetStateOnGroupAsync(m.DatabaseId, target.GroupId, QuotaStateChangedConsumer.ToWire(m.State), t), ct);
        return new DatabaseMoved(m.OperationId, DateTimeOffset.UtcNow, m.DatabaseId, target.GroupId, tenant);
    }

    private async Task<DatabaseLocation?> GroupAsync(ulong groupId, CancellationToken ct) =>
        await databases.Fleet.GroupAsync(groupId, ct) is { } g ? new DatabaseLocation(g.GroupId, g.NodeIds, g.LeaderNodeId) : null;

    private async Task<DatabaseLocation> WaitForLeaderAsync(DatabaseLocation target, CancellationToken ct)
    {
        var deadline = DateTimeOffset.UtcNow + options.MoveTargetLeaderTimeout;
        while (target.LeaderNodeId is null)
        {
            if (DateTimeOffset.UtcNow > deadline)
            {
                throw new MoveFailedException($"target shard group {target.GroupId} has no leader (waited {options.MoveTargetLeaderTimeout.TotalSeconds:0} s)");
            }
            await Task.Delay(100, ct);
            target = await GroupAsync(target.GroupId, ct) ?? target;
        }
        return target;
    }

    /// <summary>
    /// Streams the source's export into the staged copy's import; returns the source export's totals, or null when the
    /// copy already holds data (an earlier delivery imported it: the caller compares both exports instead).
    /// </summary>
    private Task<ExportSummary?> CopyDataAsync(DatabaseLocation source, DatabaseLocation target, string databaseId, string stagedId, CancellationToken ct) =>
        databases.OnGroupAsync<ExportSummary?>(target, async (admin, t) =>
        {
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(t);
            var exported = new Pipe(new PipeOptions(pauseWriterThreshold: 8 << 20, resumeWriterThreshold: 4 << 20));
            var forwarded = new Pipe(new PipeOptions(pauseWriterThreshold: 8 << 20, resumeWriterThreshold: 4 << 20));
            var export = databases.OnGroupAsync(source, (a, t2) => ExportIntoAsync(a, databaseId, exported.Writer, t2), stop.Token, Timeout.InfiniteTimeSpan);
            var relay = RelayAsync(exported.Reader, forwarded.Writer, stop.Token);
            try
            {
                await using (var reader = forwarded.Reader.AsStream())
                {
                    await admin.ImportAsync(stagedId, reader, t);
                }
                await export;
                return await relay;
            }
            catch (NodeAdminException e) when (e.Status == HttpStatusCode.Conflict && e.Title != "Not the leader")
            {
                await StopAsync(stop, export, relay);
                return null; // "needs a new or emptied database": imported before.
            }
            catch
            {
                await StopAsync(stop, export, relay);
                throw;
            }
        }, ct, Timeout.InfiniteTimeSpan);

    private static async Task StopAsync(CancellationTokenSource stop, params Task[] tasks)
    {
        await stop.CancelAsync();
        try
        {
            await Task.WhenAll(tasks);
        }
        catch (Exception e) when (e is OperationCanceledException or HttpRequestException or NodeAdminException or InvalidDataException or IOException or InvalidOperationException)
        {
            // The import's outcome decides; the export and relay only stop.
        }
    }

    /// <summary>Reads the export frame by frame (its totals come out of it) while handing the same bytes to the import.</summary>
    private static async Task<ExportSummary> RelayAsync(PipeReader exported, PipeWriter forwarded, CancellationToken ct)
    {
        try
        {
            ExportSummary summary;
            await using (var source = exported.AsStream())
            {
                summary = await BackupCodec.ReadExportAsync(source, async raw => await forwarded.WriteAsync(raw, ct), ct);
            }
            await forwarded.CompleteAsync();
            return summary;
        }
        catch (Exception e)
        {
            await forwarded.CompleteAsync(e);
            throw;
        }
    }

    private Task<ExportSummary> SummaryAsync(DatabaseLocation location, string databaseId, CancellationToken ct) =>
        databases.OnGroupAsync(location, async (admin, t) =>
        {
            var pipe = new Pipe(new PipeOptions(pauseWriterThreshold: 8 << 20, resumeWriterThreshold: 4 << 20));
            var export = ExportIntoAsync(admin, databaseId, pipe.Writer, t);
            ExportSummary summary;
            await using (var reader = pipe.Reader.AsStream())
            {
                summary = await BackupCodec.ReadExportAsync(reader, _ => Task.CompletedTask, t);
            }
            await export;
            return summary;
        }, ct, Timeout.InfiniteTimeSpan);

    private static async Task<bool> ExportIntoAsync(NodeAdminClient admin, string databaseId, PipeWriter writer, CancellationToken ct)
    {
        try
        {
            await using (var sink = writer.AsStream(leaveOpen: true))
            {
                await admin.ExportAsync(databaseId, sink, ct);
            }
            await writer.CompleteAsync();
            return true;
        }
        catch (Exception e)
        {
            await writer.CompleteAsync(e);
            throw;
        }
    }
}
