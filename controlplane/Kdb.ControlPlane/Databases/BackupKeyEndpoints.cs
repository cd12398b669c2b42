using System.Security.Cryptography;
using Kdb.ControlPlane.Api;
using Kdb.ControlPlane.Data;
using Kdb.ControlPlane.Ids;
using Kdb.ControlPlane.Internal;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.EntityFrameworkCore;

namespace Kdb.ControlPlane.Databases;

/// <summary>
/// Backup encryption keys for provisioning (DESIGN, internal API): <c>POST /internal/v1/orgs/{orgId}/backup-keys</c>
/// creates a 256-bit key (<c>{keyId, key}</c>, base64) and <c>GET …/backup-keys/{keyId}</c> returns it for a
/// restore. The control plane keeps the key only encrypted with Data Protection (whose key ring is in PostgreSQL).
/// </summary>
public static class BackupKeyEndpoints
{
    private const string Purpose = "Kdb.ControlPlane.BackupKeys.v1";

    public sealed record BackupKey(string KeyId, string OrgId, string Key, DateTimeOffset CreatedAt);

    public static IEndpointRouteBuilder MapBackupKeyEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapPost("/internal/v1/orgs/{orgId}/backup-keys", CreateAsync).RequireAuthorization(InternalAuth.Provisioning);
        app.MapGet("/internal/v1/orgs/{orgId}/backup-keys/{keyId}", GetAsync).RequireAuthorization(InternalAuth.Provisioning);
        return app;
    }

    private static async Task<IResult> CreateAsync(string orgId, ControlPlaneDbContext db, IDataProtectionProvider protection, TimeProvider time, CancellationToken ct)
    {
        if (!await db.Orgs.AnyAsync(o => o.Id == orgId, ct))
        {
            return Problems.NotFound("No such organization.");
        }

        var key = RandomNumberGenerator.GetBytes(32);
        var record = new BackupKeyRecord
        {
            KeyId = KdbIds.NewTimeOrdered("bkk_", time),
            OrgId = orgId,
            ProtectedKey = Convert.ToBase64String(protection.CreateProtector(Purpose).Protect(key)),
            CreatedAt = time.GetUtcNow(),
        };
        db.BackupKeys.Add(record);
        await db.SaveChangesAsync(ct);
        return Results.Json(new BackupKey(record.KeyId, orgId, Convert.ToBase64String(key), record.CreatedAt), statusCode: StatusCodes.Status201Created);
    }

    private static async Task<IResult> GetAsync(string orgId, string keyId, ControlPlaneDbContext db, IDataProtectionProvider protection, CancellationToken ct)
    {
        // A key is found only under its own org: a restore for org A cannot fetch org B's key.
        var record = await db.BackupKeys.AsNoTracking().FirstOrDefaultAsync(k => k.KeyId == keyId && k.OrgId == orgId, ct);
        if (record is null)
        {
            return Problems.NotFound("No such backup key.");
        }

        var key = protection.CreateProtector(Purpose).Unprotect(Convert.FromBase64String(record.ProtectedKey));
        return Results.Ok(new BackupKey(record.KeyId, record.OrgId, Convert.ToBase64String(key), record.CreatedAt));
    }
}
