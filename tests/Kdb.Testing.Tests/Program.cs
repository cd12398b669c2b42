using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Kdb.Testing.Tests;

/// <summary>
/// Entry point of the test assembly when the launcher tests start it as a child process
/// (<c>dotnet exec Kdb.Testing.Tests.dll serve-http &lt;port&gt; &lt;delayMs&gt; &lt;status&gt;</c>): a minimal HTTP server
/// that answers every request with the given status, after a delay, so readiness probes have something real to wait for.
/// The test runner never calls it.
/// </summary>
public static class Program
{
    public static async Task<int> Main(string[] args)
    {
        if (args.Length != 4 || args[0] != "serve-http")
        {
            await Console.Error.WriteLineAsync("usage: serve-http <port> <delayMs> <status>");
            return 2;
        }

        var port = int.Parse(args[1], CultureInfo.InvariantCulture);
        var delay = int.Parse(args[2], CultureInfo.InvariantCulture);
        var status = int.Parse(args[3], CultureInfo.InvariantCulture);
        Console.WriteLine($"helper starting pid={Environment.ProcessId}");
        await Console.Error.WriteLineAsync("helper says hello on stderr");
        await Task.Delay(delay);

        var listener = new TcpListener(IPAddress.Loopback, port);
        listener.Start();
        Console.WriteLine($"helper listening on {port}");
        var body = "ok"u8.ToArray();
        var head = Encoding.ASCII.GetBytes(
            $"HTTP/1.1 {status} Status{status}\r\nContent-Type: text/plain\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n");
        while (true)
        {
            using var client = await listener.AcceptTcpClientAsync();
            var stream = client.GetStream();
            var buffer = new byte[8192];
            var received = new StringBuilder();
            while (!received.ToString().Contains("\r\n\r\n", StringComparison.Ordinal))
            {
                var read = await stream.ReadAsync(buffer);
                if (read == 0)
                {
                    break;
                }

                received.Append(Encoding.ASCII.GetString(buffer, 0, read));
            }

            if (received.Length > 0)
            {
                await stream.WriteAsync(head);
                await stream.WriteAsync(body);
                Console.WriteLine("helper served " + received.ToString().Split('\r')[0]);
            }
        }
    }
}
