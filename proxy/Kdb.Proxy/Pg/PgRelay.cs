using System.Buffers;
using System.Buffers.Binary;
using System.Net.Sockets;
using Kdb.Proxy.Routing;

namespace Kdb.Proxy.Pg;

/// <summary>
/// Relays an authenticated session between the client and the node's socket. Each wake-up receives everything that
/// is there into a buffer the session owns, scans the message headers in place (no per-message awaits) and sends the
/// whole buffer in one call; nothing is allocated per message. The scan keeps what the features need: a
/// <c>throttled</c> database's statements pass its token bucket, and ReadyForQuery's transaction status tells when the
/// session is idle, so a draining proxy ends sessions between transactions and with 57P01 at a message boundary.
/// </summary>
internal sealed class PgRelay(Stream client, Socket clientSocket, Socket backend, DatabaseState database, TimeProvider time)
{
    // Each direction keeps a small buffer for the session's life, big enough for a typical statement or result; a
    // receive that fills it switches to a pooled large buffer until the burst ends. An idle session holds 2 KB.
    private const int SmallBuffer = 1024;
    private const int LargeBuffer = 32 * 1024;
    private const int HeaderLength = 5;
    private const int Running = 0;
    private const int EndWhenIdle = 1;
    private const int EndNow = 2;

    private readonly Stream _client = client;
    private readonly Socket _clientSocket = clientSocket;

    // Plaintext sessions use the client's socket directly; TLS ones go through the stream.
    private readonly bool _plain = client is NetworkStream;
    private readonly Socket _backend = backend;
    private readonly DatabaseState _database = database;
    private readonly TimeProvider _time = time;
    private readonly byte[] _buffers = new byte[2 * SmallBuffer];

    // Client to node: bytes of the current message not yet seen; whether the statement at the scan's start has paid.
    private long _upRemaining;
    private bool _upPaid;

    // Node to client: bytes of the current message not yet seen, a header split across receives, and whether the next
    // byte is a ReadyForQuery's status. A stream that is not the protocol is still relayed, just no longer followed.
    private long _downRemaining;
    private int _downHeaderHave;
    private long _downHeader;
    private bool _downStatusNext;
    private bool _downLost;

    // Query, Sync and FunctionCall messages sent and not yet answered by a ReadyForQuery, and the last status seen.
    private int _outstanding;
    private volatile byte _status = (byte)'I';
    private int _ending;
    private int _closed;

    private bool AtBoundary => _downRemaining == 0 && _downHeaderHave == 0 && !_downLost;

    private bool Idle => Volatile.Read(ref _outstanding) <= 0 && _status == (byte)'I' && AtBoundary;

    /// <summary>
    /// Runs both directions until either side closes, the database's route is removed, <paramref name="drain"/> fires
    /// and the session is between transactions, or <paramref name="abort"/> fires. The last three end the session with
    /// a 57P01 error when the node's stream is at a message boundary. <paramref name="pending"/> holds client bytes
    /// read during startup and not yet relayed; <paramref name="client"/> is the socket's own stream or TLS over it.
    /// </summary>
    public static async Task RunAsync(Stream client, Socket clientSocket, Socket backend, byte[] pending, DatabaseState database, TimeProvider time, CancellationToken drain, CancellationToken abort)
    {
        var relay = new PgRelay(client, clientSocket, backend, database, time);

        // Ending a session wakes the node-side receive (its socket's receive half is shut down); that loop sends the
        // 57P01. No token rides along with each receive and send.
        using CancellationTokenRegistration removed = database.RemovedToken.UnsafeRegister(static r => ((PgRelay)r!).End(EndNow), relay);
        using CancellationTokenRegistration drained = drain.UnsafeRegister(static r => ((PgRelay)r!).End(EndWhenIdle), relay);
        using CancellationTokenRegistration aborted = abort.UnsafeRegister(static r => ((PgRelay)r!).End(EndNow), relay);
        Task up = relay.ClientToBackendAsync(pending);
        Task down = relay.BackendToClientAsync();
        await Task.WhenAny(up, down).ConfigureAwait(false);
        relay.Close();
        await Task.WhenAll(Quiet(up), Quiet(down)).ConfigureAwait(false);
    }

