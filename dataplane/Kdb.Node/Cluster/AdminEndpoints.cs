using Google.Protobuf;
using Kdb.Cluster;
using Kdb.Node.Admin.Wire;
using Kdb.Raft;
using Kdb.Sql.Sessions;

namespace Kdb.Node.Cluster;

/// <summary>
/// The node admin API on the internal port (HTTP/2; protobuf bodies of <c>admin.proto</c>; RFC 7807 errors): shard
/// groups and replicas, tenant databases, roles, quota states, status, usage and backups. Callers hold kdb-internal
/// tokens: provisioning or operator scopes, and kdb.node for node-to-node forwarding.
/// </summary>
internal static class AdminEndpoints
{
    private const string Provisioning = "kdb.provisioning";
    private const string Operator = "kdb.operator";
    private const string NodeScope = "kdb.node";

    public static void MapAdminEndpoints(this IEndpointRouteBuilder app, ClusterRuntime runtime, int internalPort)
    {
        var g = app.MapGroup("/internal/v1").RequireHost($"*:{internalPort}");
        g.MapPost("/groups", Handler(c => Guarded(c, runtime, [Provisioning, Operator], () => CreateGroupAsync(c, runtime))));
        g.MapGet("/status", Handler(c => Guarded(c, runtime, [Provisioning, Operator, NodeScope], () => Task.FromResult(Proto(Status(runtime))))));
        g.MapDelete("/groups/{groupId}", (HttpContext c, string groupId) => Guarded(c, runtime, [Provisioning, Operator], async () =>
            await runtime.Host.RemoveGroupAsync(ParseGroup(groupId))
                ? Results.NoContent()
                : Results.Problem(statusCode: 404, title: "Not found", detail: $"shard group {groupId} is not hosted here")));
        g.MapGet("/groups/{groupId}/databases", (HttpContext c, string groupId) => Guarded(c, runtime, [Provisioning, Operator], () => ListDatabasesAsync(runtime, groupId, c.RequestAborted)));
        g.MapPost("/groups/{groupId}/replicas", (HttpContext c, string groupId) => Guarded(c, runtime, [Provisioning, Operator], () => ChangeReplicaAsync(c, runtime, groupId)));
        g.MapPost("/groups/{groupId}/leader", (HttpContext c, string groupId) => Guarded(c, runtime, [Provisioning, Operator], () => TransferLeaderAsync(c, runtime, groupId)));
        g.MapPost("/groups/{groupId}/propose", (HttpContext c, string groupId) => Guarded(c, runtime, [NodeScope], () => ProposeAsync(c, runtime, groupId)));
        g.MapGet("/groups/{groupId}/hash", (HttpContext c, string groupId) => Guarded(c, runtime, [Operator], async () =>
        {
            var (applied, hash) = await runtime.Host.StateHashAsync(ParseGroup(groupId));
            return Proto(new StateHashResponse { AppliedIndex = applied, Sha256 = hash });
        }));
        g.MapPost("/databases", Handler(c => Guarded(c, runtime, [Provisioning, Operator], () => CreateDatabaseAsync(c, runtime))));
        g.MapDelete("/databases/{databaseId}", (HttpContext c, string databaseId) => Guarded(c, runtime, [Provisioning, Operator],
            () => OnDatabaseAsync(c, runtime, databaseId, _ => ShardCommand.DropDatabase(databaseId))));
        g.MapPut("/databases/{databaseId}/roles/{name}", (HttpContext c, string databaseId, string name) => Guarded(c, runtime, [Provisioning, Operator],
            () => SetRoleAsync(c, runtime, databaseId, name)));
        g.MapDelete("/databases/{databaseId}/roles/{name}", (HttpContext c, string databaseId, string name) => Guarded(c, runtime, [Provisioning, Operator],
            () => OnDatabaseAsync(c, runtime, databaseId, _ => ShardCommand.SetRole(databaseId, new DatabaseRole(name, SqlRoleKind.Owner, string.Empty)))));
        g.MapPut("/databases/{databaseId}/state", (HttpContext c, string databaseId) => Guarded(c, runtime, [Provisioning, Operator], () => SetStateAsync(c, runtime, databaseId)));
        g.MapPut("/databases/{databaseId}/writes-paused", (HttpContext c, string databaseId) => Guarded(c, runtime, [Provisioning, Operator], () => SetWritesPausedAsync(c, runtime, databaseId)));
        g.MapPost("/databases/{databaseId}/swap", (HttpContext c, string databaseId) => Guarded(c, runtime, [Provisioning, Operator], () => SwapDatabaseAsync(c, runtime, databaseId)));
        g.MapPost("/databases/{databaseId}/adopt", (HttpContext c, string databaseId) => Guarded(c, runtime, [Provisioning, Operator], () => AdoptDatabaseAsync(c, runtime, databaseId)));
        // `?since=V`: a change stream (the totals digest stays the full export's); `?changes=true`: its import.
        g.MapGet("/databases/{databaseId}/export", (HttpContext c, string databaseId) => Guarded(c, runtime, [Provisioning, Operator],
            () => c.Request.Query.ContainsKey("since") && !string.Equals(c.Request.Query["totals"], "true", StringComparison.Ordinal)
                ? ChangeStream.ExportAsync(c, runtime, databaseId, c.Request.Query["since"])
                : BackupStream.ExportAsync(c, runtime, databaseId)));
        g.MapPost("/databases/{databaseId}/import", (HttpContext c, string databaseId) => Guarded(c, runtime, [Provisioning, Operator],
            () => string.Equals(c.Request.Query["changes"], "true", StringComparison.Ordinal)
                ? ChangeStream.ImportAsync(c, runtime, databaseId)
                : BackupStream.ImportAsync(c, runtime, databaseId)));
        g.MapGet("/usage", Handler(c => Guarded(c, runtime, [Provisioning, Operator, NodeScope], () => Task.FromResult(Usage(c, runtime)))));
    }

