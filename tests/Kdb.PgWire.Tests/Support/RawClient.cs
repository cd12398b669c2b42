using System.Buffers.Binary;
using System.Net.Sockets;
using System.Text;

namespace Kdb.PgWire.Tests.Support;

/// <summary>A scripted protocol peer: writes exact frontend messages and reads backend messages one by one.</summary>
internal sealed class RawClient : IAsyncDisposable
{
    public const string Token = "raw-client-token";

    private readonly TcpClient _tcp;
    private readonly NetworkStream _stream;

    private RawClient(TcpClient tcp)
    {
        _tcp = tcp;
        _stream = tcp.GetStream();
    }

    public static async Task<RawClient> ConnectAsync(int port)
    {
        var tcp = new TcpClient { NoDelay = true };
        await tcp.ConnectAsync("127.0.0.1", port);
        return new RawClient(tcp);
    }

    /// <summary>Connects and logs in with a token password (the server must allow it without TLS on loopback).</summary>
    public static async Task<RawClient> LoginAsync(TestServer server)
    {
        server.Authenticator.AddToken(Token, Kdb.PgWire.Session.PgAuthMethod.DataToken, TestServer.DatabaseName, TestServer.User);
        RawClient c = await ConnectAsync(server.Port);
        await c.SendStartupAsync(("user", TestServer.User), ("database", TestServer.DatabaseName), ("options", "--kdb:jwt=true"));
        (char type, byte[] body) = await c.ReadAsync();
        Assert.Equal('R', type);
        Assert.Equal(3, BinaryPrimitives.ReadInt32BigEndian(body));
        await c.SendAsync('p', CString(Token));
        List<(char, byte[])> messages = await c.ReadUntilReadyAsync();
        Assert.Equal('Z', messages[^1].Item1);
        return c;
    }

    public static byte[] CString(string s) => [.. Encoding.UTF8.GetBytes(s), 0];

    public static byte[] Int16(int v)
    {
        var b = new byte[2];
        BinaryPrimitives.WriteInt16BigEndian(b, (short)v);
        return b;
    }

    public static byte[] Int32(int v)
    {
        var b = new byte[4];
        BinaryPrimitives.WriteInt32BigEndian(b, v);
        return b;
    }

    public Task SendStartupAsync(params (string Name, string Value)[] parameters) => SendStartupAsync(196608, parameters);

    public async Task SendStartupAsync(int version, params (string Name, string Value)[] parameters)
    {
        var body = new List<byte>(Int32(version));
        foreach ((string name, string value) in parameters)
        {
            body.AddRange(CString(name));
            body.AddRange(CString(value));
        }

        body.Add(0);
        await SendRawAsync([.. Int32(body.Count + 4), .. body]);
    }

    public async Task SendAsync(char type, params byte[][] parts)
    {
        int length = 4 + parts.Sum(p => p.Length);
        var frame = new List<byte>(1 + length) { (byte)type };
        frame.AddRange(Int32(length));
        foreach (byte[] p in parts)
        {
            frame.AddRange(p);
        }

        await SendRawAsync([.. frame]);
    }

    public async Task SendRawAsync(byte[] bytes)
    {
        await _stream.WriteAsync(bytes);
        await _stream.FlushAsync();
    }

    public Task QueryAsync(string sql) => SendAsync('Q', CString(sql));

    public Task ParseAsync(string name, string sql, params uint[] types) =>
        SendAsync('P', CString(name), CString(sql), Int16(types.Length), [.. types.SelectMany(t => Int32((int)t))]);

    public Task BindAsync(string portal, string statement, short[] paramFormats, byte[]?[] values, short[] resultFormats)
    {
        var body = new List<byte>();
        body.AddRange(CString(portal));
        body.AddRange(CString(statement));
        body.AddRange(Int16(paramFormats.Length));
        foreach (short f in paramFormats)
        {
            body.AddRange(Int16(f));
        }

        body.AddRange(Int16(values.Length));
        foreach (byte[]? v in values)
        {
            body.AddRange(Int32(v?.Length ?? -1));
            body.AddRange(v ?? []);
        }

        body.AddRange(Int16(resultFormats.Length));
        foreach (short f in resultFormats)
        {
            body.AddRange(Int16(f));
        }

        return SendAsync('B', [.. body]);
    }

    public Task DescribeAsync(char kind, string name) => SendAsync('D', [(byte)kind], CString(name));

    public Task ExecuteAsync(string portal, int maxRows) => SendAsync('E', CString(portal), Int32(maxRows));

    public Task CloseAsync(char kind, string name) => SendAsync('C', [(byte)kind], CString(name));

    public Task SyncAsync() => SendAsync('S');

    public Task FlushAsync() => SendAsync('H');

    /// <summary>The next backend message; ('\0', []) when the server closed the connection.</summary>
    public async Task<(char Type, byte[] Body)> ReadAsync(int timeoutSeconds = 30)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(timeoutSeconds));
        byte[] header = new byte[5];
        if (!await FillAsync(header, cts.Token))
        {
            return ('\0', []);
        }

        int length = BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(1));
        Assert.InRange(length, 4, 64 * 1024 * 1024);
        byte[] body = new byte[length - 4];
        Assert.True(await FillAsync(body, cts.Token), "connection closed inside a message");
        return ((char)header[0], body);
    }

    /// <summary>Reads one byte, for the SSLRequest answer.</summary>
    public async Task<int> ReadByteAsync()
    {
        byte[] one = new byte[1];
        return await FillAsync(one, CancellationToken.None) ? one[0] : -1;
    }

    public async Task<List<(char Type, byte[] Body)>> ReadUntilReadyAsync()
    {
        var list = new List<(char, byte[])>();
        while (true)
        {
            (char type, byte[] body) m = await ReadAsync();
            list.Add(m);
            if (m.type is 'Z' or '\0')
            {
                return list;
            }
        }
    }

    /// <summary>True when the server closes the connection (reading to EOF) within the timeout.</summary>
    public async Task<bool> ClosedByServerAsync(int timeoutSeconds = 30)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(timeoutSeconds));
        byte[] buffer = new byte[8192];
        try
        {
            while (true)
            {
                int n = await _stream.ReadAsync(buffer, cts.Token);
                if (n == 0)
                {
                    return true;
                }
            }
        }
        catch (IOException)
        {
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    public void ShutdownSend() => _tcp.Client.Shutdown(SocketShutdown.Send);

    private async Task<bool> FillAsync(byte[] buffer, CancellationToken cancellationToken)
    {
        int read = 0;
        while (read < buffer.Length)
        {
            int n;
            try
            {
                n = await _stream.ReadAsync(buffer.AsMemory(read), cancellationToken);
            }
            catch (IOException)
            {
                n = 0;
            }

            if (n == 0)
            {
                return false;
            }

            read += n;
        }

        return true;
    }

    /// <summary>The fields of an ErrorResponse or NoticeResponse by code.</summary>
    public static Dictionary<char, string> Fields(byte[] body)
    {
        var fields = new Dictionary<char, string>();
        int i = 0;
        while (i < body.Length && body[i] != 0)
        {
            char code = (char)body[i++];
            int end = Array.IndexOf(body, (byte)0, i);
            fields[code] = Encoding.UTF8.GetString(body, i, end - i);
            i = end + 1;
        }

        return fields;
    }

    public static string Types(IEnumerable<(char Type, byte[] Body)> messages) => new([.. messages.Select(m => m.Type)]);

    public async ValueTask DisposeAsync()
    {
        await _stream.DisposeAsync();
        _tcp.Dispose();
    }
}
