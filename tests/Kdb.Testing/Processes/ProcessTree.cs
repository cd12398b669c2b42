using System.Globalization;
using System.Runtime.InteropServices;

namespace Kdb.Testing.Processes;

/// <summary>
/// Finds and signals every process that belongs to a launched process on Linux: its descendants by parent id,
/// and anything still in its session or process group (children that outlived their parent are re-parented
/// to init but keep the session, because the launcher starts each process as a session leader).
/// </summary>
internal static class ProcessTree
{
    private const int SigKill = 9;
    private const int SigTerm = 15;

    /// <summary>The root and everything that belongs to it, excluding zombies (already dead, waiting to be reaped).</summary>
    public static HashSet<int> Members(int root)
    {
        var all = Snapshot();
        var members = new HashSet<int>();
        if (all.TryGetValue(root, out var rootInfo) && !rootInfo.Zombie)
        {
            members.Add(root);
        }

        foreach (var (pid, info) in all)
        {
            if (!info.Zombie && (info.Session == root || info.Group == root))
            {
                members.Add(pid);
            }
        }

        // Descendants by parent id, to a fixed point: covers children that started a session of their own.
        var frontier = new HashSet<int> { root };
        while (frontier.Count > 0)
        {
            var next = new HashSet<int>();
            foreach (var (pid, info) in all)
            {
                if (frontier.Contains(info.Parent) && !info.Zombie && members.Add(pid))
                {
                    next.Add(pid);
                }
            }

            frontier = next;
        }

        return members;
    }

    /// <summary>True when <paramref name="pid"/> names a live (non-zombie) process.</summary>
    public static bool IsAlive(int pid)
    {
        var info = Read(pid);
        return info is { Zombie: false };
    }

    public static void Terminate(IEnumerable<int> pids) => Signal(pids, SigTerm);

    public static void Kill(IEnumerable<int> pids) => Signal(pids, SigKill);

    /// <summary>
    /// SIGKILL of <paramref name="root"/>'s whole tree (the launcher runs a service under setsid and a shell), then
    /// waits up to ten seconds until every member is gone: no shutdown hook runs, nothing is flushed.
    /// </summary>
    public static async Task KillAndWaitAsync(int root)
    {
        var members = Members(root);
        Kill(members);
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (members.Any(IsAlive) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(10);
        }
    }

    private static void Signal(IEnumerable<int> pids, int signal)
    {
        foreach (var pid in pids)
        {
            // ESRCH (already gone) is the expected race here and needs no handling.
            _ = NativeKill(pid, signal);
        }
    }

    private static Dictionary<int, ProcInfo> Snapshot()
    {
        var result = new Dictionary<int, ProcInfo>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid)
                && Read(pid) is { } info)
            {
                result[pid] = info;
            }
        }

        return result;
    }

    private static ProcInfo? Read(int pid)
    {
        string stat;
        try
        {
            stat = File.ReadAllText($"/proc/{pid}/stat");
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }

        // The command name (field 2) is in parentheses and may itself contain spaces or parentheses,
        // so parsing starts after the last ')': state, ppid, pgrp, session.
        var close = stat.LastIndexOf(')');
        if (close < 0)
        {
            return null;
        }

        var fields = stat.AsSpan(close + 2);
        Span<Range> parts = stackalloc Range[5];
        if (fields.Split(parts, ' ') < 5)
        {
            return null;
        }

        var state = fields[parts[0]];
        return new ProcInfo(
            Parse(fields[parts[1]]),
            Parse(fields[parts[2]]),
            Parse(fields[parts[3]]),
            state.Length > 0 && (state[0] == 'Z' || state[0] == 'X'));
    }

    private static int Parse(ReadOnlySpan<char> text) =>
        int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value) ? value : -1;

    // DllImport rather than LibraryImport: the latter's generated stub needs AllowUnsafeBlocks, which the
    // house style keeps for hot paths, and a blittable (int, int) -> int call needs no marshalling anyway.
    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern int NativeKill(int pid, int signal);

    private readonly record struct ProcInfo(int Parent, int Group, int Session, bool Zombie);
}