    /// <summary>A route handler, not a RequestDelegate: its IResult is written to the response.</summary>
    internal static Delegate Handler(Func<HttpContext, Task<IResult>> handler) => handler;

    private static async Task<IResult> Guarded(HttpContext context, ClusterRuntime runtime, string[] scopes, Func<Task<IResult>> handler)
    {
        if (await InternalAuth.CheckAsync(context, runtime.Tokens, scopes) is { } refused)
        {
            return refused;
        }
        try
        {
            return await handler();
        }
        catch (InvalidProtocolBufferException e)
        {
            return Results.Problem(statusCode: 400, title: "Bad request", detail: "the body is not a valid protobuf message: " + e.Message);
        }
        catch (ArgumentException e)
        {
            return Results.Problem(statusCode: 400, title: "Bad request", detail: e.Message);
        }
        catch (ClusterException e) when (e.Code == "42704")
        {
            return Results.Problem(statusCode: 404, title: "Not found", detail: e.Message);
        }
        catch (ClusterException e)
        {
            return Results.Problem(statusCode: 503, title: "Unavailable", detail: e.Message, extensions: new Dictionary<string, object?> { ["code"] = e.Code });
        }
        catch (InvalidOperationException e)
        {
            return Results.Problem(statusCode: 409, title: "Conflict", detail: e.Message);
        }
    }

    internal static IResult Proto(IMessage message) => Results.Bytes(message.ToByteArray(), AdminContent.Protobuf);

    internal static async Task<T> ReadAsync<T>(HttpContext context, MessageParser<T> parser) where T : IMessage<T>
    {
        using var buffer = new MemoryStream();
        await context.Request.Body.CopyToAsync(buffer, context.RequestAborted);
        return parser.ParseFrom(buffer.GetBuffer(), 0, (int)buffer.Length);
    }

