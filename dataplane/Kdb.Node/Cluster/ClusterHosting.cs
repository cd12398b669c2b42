using System.Net;
using Kdb.Cluster;
using Kdb.Node.Auth;
using Kdb.Node.ControlPlane;
using Kdb.Node.Standalone;
using Kdb.PgWire.Server;
using Kdb.Raft;
using Kdb.Raft.Transport;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace Kdb.Node.Cluster;

/// <summary>Ports of a clustered node (DESIGN: 7000+N pgwire, 7100+N internal HTTP/2, 7200+N HTTP data API).</summary>
public sealed record ClusterPorts(int Pg, int Internal, int Http);

/// <summary>Wires the clustered mode into the node host: shard groups over Raft, pgwire, the internal and data APIs.</summary>
public static class ClusterHosting
{
    /// <summary>Opens the cluster runtime and adds its listeners. Tokens are validated against <c>Tokens:Issuer</c>'s JWKS.</summary>
    public static ClusterRuntime AddClusterNode(this WebApplicationBuilder builder, string dataDirectory, NodeIdentity identity, ClusterPorts ports, ServiceTokenClient? serviceTokens)
    {
        var config = builder.Configuration;
        var bind = IPAddress.Parse(config["BindAddress"] ?? "127.0.0.1");
        var advertised = config["Node:AdvertisedHost"] ?? bind.ToString();
        var development = config.GetValue("Node:DevelopmentLoopbackAuth", false);
        var tokenOptions = TokenValidatorOptions.Read(config.GetSection("Tokens"), development);
        var tokens = tokenOptions is null ? null : TokenValidators.Create(tokenOptions);
        var peerTokens = new PeerTokens(serviceTokens, config["Cluster:PeerToken"]);
        var forwardClient = new HttpClient(new SocketsHttpHandler { EnableMultipleHttp2Connections = true, PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5) })
        {
            Timeout = TimeSpan.FromSeconds(30),
            DefaultRequestVersion = HttpVersion.Version20,
            DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        var options = new ClusterOptions
        {
            DataDirectory = dataDirectory,
            NodeId = identity.NodeId,
            InternalUrl = $"http://{advertised}:{ports.Internal}",
            TickMs = config.GetValue("Cluster:TickMs", 100),
            ElectionTicks = config.GetValue("Cluster:ElectionTicks", 10),
            HeartbeatTicks = config.GetValue("Cluster:HeartbeatTicks", 2),
            ReadMode = string.Equals(config["Cluster:ReadMode"], "lease", StringComparison.OrdinalIgnoreCase) ? ReadMode.Lease : ReadMode.ReadIndex,
            SnapshotEveryEntries = config.GetValue("Cluster:SnapshotEveryEntries", 20_000UL),
            SnapshotLogBytes = config.GetValue("Cluster:SnapshotLogBytes", 64L << 20),
        };
        var runtime = ClusterRuntime.StartAsync(options, ports.Internal, tokens, new HttpProposalForwarder(forwardClient, peerTokens), TimeProvider.System)
            .GetAwaiter().GetResult();
        var pgOptions = new PgServerOptions
        {
            MaxConnections = config.GetValue("Node:MaxConnections", 1000),
            AllowTokenPasswordsWithoutTlsOnLoopback = development,
            ServerSecret = runtime.ServerSecret,
            ServerVersion = "15.0 (kdb)",
        };
        var handler = new PgConnectionHandler(pgOptions, runtime, runtime);
        builder.Services.AddSingleton(runtime);
        builder.Services.AddSingleton(handler);
        builder.Services.AddSingleton(new StandaloneTls(null));
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Listen(bind, ports.Pg, listen => listen.UseConnectionHandler<PgKestrelConnectionHandler>());
            kestrel.Listen(bind, ports.Internal, listen =>
            {
                listen.Protocols = HttpProtocols.Http2;
                if (config.GetValue("Cluster:DirectRaftReceive", true))
                {
                    // Peer streams are read off their connections on the socket's thread; the admin API stays with Kestrel.
                    RaftTransport.ServeStreamsDirectly(listen, runtime.Transport);
                }
            });
            kestrel.Listen(bind, ports.Http, listen => listen.Protocols = HttpProtocols.Http1AndHttp2);
            kestrel.Limits.Http2.InitialStreamWindowSize = 4 << 20;
            kestrel.Limits.Http2.InitialConnectionWindowSize = 8 << 20;
        });
        // pgwire statements and Raft frames alike are short and never block a thread (commits and reads await the group).
        builder.UseInlineSocketScheduling("Cluster:InlineSocketCompletions");
        builder.Services.AddSingleton(new ClusterMetrics(runtime.Host, runtime.Usage, config.GetValue("Metrics:TopDatabases", DatabaseTopN.DefaultN), runtime.Transport));
        builder.Services.AddHealthChecks().Add(new Microsoft.Extensions.Diagnostics.HealthChecks.HealthCheckRegistration(
            "shard-groups", _ => new ShardGroupHealthCheck(runtime.Host), Microsoft.Extensions.Diagnostics.HealthChecks.HealthStatus.Unhealthy, [Kdb.ServiceDefaults.ServiceDefaultsExtensions.ReadyTag]));
        builder.Services.AddHostedService(sp => new GcThresholdAdvanceService(runtime, config.GetValue("Cluster:GcRetention", TimeSpan.FromMinutes(10))));
        return runtime;
    }

    /// <summary>Maps the Raft stream and the admin API on the internal port.</summary>
    public static void MapClusterEndpoints(this WebApplication app, ClusterRuntime runtime, ClusterPorts ports)
    {
        RaftTransport.MapStream(app, runtime.Transport);
        app.MapAdminEndpoints(runtime, ports.Internal);
        app.MapDataApiEndpoints(runtime, ports.Http);
        app.Lifetime.ApplicationStopping.Register(() =>
        {
            // Graceful shutdown: hand leadership away so clients of this node's groups wait one round trip, not an election.
            runtime.Host.TransferAllLeadershipAsync(TimeSpan.FromSeconds(3)).GetAwaiter().GetResult();
        });
        app.Lifetime.ApplicationStopped.Register(() => runtime.DisposeAsync().AsTask().GetAwaiter().GetResult());
    }
}

