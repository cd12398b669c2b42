using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using Kdb.Cluster;
using Kdb.Sql;
using Kdb.Sql.Sessions;
using Kdb.Sql.Types;
using Kdb.Transactions;

namespace Kdb.Node.Cluster;

/// <summary>
/// The HTTP data API of DESIGN on the node's data port: SQL over JSON (several statements in one request run as one
/// transaction) and KyroDB-style key-value endpoints, with data-token auth; operator-only engine endpoints. A token for
/// another database, a bad token and a database this node does not host all get the same 401.
/// </summary>
internal static class DataApiEndpoints
{
    /// <summary>Key-value pairs live in the tenant's keyspace under a table id the SQL catalog never allocates.</summary>
    internal const uint KvTable = 0xFFFF_FFF0;
    private const int MaxBodyBytes = 4 << 20;

    public static void MapDataApiEndpoints(this IEndpointRouteBuilder app, ClusterRuntime runtime, int httpPort)
    {
        var g = app.MapGroup("/v1").RequireHost($"*:{httpPort}");
        g.MapPost("/databases/{databaseId}/sql", (HttpContext c, string databaseId) => SqlAsync(c, runtime, databaseId));
        g.MapPost("/databases/{databaseId}/kv/put", (HttpContext c, string databaseId) => PutAsync(c, runtime, databaseId));
        g.MapGet("/databases/{databaseId}/kv/get_fast/{key}", (HttpContext c, string databaseId, string key) => GetAsync(c, runtime, databaseId, key));
        g.MapPost("/admin/snapshot", AdminEndpoints.Handler(c => OperatorAsync(c, runtime, engine => engine.Flush())));
        g.MapPost("/admin/rmi/build", AdminEndpoints.Handler(c => OperatorAsync(c, runtime, engine => engine.Compact())));
        g.MapPost("/admin/warmup", AdminEndpoints.Handler(c => OperatorAsync(c, runtime, engine =>
        {
            foreach (var _ in engine.Scan([], null))
            {
            }
        })));
    }

    private static IResult Unauthorized() =>
        Results.Problem(statusCode: 401, title: "Unauthorized", detail: "a valid data token for this database is required");

    /// <summary>The database and the token's role when the bearer token is a valid data token for it; else null.</summary>
    private static async Task<(SqlDatabase Database, DatabaseRecord Record, ulong GroupId, DatabaseRole Role)?> AuthorizeAsync(HttpContext c, ClusterRuntime runtime, string databaseId)
    {
        var header = c.Request.Headers.Authorization.ToString();
        if (runtime.Tokens is null || !header.StartsWith("Bearer ", StringComparison.Ordinal))
        {
            return null;
        }
        var token = header["Bearer ".Length..].Trim();
        if (UnverifiedClaim(token, "role") is not { } roleName || runtime.Open(databaseId) is not { } found || found.Record.FindRole(roleName) is not { } role)
        {
            return null;
        }
        var check = await runtime.Tokens.ValidateDataTokenAsync(token, databaseId, roleName, c.RequestAborted);
        return check.IsValid ? (found.Database, found.Record, found.GroupId, role) : null;
    }

