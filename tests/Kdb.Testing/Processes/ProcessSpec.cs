using Xunit.Abstractions;

namespace Kdb.Testing.Processes;

/// <summary>
/// What <see cref="ProcessLauncher"/> starts: an executable, its arguments and environment, how to tell that
/// it is ready, and how long to wait for that.
/// </summary>
/// <param name="FileName">Executable path (or a name found on PATH).</param>
/// <param name="Arguments">Arguments, passed without any shell quoting.</param>
public sealed record ProcessSpec(string FileName, IReadOnlyList<string> Arguments)
{
    /// <summary>Short name used to prefix log lines and in error messages; defaults to the executable's file name.</summary>
    public string? Name { get; init; }

    /// <summary>Working directory; the launcher's current directory when null.</summary>
    public string? WorkingDirectory { get; init; }

    /// <summary>Variables to set for the process. A null value removes an inherited variable.</summary>
    public IReadOnlyDictionary<string, string?> Environment { get; init; } = new Dictionary<string, string?>();

    /// <summary>
    /// When false the process starts with only PATH, LANG and <see cref="Environment"/>, so nothing from the
    /// test runner's environment (for example a developer's RABBITMQ_* or PG* variables) leaks into it.
    /// </summary>
    public bool InheritEnvironment { get; init; } = true;

    /// <summary>
    /// A system user to run as when the test runs as root (through <c>runuser -u</c>); ignored otherwise.
    /// PostgreSQL and RabbitMQ refuse to run as root.
    /// </summary>
    public string? RunAsUser { get; init; }

    /// <summary>Condition that means "started"; null means ready as soon as the process is spawned.</summary>
    public IReadinessProbe? Readiness { get; init; }

    /// <summary>
    /// Upper bound for reaching readiness. It is a safety net for a hung start, not a performance check, so it
    /// is generous; the start fails earlier, with the log, if the process exits.
    /// </summary>
    public TimeSpan ReadyTimeout { get; init; } = TimeSpan.FromSeconds(120);

    /// <summary>How long dispose waits after SIGTERM before it SIGKILLs what is left. Zero kills at once.</summary>
    public TimeSpan StopGracePeriod { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>When set, every captured line is also written here as it arrives (while the test is running).</summary>
    public ITestOutputHelper? Output { get; init; }

    /// <summary>The process whose death makes the watchdog kill this tree; the test process when null (tests override it).</summary>
    internal int? WatchProcessId { get; init; }

    /// <summary>A <c>/bin/sh -c</c> script.</summary>
    public static ProcessSpec Shell(string script) => new("/bin/sh", ["-c", script]) { Name = "sh" };

    /// <summary>
    /// A built .NET application (a service host or data-plane node): runs <c>dotnet exec &lt;assembly&gt;</c> with
    /// the same dotnet host that runs the tests. See <see cref="Kdb.Testing.Hosting.RepoPaths.BuiltAssembly"/>.
    /// </summary>
    public static ProcessSpec DotNet(string assemblyPath, params string[] arguments)
    {
        ArgumentException.ThrowIfNullOrEmpty(assemblyPath);
        if (!File.Exists(assemblyPath))
        {
            throw new FileNotFoundException($"Assembly '{assemblyPath}' does not exist; build its project first.", assemblyPath);
        }

        string[] all = ["exec", assemblyPath, .. arguments];
        return new ProcessSpec(DotNetHostPath(), all)
        {
            Name = Path.GetFileNameWithoutExtension(assemblyPath),
            WorkingDirectory = Path.GetDirectoryName(assemblyPath),
        };
    }

    private static string DotNetHostPath()
    {
        // The SDK sets DOTNET_HOST_PATH for test runs; the test host itself is usually started by that same dotnet.
        var fromSdk = System.Environment.GetEnvironmentVariable("DOTNET_HOST_PATH");
        if (!string.IsNullOrEmpty(fromSdk) && File.Exists(fromSdk))
        {
            return fromSdk;
        }

        var self = System.Environment.ProcessPath;
        if (self is not null && Path.GetFileNameWithoutExtension(self) == "dotnet")
        {
            return self;
        }

        return "dotnet";
    }
}
