using System.Net;
using System.Net.Sockets;
using Kdb.Testing.Ports;

namespace Kdb.Testing.Tests;

public sealed class FreePortsTests
{
    [Fact]
    public void Allocate_ManyTimes_ReturnsDistinctBindableLoopbackPorts()
    {
        var ports = FreePorts.Allocate(64);

        Assert.Equal(ports.Length, ports.Distinct().Count());
        foreach (var port in ports)
        {
            Assert.InRange(port, 1, 60999);
            var listener = new TcpListener(IPAddress.Loopback, port);
            listener.Start();
            listener.Stop();
        }
    }

    [Fact]
    public void Allocate_ConcurrentCallers_NeverShareAPort()
    {
        var ports = new int[8][];
        Parallel.For(0, ports.Length, i => ports[i] = FreePorts.Allocate(16));

        var all = ports.SelectMany(p => p).ToArray();
        Assert.Equal(all.Length, all.Distinct().Count());
    }

    [Fact]
    public void Reserve_PortAlreadyHandedOut_ReturnsFalse()
    {
        var port = FreePorts.Allocate();

        Assert.False(FreePorts.Reserve(port));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    public void Allocate_NonPositiveCount_Throws(int count) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => FreePorts.Allocate(count));

    [Theory]
    [InlineData(0)]
    [InlineData(65536)]
    public void Reserve_OutOfRangePort_Throws(int port) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => FreePorts.Reserve(port));
}
