using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Kdb.ControlPlane.Api;
using Kdb.ControlPlane.Data;
using Kdb.ControlPlane.Databases;
using Kdb.Contracts.V1;
using Microsoft.EntityFrameworkCore;

namespace Kdb.ControlPlane.Internal;

/// <summary>
/// Provisioning says it is still working on a running operation, and claims it. The reconciler re-sends the request of an
/// operation not heard of for <c>Operations:RepublishAfter</c>, which recovers a request lost with a crashed worker;
/// without heartbeats it also re-sent every long restore, backup or move every 30 s while it ran, and a second worker (or
/// the same one) then did the same work again alongside. Heartbeats stop most re-sends; the claim makes the rest harmless:
/// one attempt holds a running operation while it renews its lease (<c>Operations:ClaimLease</c>, default
/// <c>RepublishAfter</c>), and any other attempt is refused until the holder went silent that long.
/// </summary>
public static class OperationHeartbeats
{
    /// <summary>The advisory-lock key serialising claims that name shard groups ('kdbmoves' read as a big-endian int64).</summary>
    private const long GroupClaimLock = 0x6B64626D6F766573;

    private const int MaxAttemptIdLength = 64;
    private const int MaxGroups = 4;

    [JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
    public sealed record ClaimRequest(string? AttemptId, List<JsonElement>? Groups);

    [JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
    public sealed record MoveTargetRequest(string? AttemptId, JsonElement? TargetGroupId);

    public static IEndpointRouteBuilder MapOperationHeartbeatEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapPost("/internal/v1/operations/{operationId}/heartbeat", HeartbeatAsync).RequireAuthorization(InternalAuth.Provisioning);
        app.MapPost("/internal/v1/operations/{operationId}/claim", ClaimAsync).RequireAuthorization(InternalAuth.Provisioning);
        app.MapPut("/internal/v1/operations/{operationId}/move-target", MoveTargetAsync).RequireAuthorization(InternalAuth.Provisioning);
        return app;
    }

    /// <summary>
    /// Without <paramref name="attemptId"/>: the operation is being worked on (its re-send is deferred). With it: also renews
    /// that attempt's claim; 409 <c>claim-lost</c> when another attempt has taken the operation over (the caller stops).
    /// </summary>
    private static async Task<IResult> HeartbeatAsync(string operationId, string? attemptId, ControlPlaneDbContext db, TimeProvider time, CancellationToken ct)
    {
        if (attemptId is not null && !ValidAttempt(attemptId))
        {
            return AttemptProblem("attemptId");
        }
        var now = time.GetUtcNow();
        var running = db.Operations.Where(o => o.Id == operationId && o.Status == "running");
        if (attemptId is null)
        {
            return await running.ExecuteUpdateAsync(s => s.SetProperty(o => o.LastPublishedAt, now), ct) == 1
                ? Results.NoContent()
                : Problems.NotFound("No such running operation.");
        }
        if (await running.Where(o => o.ClaimAttemptId == attemptId)
            .ExecuteUpdateAsync(s => s.SetProperty(o => o.LastPublishedAt, now).SetProperty(o => o.ClaimedAt, now), ct) == 1)
        {
            return Results.NoContent();
        }
        return await running.AnyAsync(ct)
            ? Problems.Conflict("claim-lost", "Another provisioning attempt has taken this operation over; stop working on it.")
            : Problems.NotFound("No such running operation.");
    }

    /// <summary>
    /// Claims a running operation for an attempt: granted when nobody holds it, the caller already does, or the holder has not
    /// renewed its lease for <c>Operations:ClaimLease</c>. With <c>groups</c> the claim also takes those shard groups, refused
    /// (409 <c>groups-busy</c>) while another running operation's live claim holds one of them; that refusal still counts as
    /// a heartbeat (the caller is alive and waits), while a refusal because another attempt holds the operation does not.
    /// </summary>
    private static async Task<IResult> ClaimAsync(string operationId, ClaimRequest? request, ControlPlaneDbContext db, IConfiguration configuration, TimeProvider time, CancellationToken ct)
    {
        var errors = new Dictionary<string, string[]>();
        if (request?.AttemptId is not { } attemptId || !ValidAttempt(attemptId))
        {
            errors["attemptId"] = [$"required: 1 to {MaxAttemptIdLength} letters, digits, '-' or '_'"];
            attemptId = string.Empty;
        }
        var groups = new List<long>();
        if (request?.Groups is { } listed)
        {
            foreach (var g in listed)
            {
                if (Placements.ParseGroupId(g) is { } id and not 0 && groups.Count < MaxGroups)
                {
                    groups.Add(unchecked((long)id));
                }
                else
                {
                    errors["groups"] = [$"at most {MaxGroups} shard group ids, each a non-zero unsigned 64-bit integer as a decimal string"];
                }
            }
        }
        if (errors.Count > 0)
        {
            return Problems.Validation(errors);
        }

        var lease = Lease(configuration);
        var now = time.GetUtcNow();
        await using var tx = await db.Database.BeginTransactionAsync(ct);
        if (groups.Count > 0)
        {
            await db.Database.ExecuteSqlAsync($"SELECT pg_advisory_xact_lock({GroupClaimLock})", ct);
        }
        var operation = await db.Operations.FromSql($"SELECT * FROM operations WHERE \"Id\" = {operationId} FOR UPDATE").FirstOrDefaultAsync(ct);
        if (operation is null || operation.Status != "running")
        {
            return Problems.NotFound("No such running operation.");
        }
        if (operation.ClaimAttemptId is { } holder && holder != attemptId && operation.ClaimedAt > now - lease)
        {
            var heard = (now - operation.ClaimedAt.Value).TotalSeconds;
            return Problems.Conflict("operation-claimed", $"Another provisioning attempt holds this operation (heard of {heard.ToString("0", CultureInfo.InvariantCulture)} s ago; its claim lapses after {lease.TotalSeconds.ToString("0", CultureInfo.InvariantCulture)} s of silence).");
        }
        if (groups.Count > 0)
        {
            var since = now - lease;
            var others = await db.Operations.AsNoTracking()
                .Where(o => o.Id != operationId && o.Status == "running" && o.ClaimGroups != null && o.ClaimedAt > since)
                .Select(o => new { o.Id, o.ClaimGroups })
                .ToListAsync(ct);
            if (others.FirstOrDefault(o => o.ClaimGroups!.Any(groups.Contains)) is { } busy)
            {
                operation.LastPublishedAt = now;
                await db.SaveChangesAsync(ct);
                await tx.CommitAsync(ct);
                var group = unchecked((ulong)busy.ClaimGroups!.First(groups.Contains));
                return Problems.Conflict("groups-busy", $"Shard group {group.ToString(CultureInfo.InvariantCulture)} is in operation {busy.Id}; wait and claim again.");
            }
        }
        // A claim without groups keeps the groups this attempt already holds (a retry of the same attempt); a new holder
        // starts with none.
        if (groups.Count > 0 || operation.ClaimAttemptId != attemptId)
        {
            operation.ClaimGroups = groups.Count > 0 ? [.. groups] : null;
        }
        operation.ClaimAttemptId = attemptId;
        operation.ClaimedAt = now;
        operation.LastPublishedAt = now;
        await db.SaveChangesAsync(ct);
        await tx.CommitAsync(ct);
        return Results.Json(new
        {
            operationId,
            attemptId,
            groups = operation.ClaimGroups?.Select(g => unchecked((ulong)g).ToString(CultureInfo.InvariantCulture)).ToArray() ?? [],
            leaseSeconds = lease.TotalSeconds,
        });
    }

    /// <summary>
    /// Records the target group provisioning chose for a move requested without one, in the operation's stored request (so a
    /// re-sent request names it); the first choice stays: a later call gets the recorded group back. Only the claim's
    /// holder may record it (409 <c>claim-lost</c> otherwise).
    /// </summary>
    private static async Task<IResult> MoveTargetAsync(string operationId, MoveTargetRequest? request, ControlPlaneDbContext db, CancellationToken ct)
    {
        var errors = new Dictionary<string, string[]>();
        if (request?.AttemptId is not { } attemptId || !ValidAttempt(attemptId))
        {
            errors["attemptId"] = [$"required: 1 to {MaxAttemptIdLength} letters, digits, '-' or '_'"];
            attemptId = string.Empty;
        }
        if (Placements.ParseGroupId(request?.TargetGroupId) is not { } target || target == 0)
        {
            errors["targetGroupId"] = ["required: the shard group id, a non-zero unsigned 64-bit integer as a decimal string"];
            target = 0;
        }
        if (errors.Count > 0)
        {
            return Problems.Validation(errors);
        }

        await using var tx = await db.Database.BeginTransactionAsync(ct);
        var operation = await db.Operations.FromSql($"SELECT * FROM operations WHERE \"Id\" = {operationId} FOR UPDATE").FirstOrDefaultAsync(ct);
        if (operation is null || operation.Status != "running" || operation.Kind != DatabaseMoves.OperationKind)
        {
            return Problems.NotFound("No such running move.");
        }
        if (operation.ClaimAttemptId != attemptId)
        {
            return Problems.Conflict("claim-lost", "Only the attempt holding the move's claim may choose its target.");
        }
        var requested = JsonSerializer.Deserialize<DatabaseMoveRequested>(operation.RequestPayload)
            ?? throw new InvalidOperationException($"operation {operationId} has no move request");
        if (requested.TargetGroupId == 0)
        {
            if (target == requested.SourceGroupId)
            {
                return Problems.Conflict("same-group", "The target must be another shard group than the database's.");
            }
            requested = requested with { TargetGroupId = target };
            operation.RequestPayload = JsonSerializer.Serialize(requested);
            await db.SaveChangesAsync(ct);
        }
        await tx.CommitAsync(ct);
        return Results.Json(new { operationId, targetGroupId = requested.TargetGroupId.ToString(CultureInfo.InvariantCulture) });
    }

    /// <summary>How long a claim survives its holder's silence: the re-send interval unless set on its own.</summary>
    internal static TimeSpan Lease(IConfiguration configuration) =>
        configuration.GetValue<TimeSpan?>("Operations:ClaimLease") ?? configuration.GetValue("Operations:RepublishAfter", TimeSpan.FromSeconds(30));

    private static bool ValidAttempt(string id) =>
        id.Length is > 0 and <= MaxAttemptIdLength && id.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_');

    private static IResult AttemptProblem(string field) =>
        Problems.Validation(new Dictionary<string, string[]> { [field] = [$"1 to {MaxAttemptIdLength} letters, digits, '-' or '_'"] });
}
