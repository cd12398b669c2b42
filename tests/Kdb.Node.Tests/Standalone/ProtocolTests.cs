using System.Text;
using Npgsql;
using Xunit.Abstractions;

namespace Kdb.Node.Tests.Standalone;

/// <summary>
/// Raw-socket clients against the node process: row-limited Execute and portal suspension over the SQL engine, and
/// fuzzing — random, truncated and oversized messages before and after login. The node answers with errors or
/// closes the connection, and keeps serving a normal client. Seeds are printed on failure.
/// </summary>
[Collection(StandaloneCollection.Name)]
public sealed class ProtocolTests(StandaloneNodeFixture fixture, ITestOutputHelper output)
{
    private static readonly int Iterations = Environment.GetEnvironmentVariable("KDB_SOAK") == "1" ? 2000 : 300;

    private StandaloneNode Node => fixture.Node;

    private static byte[] CString(string s) => [.. Encoding.UTF8.GetBytes(s), 0];

    private Task<RawPgClient> LoginAsync() => RawPgClient.LoginAsync(Node.PgPort, StandaloneNode.Owner, StandaloneNode.OwnerPassword, StandaloneNode.Database);

    [Fact]
    public async Task Execute_RowLimit_SuspendsThenResumesToCompletion()
    {
        await using var c = await LoginAsync();
        await c.SendAsync('P', [.. CString("s1"), .. CString("SELECT g FROM generate_series(1, 5) g"), 0, 0]);
        await c.SendAsync('B', [.. CString("p1"), .. CString("s1"), 0, 0, 0, 0, 0, 0]);
        await c.SendAsync('E', [.. CString("p1"), .. RawPgClient.BigEndian(2)]);
        await c.SendAsync('E', [.. CString("p1"), .. RawPgClient.BigEndian(2)]);
        await c.SendAsync('E', [.. CString("p1"), .. RawPgClient.BigEndian(2)]);
        await c.SendAsync('S', []);

        var (ready, types) = await c.ReadUntilReadyAsync();

        Assert.True(ready);
        Assert.Equal("12DDsDDsDCZ", types);
    }

    [Fact]
    public async Task Fuzz_GarbageBeforeLogin_ErrorOrCloseAndNodeKeepsServing()
    {
        var baseSeed = Environment.TickCount;
        for (var i = 0; i < Iterations / 3; i++)
        {
            var seed = baseSeed + i;
            var rnd = new Random(seed);
            await using var c = await RawPgClient.ConnectAsync(Node.PgPort);
            byte[] packet = rnd.Next(4) switch
            {
                0 => RandomBytes(rnd, rnd.Next(1, 200)),
                1 => [.. RawPgClient.BigEndian(rnd.Next(8, 20000)), .. RawPgClient.BigEndian(196608), .. RandomBytes(rnd, rnd.Next(0, 40))],
                2 => [.. RawPgClient.BigEndian(rnd.Next(int.MinValue, 8))],
                _ => [.. RawPgClient.BigEndian(16), .. RawPgClient.BigEndian(80877102), .. RandomBytes(rnd, 8)],
            };
            await c.SendRawAsync(packet);
            c.ShutdownSend();
            await DrainAsync(c, $"pre-login seed {seed}");
        }

        await AssertNodeServesAsync();
    }

    [Fact]
    public async Task Fuzz_RandomMessagesAfterLogin_ErrorsOrCloseAndNodeKeepsServing()
    {
        var baseSeed = Environment.TickCount;
        RawPgClient? c = null;
        try
        {
            for (var i = 0; i < Iterations; i++)
            {
                var seed = baseSeed + i;
                var rnd = new Random(seed);
                c ??= await LoginAsync();
                var context = $"post-login seed {seed}";
                var type = "QPBDECHSdcfXz?"[rnd.Next(14)];
                var body = rnd.Next(3) switch
                {
                    0 => RandomBytes(rnd, rnd.Next(0, 64)),
                    1 => [.. CString(RandomSql(rnd)), .. RandomBytes(rnd, rnd.Next(0, 8))],
                    _ => [.. CString(string.Empty), .. CString(RandomSql(rnd)), .. RawPgClient.BigEndian(rnd.Next(-2, 3))],
                };
                if (rnd.Next(10) == 0)
                {
                    // Truncated: the length word promises more than arrives before the client hangs up.
                    await c.SendRawAsync([(byte)type, .. RawPgClient.BigEndian(body.Length + 4 + rnd.Next(1, 1000)), .. body]);
                    c.ShutdownSend();
                    await DrainAsync(c, context);
                    await c.DisposeAsync();
                    c = null;
                    continue;
                }

                if (rnd.Next(25) == 0)
                {
                    // Oversized: a length word beyond the message limit must close the connection, not buffer.
                    await c.SendRawAsync([(byte)'Q', .. RawPgClient.BigEndian(int.MaxValue - rnd.Next(100))]);
                    await DrainAsync(c, context);
                    await c.DisposeAsync();
                    c = null;
                    continue;
                }

                await c.SendAsync(type, body);
                await c.SendAsync('S', []);
                var (ready, types) = await c.ReadUntilReadyAsync();
                if (!ready)
                {
                    await c.DisposeAsync();
                    c = null;
                    continue;
                }

                // A session that survived must still run a query correctly.
                // A simple Query answers with its own ReadyForQuery before the Sync's: skip those until the check's answer.
                await c.QueryAsync("ROLLBACK; SELECT 7");
                var after = string.Empty;
                for (var n = 0; n < 4 && !after.EndsWith("TDCZ", StringComparison.Ordinal); n++)
                {
                    var (again, next) = await c.ReadUntilReadyAsync();
                    Assert.True(again, $"{context}: session died after answering {types}");
                    after = next;
                }

                Assert.EndsWith("TDCZ", after, StringComparison.Ordinal);
            }
        }
        catch
        {
            output.WriteLine($"fuzz base seed {baseSeed}");
            output.WriteLine(Node.Process.Log);
            throw;
        }
        finally
        {
            if (c is not null)
            {
                await c.DisposeAsync();
            }
        }

        await AssertNodeServesAsync();
    }

    private static async Task DrainAsync(RawPgClient c, string context)
    {
        for (var n = 0; n < 1000; n++)
        {
            var (type, _) = await c.ReadAsync();
            if (type == '\0')
            {
                return;
            }

            Assert.True("RKSZTDCENI123ntsGHdcvAW".Contains(type, StringComparison.Ordinal), $"{context}: unexpected message type '{type}'");
        }

        Assert.Fail($"{context}: the server kept talking");
    }

    private async Task AssertNodeServesAsync()
    {
        await using var connection = await Node.OpenAsync("Pooling=false");
        await using var cmd = new NpgsqlCommand("SELECT $1::int * 2", connection) { Parameters = { new() { Value = 21 } } };
        Assert.Equal(42, await cmd.ExecuteScalarAsync());
    }

    private static byte[] RandomBytes(Random rnd, int length)
    {
        var bytes = new byte[length];
        rnd.NextBytes(bytes);
        return bytes;
    }

    private static string RandomSql(Random rnd)
    {
        string[] pieces = ["SELECT", "1", "FROM", "(", ")", "'x", "$1", ";", "BEGIN", "COMMIT", "generate_series(1,3)", "WHERE", "COPY", "STDIN", "::int", "--", "\"", "INSERT", "pg_class", ","];
        var sb = new StringBuilder();
        for (var i = rnd.Next(1, 8); i > 0; i--)
        {
            sb.Append(pieces[rnd.Next(pieces.Length)]).Append(' ');
        }

        return sb.ToString();
    }
}
