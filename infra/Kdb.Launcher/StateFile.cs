namespace Kdb.Launcher;

/// <summary>Remembers how the running local cloud was brought up (bus, node count), so later commands agree with it.</summary>
internal static class StateFile
{
    public static CloudOptions? Load(KdbPaths paths)
    {
        var path = Path.Combine(paths.Run, "cloud");
        if (!File.Exists(path))
        {
            return null;
        }

        var parts = File.ReadAllText(path).Trim().Split(' ');
        return parts.Length == 2 && int.TryParse(parts[1], System.Globalization.CultureInfo.InvariantCulture, out var nodes)
            ? new CloudOptions(nodes, parts[0] == "rabbitmq")
            : null;
    }

    public static void Save(KdbPaths paths, CloudOptions options) =>
        FileUtil.WriteAtomic(Path.Combine(paths.Run, "cloud"), $"{(options.RabbitMq ? "rabbitmq" : "inmemory")} {options.Nodes}\n");

    /// <summary>The highest node index with a pid file: nodes started by an earlier <c>up --nodes N</c>.</summary>
    public static int MaxNodeIndex(KdbPaths paths)
    {
        if (!Directory.Exists(paths.Run))
        {
            return 0;
        }

        var max = 0;
        foreach (var file in Directory.EnumerateFiles(paths.Run, "node*.pid"))
        {
            var name = Path.GetFileNameWithoutExtension(file);
            if (int.TryParse(name.AsSpan(4), System.Globalization.CultureInfo.InvariantCulture, out var n) && n > max)
            {
                max = n;
            }
        }

        return max;
    }
}
