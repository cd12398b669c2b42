using Microsoft.Extensions.Logging;

namespace Kdb.Provisioning.ControlPlane;

/// <summary>
/// Tells the control plane, every <see cref="ProvisioningOptions.OperationHeartbeatInterval"/>, that a long operation
/// (backup, restore, drill, move) is still being worked on, so its request is not re-sent to run a second time alongside;
/// with an attempt id the beat also renews that attempt's claim (<see cref="OperationClaims"/>).
/// By default only an operation that moved data since the last beat (<see cref="OperationProgress"/>) is heartbeated: one
/// whose attempt hangs, or waits out a retry's backoff, falls silent, and the control plane then re-sends its request (its
/// claim lapses with the silence), which is what rescues an attempt stuck on a node that stopped answering. A phase known
/// to be silent is declared with a bound sized from its data (<see cref="OperationProgress.ExpectQuiet"/>). A request lost
/// with a crashed worker stops being heartbeated the same way. A move beats whenever its attempt runs
/// (<c>whileSilent</c>): every step of a move is bounded (its deadline up to the adopt, per-call timeouts after), so a
/// hung move ends by itself, and a phase that moves no bytes (a large import's propose, the verification, a wait for a
/// move slot) must not hand the move to a second attempt.
/// </summary>
internal sealed partial class OperationHeartbeats(ControlPlaneClient controlPlane, ProvisioningOptions options, ILogger<OperationHeartbeats> logger)
{
    /// <summary>
    /// Heartbeats <paramref name="operationId"/> while it makes progress (or, with <paramref name="whileSilent"/>, while it
    /// runs), until disposed. Call it from the consuming method itself (not a helper awaited by it): the progress it starts
    /// flows to everything that method awaits. The lease's <see cref="OperationLease.Lost"/> ends when another attempt has
    /// taken the operation over: the caller stops.
    /// </summary>
    public OperationLease Start(string operationId, string? attemptId = null, bool whileSilent = false)
    {
        var progress = OperationProgress.Begin();
        var stop = new CancellationTokenSource();
        var lost = new CancellationTokenSource();
        var loop = BeatAsync(operationId, attemptId, whileSilent, progress, lost, stop.Token);
        return new OperationLease(stop, lost, loop);
    }

