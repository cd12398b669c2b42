using System.Text;
using Kdb.PgWire.Server;
using Kdb.PgWire.Tests.Support;

namespace Kdb.PgWire.Tests;

/// <summary>
/// Random, truncated and oversized input at every protocol state: the server answers with well-formed
/// messages (an ErrorResponse among them) or closes, never hangs, keeps serving others and leaks no
/// session. Seeds are printed in failures. KDB_SOAK=1 runs ten times more cases.
/// </summary>
public sealed class FuzzTests : IAsyncLifetime
{
    private const string BackendTypes = "RKSZTDCENI123ntsGHdcv";
    private static readonly int Iterations = Environment.GetEnvironmentVariable("KDB_SOAK") == "1" ? 400 : 40;
    private TestServer _server = null!;

    public enum State
    {
        Startup,
        Idle,
        InExtendedBatch,
        PortalSuspended,
        InCopyIn,
        FailedTransaction,
    }

    public Task InitializeAsync()
    {
        _server = new TestServer(new PgServerOptions { AllowTokenPasswordsWithoutTlsOnLoopback = true, MaxMessageSize = 1024 * 1024 });
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Theory]
    [InlineData(State.Startup)]
    [InlineData(State.Idle)]
    [InlineData(State.InExtendedBatch)]
    [InlineData(State.PortalSuspended)]
    [InlineData(State.InCopyIn)]
    [InlineData(State.FailedTransaction)]
    public async Task GarbageThenHalfClose_ServerAnswersWellFormedAndCloses(State state)
    {
        int baseSeed = Environment.TickCount;
        for (int i = 0; i < Iterations; i++)
        {
            int seed = baseSeed + i;
            var rnd = new Random(seed);
            await using RawClient c = await ReachAsync(state);
            await c.SendRawAsync(Mutation(rnd, out string kind));
            c.ShutdownSend();
            await DrainToEndAsync(c, $"state {state}, {kind}, seed {seed}");
        }

        await AssertServerHealthyAsync();
    }

    [Theory]
    [InlineData(State.Idle)]
    [InlineData(State.InExtendedBatch)]
    [InlineData(State.PortalSuspended)]
    [InlineData(State.FailedTransaction)]
    public async Task RandomBodiesThenSync_ServerRecoversOrCloses(State state)
    {
        int baseSeed = Environment.TickCount;
        for (int i = 0; i < Iterations; i++)
        {
            int seed = baseSeed + i;
            var rnd = new Random(seed);
            await using RawClient c = await ReachAsync(state);
            char type = "QPBDECHSdcf"[rnd.Next(11)];
            await c.SendAsync(type, RandomBody(rnd));
            await c.SyncAsync();
            string context = $"state {state}, type {type}, seed {seed}";
            bool sawReady = false;
            while (true)
            {
                (char t, _) = await ReadValidAsync(c, context);
                if (t is 'Z' or '\0')
                {
                    sawReady = t == 'Z';
                    break;
                }
            }

            if (sawReady)
            {
                // The connection is still in a usable state: it must answer a query. (A COPY or batch state
                // left behind is fine as long as a Sync or Query brings it back.)
                await c.QueryAsync("SELECT 1");
                await c.SyncAsync();
                (char t, _) = await ReadValidAsync(c, context);
                while (t is not ('Z' or '\0'))
                {
                    (t, _) = await ReadValidAsync(c, context);
                }
            }
        }

        await AssertServerHealthyAsync();
    }

    private async Task<RawClient> ReachAsync(State state)
    {
        if (state == State.Startup)
        {
            return await RawClient.ConnectAsync(_server.Port);
        }

        RawClient c = await RawClient.LoginAsync(_server);
        switch (state)
        {
            case State.InExtendedBatch:
                await c.ParseAsync("x", "SELECT $1::int4", 23);
                break;
            case State.PortalSuspended:
                await c.ParseAsync("s", "SELECT * FROM generate_series(1, 10)");
                await c.BindAsync("p", "s", [], [], []);
                await c.ExecuteAsync("p", 1);
                await c.FlushAsync();
                Assert.Equal('1', (await c.ReadAsync()).Type);
                Assert.Equal('2', (await c.ReadAsync()).Type);
                Assert.Equal('D', (await c.ReadAsync()).Type);
                Assert.Equal('s', (await c.ReadAsync()).Type);
                break;
            case State.InCopyIn:
                await c.QueryAsync("COPY items FROM STDIN");
                Assert.Equal('G', (await c.ReadAsync()).Type);
                break;
            case State.FailedTransaction:
                await c.QueryAsync("BEGIN");
                await c.ReadUntilReadyAsync();
                await c.QueryAsync("SELECT raise_error()");
                Assert.Equal('E', (char)(await c.ReadUntilReadyAsync())[^1].Body[0]);
                break;
        }

        return c;
    }

