using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Hosting.Server;

namespace Kdb.Proxy.Pg;

/// <summary>
/// The tenant PostgreSQL port on a plain socket listener, beside Kestrel rather than inside it: once a session is
/// relayed, each message is one receive and one send between two sockets, without Kestrel's pipes, per-read work and
/// per-connection objects (CPU per message and memory per idle session are both targets). Shutdown drains: the
/// listener closes at once; sessions between transactions end at once with 57P01, the others when their transaction
/// ends or at the host's shutdown timeout (<c>Proxy:DrainTimeout</c>), whichever comes first.
/// </summary>
internal sealed partial class PgListener(PgFrontServices services, IServer server, IPAddress bind, ILogger<PgListener> logger) : IHostedLifecycleService
{
    private readonly CancellationTokenSource _drain = new();
    private readonly CancellationTokenSource _abort = new();
    private readonly TaskCompletionSource _drained = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Socket? _listener;
    private Task? _accepting;
    private int _active = 1; // the listener's own count, dropped on stop, so zero means drained
    private int _listening = 1;

    /// <summary>True once the port accepts connections.</summary>
    public bool Listening => _listener is not null;

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken)
    {
        // A host without Kestrel (WebApplicationFactory's test server) opens no tenant ports: none of the PostgreSQL one either.
        if (server.GetType().Namespace?.StartsWith("Microsoft.AspNetCore.Server.Kestrel", StringComparison.Ordinal) != true)
        {
            return Task.CompletedTask;
        }

        var listener = new Socket(bind.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            listener.Bind(new IPEndPoint(bind, services.Options.PgPort));
            listener.Listen(1024);
        }
        catch
        {
            listener.Dispose();
            throw;
        }

        _listener = listener;
        _accepting = AcceptLoopAsync(listener);
        return Task.CompletedTask;
    }

    public async Task StoppingAsync(CancellationToken cancellationToken)
    {
        // Stop accepting first, before the rest of the host goes down.
        _listener?.Dispose();
        if (_accepting is not null)
        {
            await _accepting.ConfigureAwait(false);
        }
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref _listening, 0) == 1)
        {
            Leave();
        }

        // Sessions between transactions end now, the others when their transaction does.
        await _drain.CancelAsync().ConfigureAwait(false);
        try
        {
            await _drained.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
            return;
        }
        catch (OperationCanceledException)
        {
            // The drain timeout passed: the sessions left are ended (57P01 where their stream allows it).
        }

        await _abort.CancelAsync().ConfigureAwait(false);
        try
        {
            // Long enough for the last sessions' errors to reach their clients before the process exits.
            await _drained.Task.WaitAsync(TimeSpan.FromSeconds(2), CancellationToken.None).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
        }
    }

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    private async Task AcceptLoopAsync(Socket listener)
    {
        while (true)
        {
            Socket client;
            try
            {
                client = await listener.AcceptAsync().ConfigureAwait(false);
            }
            catch (ObjectDisposedException)
            {
                return;
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.OperationAborted)
            {
                return;
            }
            catch (SocketException e)
            {
                // Out of descriptors and the like: the listener itself is fine, the next accept may succeed.
                LogAcceptFailed(logger, e.SocketErrorCode);
                await Task.Delay(10).ConfigureAwait(false);
                continue;
            }

            Interlocked.Increment(ref _active);
            _ = RunAsync(client);
        }
    }

    private async Task RunAsync(Socket client)
    {
        try
        {
            client.NoDelay = true;
            await new PgFrontConnection(client, services, _drain.Token, _abort.Token).RunAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // The client went away before the session began.
        }
        catch (Exception e)
        {
            LogSessionFailed(logger, e);
        }
        finally
        {
            client.Dispose();
            Leave();
        }
    }

    private void Leave()
    {
        if (Interlocked.Decrement(ref _active) == 0)
        {
            _drained.TrySetResult();
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "A PostgreSQL session ended with an unexpected error")]
    private static partial void LogSessionFailed(ILogger logger, Exception e);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Accepting a PostgreSQL connection failed: {Error}")]
    private static partial void LogAcceptFailed(ILogger logger, SocketError error);
}
