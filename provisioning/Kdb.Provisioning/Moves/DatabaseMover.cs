using System.Collections.Concurrent;
using System.Diagnostics;
using System.IO.Pipelines;
using System.Net;
using Kdb.Contracts.V1;
using Kdb.Node.Admin;
using Kdb.Node.Admin.Wire;
using Kdb.Provisioning.Backups;
using Kdb.Provisioning.ControlPlane;
using Kdb.Provisioning.Placement;
using WireRoleKind = Kdb.Node.Admin.Wire.RoleKind;

namespace Kdb.Provisioning.Moves;

/// <summary>A move that cannot happen; the database stays on its source group, usable, and the message says why.</summary>
internal sealed class MoveFailedException(string message) : Exception(message);

/// <summary>
/// Moves a database to another shard group with a brief write pause. A staged copy on the target group, which no session
/// resolves to, gets the source's change stream since index 0 (everything), then rounds of the changes made during the
/// previous round while writes go on, until a round is small (or <see cref="ProvisioningOptions.MoveCatchUpRounds"/> ran).
/// Then the source is paused (read-only: writes get 25006, reads go on), one last round brings what remains, both copies'
/// digests (rows, CRC32C) are compared, and one entry on the target (adopt) turns the copy into the database, still
/// paused. Then the placement moves (the route flip: proxies follow the route table), the source copy is dropped (its
/// open sessions end with 57P01) and the pause ends. Until the adopt a failure drops the staged copy and lifts the pause;
/// after it the move only goes forward. The staged id and the copy's tenant derive from the operation, so a redelivery
/// recognises a database already adopted (a copy not yet adopted starts over: its first round replaces it). A move has
/// a deadline (<see cref="ProvisioningOptions.MoveTimeout"/> after its request): past it, a move not yet adopted rolls
/// back instead of starting or going on, so the control plane's re-sent request, past its own timeout, gets a final
/// answer either way.
/// </summary>
internal sealed class DatabaseMover(DatabaseOperations databases, OperationClaims claims, ProvisioningOptions options, TimeProvider time)
{
    /// <summary>How often a move waiting for its groups (another move holds one) asks again.</summary>
    private static readonly TimeSpan GroupBusyPoll = TimeSpan.FromSeconds(1);

    // Operations this process is moving now (or waiting to): a request re-sent meanwhile is acknowledged without an answer
    // here, before it even asks the control plane for the claim the running attempt holds.
    private readonly ConcurrentDictionary<string, byte> _running = new(StringComparer.Ordinal);

    // Moves copying at once in this process (MaxConcurrentMoves): each streams a whole database through this process and
    // loads both groups' leaders, so more at once only slows each.
    private readonly SemaphoreSlim _slots = new(Math.Max(1, options.MaxConcurrentMoves), Math.Max(1, options.MaxConcurrentMoves));
    private int _active;
    private int _peak;

    // When each move this process paused began its pause (for the pause's figure; a move finished by another process
    // after a restart is not timed).
    private readonly ConcurrentDictionary<string, long> _paused = new(StringComparer.Ordinal);

    /// <summary>The most moves this process has run at once (tests check the limit).</summary>
    public int PeakConcurrentMoves => Volatile.Read(ref _peak);

    private void EndPause(string operationId)
    {
        if (_paused.TryRemove(operationId, out var started))
        {
            MoveStages.Add(MoveStages.Pause, Stopwatch.GetElapsedTime(started));
        }
    }