    /// <summary>Reads one claim without verifying: only to learn which role to verify the token for.</summary>
    private static string? UnverifiedClaim(string token, string claim)
    {
        var parts = token.Split('.');
        if (parts.Length != 3 || parts[1].Length > 8192)
        {
            return null;
        }
        try
        {
            var payload = parts[1].Replace('-', '+').Replace('_', '/');
            payload = payload.PadRight(payload.Length + ((4 - (payload.Length % 4)) % 4), '=');
            using var doc = JsonDocument.Parse(Convert.FromBase64String(payload));
            return doc.RootElement.TryGetProperty(claim, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
        }
        catch (Exception e) when (e is FormatException or JsonException)
        {
            return null;
        }
    }

    /// <summary>A move's brief pause: 503 with Retry-After, so an HTTP client retries as it would through a failover.</summary>
    private static IResult WritesPaused(HttpContext c, int? statement = null)
    {
        c.Response.Headers.RetryAfter = "1";
        var extensions = new Dictionary<string, object?> { ["sqlstate"] = "25006" };
        if (statement is { } index)
        {
            extensions["statement"] = index;
        }
        return Results.Problem(statusCode: 503, title: "Writes paused", detail: "the database is moving to another shard group; retry in a moment", extensions: extensions);
    }

    private static async Task<IResult> SqlAsync(HttpContext c, ClusterRuntime runtime, string databaseId)
    {
        if (await AuthorizeAsync(c, runtime, databaseId) is not { } auth)
        {
            return Unauthorized();
        }
        if (auth.Record.State == DatabaseState.Suspended)
        {
            return Results.Problem(statusCode: 403, title: "Suspended", detail: "database suspended: quota exceeded", extensions: new Dictionary<string, object?> { ["sqlstate"] = "53400" });
        }
        List<(string Sql, JsonElement[] Params)> statements;
        try
        {
            statements = await ReadStatementsAsync(c);
        }
        catch (Exception e) when (e is JsonException or FormatException or InvalidDataException)
        {
            return Results.Problem(statusCode: 400, title: "Bad request", detail: e.Message);
        }
        using var session = auth.Database.OpenSession(auth.Role.Name, auth.Role.Kind);
        var results = new List<object>();
        var explicitTransaction = statements.Count > 1;
        try
        {
            if (explicitTransaction)
            {
                await RunAsync(session, "BEGIN", [], c.RequestAborted);
            }
            foreach (var (sql, parameters) in statements)
            {
                results.Add(await RunAsync(session, sql, parameters, c.RequestAborted));
            }
            if (explicitTransaction)
            {
                await RunAsync(session, "COMMIT", [], c.RequestAborted);
            }
            await session.SyncAsync(c.RequestAborted);
        }
        catch (SqlException e) when (RaftSqlStore.IsWritesPaused(e))
        {
            session.Fail();
            return WritesPaused(c, results.Count);
        }
        catch (SqlException e)
        {
            session.Fail();
            return Results.Problem(statusCode: e.SqlState.StartsWith("40", StringComparison.Ordinal) ? 409 : 400, title: "SQL error", detail: e.Message,
                extensions: new Dictionary<string, object?> { ["sqlstate"] = e.SqlState, ["statement"] = results.Count });
        }
        return Results.Json(new { results });
    }

    private static async Task<List<(string, JsonElement[])>> ReadStatementsAsync(HttpContext c)
    {
        if (c.Request.ContentLength > MaxBodyBytes)
        {
            throw new InvalidDataException($"the body exceeds {MaxBodyBytes} bytes");
        }
        using var doc = await JsonDocument.ParseAsync(c.Request.Body, cancellationToken: c.RequestAborted);
        // An HTTP/1.1 body read resumes on the thread that received the bytes, an epoll thread with epoll completions:
        // statements never run there (see PoolHop).
        await Kdb.Node.Sql.PoolHop.IfOffPool();
        var root = doc.RootElement;
        var list = new List<(string, JsonElement[])>();
        void Add(JsonElement item)
        {
            if (item.ValueKind != JsonValueKind.Object || !item.TryGetProperty("sql", out var sql) || sql.ValueKind != JsonValueKind.String)
            {
                throw new InvalidDataException("each statement is an object with a \"sql\" string and optional \"params\" array");
            }
            var ps = item.TryGetProperty("params", out var p) && p.ValueKind == JsonValueKind.Array
                ? p.EnumerateArray().Select(e => e.Clone()).ToArray()
                : [];
            list.Add((sql.GetString()!, ps));
        }
        if (root.ValueKind == JsonValueKind.Object && root.TryGetProperty("statements", out var many) && many.ValueKind == JsonValueKind.Array)
        {
            foreach (var item in many.EnumerateArray())
            {
                Add(item);
            }
        }
        else
        {
            Add(root);
        }
        if (list.Count is 0 or > 1000)
        {
            throw new InvalidDataException("send 1 to 1000 statements");
        }
        return list;
    }

    private static async Task<object> RunAsync(SqlSession session, string sql, JsonElement[] parameters, CancellationToken ct)
    {
        var statement = await session.PrepareAsync(sql, null, ct);
        if (statement.ParameterTypes.Count != parameters.Length)
        {
            throw new SqlException("08P01", $"the statement has {statement.ParameterTypes.Count} parameters but {parameters.Length} were given");
        }
        var values = new Value[parameters.Length];
        for (var i = 0; i < values.Length; i++)
        {
            var p = parameters[i];
            values[i] = p.ValueKind switch
            {
                JsonValueKind.Null => Value.Null,
                JsonValueKind.String => ValueText.Parse(p.GetString()!, statement.ParameterTypes[i]),
                _ => ValueText.Parse(p.GetRawText(), statement.ParameterTypes[i]),
            };
        }
        using var cursor = await statement.ExecuteAsync(values, ct);
        var columns = cursor.Columns;
        var rows = new List<object?[]>();
        while (cursor.MoveNext())
        {
            if (columns is null)
            {
                continue;
            }
            var row = new object?[columns.Count];
            for (var i = 0; i < row.Length; i++)
            {
                row[i] = ToJson(cursor.Current[i], columns[i].Type);
            }
            rows.Add(row);
        }
        return new
        {
            command = cursor.CommandTag,
            columns = columns?.Select(col => new { name = col.Name, type = col.Type.Id.ToString().ToLowerInvariant() }).ToArray(),
            rows = columns is null ? null : rows,
            rowCount = rows.Count,
        };
    }

    private static object? ToJson(in Value value, SqlType type)
    {
        if (value.IsNull)
        {
            return null;
        }
        return type.Id switch
        {
            SqlTypeId.Bool => value.AsBool,
            SqlTypeId.Int2 or SqlTypeId.Int4 or SqlTypeId.Int8 => value.AsInt,
            _ => ValueText.Format(value, type),
        };
    }

    private static async Task<IResult> PutAsync(HttpContext c, ClusterRuntime runtime, string databaseId)
    {
        if (await AuthorizeAsync(c, runtime, databaseId) is not { } auth)
        {
            return Unauthorized();
        }
        if (auth.Role.Kind == SqlRoleKind.ReadOnly)
        {
            return Results.Problem(statusCode: 403, title: "Read-only role", extensions: new Dictionary<string, object?> { ["sqlstate"] = "25006" });
        }
        string? key;
        string? value;
        try
        {
            using var doc = await JsonDocument.ParseAsync(c.Request.Body, cancellationToken: c.RequestAborted);
            await Kdb.Node.Sql.PoolHop.IfOffPool();
            key = doc.RootElement.TryGetProperty("key", out var k) && k.ValueKind == JsonValueKind.String ? k.GetString() : null;
            value = doc.RootElement.TryGetProperty("value", out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
        }
        catch (JsonException e)
        {
            return Results.Problem(statusCode: 400, title: "Bad request", detail: e.Message);
        }
        if (key is null || value is null || Encoding.UTF8.GetByteCount(key) > 1024 || Encoding.UTF8.GetByteCount(value) > (1 << 20))
        {
            return Results.Problem(statusCode: 400, title: "Bad request", detail: "send {\"key\": string ≤ 1 KiB, \"value\": string ≤ 1 MiB}");
        }
        var engine = runtime.Host.Engine(auth.GroupId);
        var record = new CommitRecord(auth.Record.TenantId, engine.LastAppliedIndex, [], [], [TxWrite.Put(KvKey(auth.Record.TenantId, key), Encoding.UTF8.GetBytes(value))]);
        try
        {
            var result = await runtime.Committer.ProposeAsync(auth.GroupId, ShardCommand.Commit(record), c.RequestAborted);
            return result.Status switch
            {
                ApplyStatus.Ok => Results.Json(new { key, version = result.Index }),
                ApplyStatus.ReadOnly => Results.Problem(statusCode: 403, title: "Read-only database", extensions: new Dictionary<string, object?> { ["sqlstate"] = "25006" }),
                ApplyStatus.WritesPaused => WritesPaused(c),
                ApplyStatus.Suspended => Results.Problem(statusCode: 403, title: "Suspended", extensions: new Dictionary<string, object?> { ["sqlstate"] = "53400" }),
                _ => Results.Problem(statusCode: 409, title: "Not applied", detail: result.Message ?? result.Status.ToString()),
            };
        }
        catch (ClusterException e)
        {
            return Results.Problem(statusCode: 503, title: "Unavailable", detail: e.Message);
        }
    }

    private static async Task<IResult> GetAsync(HttpContext c, ClusterRuntime runtime, string databaseId, string key)
    {
        if (await AuthorizeAsync(c, runtime, databaseId) is not { } auth)
        {
            return Unauthorized();
        }
        if (Encoding.UTF8.GetByteCount(key) > 1024)
        {
            return Results.Problem(statusCode: 400, title: "Bad request", detail: "keys are at most 1 KiB");
        }
        try
        {
            await runtime.Host.ReadIndexAsync(auth.GroupId).WaitAsync(c.RequestAborted);
        }
        catch (ClusterException e)
        {
            return Results.Problem(statusCode: 503, title: "Unavailable", detail: e.Message);
        }
        var found = runtime.Host.Engine(auth.GroupId).Get(KvKey(auth.Record.TenantId, key));
        runtime.Usage.AddRead(databaseId, found.Found ? 1 : 0, found.Found ? found.Value!.Length : 0);
        return found.Found
            ? Results.Json(new { key, value = Encoding.UTF8.GetString(found.Value!), version = found.Version })
            : Results.Problem(statusCode: 404, title: "Not found", detail: "no such key");
    }

    private static byte[] KvKey(ulong tenant, string key)
    {
        var bytes = Encoding.UTF8.GetBytes(key);
        var full = new byte[16 + bytes.Length];
        BinaryPrimitives.WriteUInt64BigEndian(full, tenant);
        BinaryPrimitives.WriteUInt32BigEndian(full.AsSpan(8), KvTable);
        bytes.CopyTo(full, 16);
        return full;
    }

    private static async Task<IResult> OperatorAsync(HttpContext c, ClusterRuntime runtime, Action<Kdb.Storage.IKvEngine> action)
    {
        if (await InternalAuth.CheckAsync(c, runtime.Tokens, "kdb.operator") is { } refused)
        {
            return refused;
        }
        var groups = 0;
        foreach (var id in runtime.Host.GroupIds)
        {
            await Task.Run(() => action(runtime.Host.Engine(id)), c.RequestAborted);
            groups++;
        }
        return Results.Json(new { groups });
    }
}
