using System.Collections.Concurrent;
using System.IO.Pipelines;
using System.Security.Cryptography;
using Kdb.PgWire.Session;

namespace Kdb.PgWire.Server;

/// <summary>
/// Serves the PostgreSQL protocol (v3) on accepted connections. One instance per endpoint: it owns the
/// connection limit and the table of BackendKeyData used by CancelRequest. The host (a Kestrel
/// connection handler, or a socket loop in tests) calls <see cref="HandleAsync"/> per connection.
/// </summary>
public sealed class PgConnectionHandler
{
    private readonly PgServerOptions _options;
    private readonly IPgSessionFactory _sessions;
    private readonly IPgAuthenticator _authenticator;
    private readonly ConcurrentDictionary<int, PgConnection> _byProcessId = new();
    private int _active;
    private int _nextProcessId = RandomNumberGenerator.GetInt32(1000, 1 << 20);

    /// <summary>Creates a handler.</summary>
    public PgConnectionHandler(PgServerOptions options, IPgSessionFactory sessions, IPgAuthenticator authenticator)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(sessions);
        ArgumentNullException.ThrowIfNull(authenticator);
        _options = options;
        _sessions = sessions;
        _authenticator = authenticator;
    }

    /// <summary>Sessions currently counted against <see cref="PgServerOptions.MaxConnections"/>.</summary>
    public int ActiveSessions => Volatile.Read(ref _active);

    /// <summary>
    /// Runs the protocol on one connection until the client terminates, the connection fails or
    /// <paramref name="cancellationToken"/> fires. Never throws for client misbehaviour: protocol errors
    /// end in an ErrorResponse or a closed connection. Completes both ends of the transport.
    /// </summary>
    public async Task HandleAsync(IDuplexPipe transport, PgConnectionInfo info, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(transport);
        ArgumentNullException.ThrowIfNull(info);
        var connection = new PgConnection(this, _options, _sessions, _authenticator, transport, info);
        await using (connection.ConfigureAwait(false))
        {
            await connection.RunAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    internal bool TryAcquireSlot()
    {
        if (Interlocked.Increment(ref _active) > _options.MaxConnections)
        {
            Interlocked.Decrement(ref _active);
            return false;
        }

        return true;
    }

    internal void ReleaseSlot() => Interlocked.Decrement(ref _active);

    internal int Register(PgConnection connection)
    {
        while (true)
        {
            int pid = Interlocked.Increment(ref _nextProcessId) & int.MaxValue;
            if (pid != 0 && _byProcessId.TryAdd(pid, connection))
            {
                return pid;
            }
        }
    }

    internal void Unregister(int processId) => _byProcessId.TryRemove(processId, out _);

    /// <summary>CancelRequest: cancels the running statement of the connection with that key, if any.</summary>
    internal void Cancel(int processId, int secretKey)
    {
        if (_byProcessId.TryGetValue(processId, out PgConnection? c))
        {
            c.CancelFromRequest(secretKey);
        }
    }
}
