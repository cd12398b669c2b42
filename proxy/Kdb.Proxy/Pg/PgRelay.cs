using System.Buffers;
using System.Buffers.Binary;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using Kdb.Proxy.Routing;

namespace Kdb.Proxy.Pg;

/// <summary>
/// Relays an authenticated session between the client and the node's socket: per message one receive into a buffer
/// the session owns and one send of what arrived, nothing allocated. Client-to-node traffic is followed message by
/// message (only the 5-byte headers are read) so that statements of a <c>throttled</c> database pass its token bucket.
/// </summary>
internal sealed class PgRelay(Stream client, Socket clientSocket, Socket backend, DatabaseState database, TimeProvider time)
{
    // Each direction keeps a small buffer for the session's life, big enough for a typical statement or result, so a
    // receive needs no zero-byte wait before it; a receive that fills it switches to a pooled large buffer until the
    // burst ends. An idle session so holds 2 KB of buffers.
    private const int SmallBuffer = 1024;
    private const int LargeBuffer = 32 * 1024;
    private const int HeaderLength = 5;

    private readonly Stream _client = client;
    private readonly Socket _clientSocket = clientSocket;
    private readonly Socket _backend = backend;
    private readonly DatabaseState _database = database;
    private readonly TimeProvider _time = time;
    private readonly byte[] _buffers = new byte[2 * SmallBuffer];
    private long _remaining; // bytes of the current client message not yet seen
    private int _closed;

    /// <summary>
    /// Runs both directions until either side closes, the database's route is removed or <paramref name="abort"/>
    /// fires. <paramref name="pending"/> holds client bytes read during startup and not yet relayed.
    /// <paramref name="client"/> is the client's stream (the socket's own, or TLS over it).
    /// </summary>
    public static async Task RunAsync(Stream client, Socket clientSocket, Socket backend, byte[] pending, DatabaseState database, TimeProvider time, CancellationToken abort)
    {
        var relay = new PgRelay(client, clientSocket, backend, database, time);

        // Ending a session closes both sockets, which ends both directions' pending receives: no token rides along
        // with each receive and send.
        using CancellationTokenRegistration removed = database.RemovedToken.UnsafeRegister(static r => ((PgRelay)r!).Close(), relay);
        using CancellationTokenRegistration aborted = abort.UnsafeRegister(static r => ((PgRelay)r!).Close(), relay);
        Task up = relay.ClientToBackendAsync(pending);
        Task down = relay.BackendToClientAsync();
        await Task.WhenAny(up, down).ConfigureAwait(false);
        relay.Close();
        await Task.WhenAll(Quiet(up), Quiet(down)).ConfigureAwait(false);
    }

    private void Close()
    {
        if (Interlocked.Exchange(ref _closed, 1) != 0)
        {
            return;
        }

        try
        {
            _backend.Shutdown(SocketShutdown.Both);
        }
        catch (SocketException)
        {
        }

        _backend.Dispose();
        try
        {
            // The listener disposes the client's socket once the session's task ends; shutting it down now ends the
            // client-side receive.
            _clientSocket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }
    }

    private static async Task Quiet(Task task)
    {
        try
        {
            await task.ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or IOException or ObjectDisposedException or InvalidOperationException)
        {
            // The session is over; how each half noticed does not matter.
        }
    }