/// <summary>
/// Every few seconds, the leader of each local group proposes a GC threshold: the index it applied
/// <c>retention</c> ago (DESIGN: a version advanced through Raft, so every replica validates alike).
/// </summary>
internal sealed class GcThresholdAdvanceService(ClusterRuntime runtime, TimeSpan retention) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var history = new Dictionary<ulong, Queue<(DateTime At, ulong Applied)>>();
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(5));
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            var now = DateTime.UtcNow;
            var groups = runtime.Host.GroupIds;
            foreach (var gone in history.Keys.Where(id => !groups.Contains(id)).ToList())
            {
                history.Remove(gone);
            }
            foreach (var groupId in groups)
            {
                if (runtime.Host.TryStatus(groupId) is not { } status)
                {
                    // The group left this node since the listing (a move or a repair). Status's exception here once
                    // stopped the whole node: a background service's failure stops its host.
                    history.Remove(groupId);
                    continue;
                }
                if (!history.TryGetValue(groupId, out var seen))
                {
                    history[groupId] = seen = new Queue<(DateTime, ulong)>();
                }
                seen.Enqueue((now, status.AppliedIndex));
                ulong threshold = 0;
                while (seen.Count > 0 && now - seen.Peek().At >= retention)
                {
                    threshold = seen.Dequeue().Applied;
                }
                if (threshold > status.GcThreshold && status.Role == RaftRole.Leader)
                {
                    try
                    {
                        await runtime.Host.ProposeAsync(groupId, ShardCommand.AdvanceGcThreshold(threshold)).WaitAsync(stoppingToken);
                    }
                    catch (ClusterException)
                    {
                        // Leadership moved: the next leader advances it.
                    }
                }
            }
        }
    }
}
