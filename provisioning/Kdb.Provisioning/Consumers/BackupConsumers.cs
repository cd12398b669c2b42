using Kdb.Contracts.V1;
using Kdb.Provisioning.Backups;
using Kdb.Provisioning.ControlPlane;
using Kdb.Provisioning.Placement;
using MassTransit;
using Microsoft.Extensions.Logging;

namespace Kdb.Provisioning.Consumers;

/// <summary>BackupRequested → export, seal, store → BackupCompleted, or BackupFailed with the reason.</summary>
internal sealed partial class BackupRequestedConsumer(BackupService backups, OperationClaims claims, OperationHeartbeats heartbeats, ILogger<BackupRequestedConsumer> logger) : IConsumer<BackupRequested>
{
    public async Task Consume(ConsumeContext<BackupRequested> context)
    {
        var m = context.Message;
        var claim = await claims.ClaimAsync(m.OperationId, context.MessageId, context.CancellationToken);
        if (!claim.Proceed)
        {
            return;
        }
        await using var beating = heartbeats.Start(m.OperationId, claim.AttemptId);
        using var work = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken, beating.Lost);
        try
        {
            var manifest = await backups.BackupAsync(m.BackupId, m.DatabaseId, m.OrgId, work.Token);
            await context.Publish(new BackupCompleted(m.OperationId, DateTimeOffset.UtcNow, m.BackupId, m.DatabaseId, manifest.Result));
        }
        catch (OperationCanceledException) when (beating.Lost.IsCancellationRequested)
        {
            // Taken over by another attempt after this one was silent past its lease: that one answers.
        }
        catch (Exception e) when (e is BackupOperationException || DatabaseOperations.IsFinal(e))
        {
            LogFailed(logger, m.BackupId, e.Message);
            await context.Publish(new BackupFailed(m.OperationId, DateTimeOffset.UtcNow, m.BackupId, m.DatabaseId, e.Message));
        }
    }

    [LoggerMessage(LogLevel.Warning, "Backup {BackupId} failed: {Reason}")]
    private static partial void LogFailed(ILogger logger, string backupId, string reason);
}

/// <summary>BackupExpired → the backup's objects are deleted (already deleted is fine).</summary>
internal sealed class BackupExpiredConsumer(BackupService backups) : IConsumer<BackupExpired>
{
    public Task Consume(ConsumeContext<BackupExpired> context) => backups.DeleteAsync(context.Message.BackupId, context.CancellationToken);
}

/// <summary>RestoreRequested → a verified restore into the target → RestoreCompleted with the roles, or RestoreFailed.</summary>
internal sealed partial class RestoreRequestedConsumer(BackupService backups, OperationClaims claims, OperationHeartbeats heartbeats, ILogger<RestoreRequestedConsumer> logger) : IConsumer<RestoreRequested>
{
    public async Task Consume(ConsumeContext<RestoreRequested> context)
    {
        var m = context.Message;
        var claim = await claims.ClaimAsync(m.OperationId, context.MessageId, context.CancellationToken);
        if (!claim.Proceed)
        {
            return;
        }
        await using var beating = heartbeats.Start(m.OperationId, claim.AttemptId);
        using var work = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken, beating.Lost);
        try
        {
            if (m.InPlace)
            {
                InPlaceRestore done;
                try
                {
                    done = await backups.RestoreInPlaceAsync(m.BackupId, m.OperationId, m.Target, m.SafetyBackupId, work.Token);
                }
                finally
                {
                    await ReportSafetyBackupAsync(context);
                }
                LogInPlace(logger, m.BackupId, m.Target.DatabaseId, done.SafetyBackupId);
                await context.Publish(new RestoreCompleted(m.OperationId, DateTimeOffset.UtcNow, m.Target.DatabaseId, done.Roles, done.TenantId));
                return;
            }
            var roles = await backups.RestoreAsync(m.BackupId, m.Target, work.Token);
            await context.Publish(new RestoreCompleted(m.OperationId, DateTimeOffset.UtcNow, m.Target.DatabaseId, roles));
        }
        catch (OperationCanceledException) when (beating.Lost.IsCancellationRequested)
        {
            // Taken over by another attempt after this one was silent past its lease: that one answers.
        }
        catch (Exception e) when (e is BackupOperationException || DatabaseOperations.IsFinal(e))
        {
            LogFailed(logger, m.BackupId, m.Target.DatabaseId, e.Message);
            await context.Publish(new RestoreFailed(m.OperationId, DateTimeOffset.UtcNow, m.Target.DatabaseId, e.Message));
        }
    }

    /// <summary>
    /// The safety backup, once taken (whether the restore then succeeds or fails), is reported to the control plane as a
    /// BackupCompleted under the restore's operation id, when the request named it; a repeat is harmless there.
    /// </summary>
    private async Task ReportSafetyBackupAsync(ConsumeContext<RestoreRequested> context)
    {
        var m = context.Message;
        if (m.SafetyBackupId is { } safetyId && await backups.ResultOfAsync(safetyId, CancellationToken.None) is { } result)
        {
            await context.Publish(new BackupCompleted(m.OperationId, DateTimeOffset.UtcNow, safetyId, m.Target.DatabaseId, result));
        }
    }

    [LoggerMessage(LogLevel.Information, "Backup {BackupId} restored in place into {DatabaseId}; its data before the restore is in backup {SafetyBackupId}")]
    private static partial void LogInPlace(ILogger logger, string backupId, string databaseId, string safetyBackupId);

    [LoggerMessage(LogLevel.Warning, "Restore of backup {BackupId} into {DatabaseId} failed: {Reason}")]
    private static partial void LogFailed(ILogger logger, string backupId, string databaseId, string reason);
}

/// <summary>RestoreDrillRequested → each backup restored into a scratch database and compared → BackupVerified or RestoreDrillFailed.</summary>
internal sealed class RestoreDrillRequestedConsumer(BackupService backups, OperationClaims claims, OperationHeartbeats heartbeats) : IConsumer<RestoreDrillRequested>
{
    public async Task Consume(ConsumeContext<RestoreDrillRequested> context)
    {
        var m = context.Message;
        var claim = await claims.ClaimAsync(m.OperationId, context.MessageId, context.CancellationToken);
        if (!claim.Proceed)
        {
            return;
        }
        await using var beating = heartbeats.Start(m.OperationId, claim.AttemptId);
        foreach (var backupId in m.BackupIds)
        {
            if (beating.Lost.IsCancellationRequested)
            {
                return; // Taken over by another attempt: that one answers.
            }
            try
            {
                var details = await backups.DrillAsync(backupId, context.CancellationToken);
                await context.Publish(new BackupVerified(m.OperationId, DateTimeOffset.UtcNow, backupId, details));
            }
            catch (Exception e) when (e is BackupOperationException || DatabaseOperations.IsFinal(e))
            {
                await context.Publish(new RestoreDrillFailed(m.OperationId, DateTimeOffset.UtcNow, backupId, e.Message));
            }
        }
    }
}
