using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Text;
using Kdb.Node.Auth;
using Kdb.PgWire.Auth;
using Kdb.Proxy.Logs;
using Kdb.Proxy.Routing;
using Kdb.Proxy.Throttling;
using Kdb.Proxy.Tls;

namespace Kdb.Proxy.Pg;

/// <summary>Everything a client connection needs, shared by all of them.</summary>
internal sealed record PgFrontServices(
    ProxyOptions Options,
    IRouteCache Routes,
    AuthThrottle Throttle,
    CancelMap Cancels,
    IConnectionLog Log,
    ITokenValidator? Tokens,
    CertificateSource Certificates,
    IControlPlaneClient ControlPlane,
    ProxyMetrics Metrics,
    TimeProvider Time,
    ILogger Logger);

/// <summary>
/// One client connection: SSLRequest, startup, routing, authentication at the proxy, a backend connection to a
/// replica of the database's group, then the relay. Every refusal is an ErrorResponse with a SQLSTATE, and every
/// failed login — unknown database, foreign database, wrong password, wrong token — is the same 28P01 after a full
/// exchange (DESIGN: failed logins look alike).
/// </summary>
internal sealed partial class PgFrontConnection(Socket socket, PgFrontServices services, CancellationToken drain, CancellationToken abort)
{
    // Password and SASL messages are small; PostgreSQL itself caps them near this size.
    private const int MaxAuthMessage = 16 * 1024;

    private static int _readOnlyRotation;

    private readonly ProxyOptions _options = services.Options;
    private readonly string _clientIp = (socket.RemoteEndPoint as IPEndPoint)?.Address.ToString() ?? "unknown";
    private readonly bool _loopback = socket.RemoteEndPoint is IPEndPoint ip && IPAddress.IsLoopback(ip.Address);

    // The client's byte stream (the socket's own, or TLS over it), and pipes over it for the startup exchange only:
    // the relay uses the stream directly.
    private Stream _stream = new NetworkStream(socket, ownsSocket: false);
    private IDuplexPipe _client = null!;
    private SslStream? _tls;
    private string? _sniHost;

