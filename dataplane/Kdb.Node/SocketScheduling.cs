namespace Kdb.Node;

internal static class SocketScheduling
{
    private const string InlineCompletionsVariable = "DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS";

    /// <summary>
    /// With <paramref name="setting"/> true (the default), socket completions run on the runtime's epoll threads instead
    /// of being queued to the thread pool, as the proxy runs: a thread hand-off less per message exchange, about a third
    /// of a point select's CPU. (It was off for a while because a provisioning test failed with it on; the cause was a Raft
    /// membership bug that faster timing exposed, fixed on 2026-12-03: docs/cluster-node.md.) Safe only because nothing on
    /// the node's statement path blocks a thread on I/O (a blocked
    /// epoll thread stalls every socket it serves, including the Raft reply it waits for) and only point reads run on the
    /// epoll thread: other statements, committing syncs, COPY and every HTTP handler hop to the thread pool (PoolHop).
    /// The runtime reads the variable once, at the first socket operation, so this runs before any. An explicit
    /// environment variable wins.
    /// </summary>
    public static void UseEpollSocketCompletions(this WebApplicationBuilder builder, string setting)
    {
        if (builder.Configuration.GetValue(setting, true) && Environment.GetEnvironmentVariable(InlineCompletionsVariable) is null)
        {
            Environment.SetEnvironmentVariable(InlineCompletionsVariable, "1");
        }
    }

    /// <summary>
    /// Runs Kestrel's pipe continuations on the thread that completed the socket operation instead of queueing them to
    /// its I/O queues: one thread-pool hop less per message exchange, which was a large share of a point select's CPU.
    /// Socket completions still run on the thread pool (the runtime's default), so a long statement never holds an epoll
    /// thread. <paramref name="setting"/> (default true) turns it off.
    /// </summary>
    public static void UseInlineSocketScheduling(this WebApplicationBuilder builder, string setting)
    {
        var inline = builder.Configuration.GetValue(setting, true);
        var eager = builder.Configuration.GetValue("Node:EagerReceiveBuffers", true);
        builder.WebHost.UseSockets(sockets =>
        {
            sockets.UnsafePreferInlineScheduling = inline;
            // Waiting for data with a zero-byte receive before renting a buffer makes every message two receive
            // operations (the wait, then the read): about 4 % of a point select's CPU on the leader (bench/README). A
            // 4 KiB pooled block per open connection is the price, small beside a session's own state.
            sockets.WaitForDataBeforeAllocatingBuffer = !eager;
        });
    }
}