    private async Task ClientToBackendAsync(byte[] pending)
    {
        Memory<byte> small = _buffers.AsMemory(0, SmallBuffer);
        int carry = 0; // a partial message header kept at the buffer's start
        if (pending.Length > 0)
        {
            carry = await ForwardAsync(pending).ConfigureAwait(false);
            if (carry < 0)
            {
                return;
            }

            pending.AsSpan(pending.Length - carry).CopyTo(small.Span);
        }

        // TLS reads wait for data with a zero-byte read: SslStream then holds no record buffer while the session idles.
        bool waitFirst = _client is not NetworkStream;
        byte[]? large = null;
        try
        {
            while (true)
            {
                Memory<byte> buffer = large is null ? small : large;
                if (waitFirst && carry == 0)
                {
                    await _client.ReadAsync(Memory<byte>.Empty).ConfigureAwait(false);
                }

                int n = await _client.ReadAsync(buffer[carry..]).ConfigureAwait(false);
                if (n == 0)
                {
                    return;
                }

                int filled = carry + n;
                carry = await ForwardAsync(buffer[..filled]).ConfigureAwait(false);
                if (carry < 0)
                {
                    return; // not the protocol: end the session
                }

                Memory<byte> next = buffer;
                if (filled == buffer.Length && large is null)
                {
                    large = ArrayPool<byte>.Shared.Rent(LargeBuffer);
                    next = large;
                }
                else if (filled < buffer.Length && large is not null)
                {
                    next = small;
                }

                buffer.Slice(filled - carry, carry).CopyTo(next);
                if (large is not null && next.Length == SmallBuffer)
                {
                    ArrayPool<byte>.Shared.Return(large);
                    large = null;
                }
            }
        }
        finally
        {
            if (large is not null)
            {
                ArrayPool<byte>.Shared.Return(large);
            }
        }
    }

    /// <summary>
    /// Sends the whole messages and message parts in <paramref name="data"/>, a throttled database's statements
    /// after their token; returns how many bytes at its end are an incomplete header (kept for the next receive),
    /// or -1 when a header is not the protocol's.
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<int> ForwardAsync(Memory<byte> data)
    {
        int position = 0;
        int sent = 0;
        while (position < data.Length)
        {
            if (_remaining > 0)
            {
                int take = (int)Math.Min(_remaining, data.Length - position);
                _remaining -= take;
                position += take;
                continue;
            }

            if (data.Length - position < HeaderLength)
            {
                break;
            }

            byte code = data.Span[position];
            int length = BinaryPrimitives.ReadInt32BigEndian(data.Span.Slice(position + 1, 4));
            if (length < 4)
            {
                return -1;
            }

            if (code is (byte)'Q' or (byte)'E' && _database.Throttled)
            {
                TimeSpan wait = _database.TakeStatementToken(_time);
                if (wait > TimeSpan.Zero)
                {
                    // What precedes the statement goes now; the statement, having paid, after the wait.
                    await SendAsync(data[sent..position]).ConfigureAwait(false);
                    sent = position;
                    await Task.Delay(wait, _time).ConfigureAwait(false);
                }
            }

            _remaining = length + 1L;
        }

        await SendAsync(data[sent..position]).ConfigureAwait(false);
        return data.Length - position;
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask SendAsync(ReadOnlyMemory<byte> data)
    {
        if (data.IsEmpty)
        {
            return;
        }

        _database.AddBytesIn(data.Length);
        while (!data.IsEmpty)
        {
            int n = await _backend.SendAsync(data, SocketFlags.None).ConfigureAwait(false);
            data = data[n..];
        }
    }

    private async Task BackendToClientAsync()
    {
        Memory<byte> small = _buffers.AsMemory(SmallBuffer, SmallBuffer);
        byte[]? large = null;
        try
        {
            while (true)
            {
                Memory<byte> buffer = large is null ? small : large;
                int n = await _backend.ReceiveAsync(buffer, SocketFlags.None).ConfigureAwait(false);
                if (n == 0)
                {
                    return;
                }

                await _client.WriteAsync(buffer[..n]).ConfigureAwait(false);
                _database.AddBytesOut(n);
                if (n == buffer.Length)
                {
                    large ??= ArrayPool<byte>.Shared.Rent(LargeBuffer); // a full buffer: more is likely waiting
                }
                else if (large is not null)
                {
                    ArrayPool<byte>.Shared.Return(large);
                    large = null;
                }
            }
        }
        finally
        {
            if (large is not null)
            {
                ArrayPool<byte>.Shared.Return(large);
            }
        }
    }
}
