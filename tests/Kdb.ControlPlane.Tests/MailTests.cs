using System.Net;
using System.Net.Sockets;
using System.Text;
using Kdb.ControlPlane.Mail;
using Kdb.Testing;
using Kdb.Testing.Postgres;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Kdb.ControlPlane.Tests;

public sealed class EmlFileTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "kdb-eml-" + Guid.NewGuid().ToString("N"));

    [Fact]
    public async Task FileSender_WritesAnRfc5322MessageWithCrlfAndTheRequiredHeaders()
    {
        var sender = new FileMailSender(Options.Create(new MailOptions { Directory = _directory, From = "Kdb <no-reply@kdb.test>" }), TimeProvider.System);

        var messageId = await sender.SendAsync(new OutgoingMail("alice@example.com", "Grüße", "line one\nhttp://portal.test/x?token=abc\n"), CancellationToken.None);

        var file = Assert.Single(Directory.GetFiles(_directory));
        Assert.EndsWith(".eml", file, StringComparison.Ordinal);
        var text = await File.ReadAllTextAsync(file);
        var (headers, body) = (text[..text.IndexOf("\r\n\r\n", StringComparison.Ordinal)], text[(text.IndexOf("\r\n\r\n", StringComparison.Ordinal) + 4)..]);
        Assert.Matches("^Date: [A-Z][a-z]{2}, \\d{2} [A-Z][a-z]{2} \\d{4} \\d{2}:\\d{2}:\\d{2} \\+0000$", headers.Split("\r\n")[0]);
        Assert.Contains("\r\nFrom: Kdb <no-reply@kdb.test>", headers, StringComparison.Ordinal);
        Assert.Contains("\r\nTo: alice@example.com", headers, StringComparison.Ordinal);
        Assert.Contains("\r\nSubject: =?utf-8?B?" + Convert.ToBase64String(Encoding.UTF8.GetBytes("Grüße")) + "?=", headers, StringComparison.Ordinal);
        Assert.Contains("\r\nMessage-ID: " + messageId, headers, StringComparison.Ordinal);
        Assert.Matches("^<[0-9a-f]{32}@kdb\\.test>$", messageId);
        Assert.Equal("line one\r\nhttp://portal.test/x?token=abc\r\n\r\n", body);
        Assert.DoesNotContain("\n", text.Replace("\r\n", string.Empty, StringComparison.Ordinal), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("victim@example.com\r\nBcc: everyone@example.com", "hello")]
    [InlineData("not an address", "hello")]
    [InlineData("alice@example.com", "hi\r\nBcc: everyone@example.com")]
    public async Task FileSender_HeaderInjection_IsRefusedAndWritesNothing(string to, string subject)
    {
        var sender = new FileMailSender(Options.Create(new MailOptions { Directory = _directory }), TimeProvider.System);

        await Assert.ThrowsAsync<ArgumentException>(() => sender.SendAsync(new OutgoingMail(to, subject, "body"), CancellationToken.None));

        Assert.False(Directory.Exists(_directory) && Directory.GetFiles(_directory).Length > 0);
    }

    [Fact]
    public async Task FileSender_UnwritableDirectory_IsAMailDeliveryException()
    {
        await File.WriteAllTextAsync(_directory, "a file where the directory should be");
        var sender = new FileMailSender(Options.Create(new MailOptions { Directory = Path.Combine(_directory, "mail") }), TimeProvider.System);

        var ex = await Assert.ThrowsAsync<MailDeliveryException>(() => sender.SendAsync(new OutgoingMail("a@example.com", "s", "b"), CancellationToken.None));

        Assert.Contains("could not write mail", ex.Message, StringComparison.Ordinal);
        File.Delete(_directory);
    }

    public void Dispose()
    {
        if (Directory.Exists(_directory))
        {
            Directory.Delete(_directory, recursive: true);
        }
        else if (File.Exists(_directory))
        {
            File.Delete(_directory);
        }
    }
}