    private async Task BeatAsync(string operationId, string? attemptId, bool whileSilent, OperationProgress progress, CancellationTokenSource lost, CancellationToken ct)
    {
        try
        {
            using var timer = new PeriodicTimer(options.OperationHeartbeatInterval);
            var seen = progress.Units;
            while (await timer.WaitForNextTickAsync(ct))
            {
                var now = progress.Units;
                if (now == seen && !whileSilent && !progress.QuietExpected)
                {
                    LogSilent(logger, operationId);
                    continue;
                }
                seen = now;
                try
                {
                    switch (await controlPlane.HeartbeatAsync(operationId, attemptId, ct))
                    {
                        case BeatOutcome.Ended:
                            return; // Not running any more (finished, timed out, or not an operation the control plane tracks).
                        case BeatOutcome.Lost:
                            LogLost(logger, operationId, attemptId);
                            await lost.CancelAsync();
                            return;
                    }
                }
                catch (Exception e) when (e is HttpRequestException or TimeoutException or ControlPlaneRefusedException or TaskCanceledException && !ct.IsCancellationRequested)
                {
                    // A missed beat costs at most a duplicate request, which the claim refuses; the next beat may get through.
                    LogMissed(logger, operationId, e.Message);
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
    }

    [LoggerMessage(LogLevel.Debug, "Heartbeat of operation {OperationId} missed: {Reason}")]
    private static partial void LogMissed(ILogger logger, string operationId, string reason);

    [LoggerMessage(LogLevel.Debug, "Operation {OperationId} moved no data since its last heartbeat: not heartbeated (the control plane may re-send it)")]
    private static partial void LogSilent(ILogger logger, string operationId);

    [LoggerMessage(LogLevel.Warning, "Operation {OperationId} was taken over by another attempt (this one, {AttemptId}, was silent past its lease): stopping")]
    private static partial void LogLost(ILogger logger, string operationId, string? attemptId);
}

/// <summary>An operation being heartbeated; <see cref="Lost"/> ends when another attempt took it over.</summary>
internal sealed class OperationLease(CancellationTokenSource stop, CancellationTokenSource lost, Task loop) : IAsyncDisposable
{
    public CancellationToken Lost => lost.Token;

    public async ValueTask DisposeAsync()
    {
        await stop.CancelAsync();
        await loop;
        stop.Dispose();
        lost.Dispose();
    }
}

/// <summary>
/// How much data the operation running in this async flow has moved (bytes exported, uploaded, or stored). Streams that
/// carry an operation's data report into it with <see cref="Report"/>; outside an operation that is a no-op.
/// </summary>
internal sealed class OperationProgress
{
    private static readonly AsyncLocal<OperationProgress?> Current = new();
    private long _units;
    private long _quietUntil;

    public long Units => Volatile.Read(ref _units);

    /// <summary>True while a phase declared with <see cref="ExpectQuiet"/> may still be running.</summary>
    public bool QuietExpected => System.Diagnostics.Stopwatch.GetTimestamp() < Volatile.Read(ref _quietUntil);

    /// <summary>
    /// Declares that the calling operation may move no bytes for up to <paramref name="bound"/>: a node proposing an import
    /// it received whole, or checksumming a copy, answers only at the end. Heartbeats go on for that long (without them a
    /// large restore's request would be re-sent and taken over in every attempt, never finishing) and stop after it, so a
    /// node stuck in such a phase still has the request re-sent. Size the bound from the data the phase covers.
    /// </summary>
    public static void ExpectQuiet(TimeSpan bound)
    {
        if (Current.Value is { } progress)
        {
            var until = System.Diagnostics.Stopwatch.GetTimestamp() + (long)(Math.Max(0, bound.TotalSeconds) * System.Diagnostics.Stopwatch.Frequency);
            Volatile.Write(ref progress._quietUntil, until);
        }
    }

    /// <summary>Starts counting for the caller's async flow (set from a synchronous method, the value stays with its caller).</summary>
    public static OperationProgress Begin()
    {
        var progress = new OperationProgress();
        Current.Value = progress;
        return progress;
    }

    /// <summary>Counts <paramref name="units"/> for the operation of the calling flow, if any.</summary>
    public static void Report(long units)
    {
        if (units > 0 && Current.Value is { } progress)
        {
            Interlocked.Add(ref progress._units, units);
        }
    }

    /// <summary>Wraps <paramref name="inner"/> so that what is read from or written to it counts as progress.</summary>
    public static Stream Counting(Stream inner) => new CountingStream(inner);

    private sealed class CountingStream(Stream inner) : Stream
    {
        public override bool CanRead => inner.CanRead;

        public override bool CanSeek => false;

        public override bool CanWrite => inner.CanWrite;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override void Flush() => inner.Flush();

        public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

        public override int Read(byte[] buffer, int offset, int count) => Counted(inner.Read(buffer, offset, count));

        public override int Read(Span<byte> buffer) => Counted(inner.Read(buffer));

        public override async Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            Counted(await inner.ReadAsync(buffer.AsMemory(offset, count), cancellationToken).ConfigureAwait(false));

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            Counted(await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false));

        public override void Write(byte[] buffer, int offset, int count)
        {
            inner.Write(buffer, offset, count);
            Report(count);
        }

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            inner.Write(buffer);
            Report(buffer.Length);
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            await inner.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
            Report(buffer.Length);
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
            }
            base.Dispose(disposing);
        }

        public override ValueTask DisposeAsync() => inner.DisposeAsync();

        private static int Counted(int n)
        {
            Report(n);
            return n;
        }
    }
}