    private static ulong ParseGroup(string groupId) =>
        ulong.TryParse(groupId, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var id) && id != 0
            ? id
            : throw new ArgumentException($"'{groupId}' is not a shard group id (a non-zero u64)");

    private static GroupMember ToMember(Member m)
    {
        if (string.IsNullOrWhiteSpace(m.NodeId) || !Uri.TryCreate(m.InternalUrl, UriKind.Absolute, out var url) || url.Scheme is not ("http" or "https"))
        {
            throw new ArgumentException("a member needs a node_id and an absolute http(s) internal_url");
        }
        return new GroupMember(m.NodeId, GroupMember.RaftIdOf(m.NodeId), m.InternalUrl);
    }

    private static async Task<IResult> CreateGroupAsync(HttpContext c, ClusterRuntime runtime)
    {
        var request = await ReadAsync(c, CreateGroupRequest.Parser);
        if (request.GroupId == 0 || request.Members.Count == 0)
        {
            throw new ArgumentException("group_id must be non-zero and members non-empty");
        }
        var members = request.Members.Select(ToMember).ToList();
        if (members.Select(m => m.NodeId).Distinct(StringComparer.Ordinal).Count() != members.Count)
        {
            throw new ArgumentException("members must be distinct nodes");
        }
        await runtime.Host.CreateGroupAsync(request.GroupId, members, request.Join);
        return Proto(GroupInfoOf(runtime.Host.Status(request.GroupId)));
    }

    private static async Task<IResult> ChangeReplicaAsync(HttpContext c, ClusterRuntime runtime, string groupId)
    {
        var id = ParseGroup(groupId);
        var request = await ReadAsync(c, ChangeReplicaRequest.Parser);
        var member = ToMember(request.Member ?? throw new ArgumentException("member is required"));
        var type = request.Change switch
        {
            ReplicaChange.AddLearner => ConfChangeType.AddLearner,
            ReplicaChange.Promote => ConfChangeType.AddVoter,
            ReplicaChange.Remove => ConfChangeType.RemoveNode,
            _ => throw new ArgumentException("change must be ADD_LEARNER, PROMOTE or REMOVE"),
        };
        if (!runtime.Host.IsLeader(id))
        {
            return NotLeader(runtime, id);
        }
        var result = await runtime.Host.ChangeMembershipAsync(id, type, member);
        if (!result.IsAccepted)
        {
            return Results.Problem(statusCode: 409, title: "Membership change refused", detail: result.Error ?? result.Status.ToString());
        }
        var progress = await runtime.Host.ProgressAsync(id, member.RaftId);
        await runtime.Host.WaitAppliedAsync(id, result.Index).WaitAsync(TimeSpan.FromSeconds(10), c.RequestAborted);
        return Proto(new ChangeReplicaResponse { Index = result.Index, MatchIndex = progress?.Match ?? 0, LastIndex = runtime.Host.Status(id).CommitIndex });
    }

    private static async Task<IResult> TransferLeaderAsync(HttpContext c, ClusterRuntime runtime, string groupId)
    {
        var id = ParseGroup(groupId);
        var request = await ReadAsync(c, TransferLeaderRequest.Parser);
        if (!runtime.Host.IsLeader(id))
        {
            return NotLeader(runtime, id);
        }
        var ok = await runtime.Host.TransferLeadershipAsync(id, GroupMember.RaftIdOf(request.TargetNodeId));
        return ok ? Results.Accepted() : Results.Problem(statusCode: 409, title: "Transfer refused", detail: "the target is not a voter of the group");
    }

    private static IResult NotLeader(ClusterRuntime runtime, ulong groupId) =>
        Results.Problem(statusCode: 409, title: "Not the leader", detail: "send this request to the group's leader",
            extensions: new Dictionary<string, object?> { ["leaderNodeId"] = runtime.Host.Leader(groupId)?.NodeId });

