using Kdb.Contracts.V1;
using Kdb.Provisioning.ControlPlane;
using Kdb.Provisioning.Moves;
using MassTransit;
using Microsoft.Extensions.Logging;

namespace Kdb.Provisioning.Consumers;

/// <summary>
/// DatabaseMoveRequested → <see cref="DatabaseMover"/> → DatabaseMoved, or DatabaseMoveFailed once the move is rolled back
/// (a final failure, or any failure on the retry policy's last attempt: the source's write pause never outlives the
/// retries). Transient failures before that throw for the retry policy.
/// </summary>
internal sealed partial class DatabaseMoveRequestedConsumer(DatabaseMover mover, OperationHeartbeats heartbeats, ILogger<DatabaseMoveRequestedConsumer> logger) : IConsumer<DatabaseMoveRequested>
{
    /// <summary>The retry policy's last attempt (see ProvisioningRegistration: 8 retries).</summary>
    private const int LastAttempt = 8;

    public async Task Consume(ConsumeContext<DatabaseMoveRequested> context)
    {
        var m = context.Message;
        await using var beating = heartbeats.Start(m.OperationId);
        try
        {
            // Null: this process is already moving it for this operation (a re-sent request), and that attempt answers.
            if (await mover.MoveAsync(m, context.GetRetryAttempt() >= LastAttempt, context.CancellationToken) is { } moved)
            {
                await context.Publish(moved);
            }
        }
        catch (MoveFailedException e)
        {
            LogFailed(logger, m.DatabaseId, m.TargetGroupId, e.Message);
            await context.Publish(new DatabaseMoveFailed(m.OperationId, DateTimeOffset.UtcNow, m.DatabaseId, e.Message));
        }
    }

    [LoggerMessage(LogLevel.Warning, "Moving database {DatabaseId} to group {GroupId} failed, it stays on its source: {Reason}")]
    private static partial void LogFailed(ILogger logger, string databaseId, ulong groupId, string reason);
}
