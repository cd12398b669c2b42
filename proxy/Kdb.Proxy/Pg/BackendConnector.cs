using System.Buffers.Binary;
using System.Globalization;
using System.Net.Sockets;
using System.Text;
using Kdb.Proxy.Routing;

namespace Kdb.Proxy.Pg;

/// <summary>A node connection that finished its startup as the proxy's backend for one client session.</summary>
/// <param name="Socket">The connected socket, positioned after the node's first ReadyForQuery.</param>
/// <param name="Replica">The replica it reached.</param>
/// <param name="Greeting">ParameterStatus and NoticeResponse messages, then ReadyForQuery, verbatim, to pass to the client.</param>
/// <param name="ProcessId">The node's BackendKeyData process id.</param>
/// <param name="SecretKey">The node's BackendKeyData secret.</param>
/// <param name="Leader">The group leader the node reported in <c>kdb_leader</c>, if any.</param>
internal sealed record BackendConnection(Socket Socket, RouteReplica Replica, byte[] Greeting, int ProcessId, int SecretKey, string? Leader);

/// <summary>Why a replica could not be used.</summary>
internal sealed class BackendException(string message, string? sqlState = null) : Exception(message)
{
    /// <summary>The node's SQLSTATE when it answered with an ErrorResponse; null for a network failure.</summary>
    public string? SqlState { get; } = sqlState;
}

/// <summary>
/// Opens backend connections to nodes as the proxy (DESIGN: <c>--kdb:proxy=true</c>, the proxy's <c>kdb.proxy</c>
/// token as the cleartext password; the node then trusts the startup user and database).
/// </summary>
internal static class BackendConnector
{
    // A node's greeting is a few hundred bytes; anything larger is not a node.
    private const int MaxStartupMessage = 64 * 1024;

