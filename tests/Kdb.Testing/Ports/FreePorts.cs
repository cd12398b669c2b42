using System.Net;
using System.Net.Sockets;

namespace Kdb.Testing.Ports;

/// <summary>
/// Hands out free TCP ports on 127.0.0.1. A port is taken by binding port 0 (so the kernel picks one
/// nobody listens on) and is then remembered for the rest of the process, so two fixtures of one test
/// run never receive the same port even if the first has not bound it yet.
/// </summary>
public static class FreePorts
{
    // Ports at or above this value are refused: RabbitMQ and Erlang derive companion ports by adding
    // offsets (for example the distribution port defaults to the AMQP port + 20000), so ports stay low
    // enough that no caller can be pushed past 65535 by accident.
    private const int MaxPort = 60999;
    private const int MaxAttempts = 200;

    private static readonly HashSet<int> Taken = [];
    private static readonly Lock Gate = new();

    /// <summary>Returns a loopback port that was free when allocated and that this process has never handed out before.</summary>
    /// <exception cref="InvalidOperationException">No unused port could be found after many attempts.</exception>
    public static int Allocate()
    {
        for (var attempt = 0; attempt < MaxAttempts; attempt++)
        {
            var port = ProbeFreePort();
            if (port > MaxPort)
            {
                continue;
            }

            lock (Gate)
            {
                if (Taken.Add(port))
                {
                    return port;
                }
            }
        }

        throw new InvalidOperationException($"Could not find an unused loopback port after {MaxAttempts} attempts.");
    }

    /// <summary>Allocates <paramref name="count"/> distinct ports (see <see cref="Allocate()"/>).</summary>
    public static int[] Allocate(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(count);
        var ports = new int[count];
        for (var i = 0; i < ports.Length; i++)
        {
            ports[i] = Allocate();
        }

        return ports;
    }

    /// <summary>
    /// Records a port that something in this process bound by itself (for example a Kestrel server
    /// listening on port 0), so <see cref="Allocate()"/> never hands it out. Returns false when it was already recorded.
    /// </summary>
    public static bool Reserve(int port)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(port, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(port, IPEndPoint.MaxPort);
        lock (Gate)
        {
            return Taken.Add(port);
        }
    }

    private static int ProbeFreePort()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }
}
