using System.Runtime.InteropServices;

namespace Kdb.Testing.Processes;

/// <summary>Who the tests run as, and how to run a command as a service account instead.</summary>
internal static class Privileges
{
    private static readonly Lazy<bool> Root = new(() => Environment.UserName == "root" || NativeGetEuid() == 0);

    /// <summary>True when the test process has effective uid 0.</summary>
    public static bool IsRoot => Root.Value;

    /// <summary>
    /// The executable and arguments that run <paramref name="fileName"/> as <paramref name="user"/> when root
    /// (<c>runuser</c> resets HOME and friends, so variables are passed again through <c>env</c> after it), or
    /// unchanged when not root or no user is asked for.
    /// </summary>
    public static (string FileName, List<string> Arguments) Wrap(
        string fileName,
        IReadOnlyList<string> arguments,
        string? user,
        IReadOnlyDictionary<string, string> environment,
        bool clearEnvironment)
    {
        if (!NeedsSwitch(user))
        {
            return (fileName, [.. arguments]);
        }

        var wrapped = new List<string> { "-u", user!, "--", "/usr/bin/env" };
        if (clearEnvironment)
        {
            wrapped.Add("-i");
        }

        foreach (var (key, value) in environment)
        {
            wrapped.Add($"{key}={value}");
        }

        wrapped.Add(fileName);
        wrapped.AddRange(arguments);
        return ("/usr/sbin/runuser", wrapped);
    }

    /// <summary>True when running as <paramref name="user"/> needs <c>runuser</c>: root asked to run as someone else.</summary>
    public static bool NeedsSwitch(string? user) => user is not null && user != "root" && IsRoot;

    [DllImport("libc", EntryPoint = "geteuid")]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern uint NativeGetEuid();
}
