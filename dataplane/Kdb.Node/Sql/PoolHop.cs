namespace Kdb.Node.Sql;

/// <summary>
/// <c>await PoolHop.IfOffPool()</c> continues on the thread pool when the caller runs elsewhere, and at once (no
/// allocation) on a pool thread. With socket completions on the runtime's epoll threads (<c>Node:EpollSocketCompletions</c>)
/// a pgwire message is handled on the epoll thread that read it: that saves a thread hand-off per message for point
/// reads, but anything longer would hold up every socket that thread serves, Raft heartbeats included.
/// </summary>
internal readonly struct PoolHop : System.Runtime.CompilerServices.ICriticalNotifyCompletion
{
    /// <summary>An awaitable that completes at once on a thread-pool thread and hops to the pool from any other thread.</summary>
    public static PoolHop IfOffPool() => default;

    public PoolHop GetAwaiter() => this;

    public bool IsCompleted => Thread.CurrentThread.IsThreadPoolThread;

    public void GetResult()
    {
    }

    public void OnCompleted(Action continuation) => ThreadPool.QueueUserWorkItem(static c => c(), continuation, preferLocal: false);

    public void UnsafeOnCompleted(Action continuation) => ThreadPool.UnsafeQueueUserWorkItem(static c => c(), continuation, preferLocal: false);
}