    private static byte[] Mutation(Random rnd, out string kind)
    {
        switch (rnd.Next(4))
        {
            case 0:
                kind = "random bytes";
                byte[] bytes = new byte[rnd.Next(1, 2000)];
                rnd.NextBytes(bytes);
                return bytes;
            case 1:
                kind = "typed message with random body";
                byte[] body = RandomBody(rnd);
                return [(byte)"QPBDECHSXdcfp"[rnd.Next(13)], .. RawClient.Int32(body.Length + 4), .. body];
            case 2:
                kind = "truncated message";
                byte[] part = RandomBody(rnd);
                return [(byte)"QPBDE"[rnd.Next(5)], .. RawClient.Int32(part.Length + 4 + rnd.Next(1, 100_000)), .. part];
            default:
                kind = "oversized length";
                return [(byte)"QPBd"[rnd.Next(4)], .. RawClient.Int32(rnd.Next(2 * 1024 * 1024, int.MaxValue))];
        }
    }

    /// <summary>Random body, sometimes shaped like real fields (C strings and small int16 counts) to get past the first checks.</summary>
    private static byte[] RandomBody(Random rnd)
    {
        if (rnd.Next(2) == 0)
        {
            byte[] raw = new byte[rnd.Next(0, 300)];
            rnd.NextBytes(raw);
            return raw;
        }

        var parts = new List<byte>();
        int fields = rnd.Next(1, 8);
        for (int f = 0; f < fields; f++)
        {
            switch (rnd.Next(4))
            {
                case 0:
                    parts.AddRange(RawClient.CString(rnd.Next(3) == 0 ? string.Empty : "SELECT $1::int4"));
                    break;
                case 1:
                    parts.AddRange(RawClient.Int16(rnd.Next(-2, 4)));
                    break;
                case 2:
                    parts.AddRange(RawClient.Int32(rnd.Next(-2, 40)));
                    break;
                default:
                    byte[] junk = new byte[rnd.Next(0, 12)];
                    rnd.NextBytes(junk);
                    parts.AddRange(junk);
                    break;
            }
        }

        return [.. parts];
    }

    private static async Task<(char Type, byte[] Body)> ReadValidAsync(RawClient c, string context)
    {
        (char type, byte[] body) m = await c.ReadAsync();
        Assert.True(m.type == '\0' || BackendTypes.Contains(m.type, StringComparison.Ordinal), $"unexpected backend message '{m.type}' ({context})");
        if (m.type == 'E')
        {
            Dictionary<char, string> fields = RawClient.Fields(m.body);
            Assert.True(fields.ContainsKey('C') && fields.ContainsKey('M') && fields.ContainsKey('S'), $"malformed ErrorResponse ({context})");
        }

        return m;
    }

    private static async Task DrainToEndAsync(RawClient c, string context)
    {
        for (int n = 0; n < 10_000; n++)
        {
            (char type, _) = await ReadValidAsync(c, context);
            if (type == '\0')
            {
                return;
            }
        }

        Assert.Fail($"server kept talking after the client closed ({context})");
    }

    private async Task AssertServerHealthyAsync()
    {
        await using (RawClient probe = await RawClient.LoginAsync(_server))
        {
            await probe.QueryAsync("SELECT 'still serving'");
            List<(char Type, byte[] Body)> m = await probe.ReadUntilReadyAsync();
            Assert.Equal("TDCZ", RawClient.Types(m));
            Assert.Contains("still serving", Encoding.UTF8.GetString(m[1].Body), StringComparison.Ordinal);
        }

        await NpgsqlProtocolTests.WaitForAsync(() => _server.Handler.ActiveSessions == 0 && _server.Database.OpenSessions == 0);
    }
}
