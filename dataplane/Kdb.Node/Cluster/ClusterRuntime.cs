using System.Security.Cryptography;
using Kdb.Cluster;
using Kdb.Node.Auth;
using Kdb.Node.Sql;
using Kdb.PgWire.Session;
using Kdb.Raft.Transport;
using Kdb.Sql.Sessions;

namespace Kdb.Node.Cluster;

/// <summary>
/// The clustered node's data plane: the shard groups this node replicates (<see cref="ClusterHost"/>), the SQL
/// databases they host (opened lazily, one cached <see cref="SqlDatabase"/> per active database), and the pgwire
/// session factory and authenticator over them (DESIGN, "Authentication").
/// </summary>
public sealed class ClusterRuntime : IPgSessionFactory, IPgAuthenticator, IAsyncDisposable
{
    private readonly SqlDatabaseCache _databases;
    private readonly ITokenValidator? _tokens;

    private ClusterRuntime(ClusterHost host, IRaftTransport transport, ClusterCommitter committer, ITokenValidator? tokens, UsageMeter usage, byte[] serverSecret, int maxCachedDatabases)
    {
        Host = host;
        Transport = transport;
        Committer = committer;
        _tokens = tokens;
        Usage = usage;
        ServerSecret = serverSecret;
        _databases = new SqlDatabaseCache(maxCachedDatabases);
    }

    public ClusterHost Host { get; }
    public IRaftTransport Transport { get; }
    public ClusterCommitter Committer { get; }
    public UsageMeter Usage { get; }
    public ITokenValidator? Tokens => _tokens;
    public byte[] ServerSecret { get; }

    public static async Task<ClusterRuntime> StartAsync(ClusterOptions options, int internalPort, ITokenValidator? tokens, IProposalForwarder forwarder,
        TimeProvider time, int maxCachedDatabases = 10_000)
    {
        ClusterHost? host = null;
        var transport = await RaftTransport.StartAsync(new RaftTransportOptions
        {
            HostedByCaller = true,
            ListenPort = internalPort,
            OnMessage = m => host!.Deliver(m),
            // The loop writes each round's messages to the peers' sockets itself (one buffer per peer per round).
            CallerFlushes = true,
        });
        host = ClusterHost.Open(options, transport.Send, member => transport.SetPeer(member.RaftId, new Uri(member.InternalUrl)), transport.Flush);
        var committer = new ClusterCommitter(host, forwarder, options.LeaderWait);
        UsageMeter? usage = null;
        usage = new UsageMeter(options.DataDirectory, time, db => StorageBytes(host, db));
        return new ClusterRuntime(host, transport, committer, tokens, usage, LoadOrCreateSecret(options.DataDirectory), maxCachedDatabases);
    }

    /// <summary>The SQL database of a hosted database id, or null when no local group hosts it.</summary>
    public (SqlDatabase Database, DatabaseRecord Record, ulong GroupId)? Open(string databaseId)
    {
        if (Host.FindDatabase(databaseId) is not { } found)
        {
            return null;
        }
        var db = _databases.GetOrAdd(databaseId, found.Record.TenantId,
            static (k, s) => new SqlDatabase(new RaftSqlStore(s.Runtime.Committer, s.GroupId, k.Id, s.Runtime.Usage), k.Tenant, k.Id), (Runtime: this, found.GroupId));
        return (db, found.Record, found.GroupId);
    }

    public async ValueTask<IPgSession> OpenAsync(PgStartup startup, CancellationToken cancellationToken)
    {
        if (Host.FindDatabase(startup.Database)?.Record is not { } known || known.FindRole(startup.User) is null || known.State == DatabaseState.Suspended)
        {
            // A refusal from local state waits for the group's latest commits first (a lift of the suspension included).
            await CatchUpAfterMissAsync(cancellationToken);
        }
        if (Open(startup.Database) is not { } found || found.Record.FindRole(startup.User) is not { } role)
        {
            // Only a proxy-authenticated connection can get here for a name that does not exist.
            throw new PgException("3D000", $"database \"{startup.Database}\" does not exist", severity: "FATAL");
        }
        if (found.Record.State == DatabaseState.Suspended)
        {
            throw new PgException("53400", "database suspended: quota exceeded", severity: "FATAL");
        }
        var inner = new KdbPgSession(found.Database.OpenSession(startup.User, role.Kind));
        try
        {
            inner.ApplyStartup(startup);
        }
        catch
        {
            inner.Inner.Dispose();
            throw;
        }
        var leader = Host.Leader(found.GroupId);
        return new ClusterPgSession(inner, leader?.NodeId ?? string.Empty, Usage, startup.Database, Host, found.Record.TenantId, found.GroupId);
    }

