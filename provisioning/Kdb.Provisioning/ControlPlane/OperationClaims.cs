using System.Security.Cryptography;
using Microsoft.Extensions.Logging;

namespace Kdb.Provisioning.ControlPlane;

/// <summary>Whether this delivery may work on its operation, and under which attempt id (null: the operation is not claimed).</summary>
internal readonly record struct OperationClaim(bool Proceed, string? AttemptId);

/// <summary>Another attempt has taken the operation over (this one was silent past its lease): this one stops, without an answer.</summary>
internal sealed class ClaimLostException(string message) : Exception(message);

/// <summary>
/// Claims operations cluster-wide through the control plane (<c>POST /internal/v1/operations/{id}/claim</c>), so a request
/// the control plane re-sends, or a second worker on RabbitMQ given the same request, does not run the same long work
/// alongside the attempt already on it. An attempt is one delivery in one process: its id is this process's instance and
/// the message id, so the retry policy's retries of a delivery keep its claim, and a re-sent request (a new message) is
/// another attempt.
/// </summary>
internal sealed partial class OperationClaims(ControlPlaneClient controlPlane, ILogger<OperationClaims> logger)
{
    private static readonly string Instance = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6));

    /// <summary>The attempt id of a delivery (a delivery without a message id is an attempt of its own).</summary>
    public static string AttemptFor(Guid? messageId) => Instance + "-" + (messageId ?? Guid.NewGuid()).ToString("N");

    /// <summary>
    /// Claims the operation for this delivery. Not proceeding: another live attempt holds it (it answers). An operation the
    /// control plane does not run (finished, or a request it never recorded) proceeds unclaimed, as before claims existed:
    /// the work is repeatable and its answer harmless.
    /// </summary>
    public async Task<OperationClaim> ClaimAsync(string operationId, Guid? messageId, CancellationToken ct)
    {
        var attemptId = AttemptFor(messageId);
        switch (await controlPlane.ClaimAsync(operationId, attemptId, null, ct))
        {
            case ClaimOutcome.Granted:
                return new OperationClaim(true, attemptId);
            case ClaimOutcome.NotRunning:
                return new OperationClaim(true, null);
            default:
                LogHeld(logger, operationId);
                return new OperationClaim(false, null);
        }
    }

    /// <summary>
    /// Takes <paramref name="groups"/> for the claimed operation; false while another operation holds one of them (the
    /// refusal counts as this operation's heartbeat). Throws <see cref="ClaimLostException"/> when another attempt took the
    /// operation over meanwhile.
    /// </summary>
    public async Task<bool> ClaimGroupsAsync(string operationId, string attemptId, IReadOnlyList<ulong> groups, CancellationToken ct) =>
        await controlPlane.ClaimAsync(operationId, attemptId, groups, ct) switch
        {
            ClaimOutcome.Granted or ClaimOutcome.NotRunning => true,
            ClaimOutcome.GroupsBusy => false,
            _ => throw new ClaimLostException($"operation {operationId} was taken over by another attempt"),
        };

    [LoggerMessage(LogLevel.Information, "Operation {OperationId} is held by another live attempt: this request is acknowledged without being worked on")]
    private static partial void LogHeld(ILogger logger, string operationId);
}