    private static async Task<IResult> ProposeAsync(HttpContext c, ClusterRuntime runtime, string groupId)
    {
        var id = ParseGroup(groupId);
        var request = await ReadAsync(c, ProposeRequest.Parser);
        var command = request.Command.ToByteArray();
        ShardCommand.TypeOf(command); // Refuse garbage before it reaches the log.
        var outcome = await runtime.Host.ProposeAsync(id, command).WaitAsync(c.RequestAborted);
        return outcome.Result is { } result
            ? Proto(new ProposeResponse { Result = ByteString.CopyFrom(result.Encode()) })
            : Results.Problem(statusCode: 409, title: "Not the leader", extensions: new Dictionary<string, object?> { ["leaderNodeId"] = outcome.Leader?.NodeId });
    }

    private static async Task<IResult> CreateDatabaseAsync(HttpContext c, ClusterRuntime runtime)
    {
        var request = await ReadAsync(c, CreateDatabaseRequest.Parser);
        ValidateDatabaseId(request.DatabaseId);
        if (request.TenantId == 0 || request.Owner is null)
        {
            throw new ArgumentException("tenant_id must be non-zero and owner is required");
        }
        var owner = ToRole(request.Owner);
        if (runtime.Host.FindDatabase(request.DatabaseId) is { } existing && existing.GroupId != request.GroupId)
        {
            return Results.Problem(statusCode: 409, title: "Conflict", detail: "the database exists on another group");
        }
        var result = await runtime.Committer.ProposeAsync(request.GroupId, ShardCommand.CreateDatabase(request.DatabaseId, request.TenantId, owner), c.RequestAborted);
        return Applied(result);
    }

    private static async Task<IResult> SetRoleAsync(HttpContext c, ClusterRuntime runtime, string databaseId, string name)
    {
        var request = await ReadAsync(c, SetRoleRequest.Parser);
        var role = ToRole(new Role(request.Role ?? throw new ArgumentException("role is required")) { Name = name });
        return await OnDatabaseAsync(c, runtime, databaseId, _ => ShardCommand.SetRole(databaseId, role));
    }

    private static async Task<IResult> SetStateAsync(HttpContext c, ClusterRuntime runtime, string databaseId)
    {
        var request = await ReadAsync(c, SetStateRequest.Parser);
        var state = ToState(request.State);
        return await OnDatabaseAsync(c, runtime, databaseId, _ => ShardCommand.SetDatabaseState(databaseId, state));
    }

    private static async Task<IResult> SetWritesPausedAsync(HttpContext c, ClusterRuntime runtime, string databaseId)
    {
        var request = await ReadAsync(c, SetWritesPausedRequest.Parser);
        return await OnDatabaseAsync(c, runtime, databaseId, _ => ShardCommand.SetWritesPaused(databaseId, request.Paused));
    }

    private static Kdb.Cluster.DatabaseState ToState(Admin.Wire.DatabaseState state) => state switch
    {
        Admin.Wire.DatabaseState.Active => Kdb.Cluster.DatabaseState.Active,
        Admin.Wire.DatabaseState.ReadOnly => Kdb.Cluster.DatabaseState.ReadOnly,
        Admin.Wire.DatabaseState.Suspended => Kdb.Cluster.DatabaseState.Suspended,
        _ => throw new ArgumentException("unknown state"),
    };

    /// <summary>A move's flip: the staged copy (found by its own id, which only its group holds) becomes the database there.</summary>
    private static async Task<IResult> AdoptDatabaseAsync(HttpContext c, ClusterRuntime runtime, string databaseId)
    {
        ValidateDatabaseId(databaseId);
        var request = await ReadAsync(c, AdoptDatabaseRequest.Parser);
        ValidateDatabaseId(request.StagedDatabaseId);
        var state = ToState(request.State);
        if (runtime.Host.FindDatabase(request.StagedDatabaseId) is not { } staged)
        {
            return Results.Problem(statusCode: 404, title: "Not found", detail: $"staged database {request.StagedDatabaseId} is not hosted here");
        }
        return Applied(await runtime.Committer.ProposeAsync(staged.GroupId, ShardCommand.AdoptDatabase(databaseId, request.StagedDatabaseId, state), c.RequestAborted));
    }

