using Kdb.Contracts.V1;
using Kdb.Provisioning.ControlPlane;
using Kdb.Provisioning.Moves;
using MassTransit;
using Microsoft.Extensions.Logging;

namespace Kdb.Provisioning.Consumers;

/// <summary>
/// DatabaseMoveRequested → <see cref="DatabaseMover"/> → DatabaseMoved, or DatabaseMoveFailed once the move is rolled back
/// (a final failure, or any failure on the retry policy's last attempt: the source's write pause never outlives the
/// retries). Transient failures before that throw for the retry policy. A request whose move another live attempt holds
/// (the operation's claim, cluster-wide; or this process already works on it) is acknowledged without an answer: that
/// attempt answers. A request without a target gets placement's choice, recorded on the operation.
/// </summary>
internal sealed partial class DatabaseMoveRequestedConsumer(DatabaseMover mover, OperationClaims claims, OperationHeartbeats heartbeats, ILogger<DatabaseMoveRequestedConsumer> logger) : IConsumer<DatabaseMoveRequested>
{
    /// <summary>The retry policy's last attempt (see ProvisioningRegistration: 8 retries).</summary>
    private const int LastAttempt = 8;

    public async Task Consume(ConsumeContext<DatabaseMoveRequested> context)
    {
        var m = context.Message;
        if (!mover.TryBegin(m.OperationId))
        {
            return;
        }
        try
        {
            var claim = await claims.ClaimAsync(m.OperationId, context.MessageId, context.CancellationToken);
            // A move without a target that the control plane does not run (any more) has no recorded choice to go by:
            // choosing afresh would move a database that has already moved.
            if (!claim.Proceed || (claim.AttemptId is null && m.TargetGroupId == 0))
            {
                return;
            }
            // Beaten while the attempt runs, moving bytes or not (see OperationHeartbeats): a move's steps are bounded.
            await using var beating = heartbeats.Start(m.OperationId, claim.AttemptId, whileSilent: true);
            using var work = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken, beating.Lost);
            try
            {
                var request = m;
                if (m.TargetGroupId == 0)
                {
                    if (await mover.ChooseTargetAsync(m, claim.AttemptId, work.Token) is not { } target)
                    {
                        return; // Taken over meanwhile: the new holder chooses (or finds the recorded choice).
                    }
                    request = m with { TargetGroupId = target };
                }
                using var slot = await mover.AdmitAsync(request, claim.AttemptId, work.Token);
                await context.Publish(await mover.MoveAsync(request, context.GetRetryAttempt() >= LastAttempt, work.Token));
            }
            catch (MoveFailedException e)
            {
                LogFailed(logger, m.DatabaseId, m.TargetGroupId, e.Message);
                await context.Publish(new DatabaseMoveFailed(m.OperationId, DateTimeOffset.UtcNow, m.DatabaseId, e.Message));
            }
            catch (Exception e) when (e is ClaimLostException || (e is OperationCanceledException && beating.Lost.IsCancellationRequested))
            {
                LogTakenOver(logger, m.DatabaseId, m.OperationId);
            }
        }
        finally
        {
            mover.End(m.OperationId);
        }
    }

    [LoggerMessage(LogLevel.Warning, "Moving database {DatabaseId} to group {GroupId} failed, it stays on its source: {Reason}")]
    private static partial void LogFailed(ILogger logger, string databaseId, ulong groupId, string reason);

    [LoggerMessage(LogLevel.Warning, "The move of database {DatabaseId} ({OperationId}) was taken over by another attempt: this one stops without an answer")]
    private static partial void LogTakenOver(ILogger logger, string databaseId, string operationId);
}
