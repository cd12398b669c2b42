namespace Kdb.Testing.Processes;

/// <summary>
/// A launched process did not become ready: it exited first, or the readiness timeout passed. The message ends
/// with the tail of its output; <see cref="Log"/> holds all of it.
/// </summary>
public sealed class ProcessLaunchException : Exception
{
    /// <summary>Creates the exception.</summary>
    public ProcessLaunchException(string message, string log)
        : base(message)
    {
        Log = log;
    }

    /// <summary>Creates the exception for a process that was started and then given up on.</summary>
    public ProcessLaunchException(string message, string log, int processId)
        : this(message, log)
    {
        ProcessId = processId;
    }

    /// <summary>Creates the exception.</summary>
    public ProcessLaunchException()
        : this("The process did not become ready.", string.Empty)
    {
    }

    /// <summary>Creates the exception.</summary>
    public ProcessLaunchException(string message)
        : this(message, string.Empty)
    {
    }

    /// <summary>Creates the exception.</summary>
    public ProcessLaunchException(string message, Exception innerException)
        : base(message, innerException)
    {
        Log = string.Empty;
    }

    /// <summary>Everything the process wrote before the launcher gave up.</summary>
    public string Log { get; }

    /// <summary>Id of the process tree's root when it had been started (it is stopped by the time this is thrown), else null.</summary>
    public int? ProcessId { get; }
}
