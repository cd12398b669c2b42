using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Text;
using Kdb.Testing.Proxy;
using Npgsql;

namespace Kdb.Proxy.Tests;

/// <summary>Hostile bytes at the proxy's door, and the loss of a group's leader under load through the proxy.</summary>
[Collection(ProxyCollection.Name)]
public sealed class FuzzAndFailoverTests(ProxyTestBed bed)
{
    [Fact]
    public async Task RandomAndTruncatedStartupPackets_AreRefusedCleanly_AndTheProxyKeepsServing()
    {
        var entry = await bed.CreateRoutedDatabaseAsync("pw-fuzz");
        var seed = Environment.TickCount;
        var random = new Random(seed);
        var valid = StartupPacket(("user", "owner"), ("database", entry.DatabaseId));
        var cases = new List<byte[]>
        {
            Array.Empty<byte>(),
            new byte[] { 0, 0, 0 },
            new byte[] { 0, 0, 0, 4 },
            new byte[] { 0x7f, 0xff, 0xff, 0xff, 0, 3, 0, 0 },
            new byte[] { 0, 0, 0, 8, 0, 2, 0, 0 },                    // protocol 2
            new byte[] { 0, 0, 0, 8, 4, 0xd2, 0x16, 0x2f },           // SSLRequest followed by nothing
            new byte[] { 0, 0, 0, 16, 4, 0xd2, 0x16, 0x2e, 0, 0, 0, 1, 0, 0, 0, 2 }, // CancelRequest with an unknown key
            StartupPacket(("database", entry.DatabaseId)), // no user
            StartupPacket(("user", "owner"), ("database", new string('x', 5000))),
            valid[..^1],                                   // missing terminator
        };
        for (var i = 0; i < 60; i++)
        {
            var bytes = new byte[random.Next(4, 300)];
            random.NextBytes(bytes);
            if (i % 3 == 0)
            {
                BinaryPrimitives.WriteInt32BigEndian(bytes, Math.Min(bytes.Length, 200));
            }

            cases.Add(bytes);
            cases.Add(valid[..random.Next(1, valid.Length)]);
        }

        foreach (var bytes in cases)
        {
            var reply = await SendRawAsync(bytes);

            // A clean close, an answer to SSLRequest ('S'/'N'), an authentication request, or an ErrorResponse with a SQLSTATE.
            Assert.True(reply.Length == 0 || reply[0] is (byte)'E' or (byte)'N' or (byte)'S' or (byte)'R', "seed " + seed + ": unexpected reply " + (reply.Length > 0 ? reply[0] : 0));
            if (reply.Length > 0 && reply[0] == (byte)'E')
            {
                Assert.Contains("C", Encoding.ASCII.GetString(reply), StringComparison.Ordinal);
            }
        }

        await using var conn = new NpgsqlConnection(bed.Proxy.ConnectionString(entry.DatabaseId, "owner", "pw-fuzz"));
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT 1", conn);
        Assert.Equal(1, await cmd.ExecuteScalarAsync());
    }

    [Fact]
    public async Task KillingTheLeader_DuringAWorkloadThroughTheProxy_NewConnectionsSucceedAgain_NoAcknowledgedWriteLost()
    {
        var entry = await bed.CreateRoutedDatabaseAsync("pw-failover");
        var cs = bed.Proxy.ConnectionString(entry.DatabaseId, "owner", "pw-failover", "Timeout=5;Command Timeout=15");
        await using (var conn = new NpgsqlConnection(cs))
        {
            await conn.OpenAsync();
            await using var cmd = new NpgsqlCommand("CREATE TABLE ledger (id bigint PRIMARY KEY, amount int)", conn);
            await cmd.ExecuteNonQueryAsync();
        }

        var acknowledged = new ConcurrentBag<long>();
        long nextId = 0;
        long afterKill = 0;
        var killed = 0;
        using var stop = new CancellationTokenSource();
        var workers = Enumerable.Range(0, 3).Select(_ => Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    // A new connection per few writes, so the test sees connections opened after the kill.
                    await using var conn = new NpgsqlConnection(cs);
                    await conn.OpenAsync(stop.Token);
                    for (var i = 0; i < 5 && !stop.IsCancellationRequested; i++)
                    {
                        var id = Interlocked.Increment(ref nextId);
                        await using var cmd = new NpgsqlCommand($"INSERT INTO ledger VALUES ({id}, 1)", conn);
                        await cmd.ExecuteNonQueryAsync(stop.Token);
                        acknowledged.Add(id);
                        if (Volatile.Read(ref killed) == 1)
                        {
                            Interlocked.Increment(ref afterKill);
                        }
                    }
                }
                catch (Exception e) when (e is NpgsqlException or OperationCanceledException or IOException)
                {
                    await Task.Delay(100);
                }
            }
        })).ToArray();

        await Task.Delay(1500);
        Assert.NotEmpty(acknowledged);
        var leader = await bed.Cluster.LeaderOfAsync(bed.GroupId);
        Volatile.Write(ref killed, 1);
        await leader.KillAsync();
        try
        {
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (Interlocked.Read(ref afterKill) < 10)
            {
                Assert.True(DateTime.UtcNow < deadline, "no write through the proxy succeeded after the leader was killed");
                await Task.Delay(100);
            }

            await stop.CancelAsync();
            await Task.WhenAll(workers);

            await using var check = new NpgsqlConnection(cs);
            await check.OpenAsync();
            await using var count = new NpgsqlCommand("SELECT id FROM ledger", check);
            var present = new HashSet<long>();
            await using (var reader = await count.ExecuteReaderAsync())
            {
                while (await reader.ReadAsync())
                {
                    present.Add(reader.GetInt64(0));
                }
            }

            Assert.All(acknowledged, id => Assert.Contains(id, present));
        }
        finally
        {
            await stop.CancelAsync();
            await bed.Cluster.RestartAsync(leader);
        }
    }

    private async Task<byte[]> SendRawAsync(byte[] bytes)
    {
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync("127.0.0.1", bed.Proxy.PgPort);
        if (bytes.Length > 0)
        {
            await socket.SendAsync(bytes, SocketFlags.None);
        }

        socket.Shutdown(SocketShutdown.Send);
        var buffer = new byte[4096];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(40));
        var total = 0;
        while (total < buffer.Length)
        {
            int n;
            try
            {
                n = await socket.ReceiveAsync(buffer.AsMemory(total), SocketFlags.None, timeout.Token);
            }
            catch (SocketException)
            {
                break;
            }

            if (n == 0)
            {
                break;
            }

            total += n;
        }

        return buffer[..total];
    }

    private static byte[] StartupPacket(params (string Name, string Value)[] parameters)
    {
        using var body = new MemoryStream();
        foreach (var (name, value) in parameters)
        {
            body.Write(Encoding.UTF8.GetBytes(name));
            body.WriteByte(0);
            body.Write(Encoding.UTF8.GetBytes(value));
            body.WriteByte(0);
        }

        body.WriteByte(0);
        var packet = new byte[8 + body.Length];
        BinaryPrimitives.WriteInt32BigEndian(packet, packet.Length);
        BinaryPrimitives.WriteInt32BigEndian(packet.AsSpan(4), 196608);
        body.ToArray().CopyTo(packet, 8);
        return packet;
    }
}
