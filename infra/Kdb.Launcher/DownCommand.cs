using Spectre.Console;

namespace Kdb.Launcher;

/// <summary><c>./kdb down</c>: stops every service of the local cloud, dependants first. Data stays.</summary>
internal sealed class DownCommand(KdbPaths paths, IAnsiConsole console)
{
    public async Task<int> RunAsync()
    {
        paths.EnsureDirectories();
        var secrets = Secrets.LoadOrCreate(paths.SecretsFile);
        var nodes = Math.Max(StateFile.MaxNodeIndex(paths), StateFile.Load(paths)?.Nodes ?? 0);
        // Build the widest topology so that whatever an earlier up started is found and stopped.
        var topology = Topology.Build(paths, secrets, new DevCertificates(paths.Tls), new CloudOptions(Math.Max(nodes, 1), RabbitMq: true));
        foreach (var service in topology.Services.Reverse())
        {
            var running = service.FindRunning();
            if (running is null && service is not RabbitMqService)
            {
                continue;
            }

            if (running is { } handle)
            {
                console.MarkupLineInterpolated($"stopping [bold]{service.Name}[/] (pid {handle.Pid})…");
            }

            await service.StopAsync();
        }

        console.MarkupLine("[green]stopped[/] (data kept under .kdb/)");
        return 0;
    }
}