    public static async Task<BackendConnection> ConnectAsync(RouteReplica replica, StartupRequest startup, string databaseId, string token, TimeSpan timeout, CancellationToken cancellationToken)
    {
        (string host, int port) = ParseEndpoint(replica.PgEndpoint);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            // Replica endpoints are addresses: connecting to one skips the name-resolution path (and its garbage).
            if (System.Net.IPAddress.TryParse(host, out System.Net.IPAddress? address))
            {
                await socket.ConnectAsync(new System.Net.IPEndPoint(address, port), deadline.Token).ConfigureAwait(false);
            }
            else
            {
                await socket.ConnectAsync(host, port, deadline.Token).ConfigureAwait(false);
            }

            // The node always asks a proxy's connection for its token as a cleartext password (DESIGN), so the
            // password goes with the startup packet: one round trip to the node less per session.
            await socket.SendAsync(BuildStartup(startup, databaseId, token), SocketFlags.None, deadline.Token).ConfigureAwait(false);
            using var greeting = new MemoryStream();
            int processId = 0;
            int secretKey = 0;
            string? leader = null;
            byte[] header = new byte[5];
            while (true)
            {
                await ReceiveExactlyAsync(socket, header, deadline.Token).ConfigureAwait(false);
                int length = BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(1));
                if (length < 4 || length > MaxStartupMessage)
                {
                    throw new BackendException("invalid message length from node");
                }

                byte[] body = new byte[length - 4];
                await ReceiveExactlyAsync(socket, body, deadline.Token).ConfigureAwait(false);
                switch ((char)header[0])
                {
                    case 'R':
                        int code = body.Length >= 4 ? BinaryPrimitives.ReadInt32BigEndian(body) : -1;
                        if (code is not (0 or 3))
                        {
                            throw new BackendException("node asked for an unsupported authentication method " + code.ToString(CultureInfo.InvariantCulture));
                        }

                        break;
                    case 'E':
                        (string state, string message) = PgFrames.ParseError(body);
                        throw new BackendException(message, state);
                    case 'K' when body.Length == 8:
                        processId = BinaryPrimitives.ReadInt32BigEndian(body);
                        secretKey = BinaryPrimitives.ReadInt32BigEndian(body.AsSpan(4));
                        break;
                    case 'S':
                        leader = ReadLeader(body) ?? leader;
                        greeting.Write(header);
                        greeting.Write(body);
                        break;
                    case 'Z':
                        greeting.Write(header);
                        greeting.Write(body);
                        return new BackendConnection(socket, replica, greeting.ToArray(), processId, secretKey, leader);
                    default:
                        // NoticeResponse and NegotiateProtocolVersion reach the client as the node sent them.
                        greeting.Write(header);
                        greeting.Write(body);
                        break;
                }
            }
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or BackendException or IOException)
        {
            socket.Dispose();
            if (e is OperationCanceledException && cancellationToken.IsCancellationRequested)
            {
                throw;
            }

            throw e as BackendException ?? new BackendException($"{replica.NodeId} ({replica.PgEndpoint}): {e.Message}");
        }
    }

    /// <summary>Sends a CancelRequest for a node's session; best effort, as in PostgreSQL.</summary>
    public static async Task SendCancelAsync(string endpoint, int processId, int secretKey, CancellationToken cancellationToken)
    {
        (string host, int port) = ParseEndpoint(endpoint);
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(host, port, cancellationToken).ConfigureAwait(false);
        byte[] packet = new byte[16];
        BinaryPrimitives.WriteInt32BigEndian(packet, 16);
        BinaryPrimitives.WriteInt32BigEndian(packet.AsSpan(4), StartupCodes.CancelRequest);
        BinaryPrimitives.WriteInt32BigEndian(packet.AsSpan(8), processId);
        BinaryPrimitives.WriteInt32BigEndian(packet.AsSpan(12), secretKey);
        await socket.SendAsync(packet, SocketFlags.None, cancellationToken).ConfigureAwait(false);

        // No half-close: a server may take the FIN for a vanished client and drop the request unread. It closes
        // after reading the request; waiting for that keeps the cancel ahead of what follows.
        byte[] sink = new byte[1];
        await socket.ReceiveAsync(sink, SocketFlags.None, cancellationToken).ConfigureAwait(false);
    }

    internal static (string Host, int Port) ParseEndpoint(string endpoint)
    {
        string text = endpoint.Contains("://", StringComparison.Ordinal) ? endpoint[(endpoint.IndexOf("://", StringComparison.Ordinal) + 3)..] : endpoint;
        int colon = text.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(text.AsSpan(colon + 1).TrimEnd('/'), NumberStyles.None, CultureInfo.InvariantCulture, out int port) || port is < 1 or > 65535)
        {
            throw new BackendException($"replica endpoint '{endpoint}' is not host:port");
        }

        return (text[..colon].Trim('[', ']'), port);
    }

    private static string? ReadLeader(ReadOnlySpan<byte> body)
    {
        int end = body.IndexOf((byte)0);
        if (end < 0 || !body[..end].SequenceEqual("kdb_leader"u8))
        {
            return null;
        }

        ReadOnlySpan<byte> rest = body[(end + 1)..];
        int valueEnd = rest.IndexOf((byte)0);
        return valueEnd > 0 ? Encoding.UTF8.GetString(rest[..valueEnd]) : null;
    }

    private static byte[] BuildStartup(StartupRequest startup, string databaseId, string token)
    {
        using var body = new MemoryStream();
        void Put(string name, string value)
        {
            body.Write(Encoding.UTF8.GetBytes(name));
            body.WriteByte(0);
            body.Write(Encoding.UTF8.GetBytes(value));
            body.WriteByte(0);
        }

        Put("user", startup.User);
        Put("database", databaseId);
        Put("options", startup.ForwardedOptions.Length == 0 ? "--kdb:proxy=true" : "--kdb:proxy=true " + startup.ForwardedOptions);
        foreach (KeyValuePair<string, string> p in startup.Forwarded)
        {
            Put(p.Key, p.Value);
        }

        body.WriteByte(0);
        int startupLength = 8 + (int)body.Length;
        int passwordLength = 4 + Encoding.UTF8.GetByteCount(token) + 1;
        byte[] packet = new byte[startupLength + 1 + passwordLength];
        BinaryPrimitives.WriteInt32BigEndian(packet, startupLength);
        BinaryPrimitives.WriteInt32BigEndian(packet.AsSpan(4), StartupCodes.ProtocolVersion3);
        body.GetBuffer().AsSpan(0, (int)body.Length).CopyTo(packet.AsSpan(8));
        Span<byte> password = packet.AsSpan(startupLength);
        password[0] = (byte)'p';
        BinaryPrimitives.WriteInt32BigEndian(password[1..], passwordLength);
        Encoding.UTF8.GetBytes(token, password[5..]); // the terminator is the array's last, zeroed byte
        return packet;
    }

    private static async ValueTask ReceiveExactlyAsync(Socket socket, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        while (buffer.Length > 0)
        {
            int n = await socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken).ConfigureAwait(false);
            if (n == 0)
            {
                throw new BackendException("node closed the connection during startup");
            }

            buffer = buffer[n..];
        }
    }
}
