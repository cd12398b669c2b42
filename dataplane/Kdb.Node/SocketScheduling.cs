namespace Kdb.Node;

internal static class SocketScheduling
{
    /// <summary>
    /// Runs Kestrel's pipe continuations on the thread that completed the socket operation instead of queueing them to
    /// its I/O queues: one thread-pool hop less per message exchange, which was a large share of a point select's CPU.
    /// Socket completions still run on the thread pool (the runtime's default), so a long statement never holds an epoll
    /// thread. <paramref name="setting"/> (default true) turns it off.
    /// </summary>
    public static void UseInlineSocketScheduling(this WebApplicationBuilder builder, string setting)
    {
        if (builder.Configuration.GetValue(setting, true))
        {
            builder.WebHost.UseSockets(sockets => sockets.UnsafePreferInlineScheduling = true);
        }
    }
}
