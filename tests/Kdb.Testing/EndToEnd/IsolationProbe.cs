using System.Net;
using Npgsql;

namespace Kdb.Testing.EndToEnd;

/// <summary>
/// Cross-tenant checks through the front doors a tenant has: the proxy with its own credentials and the REST API with
/// its own token. Returns every violation found (empty when tenants are isolated).
/// </summary>
public static class IsolationProbe
{
    /// <summary>Lists the violations among <paramref name="databases"/>; <paramref name="expectedTables"/> are the tables each created itself, the only ones its catalog may show.</summary>
    public static async Task<List<string>> FindViolationsAsync(EndToEndCloud cloud, IReadOnlyList<CloudDatabase> databases, IReadOnlyCollection<string> expectedTables)
    {
        var violations = new List<string>();
        for (var i = 0; i < databases.Count; i++)
        {
            var own = databases[i];
            await BankWorkload.RetryAsync(async () =>
            {
                await using var conn = new NpgsqlConnection(cloud.ProxyConnectionString(own.Id, own.Password));
                await conn.OpenAsync();
                await using (var cmd = new NpgsqlCommand("SELECT table_name FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog', 'information_schema')", conn))
                await using (var reader = await cmd.ExecuteReaderAsync())
                {
                    while (await reader.ReadAsync())
                    {
                        if (!expectedTables.Contains(reader.GetString(0)))
                        {
                            violations.Add($"{own.Id} sees table {reader.GetString(0)}");
                        }
                    }
                }
                await using (var cmd = new NpgsqlCommand("SELECT db FROM tenant_mark", conn))
                await using (var reader = await cmd.ExecuteReaderAsync())
                {
                    while (await reader.ReadAsync())
                    {
                        if (reader.GetString(0) != own.Id)
                        {
                            violations.Add($"{own.Id} sees {reader.GetString(0)}'s row");
                        }
                    }
                }
            });

            if (databases.Count < 2)
            {
                continue;
            }
            var other = databases[(i + 1) % databases.Count];
            // Own password, another tenant's database: must be refused exactly like a wrong password.
            await BankWorkload.RetryAsync(async () =>
            {
                try
                {
                    await using var conn = new NpgsqlConnection(cloud.ProxyConnectionString(other.Id, own.Password));
                    await conn.OpenAsync();
                    violations.Add($"{own.Id}'s password opens {other.Id}");
                }
                catch (PostgresException e) when (e.SqlState == "28P01")
                {
                }
            });
            if (other.OrgId != own.OrgId)
            {
                var (status, _) = await cloud.SendAsync(HttpMethod.Get, $"/v1/databases/{other.Id}", own.Token);
                if (status != HttpStatusCode.NotFound)
                {
                    violations.Add($"org {own.OrgId} gets {(int)status} for {other.Id} of org {other.OrgId}");
                }
            }
        }
        return violations;
    }
}
