using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text.Json.Serialization;
using System.Text.RegularExpressions;
using Kdb.ControlPlane.Api;
using Kdb.ControlPlane.Data;
using Kdb.ControlPlane.Identity;
using Kdb.ControlPlane.Ids;
using Kdb.Contracts.V1;
using Kdb.Messaging;
using Kdb.PgWire.Auth;
using Microsoft.EntityFrameworkCore;

namespace Kdb.ControlPlane.Databases;

/// <summary>Database lifecycle: create (202 with one-time owner credentials), list, get, delete, connection details, operations.</summary>
public static partial class DatabaseEndpoints
{
    [JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
    public sealed record CreateDatabaseRequest(string? Name);

    public sealed record DatabaseView(string Id, string OrgId, string Name, string Status, string QuotaState, DateTimeOffset CreatedAt, string? GroupId, long SizeBytes, string? StatusReason);

    public sealed record OperationView(string Id, string Kind, string Status, string ResourceId, string? Error, DateTimeOffset CreatedAt, DateTimeOffset? FinishedAt);

    public sealed record ConnectionUris(string Psql, string Npgsql, string Jdbc, string Http);

    public sealed record Credentials(string User, string Password, ConnectionUris Uris);

    public sealed record CreatedDatabase(DatabaseView Database, OperationView Operation, Credentials Credentials);

    public sealed record ConnectionView(string Host, int Port, string Database, string User, string Sslmode, ConnectionUris Uris);

    public static IEndpointRouteBuilder MapDatabaseEndpoints(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1").RequireAuthorization();
        group.MapPost("/orgs/{orgId}/databases", CreateAsync);
        group.MapGet("/orgs/{orgId}/databases", ListAsync);
        group.MapGet("/databases/{databaseId}", GetAsync);
        group.MapDelete("/databases/{databaseId}", DeleteAsync);
        group.MapGet("/databases/{databaseId}/connection", ConnectionAsync);
        group.MapGet("/operations/{operationId}", OperationAsync);
        return app;
    }

    [GeneratedRegex("^[a-z][a-z0-9_-]{0,62}$")]
    internal static partial Regex NamePattern();

    private static async Task<IResult> CreateAsync(HttpContext http, string orgId, CreateDatabaseRequest? request, ControlPlaneDbContext db, OutboxSignal outbox, IConfiguration configuration, TimeProvider time, CancellationToken ct)
    {
        var started = time.GetTimestamp();
        var (_, denied) = await OrgAccess.RequireAsync(db, orgId, http.User.UserId(), OrgRoles.Developer, ct);
        if (denied is not null)
        {
            return denied;
        }

        var name = request?.Name ?? string.Empty;
        if (!NamePattern().IsMatch(name))
        {
            return Problems.Validation(new Dictionary<string, string[]> { ["name"] = ["1 to 63 characters: a lowercase letter, then lowercase letters, digits, '_' or '-'"] });
        }

        var org = await db.Orgs.AsNoTracking().FirstAsync(o => o.Id == orgId, ct);
        var plan = PlanLimits.For(org.Plan);
        var existing = await db.Databases.CountAsync(d => d.OrgId == orgId && d.Status != "deleted", ct);
        if (existing >= plan.DatabasesPerOrg)
        {
            return Problems.Conflict("quota-exceeded", $"The {org.Plan} plan allows {plan.DatabasesPerOrg} databases per organization.");
        }

        if (await db.Databases.AnyAsync(d => d.OrgId == orgId && d.Name == name && d.Status != "deleted", ct))
        {
            return Problems.Conflict("database-name-taken", $"A database named '{name}' already exists in this organization.");
        }

        var now = time.GetUtcNow();
        var password = Convert.ToBase64String(RandomNumberGenerator.GetBytes(24)).Replace('+', '-').Replace('/', '_');
        var verifier = ScramSha256Verifier.Create(password).ToString();
        var database = new DatabaseRecord
        {
            Id = KdbIds.NewDatabaseId(),
            OrgId = orgId,
            Name = name,
            Status = "provisioning",
            QuotaState = "ok",
            TenantId = NewTenantId(),
            CreatedAt = now,
        };
        var operationId = KdbIds.NewTimeOrdered("op_", time);
        var requested = new DatabaseRequested(operationId, now, database.Id, unchecked((ulong)database.TenantId), orgId, new RoleVerifier("owner", RoleKind.Owner, verifier), plan.ToDatabaseLimits());
        db.Databases.Add(database);
        db.DatabaseRoles.Add(new DatabaseRoleRecord { DatabaseId = database.Id, Name = "owner", Kind = "owner", ScramVerifier = verifier, CreatedAt = now });
        var operation = DatabaseRetentionEndpoints.Request(db, database, "database.create", requested, now);
        try
        {
            await db.SaveChangesAsync(ct);
        }
        catch (DbUpdateException)
        {
            // Lost a race for the name with a concurrent request (the partial unique index decides).
            return Problems.Conflict("database-name-taken", $"A database named '{name}' already exists in this organization.");
        }

        outbox.Pulse();
        CreationStages.Record(CreationStages.Api, time.GetElapsedTime(started));
        http.Response.Headers.Location = $"/v1/databases/{database.Id}";
        return Results.Json(
            new CreatedDatabase(View(database), View(operation), new Credentials("owner", password, Uris(configuration, database.Id, "owner", password))),
            statusCode: StatusCodes.Status202Accepted);
    }

    private static async Task<IResult> ListAsync(HttpContext http, string orgId, ControlPlaneDbContext db, string? cursor, int? limit, CancellationToken ct)
    {
        if (await OrgAccess.MembershipAsync(db, orgId, http.User.UserId(), ct) is null)
        {
            return OrgAccess.OrgNotFound();
        }

        var take = Math.Clamp(limit ?? 50, 1, 200);
        var query = db.Databases.AsNoTracking().Where(d => d.OrgId == orgId && d.Status != "deleted");
        if (!string.IsNullOrEmpty(cursor))
        {
            query = query.Where(d => string.Compare(d.Id, cursor) > 0);
        }

        var rows = await query.OrderBy(d => d.Id).Take(take + 1).ToListAsync(ct);
        var items = rows.Take(take).Select(View).ToList();
        return Results.Ok(new OrgEndpoints.Page<DatabaseView>(items, rows.Count > take ? items[^1].Id : null));
    }

    private static async Task<IResult> GetAsync(HttpContext http, string databaseId, ControlPlaneDbContext db, CancellationToken ct)
    {
        var (database, _) = await FindAsync(http, databaseId, db, ct);
        return database is null ? DatabaseNotFound() : Results.Ok(View(database));
    }

    private static async Task<IResult> DeleteAsync(HttpContext http, string databaseId, ControlPlaneDbContext db, Internal.RouteSignal signal, IConfiguration configuration, TimeProvider time, CancellationToken ct)
    {
        var (database, caller) = await FindAsync(http, databaseId, db, ct, tracked: true);
        if (database is null)
        {
            return DatabaseNotFound();
        }

        if (!OrgRoles.AtLeast(caller!.Role, OrgRoles.Admin))
        {
            return OrgAccess.Forbidden(OrgRoles.Admin);
        }

        if (database.Status is "deleting" or "provisioning" or "restoring" or "moving")
        {
            return Problems.Conflict("database-busy", $"The database is {database.Status}; try again when it is ready or failed.");
        }

        var now = time.GetUtcNow();
        var operationId = KdbIds.NewTimeOrdered("op_", time);
        // With a retention window the data is kept (suspended) until the purge, so an undelete can bring it back.
        var requested = new DatabaseDeletionRequested(operationId, now, database.Id, Retain: DatabaseRetentionEndpoints.Window(configuration) > TimeSpan.Zero);
        var operation = DatabaseRetentionEndpoints.Request(db, database, DatabaseRetentionEndpoints.DeleteKind, requested, now);
        database.Status = "deleting";
        await using (var tx = await db.Database.BeginTransactionAsync(ct))
        {
            await db.SaveChangesAsync(ct);
            // Proxies drop the route (and drain its sessions) as soon as deletion starts.
            await Internal.RouteVersions.BumpAsync(db, database.Id, null, ct);
            await tx.CommitAsync(ct);
        }

        signal.Pulse();
        return Results.Json(new { database = View(database), operation = View(operation) }, statusCode: StatusCodes.Status202Accepted);
    }

    private static async Task<IResult> ConnectionAsync(HttpContext http, string databaseId, ControlPlaneDbContext db, IConfiguration configuration, CancellationToken ct)
    {
        var (database, _) = await FindAsync(http, databaseId, db, ct);
        if (database is null)
        {
            return DatabaseNotFound();
        }

        var (host, port) = Endpoint(configuration);
        return Results.Ok(new ConnectionView(host, port, database.Id, "owner", "require", Uris(configuration, database.Id, "owner", null)));
    }

    private static async Task<IResult> OperationAsync(HttpContext http, string operationId, ControlPlaneDbContext db, CancellationToken ct)
    {
        var operation = await db.Operations.AsNoTracking().FirstOrDefaultAsync(o => o.Id == operationId, ct);
        if (operation is null || await OrgAccess.MembershipAsync(db, operation.OrgId, http.User.UserId(), ct) is null)
        {
            return Problems.NotFound("No such operation.");
        }

        return Results.Ok(View(operation));
    }

    private static async Task<(DatabaseRecord? Database, Membership? Caller)> FindAsync(HttpContext http, string databaseId, ControlPlaneDbContext db, CancellationToken ct, bool tracked = false)
    {
        var query = tracked ? db.Databases : db.Databases.AsNoTracking();
        var database = await query.FirstOrDefaultAsync(d => d.Id == databaseId && d.Status != "deleted", ct);
        if (database is null)
        {
            return (null, null);
        }

        // A database of another org does not exist for this caller (404, never 403).
        var caller = await OrgAccess.MembershipAsync(db, database.OrgId, http.User.UserId(), ct);
        return caller is null ? (null, null) : (database, caller);
    }

    private static IResult DatabaseNotFound() => Problems.NotFound("No such database.");

    internal static long NewTenantId()
    {
        Span<byte> bytes = stackalloc byte[8];
        long id;
        do
        {
            RandomNumberGenerator.Fill(bytes);
            id = BinaryPrimitives.ReadInt64BigEndian(bytes);
        }
        while (id == 0); // 0 is the system tenant
        return id;
    }

    private static (string Host, int Port) Endpoint(IConfiguration configuration) =>
        (configuration["Connection:Host"] ?? "127.0.0.1", configuration.GetValue("Connection:Port", 6432));

    internal static ConnectionUris Uris(IConfiguration configuration, string databaseId, string user, string? password)
    {
        var (host, port) = Endpoint(configuration);
        var ca = configuration["Tls:CaCertificate"];
        var secret = password is null ? string.Empty : ":" + Uri.EscapeDataString(password);
        var caQuery = string.IsNullOrEmpty(ca) ? string.Empty : "&sslrootcert=" + Uri.EscapeDataString(ca);
        var npgsqlCa = string.IsNullOrEmpty(ca) ? ";SSL Mode=Require" : $";SSL Mode=VerifyCA;Root Certificate={ca}";
        var http = (configuration["Connection:HttpBaseUrl"] ?? $"http://{host}:6480").TrimEnd('/');
        return new ConnectionUris(
            $"postgresql://{user}{secret}@{host}:{port}/{databaseId}?sslmode=require{caQuery}",
            $"Host={host};Port={port};Database={databaseId};Username={user}" + (password is null ? string.Empty : $";Password={password}") + npgsqlCa,
            $"jdbc:postgresql://{host}:{port}/{databaseId}?user={user}" + (password is null ? string.Empty : "&password=" + Uri.EscapeDataString(password)) + "&sslmode=require",
            $"{http}/v1/databases/{databaseId}/sql");
    }

    internal static DatabaseView View(DatabaseRecord d) =>
        new(d.Id, d.OrgId, d.Name, d.Status, d.QuotaState, d.CreatedAt, d.GroupId is { } g ? unchecked((ulong)g).ToString(System.Globalization.CultureInfo.InvariantCulture) : null, d.SizeBytes, d.StatusReason);

    internal static OperationView View(OperationRecord o) => new(o.Id, o.Kind, o.Status, o.ResourceId, o.Error, o.CreatedAt, o.FinishedAt);
}