[Collection(TestCollections.Postgres)]
public sealed class SmtpMailTests(PostgresFixture postgres)
{
    [Fact]
    public async Task Invite_WithSmtpConfigured_DeliversToTheServer_AndIsWithdrawnWhenTheServerIsGone()
    {
        using var smtp = new ScriptedSmtpServer();
        await using var app = await ControlPlaneApp.StartAsync(postgres, new Dictionary<string, string>
        {
            ["Mail:Smtp:Host"] = "127.0.0.1",
            ["Mail:Smtp:Port"] = smtp.Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Mail:From"] = "Kdb.Cloud <no-reply@kdb.test>",
        });
        var owner = await app.SignupAndLoginAsync("smtp-owner@example.com");
        var orgId = (await app.SendAsync(HttpMethod.Get, "/v1/me", owner)).Body.GetProperty("orgs")[0].GetProperty("id").GetString()!;

        var invited = await app.SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/members", owner, new { email = "smtp-invitee@example.com", role = "viewer" });

        Assert.Equal(HttpStatusCode.Accepted, invited.Status);
        var delivered = Assert.Single(smtp.Messages);
        Assert.Equal("<no-reply@kdb.test>", delivered.From);
        Assert.Equal(["<smtp-invitee@example.com>"], delivered.To);
        Assert.Contains("Message-ID: <", delivered.Data, StringComparison.Ordinal);
        Assert.Contains("/invitations/" + invited.Body.GetProperty("id").GetString(), DecodedBody(delivered.Data), StringComparison.Ordinal);

        smtp.Dispose();
        var refused = await app.SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/members", owner, new { email = "smtp-second@example.com", role = "viewer" });

        Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.Status);
        Assert.EndsWith("mail-unavailable", refused.Body.GetProperty("type").GetString(), StringComparison.Ordinal);
        var pending = await app.SendAsync(HttpMethod.Get, $"/v1/orgs/{orgId}/invitations", owner);
        Assert.DoesNotContain(pending.Body.GetProperty("items").EnumerateArray(), i => i.GetProperty("email").GetString() == "smtp-second@example.com");
    }

    private static string DecodedBody(string data)
    {
        var split = data.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        var (headers, body) = (data[..split], data[(split + 4)..]);
        return headers.Contains("Content-Transfer-Encoding: base64", StringComparison.OrdinalIgnoreCase)
            ? Encoding.UTF8.GetString(Convert.FromBase64String(body.Replace("\r\n", string.Empty, StringComparison.Ordinal)))
            : body;
    }

    /// <summary>A scripted SMTP peer (RFC 5321's happy path): enough to see what the client sends.</summary>
    private sealed class ScriptedSmtpServer : IDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private readonly CancellationTokenSource _stop = new();
        private readonly List<Received> _messages = [];
        private readonly Task _loop;

        public ScriptedSmtpServer()
        {
            _listener.Start();
            Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
            _loop = Task.Run(AcceptLoopAsync);
        }

        public int Port { get; }

        public IReadOnlyList<Received> Messages
        {
            get
            {
                lock (_messages)
                {
                    return [.. _messages];
                }
            }
        }

        public void Dispose()
        {
            if (_stop.IsCancellationRequested)
            {
                return;
            }

            _stop.Cancel();
            _listener.Stop();
            _loop.Wait(TimeSpan.FromSeconds(10));
            _stop.Dispose();
        }

        private async Task AcceptLoopAsync()
        {
            while (!_stop.IsCancellationRequested)
            {
                TcpClient client;
                try
                {
                    client = await _listener.AcceptTcpClientAsync(_stop.Token);
                }
                catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
                {
                    return;
                }

                using (client)
                {
                    await ServeAsync(client.GetStream());
                }
            }
        }

        private async Task ServeAsync(NetworkStream stream)
        {
            using var reader = new StreamReader(stream, Encoding.UTF8);
            await using var writer = new StreamWriter(stream, new UTF8Encoding(false)) { NewLine = "\r\n", AutoFlush = true };
            await writer.WriteLineAsync("220 scripted ESMTP");
            string? from = null;
            var to = new List<string>();
            while (await reader.ReadLineAsync() is { } line)
            {
                var verb = line.Split(' ', 2)[0].ToUpperInvariant();
                switch (verb)
                {
                    case "EHLO":
                        await writer.WriteLineAsync("250-scripted");
                        await writer.WriteLineAsync("250 8BITMIME");
                        break;
                    case "MAIL":
                        from = line[(line.IndexOf(':', StringComparison.Ordinal) + 1)..].Trim().Split(' ')[0];
                        await writer.WriteLineAsync("250 OK");
                        break;
                    case "RCPT":
                        to.Add(line[(line.IndexOf(':', StringComparison.Ordinal) + 1)..].Trim());
                        await writer.WriteLineAsync("250 OK");
                        break;
                    case "DATA":
                        await writer.WriteLineAsync("354 go ahead");
                        var data = new StringBuilder();
                        while (await reader.ReadLineAsync() is { } dataLine && dataLine != ".")
                        {
                            data.Append(dataLine).Append("\r\n");
                        }

                        lock (_messages)
                        {
                            _messages.Add(new Received(from ?? string.Empty, [.. to], data.ToString()));
                        }

                        await writer.WriteLineAsync("250 queued");
                        break;
                    case "QUIT":
                        await writer.WriteLineAsync("221 bye");
                        return;
                    default:
                        await writer.WriteLineAsync("250 OK");
                        break;
                }
            }
        }

        public sealed record Received(string From, IReadOnlyList<string> To, string Data);
    }
}
