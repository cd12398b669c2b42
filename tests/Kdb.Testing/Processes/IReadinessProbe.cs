namespace Kdb.Testing.Processes;

/// <summary>A condition polled by <see cref="ProcessLauncher"/> until a started process counts as ready.</summary>
public interface IReadinessProbe
{
    /// <summary>Human-readable condition, used in timeout messages (for example "HTTP 200 from http://127.0.0.1:5100/health").</summary>
    string Description { get; }

    /// <summary>True once the condition holds. Transient failures (connection refused, I/O errors) must return false, not throw.</summary>
    ValueTask<bool> IsReadyAsync(ILaunchedProcess process, CancellationToken cancellationToken);
}
