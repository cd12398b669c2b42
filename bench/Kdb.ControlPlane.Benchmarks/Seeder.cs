using System.Buffers.Binary;
using System.Security.Cryptography;
using Kdb.PgWire.Auth;
using Npgsql;
using NpgsqlTypes;

namespace Kdb.ControlPlane.Benchmarks;

/// <summary>The orgs seeded for the run, each full of databases, the benchmark user an owner of every one.</summary>
internal sealed record SeededOrgs(IReadOnlyList<string> OrgIds, IReadOnlyList<IReadOnlyList<string>> DatabaseIds);

/// <summary>
/// Seeds orgs and databases straight into the control plane's tables with binary COPY, shaped as the API
/// would have left them after provisioning: an enterprise org, its owner membership, per database a
/// <c>ready</c> row, its <c>owner</c> role, its succeeded <c>database.create</c> operation and its audit entry.
/// Going through the API instead would take hours here (each create derives a SCRAM verifier).
/// </summary>
internal static class Seeder
{
    private const string Crockford = "0123456789abcdefghjkmnpqrstvwxyz";

    public static async Task<SeededOrgs> SeedAsync(string connectionString, string ownerUserId, int orgs, int databasesPerOrg, CancellationToken ct)
    {
        // One verifier for every seeded owner role: deriving 100,000 distinct ones (4096 PBKDF2 rounds each)
        // would dominate the run, and nothing here logs in with them.
        var verifier = ScramSha256Verifier.Create(Convert.ToBase64String(RandomNumberGenerator.GetBytes(24))).ToString();
        var now = DateTimeOffset.UtcNow;
        var orgIds = new List<string>(orgs);
        var databaseIds = new List<IReadOnlyList<string>>(orgs);
        var tenantIds = new HashSet<long>();
        for (var o = 0; o < orgs; o++)
        {
            orgIds.Add(TimeOrderedId("org_", now.AddMinutes(-orgs + o)));
            var ids = new string[databasesPerOrg];
            for (var d = 0; d < databasesPerOrg; d++)
            {
                ids[d] = "db_" + RandomChars(16);
            }

            databaseIds.Add(ids);
        }

        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(ct);
        await using (var orgCopy = await connection.BeginBinaryImportAsync("COPY orgs (\"Id\", \"Name\", \"Plan\", \"CreatedAt\") FROM STDIN (FORMAT BINARY)", ct))
        {
            for (var o = 0; o < orgs; o++)
            {
                await orgCopy.StartRowAsync(ct);
                await orgCopy.WriteAsync(orgIds[o], NpgsqlDbType.Varchar, ct);
                await orgCopy.WriteAsync($"bench org {o}", NpgsqlDbType.Varchar, ct);
                await orgCopy.WriteAsync("enterprise", NpgsqlDbType.Varchar, ct);
                await orgCopy.WriteAsync(now.AddDays(-30), NpgsqlDbType.TimestampTz, ct);
            }

            await orgCopy.CompleteAsync(ct);
        }

        await using (var memberCopy = await connection.BeginBinaryImportAsync("COPY memberships (\"OrgId\", \"UserId\", \"Role\", \"CreatedAt\") FROM STDIN (FORMAT BINARY)", ct))
        {
            foreach (var orgId in orgIds)
            {
                await memberCopy.StartRowAsync(ct);
                await memberCopy.WriteAsync(orgId, NpgsqlDbType.Text, ct);
                await memberCopy.WriteAsync(ownerUserId, NpgsqlDbType.Text, ct);
                await memberCopy.WriteAsync("owner", NpgsqlDbType.Varchar, ct);
                await memberCopy.WriteAsync(now.AddDays(-30), NpgsqlDbType.TimestampTz, ct);
            }

            await memberCopy.CompleteAsync(ct);
        }

        await using (var dbCopy = await connection.BeginBinaryImportAsync(
            "COPY databases (\"Id\", \"OrgId\", \"Name\", \"Status\", \"QuotaState\", \"TenantId\", \"GroupId\", \"SizeBytes\", \"CreatedAt\") FROM STDIN (FORMAT BINARY)", ct))
        {
            for (var o = 0; o < orgs; o++)
            {
                for (var d = 0; d < databasesPerOrg; d++)
                {
                    long tenant;
                    do
                    {
                        tenant = RandomInt64();
                    }
                    while (tenant == 0 || !tenantIds.Add(tenant));

                    await dbCopy.StartRowAsync(ct);
                    await dbCopy.WriteAsync(databaseIds[o][d], NpgsqlDbType.Varchar, ct);
                    await dbCopy.WriteAsync(orgIds[o], NpgsqlDbType.Varchar, ct);
                    await dbCopy.WriteAsync($"seeded-{d:D5}", NpgsqlDbType.Varchar, ct);
                    await dbCopy.WriteAsync("ready", NpgsqlDbType.Varchar, ct);
                    await dbCopy.WriteAsync("ok", NpgsqlDbType.Varchar, ct);
                    await dbCopy.WriteAsync(tenant, NpgsqlDbType.Bigint, ct);
                    await dbCopy.WriteAsync((long)(1 + (d % 64)), NpgsqlDbType.Bigint, ct);
                    await dbCopy.WriteAsync((long)d * 4096, NpgsqlDbType.Bigint, ct);
                    await dbCopy.WriteAsync(now.AddSeconds(-databasesPerOrg + d), NpgsqlDbType.TimestampTz, ct);
                }
            }

            await dbCopy.CompleteAsync(ct);
        }

        await using (var roleCopy = await connection.BeginBinaryImportAsync(
            "COPY database_roles (\"DatabaseId\", \"Name\", \"Kind\", \"ScramVerifier\", \"CreatedAt\") FROM STDIN (FORMAT BINARY)", ct))
        {
            foreach (var ids in databaseIds)
            {
                foreach (var id in ids)
                {
                    await roleCopy.StartRowAsync(ct);
                    await roleCopy.WriteAsync(id, NpgsqlDbType.Text, ct);
                    await roleCopy.WriteAsync("owner", NpgsqlDbType.Varchar, ct);
                    await roleCopy.WriteAsync("owner", NpgsqlDbType.Varchar, ct);
                    await roleCopy.WriteAsync(verifier, NpgsqlDbType.Text, ct);
                    await roleCopy.WriteAsync(now, NpgsqlDbType.TimestampTz, ct);
                }
            }

            await roleCopy.CompleteAsync(ct);
        }

        await using (var opCopy = await connection.BeginBinaryImportAsync(
            "COPY operations (\"Id\", \"OrgId\", \"Kind\", \"Status\", \"ResourceId\", \"RequestType\", \"RequestPayload\", \"CreatedAt\", \"LastPublishedAt\", \"FinishedAt\") FROM STDIN (FORMAT BINARY)", ct))
        {
            for (var o = 0; o < orgs; o++)
            {
                foreach (var id in databaseIds[o])
                {
                    await opCopy.StartRowAsync(ct);
                    await opCopy.WriteAsync(TimeOrderedId("op_", now), NpgsqlDbType.Varchar, ct);
                    await opCopy.WriteAsync(orgIds[o], NpgsqlDbType.Text, ct);
                    await opCopy.WriteAsync("database.create", NpgsqlDbType.Text, ct);
                    await opCopy.WriteAsync("succeeded", NpgsqlDbType.Varchar, ct);
                    await opCopy.WriteAsync(id, NpgsqlDbType.Text, ct);
                    await opCopy.WriteAsync("Kdb.Contracts.V1.DatabaseRequested", NpgsqlDbType.Text, ct);
                    await opCopy.WriteAsync("{}", NpgsqlDbType.Text, ct);
                    await opCopy.WriteAsync(now, NpgsqlDbType.TimestampTz, ct);
                    await opCopy.WriteAsync(now, NpgsqlDbType.TimestampTz, ct);
                    await opCopy.WriteAsync(now, NpgsqlDbType.TimestampTz, ct);
                }
            }

            await opCopy.CompleteAsync(ct);
        }

        await using (var auditCopy = await connection.BeginBinaryImportAsync(
            "COPY audit_log (\"OrgId\", \"Actor\", \"Action\", \"ResourceId\", \"SourceIp\", \"Status\", \"At\") FROM STDIN (FORMAT BINARY)", ct))
        {
            for (var o = 0; o < orgs; o++)
            {
                foreach (var id in databaseIds[o])
                {
                    await auditCopy.StartRowAsync(ct);
                    await auditCopy.WriteAsync(orgIds[o], NpgsqlDbType.Varchar, ct);
                    await auditCopy.WriteAsync(ownerUserId, NpgsqlDbType.Varchar, ct);
                    await auditCopy.WriteAsync("POST /v1/orgs/{orgId}/databases", NpgsqlDbType.Varchar, ct);
                    await auditCopy.WriteAsync(id, NpgsqlDbType.Varchar, ct);
                    await auditCopy.WriteAsync("127.0.0.1", NpgsqlDbType.Varchar, ct);
                    await auditCopy.WriteAsync(202, NpgsqlDbType.Integer, ct);
                    await auditCopy.WriteAsync(now, NpgsqlDbType.TimestampTz, ct);
                }
            }

            await auditCopy.CompleteAsync(ct);
        }

        // Fresh statistics, as autovacuum would have them on a table that grew over months.
        await using (var analyze = new NpgsqlCommand("ANALYZE", connection))
        {
            await analyze.ExecuteNonQueryAsync(ct);
        }

        return new SeededOrgs(orgIds, databaseIds);
    }

    /// <summary>A DESIGN-shaped time-ordered id: prefix, 10 characters of milliseconds, 16 random.</summary>
    private static string TimeOrderedId(string prefix, DateTimeOffset at)
    {
        Span<char> chars = stackalloc char[26];
        var ms = (ulong)at.ToUnixTimeMilliseconds();
        for (var i = 9; i >= 0; i--)
        {
            chars[i] = Crockford[(int)(ms & 31)];
            ms >>= 5;
        }

        RandomChars(chars[10..]);
        return prefix + new string(chars);
    }

    private static string RandomChars(int count)
    {
        Span<char> chars = stackalloc char[count];
        RandomChars(chars);
        return new string(chars);
    }

    private static void RandomChars(Span<char> destination)
    {
        for (var i = 0; i < destination.Length; i++)
        {
            destination[i] = Crockford[RandomNumberGenerator.GetInt32(32)];
        }
    }

    private static long RandomInt64()
    {
        Span<byte> bytes = stackalloc byte[8];
        RandomNumberGenerator.Fill(bytes);
        return BinaryPrimitives.ReadInt64BigEndian(bytes);
    }
}
