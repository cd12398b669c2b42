using System.Buffers.Binary;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;

namespace Kdb.Node.Tests.Standalone;

/// <summary>
/// A scripted PostgreSQL client on a raw socket: a real SCRAM-SHA-256 login, then arbitrary (also malformed)
/// messages, reading whatever the server answers. For fuzzing and protocol edge cases.
/// </summary>
internal sealed class RawPgClient : IAsyncDisposable
{
    private readonly TcpClient _tcp;
    private readonly NetworkStream _stream;

    private RawPgClient(TcpClient tcp)
    {
        _tcp = tcp;
        _stream = tcp.GetStream();
    }

    public static async Task<RawPgClient> ConnectAsync(int port)
    {
        var tcp = new TcpClient { NoDelay = true };
        await tcp.ConnectAsync("127.0.0.1", port);
        return new RawPgClient(tcp);
    }

    /// <summary>Connects and logs in with SCRAM-SHA-256; returns after the first ReadyForQuery.</summary>
    public static async Task<RawPgClient> LoginAsync(int port, string user, string password, string database)
    {
        var c = await ConnectAsync(port);
        var body = new List<byte>();
        body.AddRange(BigEndian(196608));
        foreach (var (k, v) in new[] { ("user", user), ("database", database) })
        {
            body.AddRange(Encoding.UTF8.GetBytes(k));
            body.Add(0);
            body.AddRange(Encoding.UTF8.GetBytes(v));
            body.Add(0);
        }

        body.Add(0);
        await c.SendRawAsync([.. BigEndian(body.Count + 4), .. body]);
        var (type, payload) = await c.ReadAsync();
        Expect(type == 'R' && BinaryPrimitives.ReadInt32BigEndian(payload) == 10, "AuthenticationSASL", type, payload);

        var nonce = Convert.ToBase64String(RandomNumberGenerator.GetBytes(18));
        var clientFirstBare = "n=,r=" + nonce;
        var first = Encoding.UTF8.GetBytes("n,," + clientFirstBare);
        await c.SendAsync('p', [.. Encoding.UTF8.GetBytes("SCRAM-SHA-256"), 0, .. BigEndian(first.Length), .. first]);
        (type, payload) = await c.ReadAsync();
        Expect(type == 'R' && BinaryPrimitives.ReadInt32BigEndian(payload) == 11, "AuthenticationSASLContinue", type, payload);
        var serverFirst = Encoding.UTF8.GetString(payload.AsSpan(4));
        var fields = serverFirst.Split(',').ToDictionary(f => f[..1], f => f[2..]);
        var salted = Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes(password), Convert.FromBase64String(fields["s"]), int.Parse(fields["i"], System.Globalization.CultureInfo.InvariantCulture), HashAlgorithmName.SHA256, 32);
        var clientKey = HMACSHA256.HashData(salted, "Client Key"u8);
        var storedKey = SHA256.HashData(clientKey);
        var finalWithoutProof = "c=biws,r=" + fields["r"];
        var authMessage = Encoding.UTF8.GetBytes(clientFirstBare + "," + serverFirst + "," + finalWithoutProof);
        var signature = HMACSHA256.HashData(storedKey, authMessage);
        var proof = new byte[clientKey.Length];
        for (var i = 0; i < proof.Length; i++)
        {
            proof[i] = (byte)(clientKey[i] ^ signature[i]);
        }

        await c.SendAsync('p', Encoding.UTF8.GetBytes(finalWithoutProof + ",p=" + Convert.ToBase64String(proof)));
        while (true)
        {
            (type, payload) = await c.ReadAsync();
            Expect(type != 'E' && type != '\0', "login to complete", type, payload);
            if (type == 'Z')
            {
                return c;
            }
        }
    }

    public async Task SendRawAsync(byte[] bytes)
    {
        await _stream.WriteAsync(bytes);
        await _stream.FlushAsync();
    }

    public Task SendAsync(char type, byte[] body) => SendRawAsync([(byte)type, .. BigEndian(body.Length + 4), .. body]);

    public Task QueryAsync(string sql) => SendAsync('Q', [.. Encoding.UTF8.GetBytes(sql), 0]);

    public void ShutdownSend() => _tcp.Client.Shutdown(SocketShutdown.Send);

    /// <summary>The next message, or ('\0', []) when the server closed the connection. Fails after 30 s of silence.</summary>
    public async Task<(char Type, byte[] Body)> ReadAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var header = new byte[5];
        try
        {
            if (!await ReadExactlyAsync(header, timeout.Token))
            {
                return ('\0', []);
            }

            var length = BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(1));
            if (length < 4 || length > 64 << 20)
            {
                throw new InvalidDataException($"server sent a malformed message: type {(char)header[0]}, length {length}");
            }

            var body = new byte[length - 4];
            return await ReadExactlyAsync(body, timeout.Token) ? ((char)header[0], body) : throw new InvalidDataException("server closed inside a message");
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException("the server neither answered nor closed within 30 s");
        }
        catch (IOException)
        {
            return ('\0', []);
        }
    }

    /// <summary>Reads until ReadyForQuery (returns true) or the end of the connection (false), collecting message types.</summary>
    public async Task<(bool Ready, string Types)> ReadUntilReadyAsync()
    {
        var types = new StringBuilder();
        while (true)
        {
            var (type, _) = await ReadAsync();
            types.Append(type);
            if (type == 'Z')
            {
                return (true, types.ToString());
            }

            if (type == '\0')
            {
                return (false, types.ToString());
            }
        }
    }

    public static string ErrorField(byte[] body, char field)
    {
        var i = 0;
        while (i < body.Length && body[i] != 0)
        {
            var code = (char)body[i];
            var end = Array.IndexOf(body, (byte)0, i + 1);
            if (code == field)
            {
                return Encoding.UTF8.GetString(body, i + 1, end - i - 1);
            }

            i = end + 1;
        }

        return string.Empty;
    }

    public static byte[] BigEndian(int value)
    {
        var b = new byte[4];
        BinaryPrimitives.WriteInt32BigEndian(b, value);
        return b;
    }

    private async Task<bool> ReadExactlyAsync(byte[] buffer, CancellationToken ct)
    {
        var read = 0;
        while (read < buffer.Length)
        {
            var n = await _stream.ReadAsync(buffer.AsMemory(read), ct);
            if (n == 0)
            {
                return false;
            }

            read += n;
        }

        return true;
    }

    private static void Expect(bool condition, string what, char type, byte[] payload)
    {
        if (!condition)
        {
            throw new InvalidOperationException($"expected {what}, got '{type}' {(type == 'E' ? ErrorField(payload, 'M') : Convert.ToHexString(payload.AsSpan(0, Math.Min(payload.Length, 32))))}");
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            _tcp.Dispose();
        }
        catch (SocketException)
        {
        }

        await Task.CompletedTask;
    }
}