    private static async Task<IResult> SwapDatabaseAsync(HttpContext c, ClusterRuntime runtime, string databaseId)
    {
        var request = await ReadAsync(c, SwapDatabaseRequest.Parser);
        ValidateDatabaseId(request.StagedDatabaseId);
        if (runtime.Host.FindDatabase(request.StagedDatabaseId) is not { } staged)
        {
            return Results.Problem(statusCode: 404, title: "Not found", detail: $"staged database {request.StagedDatabaseId} is not hosted here");
        }
        if (runtime.Host.FindDatabase(databaseId) is { } target && target.GroupId != staged.GroupId)
        {
            return Results.Problem(statusCode: 409, title: "Conflict", detail: "the staged database is on another shard group");
        }
        return await OnDatabaseAsync(c, runtime, databaseId, _ => ShardCommand.SwapDatabase(databaseId, request.StagedDatabaseId));
    }

    /// <summary>A database command, on the group that hosts it here; <c>?group=</c> names the group (during a move the id is on two).</summary>
    private static async Task<IResult> OnDatabaseAsync(HttpContext c, ClusterRuntime runtime, string databaseId, Func<DatabaseRecord, byte[]> command)
    {
        if (Locate(c, runtime, databaseId) is not { } found)
        {
            return Results.Problem(statusCode: 404, title: "Not found", detail: $"database {databaseId} is not hosted here");
        }
        return Applied(await runtime.Committer.ProposeAsync(found.GroupId, command(found.Record), c.RequestAborted));
    }

    private static (ulong GroupId, DatabaseRecord Record)? Locate(HttpContext c, ClusterRuntime runtime, string databaseId)
    {
        if (c.Request.Query["group"] is not { Count: > 0 } group)
        {
            return runtime.Host.FindDatabase(databaseId);
        }
        var groupId = ParseGroup(group.ToString());
        return runtime.Host.FindDatabase(groupId, databaseId) is { } record ? (groupId, record) : null;
    }

    private static IResult Applied(ApplyResult result) => result.Status switch
    {
        ApplyStatus.Ok => Proto(new ApplyResponse { Index = result.Index }),
        ApplyStatus.NotFound => Results.Problem(statusCode: 404, title: "Not found", detail: result.Message ?? "no such database or role"),
        ApplyStatus.AlreadyExists => Results.Problem(statusCode: 409, title: "Conflict", detail: result.Message ?? "already exists with other settings"),
        _ => Results.Problem(statusCode: 400, title: "Refused", detail: result.Message ?? result.Status.ToString()),
    };

    internal static void ValidateDatabaseId(string databaseId)
    {
        if (databaseId.Length is 0 or > 63 || !databaseId.All(ch => ch is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '_' or '-'))
        {
            throw new ArgumentException("database_id must be 1-63 lowercase letters, digits, '_' or '-'");
        }
    }

    private static DatabaseRole ToRole(Role role)
    {
        if (string.IsNullOrEmpty(role.Name) || role.Name.Length > 63)
        {
            throw new ArgumentException("a role needs a name of 1-63 characters");
        }
        if (!role.ScramVerifier.StartsWith("SCRAM-SHA-256$", StringComparison.Ordinal))
        {
            throw new ArgumentException("scram_verifier must be a SCRAM-SHA-256 verifier in PostgreSQL's text form");
        }
        var kind = role.Kind switch
        {
            RoleKind.Owner => SqlRoleKind.Owner,
            RoleKind.Readwrite => SqlRoleKind.ReadWrite,
            RoleKind.Readonly => SqlRoleKind.ReadOnly,
            _ => throw new ArgumentException("unknown role kind"),
        };
        return new DatabaseRole(role.Name, kind, role.ScramVerifier);
    }

