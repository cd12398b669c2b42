using System.Security.Cryptography;
using System.Text.Json.Serialization;
using Kdb.ControlPlane.Data;
using Kdb.ControlPlane.Identity;
using Kdb.ControlPlane.Ids;
using Microsoft.EntityFrameworkCore;

namespace Kdb.ControlPlane.Api;

/// <summary>
/// <c>/v1/orgs/{orgId}/api-keys</c>: admins create, list and delete org API keys. A key's role never
/// exceeds its creator's; its secret is returned once and stored as SHA-256.
/// </summary>
public static class ApiKeyEndpoints
{
    [JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
    public sealed record CreateApiKeyRequest(string? Name, string? Role, DateTimeOffset? ExpiresAt);

    public sealed record ApiKeyView(string Id, string OrgId, string Name, string Role, string CreatedBy, DateTimeOffset CreatedAt, DateTimeOffset? ExpiresAt, DateTimeOffset? LastUsedAt);

    public sealed record CreatedApiKey(ApiKeyView ApiKey, string Secret);

    public static IEndpointRouteBuilder MapApiKeyEndpoints(this IEndpointRouteBuilder app)
    {
        var keys = app.MapGroup("/v1/orgs/{orgId}/api-keys").RequireAuthorization();
        keys.MapGet("/", ListAsync);
        keys.MapPost("/", CreateAsync);
        keys.MapDelete("/{keyId}", DeleteAsync);
        return app;
    }

    private static async Task<IResult> ListAsync(HttpContext http, string orgId, ControlPlaneDbContext db, CancellationToken ct)
    {
        var (caller, denied) = await OrgAccess.RequireAsync(db, orgId, http.User.UserId(), OrgRoles.Admin, ct);
        if (denied is not null)
        {
            return denied;
        }

        var items = await db.ApiKeys.AsNoTracking().Where(k => k.OrgId == orgId).OrderBy(k => k.Id).ToListAsync(ct);
        return Results.Ok(new OrgEndpoints.Page<ApiKeyView>(items.Select(View).ToList(), null));
    }

    private static async Task<IResult> CreateAsync(HttpContext http, string orgId, CreateApiKeyRequest? request, ControlPlaneDbContext db, TimeProvider time, CancellationToken ct)
    {
        var (caller, denied) = await OrgAccess.RequireAsync(db, orgId, http.User.UserId(), OrgRoles.Admin, ct);
        if (denied is not null)
        {
            return denied;
        }

        var now = time.GetUtcNow();
        var name = request?.Name?.Trim() ?? string.Empty;
        var role = request?.Role ?? OrgRoles.Developer;
        var errors = new Dictionary<string, string[]>(StringComparer.Ordinal);
        if (name.Length is 0 or > 200)
        {
            errors["name"] = ["a name of 1 to 200 characters is required"];
        }

        if (OrgRoles.Rank(role) < 0)
        {
            errors["role"] = [$"role must be one of {string.Join(", ", OrgRoles.All)}"];
        }

        if (request?.ExpiresAt is { } expires && expires <= now)
        {
            errors["expiresAt"] = ["expiresAt must be in the future"];
        }

        if (errors.Count > 0)
        {
            return Problems.Validation(errors);
        }

        if (!OrgRoles.AtLeast(caller!.Role, role))
        {
            return OrgAccess.Forbidden(role);
        }

        var secret = "kdb_" + Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        var key = new ApiKeyRecord
        {
            Id = KdbIds.NewTimeOrdered("key_", time),
            OrgId = orgId,
            Name = name,
            Role = role,
            SecretHash = ServiceClientRegistry.Hash(secret),
            CreatedBy = caller!.UserId,
            CreatedAt = now,
            ExpiresAt = request?.ExpiresAt,
        };
        db.ApiKeys.Add(key);
        await db.SaveChangesAsync(ct);
        return Results.Created($"/v1/orgs/{orgId}/api-keys/{key.Id}", new CreatedApiKey(View(key), secret));
    }

    private static async Task<IResult> DeleteAsync(HttpContext http, string orgId, string keyId, ControlPlaneDbContext db, CancellationToken ct)
    {
        var (caller, denied) = await OrgAccess.RequireAsync(db, orgId, http.User.UserId(), OrgRoles.Admin, ct);
        if (denied is not null)
        {
            return denied;
        }

        var deleted = await db.ApiKeys.Where(k => k.OrgId == orgId && k.Id == keyId).ExecuteDeleteAsync(ct);
        return deleted == 0 ? Problems.NotFound("No such API key.") : Results.NoContent();
    }

    private static ApiKeyView View(ApiKeyRecord k) => new(k.Id, k.OrgId, k.Name, k.Role, k.CreatedBy, k.CreatedAt, k.ExpiresAt, k.LastUsedAt);
}
