using System.Net.Security;
using System.Net.Sockets;
using Kdb.Testing.Proxy;

namespace Kdb.Proxy.Tests;

/// <summary>The SSLRequest upgrade at the proxy's door: pipelined plaintext is refused, a prompt handshake never is.</summary>
[Collection(ProxyCollection.Name)]
public sealed class TlsUpgradeTests(ProxyTestBed bed)
{
    private static readonly byte[] SslRequest = [0, 0, 0, 8, 4, 0xd2, 0x16, 0x2f];

    [Fact]
    public async Task ClientHello_SentTheMomentTheAnswerArrives_IsAlwaysAccepted()
    {
        // A client that starts its handshake as soon as it reads 'S' may have its ClientHello buffered at the proxy
        // before the proxy looks for pipelined bytes; that must never be mistaken for CVE-2021-23214's injection.
        for (var i = 0; i < 40; i++)
        {
            using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            await socket.ConnectAsync("127.0.0.1", bed.Proxy.PgPort);
            await socket.SendAsync(SslRequest, SocketFlags.None);
            var answer = new byte[1];
            Assert.Equal(1, await socket.ReceiveAsync(answer, SocketFlags.None));
            Assert.Equal((byte)'S', answer[0]);

            await using var tls = new SslStream(new NetworkStream(socket, ownsSocket: false), leaveInnerStreamOpen: false);
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await tls.AuthenticateAsClientAsync(
                new SslClientAuthenticationOptions { TargetHost = "localhost", RemoteCertificateValidationCallback = (_, _, _, _) => true },
                timeout.Token);
            Assert.True(tls.IsEncrypted, "attempt " + i);
        }
    }

    [Fact]
    public async Task PlaintextPipelinedBehindTheSslRequest_IsRefusedWithoutAnAnswer()
    {
        var startup = new byte[] { 0, 0, 0, 9, 0, 3, 0, 0, 0 };
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync("127.0.0.1", bed.Proxy.PgPort);
        await socket.SendAsync(SslRequest.Concat(startup).ToArray(), SocketFlags.None);

        var buffer = new byte[64];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        int received;
        try
        {
            received = await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token);
        }
        catch (SocketException)
        {
            received = 0;
        }

        Assert.Equal(0, received);
    }
}