    private void End(int how)
    {
        int before = Volatile.Read(ref _ending);
        while (before < how)
        {
            int seen = Interlocked.CompareExchange(ref _ending, how, before);
            if (seen == before)
            {
                break;
            }

            before = seen;
        }

        // Set before the check: the node-side loop checks after each ReadyForQuery, so one of the two sees the other.
        if (how == EndNow || Idle)
        {
            try
            {
                _backend.Shutdown(SocketShutdown.Receive);
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
            }
        }

        if (how == EndNow)
        {
            // A client that stopped reading holds the node-side loop in a send the shutdown does not wake: both
            // sockets close after a grace period whatever happens (closing twice is a no-op).
            _ = Task.Delay(TimeSpan.FromSeconds(2), _time).ContinueWith(static (_, r) => ((PgRelay)r!).Close(), this, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
        }
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
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
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
            carry = await ForwardUpAsync(pending).ConfigureAwait(false);
            if (carry < 0)
            {
                return;
            }

            pending.AsSpan(pending.Length - carry).CopyTo(small.Span);
        }

        byte[]? large = null;
        try
        {
            while (true)
            {
                Memory<byte> buffer = large is null ? small : large;
                int n;
                if (_plain)
                {
                    n = await _clientSocket.ReceiveAsync(buffer[carry..], SocketFlags.None).ConfigureAwait(false);
                }
                else
                {
                    // TLS reads wait for data with a zero-byte read: SslStream then holds no record buffer while idle.
                    if (carry == 0)
                    {
                        await _client.ReadAsync(Memory<byte>.Empty).ConfigureAwait(false);
                    }

                    n = await _client.ReadAsync(buffer[carry..]).ConfigureAwait(false);
                }

                if (n == 0)
                {
                    return;
                }

                int filled = carry + n;
                carry = await ForwardUpAsync(buffer[..filled]).ConfigureAwait(false);
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
    /// Sends the whole messages and message parts in <paramref name="data"/> in one call (a throttled database's
    /// statement waits for its token, what precedes it going first); returns how many bytes at its end are an
    /// incomplete header (kept for the next receive), or -1 when a header is not the protocol's.
    /// </summary>
    private ValueTask<int> ForwardUpAsync(Memory<byte> data)
    {
        int stop = ScanUp(data.Span, 0, out TimeSpan wait);
        if (stop < 0)
        {
            return new ValueTask<int>(-1);
        }

        _database.AddBytesIn(stop);
        ValueTask send = SendAllAsync(_backend, data[..stop]);
        return wait == TimeSpan.Zero && send.IsCompletedSuccessfully ? new ValueTask<int>(data.Length - stop) : ForwardUpSlowAsync(data, send, stop, wait);
    }

    private async ValueTask<int> ForwardUpSlowAsync(Memory<byte> data, ValueTask send, int stop, TimeSpan wait)
    {
        await send.ConfigureAwait(false);
        while (wait > TimeSpan.Zero)
        {
            await Task.Delay(wait, _time).ConfigureAwait(false);
            int start = stop;
            stop = ScanUp(data.Span, start, out wait);
            if (stop < 0)
            {
                return -1;
            }

            _database.AddBytesIn(stop - start);
            await SendAllAsync(_backend, data[start..stop]).ConfigureAwait(false);
        }

        return data.Length - stop;
    }

    /// <summary>
    /// Follows the client's message headers from <paramref name="position"/>; returns where the sendable bytes end:
    /// at the last incomplete header, or at a throttled statement whose token comes after <paramref name="wait"/>.
    /// </summary>
    private int ScanUp(ReadOnlySpan<byte> data, int position, out TimeSpan wait)
    {
        wait = TimeSpan.Zero;
        while (position < data.Length)
        {
            if (_upRemaining > 0)
            {
                int take = (int)Math.Min(_upRemaining, data.Length - position);
                _upRemaining -= take;
                position += take;
                continue;
            }

            if (data.Length - position < HeaderLength)
            {
                break;
            }

            byte code = data[position];
            int length = BinaryPrimitives.ReadInt32BigEndian(data.Slice(position + 1, 4));
            if (length < 4)
            {
                return -1;
            }

            if (code is (byte)'Q' or (byte)'E' && !_upPaid && _database.Throttled)
            {
                wait = _database.TakeStatementToken(_time);
                if (wait > TimeSpan.Zero)
                {
                    _upPaid = true; // the token is taken: the statement goes after the wait, not through the bucket again
                    return position;
                }
            }

            _upPaid = false;
            if (code is (byte)'Q' or (byte)'S' or (byte)'F')
            {
                Interlocked.Increment(ref _outstanding); // each is answered by one ReadyForQuery
            }

            _upRemaining = length + 1L;
        }

        return position;
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
                    break; // the node closed, or the session is being ended
                }

                ScanDown(buffer.Span[..n]);
                ValueTask write = _plain ? SendAllAsync(_clientSocket, buffer[..n]) : _client.WriteAsync(buffer[..n]);
                if (!write.IsCompletedSuccessfully)
                {
                    await write.ConfigureAwait(false);
                }

                _database.AddBytesOut(n);
                if (Volatile.Read(ref _ending) != Running && Idle)
                {
                    break;
                }

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

            if (Volatile.Read(ref _ending) != Running && AtBoundary)
            {
                await TerminateAsync().ConfigureAwait(false);
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

    // PostgreSQL's own words when an administrator or a shutdown ends a session. A client that stopped reading must not
    // hold the drain up: the write gets a second.
    private async Task TerminateAsync()
    {
        var error = new ArrayBufferWriter<byte>(128);
        PgFrames.WriteError(error, "FATAL", ProxySqlState.AdminShutdown, "terminating connection due to administrator command");
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(1));
        await _client.WriteAsync(error.WrittenMemory, deadline.Token).ConfigureAwait(false);
    }

    /// <summary>Follows the node's message headers: the transaction status of each ReadyForQuery.</summary>
    private void ScanDown(ReadOnlySpan<byte> data)
    {
        int position = 0;
        while (position < data.Length && !_downLost)
        {
            if (_downRemaining > 0)
            {
                if (_downStatusNext)
                {
                    _downStatusNext = false;
                    _status = data[position];
                    Interlocked.Decrement(ref _outstanding);
                }

                int take = (int)Math.Min(_downRemaining, data.Length - position);
                _downRemaining -= take;
                position += take;
                continue;
            }

            byte code;
            int length;
            if (_downHeaderHave == 0 && data.Length - position >= HeaderLength)
            {
                code = data[position];
                length = BinaryPrimitives.ReadInt32BigEndian(data.Slice(position + 1, 4));
                position += HeaderLength;
            }
            else
            {
                _downHeader = (_downHeader << 8) | data[position++];
                if (++_downHeaderHave < HeaderLength)
                {
                    continue;
                }

                code = (byte)(_downHeader >> 32);
                length = (int)_downHeader;
                _downHeader = 0;
                _downHeaderHave = 0;
            }

            _downLost = length < 4;
            _downRemaining = length - 4L;
            _downStatusNext = code == (byte)'Z' && _downRemaining > 0;
        }
    }

    private static ValueTask SendAllAsync(Socket socket, ReadOnlyMemory<byte> data)
    {
        if (data.IsEmpty)
        {
            return ValueTask.CompletedTask;
        }

        ValueTask<int> send = socket.SendAsync(data, SocketFlags.None);
        if (!send.IsCompletedSuccessfully)
        {
            return SendRestAsync(socket, data, send);
        }

        int n = send.Result;
        return n == data.Length ? ValueTask.CompletedTask : SendRestAsync(socket, data[n..], new ValueTask<int>(0));
    }

    private static async ValueTask SendRestAsync(Socket socket, ReadOnlyMemory<byte> data, ValueTask<int> first)
    {
        data = data[await first.ConfigureAwait(false)..];
        while (!data.IsEmpty)
        {
            int n = await socket.SendAsync(data, SocketFlags.None).ConfigureAwait(false);
            data = data[n..];
        }
    }
}