    public async Task RunAsync()
    {
        try
        {
            Session? session;

            // The startup deadline's timer and link go as soon as the session is up: an idle session keeps nothing
            // it no longer needs (memory per idle connection is a target).
            _client = new StreamPipe(_stream);
            using (var startup = CancellationTokenSource.CreateLinkedTokenSource(abort))
            {
                startup.CancelAfter(_options.StartupTimeout);
                session = await StartupAsync(startup.Token).ConfigureAwait(false);
            }

            if (session is not null)
            {
                await RelayAsync(session).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or AuthenticationException or SocketException or ObjectDisposedException)
        {
            // The client went away, timed out during startup, or failed the TLS handshake: nothing to answer.
        }
        finally
        {
            if (_tls is not null)
            {
                await _tls.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    private async Task<Session?> StartupAsync(CancellationToken ct)
    {
        long began = System.Diagnostics.Stopwatch.GetTimestamp();
        bool sslAsked = false;
        bool gssAsked = false;
        Dictionary<string, string>? parameters;
        while (true)
        {
            byte[]? packet = await PgFrames.ReadStartupPacketAsync(_client.Input, ct).ConfigureAwait(false);
            if (packet is null)
            {
                return null;
            }

            int code = BinaryPrimitives.ReadInt32BigEndian(packet);
            if (code is StartupCodes.SslRequest or StartupCodes.GssEncRequest && packet.Length == 4)
            {
                ref bool asked = ref code == StartupCodes.SslRequest ? ref sslAsked : ref gssAsked;
                if (asked || _tls is not null)
                {
                    return null;
                }

                asked = true;
                if (!await NegotiateTlsAsync(code == StartupCodes.SslRequest, ct).ConfigureAwait(false))
                {
                    return null;
                }

                continue;
            }

            if (code == StartupCodes.CancelRequest && packet.Length == 12)
            {
                // Clients close the cancel connection right after sending; the forward must not depend on it staying open.
                using var forward = new CancellationTokenSource(_options.BackendConnectTimeout);
                await services.Cancels.ForwardAsync(BinaryPrimitives.ReadInt32BigEndian(packet.AsSpan(4)), BinaryPrimitives.ReadInt32BigEndian(packet.AsSpan(8)), forward.Token).ConfigureAwait(false);
                return null;
            }

            if (code >> 16 != 3)
            {
                await FailAsync(ProxySqlState.FeatureNotSupported, $"unsupported frontend protocol {code >> 16}.{code & 0xFFFF}: server supports 3.0 to 3.0").ConfigureAwait(false);
                return null;
            }

            parameters = PgFrames.ParseStartupParameters(packet.AsSpan(4));
            if (parameters is null)
            {
                await FailAsync(ProxySqlState.ProtocolViolation, "invalid startup packet layout: expected terminator as last byte").ConfigureAwait(false);
                return null;
            }

            break;
        }

        if (_tls is null && (_options.RequireTls || !_loopback))
        {
            await FailAsync(ProxySqlState.InvalidAuthorization, "SSL connection is required", "Connect with sslmode=require.").ConfigureAwait(false);
            return null;
        }

        StartupRequest? request = StartupRequest.Parse(parameters, _sniHost, out string? error);
        if (request is null)
        {
            await FailAsync(ProxySqlState.InvalidAuthorization, error!).ConfigureAwait(false);
            return null;
        }

        services.Metrics.RecordPhase("startup_packet", began);
        long step = System.Diagnostics.Stopwatch.GetTimestamp();

        // Names longer than PostgreSQL's identifiers exist nowhere; they still get the full, failing exchange.
        DatabaseState? database = request.Database.Length <= 63 ? await services.Routes.ResolveAsync(request.Database, ct).ConfigureAwait(false) : null;
        if (database is null && !services.Routes.Loaded)
        {
            // A proxy that just started (or lost the control plane before its first answer) cannot tell a wrong
            // password from a route it has not heard of yet: a retryable refusal, the same for every name, instead
            // of a false 28P01 that would also count against the client in the throttle.
            services.Log.Record(request.Database, "deny", "routes_not_loaded", _clientIp, request.User);
            await FailAsync(ProxySqlState.CannotConnectNow, "the proxy is starting and has not loaded its route table yet", "Retry in a moment.").ConfigureAwait(false);
            return null;
        }

        if (services.Throttle.Begin(_clientIp, request.Database, database?.LockoutResetAt) == ThrottleVerdict.Throttled)
        {
            services.Metrics.Throttled.Add(1);
            services.Log.Record(request.Database, "throttle", "locked_out", _clientIp, request.User);
            await FailAsync(ProxySqlState.ConnectionRejected, "too many failed login attempts; try again later").ConfigureAwait(false);
            return null;
        }

        services.Metrics.RecordPhase("route", step);
        step = System.Diagnostics.Stopwatch.GetTimestamp();
        bool authenticated;
        bool scram = false;
        try
        {
            (authenticated, scram) = await AuthenticateAsync(request, database, ct).ConfigureAwait(false);
        }
        catch
        {
            services.Throttle.Abandon(_clientIp, request.Database);
            throw;
        }

        if (!authenticated || database is null)
        {
            services.Throttle.Failed(_clientIp, request.Database);
            services.Metrics.Denied.Add(1, new KeyValuePair<string, object?>("reason", "auth_failed"));
            services.Log.Record(request.Database, "deny", "auth_failed", _clientIp, request.User);
            await FailAsync(ProxySqlState.InvalidPassword, $"password authentication failed for user \"{request.User}\"").ConfigureAwait(false);
            return null;
        }

        services.Throttle.Succeeded(_clientIp, request.Database);
        services.Metrics.RecordPhase("auth", step);
        if (database.Suspended)
        {
            Deny(request, database, "suspended");
            await FailAsync(ProxySqlState.QuotaSuspended, "database suspended: quota exceeded").ConfigureAwait(false);
            return null;
        }

        if (!database.TryOpenSession())
        {
            Deny(request, database, "max_connections");
            await FailAsync(ProxySqlState.TooManyConnections, $"too many connections for database \"{request.Database}\"").ConfigureAwait(false);
            return null;
        }

        BackendConnection? backend = null;
        step = System.Diagnostics.Stopwatch.GetTimestamp();
        try
        {
            backend = await ConnectBackendAsync(request, database, ct).ConfigureAwait(false);
            services.Metrics.RecordPhase("backend", step);
        }
        finally
        {
            if (backend is null)
            {
                database.CloseSession();
            }
        }

        if (backend is null)
        {
            return null;
        }

        (int pid, int secret) = services.Cancels.Register(backend.Replica.PgEndpoint, backend.ProcessId, backend.SecretKey);
        PipeWriter output = _client.Output;
        PgFrames.WriteAuthentication(output, 0);
        PgFrames.WriteBackendKeyData(output, pid, secret);

        // The node's greeting ends with its ReadyForQuery; BackendKeyData may come before it in any order.
        await output.WriteAsync(backend.Greeting, ct).ConfigureAwait(false);
        services.Log.Record(request.Database, "connect", scram ? "scram" : "token", _clientIp, request.User);
        services.Metrics.RecordPhase("total", began);
        return new Session(database, backend.Socket, pid);
    }

    private async Task<BackendConnection?> ConnectBackendAsync(StartupRequest request, DatabaseState database, CancellationToken ct)
    {
        string token = await services.ControlPlane.GetServiceTokenAsync(ct).ConfigureAwait(false);
        RouteEntry entry = database.Entry;
        BackendException? last = null;
        IReadOnlyList<RouteReplica> replicas = services.Routes.ReplicasInOrder(entry);
        bool readOnly = _options.ReadOnlyOnAnyReplica && (request.ReadOnly || entry.FindRole(request.User)?.Kind == "readonly");

        // Read-only sessions start at a rotating replica (then try the rest in order); others start at the leader.
        int first = readOnly && replicas.Count > 1 ? (int)((uint)Interlocked.Increment(ref _readOnlyRotation) % (uint)replicas.Count) : 0;
        for (int i = 0; i < replicas.Count; i++)
        {
            RouteReplica replica = replicas[(first + i) % replicas.Count];
            try
            {
                BackendConnection backend = await BackendConnector.ConnectAsync(replica, request, entry.DatabaseId, token, _options.BackendConnectTimeout, ct).ConfigureAwait(false);
                if (entry.GroupId is { } group && backend.Leader is { } leader)
                {
                    services.Routes.ReportLeader(group, leader);
                }

                services.Metrics.Connections.Add(1, new KeyValuePair<string, object?>("node", replica.NodeId), new KeyValuePair<string, object?>("access", readOnly ? "read_only" : "read_write"));
                return backend;
            }
            catch (BackendException e)
            {
                // Followers forward to the leader, so any replica serves: try the next one at once (DESIGN).
                LogReplicaFailed(services.Logger, replica.NodeId, entry.DatabaseId, e.Message);
                last = e;
            }
        }

        Deny(request, database, "no_backend");
        await FailAsync(last?.SqlState is { } state && !state.StartsWith("08", StringComparison.Ordinal) && state != "57P03" ? state : ProxySqlState.ConnectionFailure,
            last?.SqlState is not null ? last.Message : "could not connect to any replica of the database").ConfigureAwait(false);
        return null;
    }

    private async Task<(bool Authenticated, bool Scram)> AuthenticateAsync(StartupRequest request, DatabaseState? database, CancellationToken ct)
    {
        RouteEntry? entry = database?.Entry;
        RouteRole? role = entry?.FindRole(request.User);
        if (request.TokenPassword)
        {
            if (_tls is null && !(_options.DevelopmentLoopbackAuth && _loopback))
            {
                // Refused before the password is sent, so a token never crosses the wire in clear.
                await FailAsync(ProxySqlState.InvalidPassword, $"password authentication failed for user \"{request.User}\"", "Token passwords require an SSL connection (sslmode=require).").ConfigureAwait(false);
                throw new OperationCanceledException("token over plaintext");
            }

            PgFrames.WriteAuthentication(_client.Output, 3);
            await _client.Output.FlushAsync(ct).ConfigureAwait(false);
            (byte Code, byte[] Body)? message = await PgFrames.ReadMessageAsync(_client.Input, MaxAuthMessage, ct).ConfigureAwait(false);
            if (message is not { Code: (byte)'p' } m || m.Body.Length == 0 || m.Body[^1] != 0)
            {
                return (false, false);
            }

            string token = Encoding.UTF8.GetString(m.Body.AsSpan(0, m.Body.Length - 1));
            if (services.Tokens is null)
            {
                return (false, false);
            }

            TokenCheck check = await services.Tokens.ValidateDataTokenAsync(token, request.Database, request.User, ct).ConfigureAwait(false);
            return (check.IsValid && role is not null && entry is not null, false);
        }

        bool real = ScramSha256Verifier.TryParse(role?.ScramVerifier, out ScramSha256Verifier? verifier);
        if (!real)
        {
            verifier = ScramSha256Verifier.CreateFake(_options.FakeVerifierSecret, request.Database, request.User);
        }

        var exchange = new ScramServerExchange(verifier!);
        PgFrames.WriteSaslOffer(_client.Output);
        await _client.Output.FlushAsync(ct).ConfigureAwait(false);
        (byte Code, byte[] Body)? first = await PgFrames.ReadMessageAsync(_client.Input, MaxAuthMessage, ct).ConfigureAwait(false);
        byte[]? clientFirst = first is { Code: (byte)'p' } f ? ReadSaslInitial(f.Body) : null;
        string? serverFirst = clientFirst is null ? null : exchange.HandleClientFirst(clientFirst);
        if (serverFirst is null)
        {
            await FailAsync(ProxySqlState.ProtocolViolation, "malformed SCRAM message").ConfigureAwait(false);
            throw new OperationCanceledException("malformed SASL");
        }

        PgFrames.WriteAuthentication(_client.Output, 11, Encoding.UTF8.GetBytes(serverFirst));
        await _client.Output.FlushAsync(ct).ConfigureAwait(false);
        (byte Code, byte[] Body)? final = await PgFrames.ReadMessageAsync(_client.Input, MaxAuthMessage, ct).ConfigureAwait(false);
        if (final is not { Code: (byte)'p' } fin)
        {
            return (false, true);
        }

        string? serverFinal = exchange.HandleClientFinal(fin.Body);
        if (serverFinal is null || !real || entry is null)
        {
            return (false, true);
        }

        PgFrames.WriteAuthentication(_client.Output, 12, Encoding.UTF8.GetBytes(serverFinal));
        return (true, true);
    }

    private static byte[]? ReadSaslInitial(byte[] body)
    {
        int end = Array.IndexOf(body, (byte)0);
        if (end < 0 || !body.AsSpan(0, end).SequenceEqual("SCRAM-SHA-256"u8) || body.Length < end + 5)
        {
            return null;
        }

        int length = BinaryPrimitives.ReadInt32BigEndian(body.AsSpan(end + 1));
        return length >= 0 && body.Length == end + 5 + length ? body.AsSpan(end + 5, length).ToArray() : null;
    }

    private async Task<bool> NegotiateTlsAsync(bool ssl, CancellationToken ct)
    {
        System.Security.Cryptography.X509Certificates.X509Certificate2? certificate = ssl ? services.Certificates.Current : null;

        // Bytes pipelined behind the request would be taken as if they came over TLS (CVE-2021-23214): refuse them.
        // The check must come before the answer: once 'S' is out, a fast client's ClientHello may already be
        // buffered, and refusing that dropped good handshakes at random.
        if (certificate is not null && (socket.Available > 0 || _client.Input.TryRead(out ReadResult pending) && Pending(pending)))
        {
            return false;
        }

        Memory<byte> answer = _client.Output.GetMemory(1);
        answer.Span[0] = certificate is null ? (byte)'N' : (byte)'S';
        _client.Output.Advance(1);
        await _client.Output.FlushAsync(ct).ConfigureAwait(false);
        if (certificate is null)
        {
            return true;
        }

        await CompletePipesAsync().ConfigureAwait(false);
        var tls = new SslStream(_stream, leaveInnerStreamOpen: false);
        _tls = tls;
        _stream = tls;
        _client = new StreamPipe(tls);
        await tls.AuthenticateAsServerAsync(new SslServerAuthenticationOptions { ServerCertificate = certificate, ClientCertificateRequired = false }, ct).ConfigureAwait(false);
        _sniHost = tls.TargetHostName;
        return true;
    }

    private bool Pending(ReadResult read)
    {
        bool any = !read.Buffer.IsEmpty;
        _client.Input.AdvanceTo(read.Buffer.Start);
        return any;
    }

    // The startup pipes hand their pooled buffers back; the stream under them stays open.
    private async ValueTask CompletePipesAsync()
    {
        await _client.Input.CompleteAsync().ConfigureAwait(false);
        await _client.Output.CompleteAsync().ConfigureAwait(false);
    }

    private async Task RelayAsync(Session session)
    {
        services.Metrics.SessionOpened();
        try
        {
            await _client.Output.FlushAsync(abort).ConfigureAwait(false);

            // Whatever the client sent behind its last startup message goes first.
            byte[] pending = [];
            if (_client.Input.TryRead(out ReadResult read))
            {
                pending = read.Buffer.ToArray();
                _client.Input.AdvanceTo(read.Buffer.End);
            }

            await CompletePipesAsync().ConfigureAwait(false);
            await PgRelay.RunAsync(_stream, socket, session.Backend, pending, session.Database, services.Time, drain, abort).ConfigureAwait(false);
        }
        finally
        {
            session.Backend.Dispose();
            services.Metrics.SessionClosed();
            services.Cancels.Unregister(session.ProcessId);
            session.Database.CloseSession();
        }
    }

    private void Deny(StartupRequest request, DatabaseState database, string reason)
    {
        services.Metrics.Denied.Add(1, new KeyValuePair<string, object?>("reason", reason));
        services.Log.Record(database.Entry.DatabaseId, "deny", reason, _clientIp, request.User);
    }

    private async Task FailAsync(string sqlState, string message, string? hint = null)
    {
        PgFrames.WriteError(_client.Output, "FATAL", sqlState, message, hint);
        await _client.Output.FlushAsync().ConfigureAwait(false);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Replica {NodeId} refused a session of {DatabaseId}: {Reason}")]
    private static partial void LogReplicaFailed(ILogger logger, string nodeId, string databaseId, string reason);

    // Only what the relay needs: the node's greeting and the replica record are dropped once the client has them.
    private sealed record Session(DatabaseState Database, System.Net.Sockets.Socket Backend, int ProcessId);
}
