using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;
using Kdb.Proxy.Routing;

namespace Kdb.Proxy.Pg;

/// <summary>
/// Relays an authenticated session between the client's pipe and the node's socket. Bytes are copied segment by
/// segment from pooled pipe memory: nothing is allocated per message. Client-to-node traffic is followed message by
/// message (only the 5-byte headers are read) so that statements of a <c>throttled</c> database pass its token bucket.
/// </summary>
internal static class PgRelay
{
    // Kestrel's pool hands out 4 KB blocks; asking for a few lets one receive carry a typical result batch.
    private const int ReceiveHint = 16 * 1024;

    /// <summary>
    /// Runs both directions until either side closes or <paramref name="stop"/> fires; cancels <paramref name="stop"/>
    /// itself when one direction ends, to end the other (the caller's source, so a session holds one, not two).
    /// </summary>
    public static async Task RunAsync(IDuplexPipe client, Socket backend, DatabaseState database, TimeProvider time, CancellationTokenSource stop)
    {
        Task up = ClientToBackendAsync(client.Input, backend, database, time, stop.Token);
        Task down = BackendToClientAsync(backend, client.Output, database, stop.Token);
        await Task.WhenAny(up, down).ConfigureAwait(false);
        await stop.CancelAsync().ConfigureAwait(false);
        try
        {
            backend.Shutdown(SocketShutdown.Both);
        }
        catch (SocketException)
        {
        }

        backend.Dispose();
        await Task.WhenAll(Quiet(up), Quiet(down)).ConfigureAwait(false);
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

    private static async Task ClientToBackendAsync(PipeReader input, Socket backend, DatabaseState database, TimeProvider time, CancellationToken cancellationToken)
    {
        long remaining = 0; // bytes of the current message not yet seen
        while (true)
        {
            ReadResult r = await input.ReadAsync(cancellationToken).ConfigureAwait(false);
            ReadOnlySequence<byte> buffer = r.Buffer;
            long sendable = 0;
            TimeSpan wait = TimeSpan.Zero;
            while (sendable < buffer.Length)
            {
                if (remaining > 0)
                {
                    long take = Math.Min(remaining, buffer.Length - sendable);
                    remaining -= take;
                    sendable += take;
                    continue;
                }

                if (buffer.Length - sendable < 5)
                {
                    break; // a partial header waits for its remaining bytes
                }

                ReadOnlySequence<byte> header = buffer.Slice(sendable, 5);
                byte code = header.FirstSpan[0];
                int length = PgFrames.ReadInt32(header.Slice(1));
                if (length < 4)
                {
                    return; // not the protocol: end the session
                }

                if (code is (byte)'Q' or (byte)'E' && database.Throttled)
                {
                    wait = database.TakeStatementToken(time);
                    if (wait > TimeSpan.Zero)
                    {
                        // Send what precedes the statement, sleep, then send the statement with the next round.
                        remaining = 0;
                        break;
                    }
                }

                remaining = length + 1L;
            }

            if (sendable > 0)
            {
                await SendAsync(backend, buffer.Slice(0, sendable), cancellationToken).ConfigureAwait(false);
                database.AddBytesIn(sendable);
            }

            input.AdvanceTo(buffer.GetPosition(sendable), wait > TimeSpan.Zero ? buffer.GetPosition(sendable) : buffer.End);
            if (wait > TimeSpan.Zero)
            {
                await Task.Delay(wait, time, cancellationToken).ConfigureAwait(false);
                await ForceSendStatementAsync(input, backend, database, cancellationToken).ConfigureAwait(false);
                continue;
            }

            if (r.IsCompleted || r.IsCanceled)
            {
                return;
            }
        }
    }

    // After the wait the statement has paid its token: its header is sent without asking the bucket again.
    private static async Task ForceSendStatementAsync(PipeReader input, Socket backend, DatabaseState database, CancellationToken cancellationToken)
    {
        ReadResult r = await input.ReadAtLeastAsync(5, cancellationToken).ConfigureAwait(false);
        if (r.Buffer.Length < 5)
        {
            input.AdvanceTo(r.Buffer.Start, r.Buffer.End);
            return;
        }

        ReadOnlySequence<byte> header = r.Buffer.Slice(0, 5);
        long message = PgFrames.ReadInt32(header.Slice(1)) + 1L;
        long have = Math.Min(message, r.Buffer.Length);
        await SendAsync(backend, r.Buffer.Slice(0, have), cancellationToken).ConfigureAwait(false);
        database.AddBytesIn(have);
        input.AdvanceTo(r.Buffer.GetPosition(have));
        long left = message - have;
        while (left > 0)
        {
            ReadResult more = await input.ReadAsync(cancellationToken).ConfigureAwait(false);
            if (more.Buffer.IsEmpty && (more.IsCompleted || more.IsCanceled))
            {
                return;
            }

            long n = Math.Min(left, more.Buffer.Length);
            await SendAsync(backend, more.Buffer.Slice(0, n), cancellationToken).ConfigureAwait(false);
            database.AddBytesIn(n);
            input.AdvanceTo(more.Buffer.GetPosition(n));
            left -= n;
        }
    }

    private static async ValueTask SendAsync(Socket socket, ReadOnlySequence<byte> data, CancellationToken cancellationToken)
    {
        foreach (ReadOnlyMemory<byte> segment in data)
        {
            ReadOnlyMemory<byte> rest = segment;
            while (!rest.IsEmpty)
            {
                int n = await socket.SendAsync(rest, SocketFlags.None, cancellationToken).ConfigureAwait(false);
                rest = rest[n..];
            }
        }
    }

    private static async Task BackendToClientAsync(Socket backend, PipeWriter output, DatabaseState database, CancellationToken cancellationToken)
    {
        while (true)
        {
            // A zero-byte receive waits for data without holding a buffer: idle sessions cost no pipe memory.
            await backend.ReceiveAsync(Memory<byte>.Empty, SocketFlags.None, cancellationToken).ConfigureAwait(false);
            Memory<byte> memory = output.GetMemory(ReceiveHint);
            int n = await backend.ReceiveAsync(memory, SocketFlags.None, cancellationToken).ConfigureAwait(false);
            if (n == 0)
            {
                return;
            }

            output.Advance(n);
            database.AddBytesOut(n);
            FlushResult f = await output.FlushAsync(cancellationToken).ConfigureAwait(false);
            if (f.IsCompleted || f.IsCanceled)
            {
                return;
            }
        }
    }
}