    /// <summary>The staged copy's id and tenant (top bit set, as for restores) of a move operation.</summary>
    public static (string StagedId, ulong Tenant) NamesFor(string operationId)
    {
        var hash = System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes("move/" + operationId));
        return ("db_move_" + Convert.ToHexStringLower(hash.AsSpan(0, 10)), System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(hash.AsSpan(16)) | 1UL << 63);
    }

    /// <summary>False when this process already works on the operation (a re-sent request); else <see cref="End"/> follows.</summary>
    public bool TryBegin(string operationId) => _running.TryAdd(operationId, 0);

    public void End(string operationId) => _running.TryRemove(operationId, out _);

    /// <summary>
    /// The target of a move requested without one: placement's choice among the groups other than the source (least filled,
    /// its voters alive; a new group when none has room), recorded on the operation by its claim's holder so that every
    /// later delivery moves to the same group. Null when the claim was lost meanwhile.
    /// </summary>
    public async Task<ulong?> ChooseTargetAsync(DatabaseMoveRequested m, string? attemptId, CancellationToken ct)
    {
        var chosen = await databases.Fleet.PlaceAsync(ct, exclude: m.SourceGroupId);
        return attemptId is null ? chosen.GroupId : await databases.Fleet.ControlPlane.RecordMoveTargetAsync(m.OperationId, attemptId, chosen.GroupId, ct);
    }

    /// <summary>
    /// Waits for one of this process's move slots, then (for a claimed move) for its source and target groups: one move in
    /// or out of a group at a time, cluster-wide. Dispose the answer when the move ends.
    /// </summary>
    public async Task<IDisposable> AdmitAsync(DatabaseMoveRequested m, string? attemptId, CancellationToken ct)
    {
        await _slots.WaitAsync(ct);
        var slot = new Slot(this);
        try
        {
            while (attemptId is not null && !await claims.ClaimGroupsAsync(m.OperationId, attemptId, [m.SourceGroupId, m.TargetGroupId], ct))
            {
                await Task.Delay(GroupBusyPoll, time, ct);
            }
            return slot;
        }
        catch
        {
            slot.Dispose();
            throw;
        }
    }

    private sealed class Slot : IDisposable
    {
        private DatabaseMover? _mover;

        public Slot(DatabaseMover mover)
        {
            _mover = mover;
            var active = Interlocked.Increment(ref mover._active);
            for (var peak = Volatile.Read(ref mover._peak); active > peak; peak = Volatile.Read(ref mover._peak))
            {
                Interlocked.CompareExchange(ref mover._peak, active, peak);
            }
        }

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _mover, null) is { } mover)
            {
                Interlocked.Decrement(ref mover._active);
                mover._slots.Release();
            }
        }
    }

    /// <summary>Moves the database; <paramref name="lastAttempt"/>: any failure now rolls back instead of being retried.</summary>
    public Task<DatabaseMoved> MoveAsync(DatabaseMoveRequested m, bool lastAttempt, CancellationToken ct) => MoveOnceAsync(m, lastAttempt, ct);

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
            target = await WaitForLeaderAsync(target, step);
            var create = new CreateDatabaseRequest { GroupId = target.GroupId, DatabaseId = stagedId, TenantId = tenant, Owner = owner };
            await databases.OnGroupAsync(target, (admin, t) => admin.CreateDatabaseAsync(create, t), step);
            // Writes go on while the copy runs: the first round (changes since index 0) replaces whatever an earlier attempt
            // left in the staged copy, each later one brings the changes made during the previous one.
            var copying = Stopwatch.GetTimestamp();
            var copied = await CopyChangesAsync(source, target, m.DatabaseId, stagedId, since: 0, step);
            var catchingUp = Stopwatch.GetTimestamp();
            MoveStages.Add(MoveStages.Copy, Stopwatch.GetElapsedTime(copying, catchingUp));
            var rounds = 0;
            while (copied.Rows > options.MoveCatchUpChanges && rounds < options.MoveCatchUpRounds)
            {
                copied = await CopyChangesAsync(source, target, m.DatabaseId, stagedId, copied.RaftIndex, step);
                rounds++;
            }
            MoveStages.AddRounds(rounds);
            MoveStages.Add(MoveStages.CatchUp, Stopwatch.GetElapsedTime(catchingUp));
            // The write pause: from here until the pause is lifted on the target. No write commits on the source after the
            // pause entry applies (it is checked at apply), so the last round, read after it, brings every remaining change.
            // The pause is a flag of its own, not the quota state: a quota change arriving meanwhile neither lifts it nor is
            // undone when it ends.
            await databases.OnGroupAsync(source, (admin, t) => admin.SetWritesPausedOnGroupAsync(m.DatabaseId, source.GroupId, true, t), step);
            var paused = _paused[m.OperationId] = Stopwatch.GetTimestamp();
            await CopyChangesAsync(source, target, m.DatabaseId, stagedId, copied.RaftIndex, step);
            paused = MoveStages.Since(MoveStages.PauseLastRound, paused);
            var digests = await Task.WhenAll(SummaryAsync(source, m.DatabaseId, step), SummaryAsync(target, stagedId, step));
            paused = MoveStages.Since(MoveStages.PauseVerify, paused);
            if (digests[0].Rows != digests[1].Rows || digests[0].TotalCrc32C != digests[1].TotalCrc32C)
            {
                throw new MoveFailedException($"the copy of database {m.DatabaseId} does not match its source: {digests[1].Rows} rows (CRC32C {digests[1].TotalCrc32C:x}) copied, {digests[0].Rows} (CRC32C {digests[0].TotalCrc32C:x}) at the source");
            }
            // Roles and the quota state are read again last, so a change made while the data was copied moves too.
            var latest = await databases.DescribeAsync(source, m.DatabaseId, step) ?? current;
            foreach (var role in latest.Roles)
            {
                await databases.OnGroupAsync(target, (admin, t) => admin.SetRoleAsync(stagedId, role, t), step);
            }
            // The copy stays paused through the adopt until the source is gone: both never take writes at once.
            await databases.OnGroupAsync(target, (admin, t) => admin.SetWritesPausedOnGroupAsync(stagedId, target.GroupId, true, t), step);
            await databases.OnGroupAsync(target, (admin, t) => admin.AdoptDatabaseAsync(m.DatabaseId, stagedId, latest.State, t), step);
            MoveStages.Since(MoveStages.PauseAdopt, paused);
        }
        catch (Exception e) when (DatabaseOperations.IsFinal(e) || e is MoveFailedException || lastAttempt || (step.IsCancellationRequested && !ct.IsCancellationRequested))
        {
            if ((await databases.DescribeAsync(target, m.DatabaseId, ct))?.TenantId == tenant)
            {
                return; // The adopt was applied though its answer was lost: the move goes on.
            }
            // The pause comes after the staged copy's creation, so an attempt that left no staged copy paused nothing: a
            // stale request (an old move's, delivered during a later move) must not lift that later move's pause. The
            // pause is lifted before the copy goes, so a rollback cut short in between is finished by the next attempt.
            if (await databases.DescribeAsync(target, stagedId, ct) is not null)
            {
                try
                {
                    await databases.OnGroupAsync(source, (admin, t) => admin.SetWritesPausedOnGroupAsync(m.DatabaseId, source.GroupId, false, t), ct);
                }
                catch (NodeAdminException n) when (n.Status == HttpStatusCode.NotFound)
                {
                    // The source is gone (the database was deleted): nothing to resume.
                }
                await databases.DropAsync(target, stagedId, ct);
            }
            EndPause(m.OperationId);
            throw e as MoveFailedException ?? new MoveFailedException(step.IsCancellationRequested && !ct.IsCancellationRequested
                ? $"timed out: not copied within {options.MoveTimeout.TotalSeconds:0} s of the request (MoveTimeout); rolled back, the database stays on its source group"
                : e.Message);
        }
    }

    /// <summary>
    /// One round: the source's changes since <paramref name="since"/> applied to the staged copy; returns the round's
    /// totals (its Raft index is where the next round starts). When the source no longer keeps the changes since then
    /// (its GC threshold passed them, a round that waited for minutes), the round starts over from index 0.
    /// </summary>
    private async Task<ExportSummary> CopyChangesAsync(DatabaseLocation source, DatabaseLocation target, string databaseId, string stagedId, ulong since, CancellationToken ct)
    {
        try
        {
            return await CopyDataAsync(source, target, (admin, sink, t) => admin.ExportChangesAsync(databaseId, since, sink, t), stagedId, ct);
        }
        catch (NodeAdminException e) when (since > 0 && e.Status == HttpStatusCode.Conflict && e.Title == ChangesNoLongerKept)
        {
            return await CopyDataAsync(source, target, (admin, sink, t) => admin.ExportChangesAsync(databaseId, 0, sink, t), stagedId, ct);
        }
    }

    private const string ChangesNoLongerKept = "Changes no longer kept";

    /// <summary>After the adopt: the route flip, the source copy dropped, the pause lifted. Every step may be repeated.</summary>
    private async Task<DatabaseMoved> FinishAsync(DatabaseMoveRequested m, DatabaseLocation target, ulong tenant, CancellationToken ct)
    {
        var step = Stopwatch.GetTimestamp();
        if (!await databases.Fleet.ControlPlane.PutPlacementAsync(m.DatabaseId, target.GroupId, target.NodeIds, ct))
        {
            throw new MoveFailedException($"database {m.DatabaseId} is gone from the control plane");
        }
        step = MoveStages.Since(MoveStages.PauseFlip, step);
        if (await GroupAsync(m.SourceGroupId, ct) is { } source)
        {
            // A quota change that reached the source between the adopt's read and the flip is carried over (later ones
            // find the new placement).
            if (await databases.DescribeAsync(source, m.DatabaseId, ct) is { } left
                && await databases.DescribeAsync(target, m.DatabaseId, ct) is { } moved && left.State != moved.State)
            {
                await databases.OnGroupAsync(target, (admin, t) => admin.SetStateOnGroupAsync(m.DatabaseId, target.GroupId, left.State, t), ct);
            }
            try
            {
                await databases.OnGroupAsync(source, (admin, t) => admin.DropDatabaseOnGroupAsync(m.DatabaseId, source.GroupId, t), ct);
            }
            catch (NodeAdminException e) when (e.Status == HttpStatusCode.NotFound)
            {
                // Dropped by an earlier delivery.
            }
        }
        step = MoveStages.Since(MoveStages.PauseDropSource, step);
        await databases.OnGroupAsync(target, (admin, t) => admin.SetWritesPausedOnGroupAsync(m.DatabaseId, target.GroupId, false, t), ct);
        MoveStages.Since(MoveStages.PauseLift, step);
        EndPause(m.OperationId);
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

    /// <summary>Streams a change export of the source into the staged copy; returns the export's totals.</summary>
    private Task<ExportSummary> CopyDataAsync(DatabaseLocation source, DatabaseLocation target, Func<NodeAdminClient, Stream, CancellationToken, Task> exportInto, string stagedId, CancellationToken ct) =>
        databases.OnGroupAsync(target, async (admin, t) =>
        {
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(t);
            var exported = new Pipe(new PipeOptions(pauseWriterThreshold: 8 << 20, resumeWriterThreshold: 4 << 20));
            var forwarded = new Pipe(new PipeOptions(pauseWriterThreshold: 8 << 20, resumeWriterThreshold: 4 << 20));
            var export = databases.OnGroupAsync(source, (a, t2) => ExportIntoAsync(sink => exportInto(a, sink, t2), exported.Writer), stop.Token, Timeout.InfiniteTimeSpan);
            var relay = RelayAsync(exported.Reader, forwarded.Writer, stop.Token);
            try
            {
                await using (var reader = forwarded.Reader.AsStream())
                {
                    await admin.ImportChangesAsync(stagedId, reader, t);
                }
                await export;
                return await relay;
            }
            catch
            {
                await StopAsync(stop, export, relay);
                // The export's own failure (a 409 "changes no longer kept", say) explains a broken import best.
                if (export.IsFaulted && export.Exception?.InnerException is NodeAdminException refused)
                {
                    throw refused;
                }
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

    /// <summary>The copy's digest (rows and CRC32C of its tenant-relative pairs), computed on the node: only the totals travel.</summary>
    private Task<ExportSummary> SummaryAsync(DatabaseLocation location, string databaseId, CancellationToken ct) =>
        databases.OnGroupAsync(location, async (admin, t) =>
        {
            var pipe = new Pipe();
            var export = ExportIntoAsync(sink => admin.ExportTotalsAsync(databaseId, sink, t), pipe.Writer);
            ExportSummary summary;
            await using (var reader = pipe.Reader.AsStream())
            {
                summary = await BackupCodec.ReadExportAsync(reader, _ => Task.CompletedTask, t);
            }
            await export;
            return summary;
        }, ct, Timeout.InfiniteTimeSpan);

    private static async Task<bool> ExportIntoAsync(Func<Stream, Task> export, PipeWriter writer)
    {
        try
        {
            // Bytes arriving count as the operation's progress: a move whose export stalls stops being heartbeated.
            await using (var sink = OperationProgress.Counting(writer.AsStream(leaveOpen: true)))
            {
                await export(sink);
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
