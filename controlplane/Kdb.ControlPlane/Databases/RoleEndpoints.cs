using System.Security.Cryptography;
using System.Text.Json.Serialization;
using System.Text.RegularExpressions;
using Kdb.ControlPlane.Api;
using Kdb.ControlPlane.Data;
using Kdb.ControlPlane.Identity;
using Kdb.ControlPlane.Ids;
using Kdb.ControlPlane.Internal;
using Kdb.Contracts.V1;
using Kdb.PgWire.Auth;
using Microsoft.EntityFrameworkCore;

namespace Kdb.ControlPlane.Databases;

/// <summary>
/// Database roles (owner, readwrite, readonly) and data tokens. Passwords exist in plaintext only in the
/// response that creates or resets them; the data plane receives SCRAM verifiers through RoleChanged.
/// </summary>
public static partial class RoleEndpoints
{
    public static readonly string[] Kinds = ["owner", "readwrite", "readonly"];

    [JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
    public sealed record CreateRoleRequest(string? Name, string? Kind);

    [JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
    public sealed record DataTokenRequest(string? Role, int? TtlSeconds);

    public sealed record RoleView(string Name, string Kind, DateTimeOffset CreatedAt);

    public sealed record RoleWithPassword(RoleView Role, string Password, DatabaseEndpoints.ConnectionUris Uris);

    public sealed record DataToken(string Token, string Role, DateTimeOffset ExpiresAt);

    [GeneratedRegex("^[a-z][a-z0-9_]{0,62}$")]
    private static partial Regex RoleName();

    public static IEndpointRouteBuilder MapRoleEndpoints(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1/databases/{databaseId}").RequireAuthorization();
        group.MapGet("/roles", ListAsync);
        group.MapPost("/roles", CreateAsync);
        group.MapDelete("/roles/{role}", DeleteAsync);
        group.MapPost("/roles/{role}/reset-password", ResetAsync);
        group.MapPost("/tokens", TokenAsync);
        return app;
    }

    private static async Task<IResult> ListAsync(HttpContext http, string databaseId, ControlPlaneDbContext db, CancellationToken ct)
    {
        var (database, _, denied) = await AccessAsync(http, databaseId, db, OrgRoles.Viewer, ct);
        if (denied is not null)
        {
            return denied;
        }

        var roles = await db.DatabaseRoles.AsNoTracking().Where(r => r.DatabaseId == database!.Id).OrderBy(r => r.Name).ToListAsync(ct);
        return Results.Ok(new OrgEndpoints.Page<RoleView>(roles.Select(r => new RoleView(r.Name, r.Kind, r.CreatedAt)).ToList(), null));
    }

    private static async Task<IResult> CreateAsync(HttpContext http, string databaseId, CreateRoleRequest? request, ControlPlaneDbContext db, IConfiguration configuration, RouteSignal signal, IProxyTracker proxies, TimeProvider time, CancellationToken ct)
    {
        var (database, _, denied) = await AccessAsync(http, databaseId, db, OrgRoles.Admin, ct);
        if (denied is not null)
        {
            return denied;
        }

        var errors = new Dictionary<string, string[]>(StringComparer.Ordinal);
        if (request?.Name is not { } name || !RoleName().IsMatch(name))
        {
            errors["name"] = ["1 to 63 characters: a lowercase letter, then lowercase letters, digits or '_'"];
        }

        if (request?.Kind is not { } kind || !Kinds.Contains(kind, StringComparer.Ordinal))
        {
            errors["kind"] = [$"kind must be one of {string.Join(", ", Kinds)}"];
        }

        if (errors.Count > 0)
        {
            return Problems.Validation(errors);
        }

        if (await db.DatabaseRoles.AnyAsync(r => r.DatabaseId == database!.Id && r.Name == request!.Name, ct))
        {
            return Problems.Conflict("role-exists", $"The role '{request!.Name}' already exists.");
        }

        var now = time.GetUtcNow();
        var (password, verifier) = NewPassword();
        var role = new DatabaseRoleRecord { DatabaseId = database!.Id, Name = request!.Name!, Kind = request.Kind!, ScramVerifier = verifier, CreatedAt = now };
        db.DatabaseRoles.Add(role);
        if (await SaveWithEventAsync(db, database, role, deleted: false, signal, proxies, time, ct) is { } refused)
        {
            return refused;
        }

        return Results.Created($"/v1/databases/{database.Id}/roles/{role.Name}", new RoleWithPassword(
            new RoleView(role.Name, role.Kind, role.CreatedAt), password, DatabaseEndpoints.Uris(configuration, database.Id, role.Name, password)));
    }

    private static async Task<IResult> ResetAsync(HttpContext http, string databaseId, string role, ControlPlaneDbContext db, IConfiguration configuration, RouteSignal signal, IProxyTracker proxies, TimeProvider time, CancellationToken ct)
    {
        var (database, _, denied) = await AccessAsync(http, databaseId, db, OrgRoles.Admin, ct);
        if (denied is not null)
        {
            return denied;
        }

        var record = await db.DatabaseRoles.FirstOrDefaultAsync(r => r.DatabaseId == database!.Id && r.Name == role, ct);
        if (record is null)
        {
            return Problems.NotFound("No such role.");
        }

        var (password, verifier) = NewPassword();
        record.ScramVerifier = verifier;
        if (await SaveWithEventAsync(db, database!, record, deleted: false, signal, proxies, time, ct) is { } refused)
        {
            return refused;
        }

        return Results.Ok(new { password, uris = DatabaseEndpoints.Uris(configuration, database!.Id, record.Name, password) });
    }

    private static async Task<IResult> DeleteAsync(HttpContext http, string databaseId, string role, ControlPlaneDbContext db, RouteSignal signal, IProxyTracker proxies, TimeProvider time, CancellationToken ct)
    {
        var (database, _, denied) = await AccessAsync(http, databaseId, db, OrgRoles.Admin, ct);
        if (denied is not null)
        {
            return denied;
        }

        var record = await db.DatabaseRoles.FirstOrDefaultAsync(r => r.DatabaseId == database!.Id && r.Name == role, ct);
        if (record is null)
        {
            return Problems.NotFound("No such role.");
        }

        if (record.Name == "owner")
        {
            return Problems.Conflict("owner-role", "The owner role cannot be deleted; reset its password instead.");
        }

        db.DatabaseRoles.Remove(record);
        if (await SaveWithEventAsync(db, database!, record, deleted: true, signal, proxies, time, ct) is { } refused)
        {
            return refused;
        }

        return Results.NoContent();
    }

    private static async Task<IResult> TokenAsync(HttpContext http, string databaseId, DataTokenRequest? request, ControlPlaneDbContext db, TokenIssuer issuer, TimeProvider time, CancellationToken ct)
    {
        var (database, caller, denied) = await AccessAsync(http, databaseId, db, OrgRoles.Developer, ct);
        if (denied is not null)
        {
            return denied;
        }

        var ttl = request?.TtlSeconds ?? 3600;
        if (ttl is < 60 or > 86_400 || string.IsNullOrEmpty(request?.Role))
        {
            return Problems.Validation(new Dictionary<string, string[]> { ["body"] = ["role is required; ttlSeconds from 60 to 86400"] });
        }

        if (!await db.DatabaseRoles.AnyAsync(r => r.DatabaseId == database!.Id && r.Name == request.Role, ct))
        {
            return Problems.NotFound("No such role.");
        }

        var lifetime = TimeSpan.FromSeconds(ttl);
        var token = issuer.Mint(KdbAudiences.Data, caller!.UserId, lifetime, new Dictionary<string, object>
        {
            ["org"] = database!.OrgId,
            ["db"] = database.Id,
            ["role"] = request.Role,
        });
        return Results.Ok(new DataToken(token, request.Role, time.GetUtcNow() + lifetime));
    }

    /// <summary>
    /// Saves the role change with its event; a 409 instead while the database is moving. The mover copies the roles it
    /// reads from the source just before the adopt, so a change applied to the source after that would be missing from
    /// the moved copy: refusing it is the only answer that never loses a password reset or leaves a deleted role working.
    /// </summary>
    private static async Task<IResult?> SaveWithEventAsync(ControlPlaneDbContext db, DatabaseRecord database, DatabaseRoleRecord role, bool deleted, RouteSignal signal, IProxyTracker proxies, TimeProvider time, CancellationToken ct)
    {
        var now = time.GetUtcNow();
        var kind = role.Kind switch { "owner" => RoleKind.Owner, "readwrite" => RoleKind.ReadWrite, _ => RoleKind.ReadOnly };
        var changed = new RoleChanged(KdbIds.NewTimeOrdered("op_", time), now, database.Id, role.Name, kind, deleted ? null : role.ScramVerifier, deleted);
        Outbox.Add(db, changed, now);
        await using var tx = await db.Database.BeginTransactionAsync(ct);
        // The row lock orders this against a move request: either the move sees this change's event queued before its own,
        // or this change sees the database moving.
        var status = await db.Database.SqlQuery<string>($"SELECT \"Status\" AS \"Value\" FROM databases WHERE \"Id\" = {database.Id} FOR UPDATE").ToListAsync(ct);
        if (status is ["moving"])
        {
            return Problems.Conflict("database-moving", "The database is being moved to another shard group; role changes wait until the move ends (usually within minutes), so that none is lost on the moved copy. Retry then.");
        }

        await db.SaveChangesAsync(ct);
        var version = await RouteVersions.BumpAsync(db, database.Id, null, ct);
        await tx.CommitAsync(ct);
        signal.Pulse();
        // The caller gets the password only once every live proxy can authenticate it (DESIGN: no race after a change).
        await proxies.WaitForAsync(version, ct);
        return null;
    }

    private static (string Password, string Verifier) NewPassword()
    {
        var password = Convert.ToBase64String(RandomNumberGenerator.GetBytes(24)).Replace('+', '-').Replace('/', '_');
        return (password, ScramSha256Verifier.Create(password).ToString());
    }

    private static async Task<(DatabaseRecord? Database, Membership? Caller, IResult? Denied)> AccessAsync(HttpContext http, string databaseId, ControlPlaneDbContext db, string required, CancellationToken ct)
    {
        var database = await db.Databases.AsNoTracking().FirstOrDefaultAsync(d => d.Id == databaseId && d.Status != "deleted", ct);
        if (database is null)
        {
            return (null, null, Problems.NotFound("No such database."));
        }

        var (caller, denied) = await OrgAccess.RequireAsync(db, database.OrgId, http.User.UserId(), required, ct);
        // A non-member is told the database does not exist, not that the org does not.
        return denied switch
        {
            null => (database, caller, null),
            IStatusCodeHttpResult { StatusCode: StatusCodes.Status404NotFound } => (null, null, Problems.NotFound("No such database.")),
            _ => (null, null, denied),
        };
    }
}