    private static StatusResponse Status(ClusterRuntime runtime)
    {
        var response = new StatusResponse { NodeId = runtime.Host.NodeId };
        foreach (var id in runtime.Host.GroupIds.Order())
        {
            // A group that left the node since the listing is no longer this node's to report.
            if (runtime.Host.TryStatus(id) is { } status)
            {
                response.Groups.Add(GroupInfoOf(status));
            }
        }
        return response;
    }

    internal static GroupInfo GroupInfoOf(GroupStatus s)
    {
        var info = new GroupInfo
        {
            GroupId = s.GroupId,
            Role = s.Role.ToString().ToLowerInvariant(),
            Term = s.Term,
            LeaderNodeId = s.LeaderNodeId ?? string.Empty,
            CommitIndex = s.CommitIndex,
            AppliedIndex = s.AppliedIndex,
            Databases = s.Databases,
            StorageBytes = s.StorageBytes,
            GcThreshold = s.GcThreshold,
        };
        foreach (var m in s.Members)
        {
            info.Members.Add(new Member { NodeId = m.NodeId, InternalUrl = m.InternalUrl });
        }
        string NameOf(ulong raftId) => s.Members.FirstOrDefault(m => m.RaftId == raftId)?.NodeId ?? raftId.ToString(System.Globalization.CultureInfo.InvariantCulture);
        info.Voters.AddRange(s.Voters.Select(NameOf));
        info.Learners.AddRange(s.Learners.Select(NameOf));
        return info;
    }

    private static async Task<IResult> ListDatabasesAsync(ClusterRuntime runtime, string groupId, CancellationToken ct)
    {
        var group = ParseGroup(groupId);
        // A follower hears of a commit with the leader's next append (or tick), so its own list may lack a database the
        // leader already created or still hold one just dropped: answer as of the group's commit index. A replica that
        // cannot confirm it soon (no leader, cut off) answers from what it has, as before.
        if (runtime.Host.HasGroup(group))
        {
            try
            {
                await runtime.Host.ReadIndexAsync(group).WaitAsync(ListCatchUpLimit, ct);
            }
            catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
            {
                // Unconfirmed: local state.
            }
        }
        var list = new DatabaseList();
        foreach (var d in runtime.Host.Databases(group))
        {
            var info = new DatabaseInfo { DatabaseId = d.DatabaseId, TenantId = d.TenantId, State = (Admin.Wire.DatabaseState)(int)d.State, WritesPaused = d.WritesPaused };
            foreach (var r in d.Roles)
            {
                info.Roles.Add(new Role { Name = r.Name, Kind = (RoleKind)(int)r.Kind, ScramVerifier = r.Verifier });
            }
            list.Databases.Add(info);
        }
        return Proto(list);
    }

    private static readonly TimeSpan ListCatchUpLimit = TimeSpan.FromSeconds(2);

    private static IResult Usage(HttpContext c, ClusterRuntime runtime)
    {
        var since = 0UL;
        if (c.Request.Query["since"] is { Count: > 0 } text && !ulong.TryParse(text.ToString(), out since))
        {
            throw new ArgumentException("since must be a cursor returned earlier (a u64)");
        }
        var (records, cursor) = runtime.Usage.ReadSince(since);
        var response = new UsageResponse { NodeId = runtime.Host.NodeId, Cursor = cursor };
        foreach (var r in records)
        {
            response.Records.Add(new UsageRecord
            {
                Sequence = r.Sequence, DatabaseId = r.DatabaseId, HourStartUnix = r.HourStartUnix, RowsRead = r.RowsRead, RowsWritten = r.RowsWritten,
                BytesRead = r.BytesRead, BytesWritten = r.BytesWritten, StorageBytes = r.StorageBytes, CpuMs = r.CpuMs, Connections = r.Connections,
            });
        }
        return Proto(response);
    }
}