    public async ValueTask<string?> GetScramVerifierAsync(string database, string user, CancellationToken cancellationToken)
    {
        if (Host.FindDatabase(database)?.Record.FindRole(user)?.Verifier is { } verifier)
        {
            return verifier;
        }
        await CatchUpAfterMissAsync(cancellationToken);
        return Host.FindDatabase(database)?.Record.FindRole(user)?.Verifier;
    }

    /// <summary>
    /// A database (or role) is ready once its group's leader has applied its creation; a follower applies it a moment
    /// later. A client connecting straight to that follower meanwhile would be refused a login the leader accepts, so a
    /// miss waits (briefly, bounded) until this node has applied everything its groups had committed, then looks again.
    /// Only misses pay: a known database and role answer from local state, as a PostgreSQL standby's catalog does.
    /// The database's group is unknown on a miss, hence every local group.
    /// </summary>
    private async Task CatchUpAfterMissAsync(CancellationToken cancellationToken)
    {
        var groups = Host.GroupIds;
        if (groups.Count == 0)
        {
            return;
        }
        try
        {
            var waits = new List<Task>(groups.Count);
            foreach (var group in groups)
            {
                waits.Add(Host.ReadIndexAsync(group));
            }
            await Task.WhenAll(waits).WaitAsync(MissCatchUpLimit, cancellationToken);
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            // No leader, or a group removed meanwhile: answer from what this node has, as before.
        }
    }

    private static readonly TimeSpan MissCatchUpLimit = TimeSpan.FromSeconds(5);

    public async ValueTask<bool> ValidateTokenAsync(PgAuthMethod method, string token, string database, string user, CancellationToken cancellationToken)
    {
        if (_tokens is null)
        {
            return false;
        }
        if (method == PgAuthMethod.Proxy)
        {
            return (await _tokens.ValidateInternalTokenAsync(token, "kdb.proxy", cancellationToken)).IsValid;
        }
        // A valid token for a database or role this node does not host fails like any other login.
        if (Host.FindDatabase(database)?.Record.FindRole(user) is null)
        {
            await CatchUpAfterMissAsync(cancellationToken);
        }
        return Host.FindDatabase(database)?.Record.FindRole(user) is not null
            && (await _tokens.ValidateDataTokenAsync(token, database, user, cancellationToken)).IsValid;
    }

    public async ValueTask DisposeAsync()
    {
        await Transport.DisposeAsync();
        Host.Dispose();
        Usage.Dispose();
    }

    private static long StorageBytes(ClusterHost host, string databaseId)
    {
        if (host.FindDatabase(databaseId) is not { } found)
        {
            return 0;
        }
        var engine = host.Engine(found.GroupId);
        var start = new byte[8];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64BigEndian(start, found.Record.TenantId);
        var end = found.Record.TenantId == ulong.MaxValue ? null : new byte[8];
        if (end is not null)
        {
            System.Buffers.Binary.BinaryPrimitives.WriteUInt64BigEndian(end, found.Record.TenantId + 1);
        }
        var bytes = 0L;
        foreach (var e in engine.Scan(start, end))
        {
            bytes += e.Key.Length + e.Value.Length;
        }
        return bytes;
    }

    private static byte[] LoadOrCreateSecret(string dataDirectory)
    {
        var path = Path.Combine(dataDirectory, "pgwire-secret");
        if (File.Exists(path))
        {
            var existing = File.ReadAllBytes(path);
            return existing.Length == 32 ? existing : throw new InvalidDataException($"{path} must hold 32 bytes; it holds {existing.Length}.");
        }
        Directory.CreateDirectory(dataDirectory);
        var secret = RandomNumberGenerator.GetBytes(32);
        File.WriteAllBytes(path + ".tmp", secret);
        File.Move(path + ".tmp", path, overwrite: false);
        return secret;
    }
}

