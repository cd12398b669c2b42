using System.Buffers.Binary;
using System.Text;
using Kdb.PgWire.Server;
using Kdb.PgWire.Tests.Support;

namespace Kdb.PgWire.Tests;

/// <summary>Edge cases of the protocol driven by a scripted peer, checked message by message.</summary>
public sealed class FakeClientTests : IAsyncLifetime
{
    private TestServer _server = null!;

    public Task InitializeAsync()
    {
        _server = new TestServer(new PgServerOptions { AllowTokenPasswordsWithoutTlsOnLoopback = true, MaxMessageSize = 1024 * 1024 });
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private static string Code((char Type, byte[] Body) m) => RawClient.Fields(m.Body)['C'];

    [Fact]
    public async Task Pipeline_ErrorInFirstStatement_SkipsToSyncThenNextBatchRuns()
    {
        await using RawClient c = await RawClient.LoginAsync(_server);
        await c.ParseAsync(string.Empty, "SELECT nonsense");
        await c.BindAsync(string.Empty, string.Empty, [], [], []);
        await c.ExecuteAsync(string.Empty, 0);
        await c.ParseAsync("s2", "SELECT 1");
        await c.SyncAsync();
        await c.ParseAsync(string.Empty, "SELECT 5");
        await c.BindAsync(string.Empty, string.Empty, [], [], []);
        await c.ExecuteAsync(string.Empty, 0);
        await c.SyncAsync();

        List<(char Type, byte[] Body)> first = await c.ReadUntilReadyAsync();
        Assert.Equal("EZ", RawClient.Types(first));
        Assert.Equal("42703", Code(first[0]));
        Assert.Equal('I', (char)first[1].Body[0]);
        List<(char Type, byte[] Body)> second = await c.ReadUntilReadyAsync();
        Assert.Equal("12DCZ", RawClient.Types(second));
        Assert.Equal("5", Encoding.UTF8.GetString(second[2].Body, 6, 1));

        // s2 was skipped, so it does not exist.
        await c.DescribeAsync('S', "s2");
        await c.SyncAsync();
        List<(char Type, byte[] Body)> third = await c.ReadUntilReadyAsync();
        Assert.Equal("26000", Code(third[0]));
    }

    [Fact]
    public async Task Execute_RowLimit_SuspendsAndResumesPortal()
    {
        await using RawClient c = await RawClient.LoginAsync(_server);
        await c.ParseAsync("series", "SELECT * FROM generate_series(1, 5)");
        await c.BindAsync("cur", "series", [], [], [1]);
        await c.DescribeAsync('P', "cur");
        await c.ExecuteAsync("cur", 2);
        await c.ExecuteAsync("cur", 2);
        await c.ExecuteAsync("cur", 2);
        await c.SyncAsync();
        List<(char Type, byte[] Body)> m = await c.ReadUntilReadyAsync();
        Assert.Equal("12TDDsDDsDCZ", RawClient.Types(m));
        int[] values = [.. m.Where(x => x.Type == 'D').Select(x => BinaryPrimitives.ReadInt32BigEndian(x.Body.AsSpan(6)))];
        Assert.Equal([1, 2, 3, 4, 5], values);
        Assert.Equal("SELECT 1\0", Encoding.UTF8.GetString(m[^2].Body));

        // Binary format was requested for the column: RowDescription says so (format code at the end).
        byte[] rd = m[2].Body;
        Assert.Equal(1, BinaryPrimitives.ReadInt16BigEndian(rd.AsSpan(rd.Length - 2)));
        Assert.Equal(23u, BinaryPrimitives.ReadUInt32BigEndian(rd.AsSpan(rd.Length - 12)));
    }

    [Fact]
    public async Task Close_UnknownNames_CloseCompleteWithoutError()
    {
        await using RawClient c = await RawClient.LoginAsync(_server);
        await c.CloseAsync('S', "never-prepared");
        await c.CloseAsync('P', "never-bound");
        await c.SyncAsync();
        Assert.Equal("33Z", RawClient.Types(await c.ReadUntilReadyAsync()));
    }

    [Fact]
    public async Task OutOfOrder_BindBeforeParse_Reports26000()
    {
        await using RawClient c = await RawClient.LoginAsync(_server);
        await c.BindAsync(string.Empty, "missing", [], [], []);
        await c.ExecuteAsync(string.Empty, 0);
        await c.SyncAsync();
        List<(char Type, byte[] Body)> m = await c.ReadUntilReadyAsync();
        Assert.Equal("EZ", RawClient.Types(m));
        Assert.Equal("26000", Code(m[0]));
        Assert.Equal("prepared statement \"missing\" does not exist", RawClient.Fields(m[0].Body)['M']);
    }

    [Fact]
    public async Task OutOfOrder_ExecuteWithoutBind_Reports34000()
    {
        await using RawClient c = await RawClient.LoginAsync(_server);
        await c.ExecuteAsync("nope", 0);
        await c.SyncAsync();
        List<(char Type, byte[] Body)> m = await c.ReadUntilReadyAsync();
        Assert.Equal("34000", Code(m[0]));
    }

    [Fact]
    public async Task OutOfOrder_PasswordMessageAfterLogin_FatalAndClosed()
    {
        await using RawClient c = await RawClient.LoginAsync(_server);
        await c.SendAsync('p', RawClient.CString("again"));
        (char type, byte[] body) = await c.ReadAsync();
        Assert.Equal('E', type);
        Assert.Equal("08P01", RawClient.Fields(body)['C']);
        Assert.Equal("FATAL", RawClient.Fields(body)['S']);
        Assert.True(await c.ClosedByServerAsync());
    }

    [Fact]
    public async Task Parse_DuplicateName_Reports42P05()
    {
        await using RawClient c = await RawClient.LoginAsync(_server);
        await c.ParseAsync("dup", "SELECT 1");
        await c.ParseAsync("dup", "SELECT 2");
        await c.SyncAsync();
        List<(char Type, byte[] Body)> m = await c.ReadUntilReadyAsync();
        Assert.Equal("1EZ", RawClient.Types(m));
        Assert.Equal("42P05", Code(m[1]));
    }

    [Fact]
    public async Task Bind_WrongParameterCount_Reports08P01()
    {
        await using RawClient c = await RawClient.LoginAsync(_server);
        await c.ParseAsync("p", "SELECT $1::int4", 23);
        await c.BindAsync(string.Empty, "p", [], [], []);
        await c.SyncAsync();
        List<(char Type, byte[] Body)> m = await c.ReadUntilReadyAsync();
        Assert.Equal("1EZ", RawClient.Types(m));
        Assert.Equal("08P01", Code(m[1]));
        Assert.Equal("bind message supplies 0 parameters, but prepared statement \"p\" requires 1", RawClient.Fields(m[1].Body)['M']);
    }

    [Fact]
    public async Task Bind_UnnamedPortalReboundManyTimesBesideNamedOne_EachExecuteSeesItsOwnValues()
    {
        // The unnamed portal's holder and parameter buffer are recycled on every Bind: a named portal bound in between,
        // and a failed batch, must not see another portal's values.
        await using RawClient c = await RawClient.LoginAsync(_server);
        await c.ParseAsync("p", "SELECT $1::int8", 20);
        string[] sent = ["1", "22", "-9", " 12 ", "+5"];
        await BindTextAsync(c, string.Empty, sent[0]);
        await c.ExecuteAsync(string.Empty, 0);
        await BindTextAsync(c, "named", "77");
        foreach (string value in sent[1..])
        {
            await BindTextAsync(c, string.Empty, value);
            await c.ExecuteAsync(string.Empty, 0);
        }

        await c.ExecuteAsync("named", 0);
        await c.SyncAsync();
        List<(char Type, byte[] Body)> first = await c.ReadUntilReadyAsync();
        Assert.Equal(["1", "22", "-9", "12", "5", "77"], DataRowTexts(first));

        await BindTextAsync(c, string.Empty, "99999999999999999999");
        await c.ExecuteAsync(string.Empty, 0);
        await c.SyncAsync();
        List<(char Type, byte[] Body)> failed = await c.ReadUntilReadyAsync();
        Assert.Equal("2EZ", RawClient.Types(failed));
        Assert.Equal("22003", Code(failed[1]));

        await BindTextAsync(c, string.Empty, "3");
        await c.ExecuteAsync(string.Empty, 0);
        await c.SyncAsync();
        Assert.Equal(["3"], DataRowTexts(await c.ReadUntilReadyAsync()));
    }

    private static Task BindTextAsync(RawClient c, string portal, string value) =>
        c.BindAsync(portal, "p", [], [Encoding.ASCII.GetBytes(value)], []);

    private static string[] DataRowTexts(List<(char Type, byte[] Body)> messages) =>
        [.. messages.Where(m => m.Type == 'D').Select(m => Encoding.ASCII.GetString(m.Body, 6, BinaryPrimitives.ReadInt32BigEndian(m.Body.AsSpan(2))))];

    [Fact]
    public async Task Bind_TruncatedBinaryInt4_Reports22P03()
    {
        await using RawClient c = await RawClient.LoginAsync(_server);
        await c.ParseAsync("p", "SELECT $1::int4", 23);
        await c.BindAsync(string.Empty, "p", [1], [[0, 1]], []);
        await c.ExecuteAsync(string.Empty, 0);
        await c.SyncAsync();
        List<(char Type, byte[] Body)> m = await c.ReadUntilReadyAsync();
        Assert.Equal("12EZ", RawClient.Types(m));
        Assert.Equal("22P03", Code(m[2]));
    }

    [Fact]
    public async Task Describe_Statement_ParameterAndRowDescription()
    {
        await using RawClient c = await RawClient.LoginAsync(_server);
        await c.ParseAsync("d", "SELECT $1::uuid, $2", 0, 0);
        await c.DescribeAsync('S', "d");
        await c.ParseAsync("n", "DELETE FROM items");
        await c.DescribeAsync('S', "n");
        await c.SyncAsync();
        List<(char Type, byte[] Body)> m = await c.ReadUntilReadyAsync();
        Assert.Equal("1tT1tnZ", RawClient.Types(m));
        byte[] pd = m[1].Body;
        Assert.Equal(2, BinaryPrimitives.ReadInt16BigEndian(pd));
        Assert.Equal(2950u, BinaryPrimitives.ReadUInt32BigEndian(pd.AsSpan(2)));
        Assert.Equal(25u, BinaryPrimitives.ReadUInt32BigEndian(pd.AsSpan(6)));
    }

    [Fact]
    public async Task Flush_WithoutSync_DeliversPendingResponses()
    {
        await using RawClient c = await RawClient.LoginAsync(_server);
        await c.ParseAsync("f", "SELECT 1");
        await c.FlushAsync();
        (char type, _) = await c.ReadAsync();
        Assert.Equal('1', type);
        await c.SyncAsync();
        Assert.Equal("Z", RawClient.Types(await c.ReadUntilReadyAsync()));
    }

    [Fact]
    public async Task SimpleQuery_Empty_EmptyQueryResponse()
    {
        await using RawClient c = await RawClient.LoginAsync(_server);
        await c.QueryAsync("  ;  ");
        Assert.Equal("IZ", RawClient.Types(await c.ReadUntilReadyAsync()));
    }

    [Fact]
    public async Task SimpleQuery_TransactionStatus_ReportsITE()
    {
        await using RawClient c = await RawClient.LoginAsync(_server);
        await c.QueryAsync("BEGIN");
        Assert.Equal('T', (char)(await c.ReadUntilReadyAsync())[^1].Body[0]);
        await c.QueryAsync("SELECT raise_error()");
        Assert.Equal('E', (char)(await c.ReadUntilReadyAsync())[^1].Body[0]);
        await c.QueryAsync("ROLLBACK");
        Assert.Equal('I', (char)(await c.ReadUntilReadyAsync())[^1].Body[0]);
    }

    [Fact]
    public async Task CopyIn_CopyFail_Reports57014AndIgnoresLateCopyData()
    {
        await using RawClient c = await RawClient.LoginAsync(_server);
        await c.QueryAsync("COPY items FROM STDIN");
        (char type, _) = await c.ReadAsync();
        Assert.Equal('G', type);
        await c.SendAsync('d', Encoding.UTF8.GetBytes("1\tx\n"));
        await c.SendAsync('f', RawClient.CString("client gave up"));
        List<(char Type, byte[] Body)> m = await c.ReadUntilReadyAsync();
        Assert.Equal("EZ", RawClient.Types(m));
        Assert.Equal("57014", Code(m[0]));
        Assert.Equal("COPY from stdin failed: client gave up", RawClient.Fields(m[0].Body)['M']);
        await c.SendAsync('d', Encoding.UTF8.GetBytes("late\n"));
        await c.SendAsync('c');
        await c.QueryAsync("SELECT 1");
        Assert.Equal("TDCZ", RawClient.Types(await c.ReadUntilReadyAsync()));
    }

    [Fact]
    public async Task Startup_NewerMinorAndPqOption_NegotiateProtocolVersion()
    {
        await using RawClient c = await RawClient.ConnectAsync(_server.Port);
        await c.SendStartupAsync((3 << 16) | 2, ("user", TestServer.User), ("database", TestServer.DatabaseName), ("_pq_.fancy", "1"));
        (char type, byte[] body) = await c.ReadAsync();
        Assert.Equal('v', type);
        Assert.Equal(3 << 16, BinaryPrimitives.ReadInt32BigEndian(body));
        Assert.Equal(1, BinaryPrimitives.ReadInt32BigEndian(body.AsSpan(4)));
        Assert.Equal("_pq_.fancy\0", Encoding.UTF8.GetString(body, 8, body.Length - 8));
        (type, body) = await c.ReadAsync();
        Assert.Equal('R', type);
        Assert.Equal(10, BinaryPrimitives.ReadInt32BigEndian(body)); // SASL
    }

    [Fact]
    public async Task Startup_ProtocolVersion2_Fatal0A000()
    {
        await using RawClient c = await RawClient.ConnectAsync(_server.Port);
        await c.SendStartupAsync(2 << 16, ("user", TestServer.User));
        (char type, byte[] body) = await c.ReadAsync();
        Assert.Equal('E', type);
        Assert.Equal("0A000", RawClient.Fields(body)['C']);
        Assert.True(await c.ClosedByServerAsync());
    }

    [Fact]
    public async Task Startup_NoUser_Fatal28000()
    {
        await using RawClient c = await RawClient.ConnectAsync(_server.Port);
        await c.SendStartupAsync(("database", "x"));
        (char type, byte[] body) = await c.ReadAsync();
        Assert.Equal('E', type);
        Assert.Equal("28000", RawClient.Fields(body)['C']);
    }

    [Fact]
    public async Task Startup_GssEncThenSsl_BothRefusedWithN()
    {
        await using RawClient c = await RawClient.ConnectAsync(_server.Port);
        await c.SendRawAsync([.. RawClient.Int32(8), .. RawClient.Int32(80877104)]);
        Assert.Equal('N', await c.ReadByteAsync());
        await c.SendRawAsync([.. RawClient.Int32(8), .. RawClient.Int32(80877103)]);
        Assert.Equal('N', await c.ReadByteAsync());
        await c.SendStartupAsync(("user", TestServer.User));
        (char type, _) = await c.ReadAsync();
        Assert.Equal('R', type);
    }

    [Fact]
    public async Task CancelRequest_WrongKey_Ignored()
    {
        await using RawClient c = await RawClient.LoginAsync(_server);
        await using RawClient cancel = await RawClient.ConnectAsync(_server.Port);
        await cancel.SendRawAsync([.. RawClient.Int32(16), .. RawClient.Int32(80877102), .. RawClient.Int32(1), .. RawClient.Int32(2)]);
        Assert.True(await cancel.ClosedByServerAsync());
        await c.QueryAsync("SELECT 1");
        Assert.Equal("TDCZ", RawClient.Types(await c.ReadUntilReadyAsync()));
    }

    [Fact]
    public async Task Message_OverMaxSize_FatalAndServerKeepsServing()
    {
        await using RawClient c = await RawClient.LoginAsync(_server);
        await c.SendRawAsync([(byte)'Q', .. RawClient.Int32(2 * 1024 * 1024)]);
        (char type, byte[] body) = await c.ReadAsync();
        Assert.Equal('E', type);
        Assert.Equal("08P01", RawClient.Fields(body)['C']);
        Assert.True(await c.ClosedByServerAsync());
        await using RawClient other = await RawClient.LoginAsync(_server);
        await other.QueryAsync("SELECT 1");
        Assert.Equal("TDCZ", RawClient.Types(await other.ReadUntilReadyAsync()));
    }

    [Fact]
    public async Task Terminate_ClosesConnectionAndReleasesSession()
    {
        await using RawClient c = await RawClient.LoginAsync(_server);
        await c.SendAsync('X');
        Assert.True(await c.ClosedByServerAsync());
        await NpgsqlProtocolTests.WaitForAsync(() => _server.Database.OpenSessions == 0 && _server.Handler.ActiveSessions == 0);
    }

    [Fact]
    public async Task IdleSessionTimeout_Expires_Fatal57P05()
    {
        await using var server = new TestServer(new PgServerOptions { AllowTokenPasswordsWithoutTlsOnLoopback = true, IdleSessionTimeout = TimeSpan.FromMilliseconds(200) });
        await using RawClient c = await RawClient.LoginAsync(server);
        (char type, byte[] body) = await c.ReadAsync();
        Assert.Equal('E', type);
        Assert.Equal("57P05", RawClient.Fields(body)['C']);
        Assert.True(await c.ClosedByServerAsync());
    }

    [Fact]
    public async Task IdleSessionTimeout_InsideTransaction_DoesNotExpire()
    {
        // The timeout must outlast the gap between login and BEGIN even on a loaded machine (outside a
        // transaction it would rightly fire); the wait inside the transaction is several timeouts long.
        await using var server = new TestServer(new PgServerOptions { AllowTokenPasswordsWithoutTlsOnLoopback = true, IdleSessionTimeout = TimeSpan.FromMilliseconds(1500) });
        await using RawClient c = await RawClient.LoginAsync(server);
        await c.QueryAsync("BEGIN");
        Assert.Equal('T', (char)(await c.ReadUntilReadyAsync())[^1].Body[0]);
        await Task.Delay(4500);
        await c.QueryAsync("COMMIT");
        List<(char Type, byte[] Body)> m = await c.ReadUntilReadyAsync();
        Assert.Equal("CZ", RawClient.Types(m));
        Assert.Equal('I', (char)m[^1].Body[0]);
    }

    [Fact]
    public async Task Backpressure_ClientStopsReading_ProducerStopsAndConnectionCleansUp()
    {
        await using RawClient c = await RawClient.LoginAsync(_server);
        await c.QueryAsync("SELECT * FROM generate_series(1, 100000000)");

        // Wait until production stalls: the server must block on the full socket instead of buffering.
        long last = -1;
        for (int i = 0; i < 200; i++)
        {
            await Task.Delay(100);
            long now = Interlocked.Read(ref _server.Database.RowsProduced);
            if (now == last && now > 0)
            {
                break;
            }

            last = now;
        }

        long stalled = Interlocked.Read(ref _server.Database.RowsProduced);
        Assert.InRange(stalled, 1, 5_000_000);
        await c.DisposeAsync();
        await NpgsqlProtocolTests.WaitForAsync(() => _server.Handler.ActiveSessions == 0);
    }
}