/// <summary>A tenant session on a clustered node: tells the client the group's leader (<c>kdb_leader</c>) and meters
/// connections and statement time.</summary>
internal sealed class ClusterPgSession : IPgSession
{
    private readonly KdbPgSession _inner;
    private readonly UsageMeter _usage;
    private readonly string _databaseId;
    private readonly ClusterHost _host;
    private readonly ulong _tenantId;
    private readonly ulong _groupId;

    public ClusterPgSession(KdbPgSession inner, string leaderNodeId, UsageMeter usage, string databaseId, ClusterHost host, ulong tenantId, ulong groupId)
    {
        _groupId = groupId;
        _inner = inner;
        _usage = usage;
        _databaseId = databaseId;
        _host = host;
        _tenantId = tenantId;
        InitialParameterStatus = [.. inner.InitialParameterStatus, new("kdb_leader", leaderNodeId)];
        usage.Connected(databaseId, 1);
    }

    public IReadOnlyList<KeyValuePair<string, string>> InitialParameterStatus { get; }

    public IReadOnlyList<string> SplitStatements(string sql) => _inner.SplitStatements(sql);

    public async ValueTask<IPgStatement> PrepareAsync(string sql, ReadOnlyMemory<Kdb.PgWire.Types.PgTypeOid> parameterTypes, CancellationToken cancellationToken)
    {
        EnsureCurrent();
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        try
        {
            return new TimedStatement(await _inner.PrepareAsync(sql, parameterTypes, cancellationToken), this);
        }
        finally
        {
            AddTime(started);
        }
    }

    /// <summary>An in-place restore or a move to another group put the database onto another tenant: this session's
    /// catalog and statements are of the old copy, so it ends (57P01, as PostgreSQL ends sessions on shutdown) and the
    /// client reconnects with the same connection string.</summary>
    private void EnsureCurrent()
    {
        if (_host.FindDatabase(_databaseId) is { } current && current.Record.TenantId != _tenantId)
        {
            throw new PgException("57P01", current.GroupId == _groupId
                ? "terminating connection: the database was restored in place; reconnect"
                : "terminating connection: the database moved to another shard group; reconnect with the same connection string", severity: "FATAL");
        }
    }

    private void AddTime(long startedTimestamp) =>
        _usage.AddStatementTime(_databaseId, System.Diagnostics.Stopwatch.GetTimestamp() - startedTimestamp);

    /// <summary>Statement time is wall time inside the engine (parse, plan, execute): async execution has no per-statement CPU clock.</summary>
    private sealed class TimedStatement(IPgStatement inner, ClusterPgSession session) : IPgStatement
    {
        public ReadOnlyMemory<Kdb.PgWire.Types.PgTypeOid> ParameterTypes => inner.ParameterTypes;

        public IReadOnlyList<PgColumn>? Columns => inner.Columns;

        public IPgPortal Bind(PgParameters parameters) => new TimedPortal(inner.Bind(parameters), session);

        public void Dispose() => inner.Dispose();
    }

    private sealed class TimedPortal(IPgPortal inner, ClusterPgSession session) : IPgPortal
    {
        public async ValueTask<PgExecuteResult> ExecuteAsync(PgExecutionContext context)
        {
            session.EnsureCurrent();
            var started = System.Diagnostics.Stopwatch.GetTimestamp();
            try
            {
                return await inner.ExecuteAsync(context);
            }
            finally
            {
                session.AddTime(started);
            }
        }

        public void Dispose() => inner.Dispose();
    }

    public ValueTask<PgTransactionStatus> SyncAsync(CancellationToken cancellationToken) => _inner.SyncAsync(cancellationToken);

    public ValueTask FailTransactionAsync() => _inner.FailTransactionAsync();

    public ValueTask DisposeAsync()
    {
        _usage.Connected(_databaseId, -1);
        return _inner.DisposeAsync();
    }
}
